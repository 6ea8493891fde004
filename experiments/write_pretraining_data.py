"""Write a BERT config's pre-training instances offline, in shards, before training reads them.

  python experiments/write_pretraining_data.py --config=table4:paper --data_dir=DIR \\
      --config.data.vocab_file=vocab.txt --config.data.text_glob='books/*.txt' \\
      [--worker=i --num_workers=N]

Every phase of every run of the config's sweep needs instances of its sequence length (BERT:
128 and 512); this writes each distinct set once, into DIR/bert_pretraining/ (see
lamb.data.pretraining_records), the same bytes whether one worker or N write it. Start N copies,
one per machine or core, with --worker=0..N-1: each writes the shards s with s % N == worker. A
worker stopped or killed can be started again: finished shards are kept, the unfinished one is
rewritten. `run.py` with the same --config, overrides and --data_dir then trains on them (the
config's `data.instance_shards` > 0 says it reads written instances).

Exit status: 0 done, 2 for a bad command line or missing input data (nothing written).
"""
from __future__ import annotations

import sys
from pathlib import Path

try:
  from experiments import run as run_cli, sweep
  from experiments.sweep import UsageError
except ModuleNotFoundError:  # run as a script before `pip install -e .`
  sys.exit("error: the project is not installed; run `pip install -r requirements.txt` (which "
           f"installs it with `-e .`) in {Path(__file__).resolve().parents[1]}")


def define_flags(argv=None):
  from absl import flags  # pylint: disable=import-outside-toplevel
  from ml_collections import config_flags  # pylint: disable=import-outside-toplevel
  values = flags.FlagValues()
  # `argv`: the command's own arguments, so that --config.* overrides apply when `cli(argv)` is
  # called from Python (ml_collections reads sys.argv otherwise).
  config_flags.DEFINE_config_file("config", None, "BERT config: NAME[:cpu|paper][,k=v]",
                                  lock_config=True, flag_values=values, sys_argv=argv)
  flags.DEFINE_string("data_dir", None, "TFDS data_dir: the corpus is read from it and the "
                      "instances written under it (default ~/tensorflow_datasets)",
                      flag_values=values)
  flags.DEFINE_integer("worker", 0, "this worker's index, in [0, num_workers)", flag_values=values)
  flags.DEFINE_integer("num_workers", 1, "how many workers share the shards", flag_values=values)
  return values


def data_sections(config, overridden) -> list:
  """[(run name, phase name, data section)] with one entry per distinct instance folder."""
  from lamb.data import pretraining_records  # pylint: disable=import-outside-toplevel
  from lamb.train import phases  # pylint: disable=import-outside-toplevel
  if config.get("task") != "bert_pretraining":
    raise UsageError(f"{config.name} is not a BERT pre-training config (task "
                     f"{config.get('task')!r}); only those have instances to write")
  seen, out = set(), []
  for name, values in sweep.expand_sweep(config, overridden):
    run = sweep.run_config(config, values, overridden)
    for phase, phase_config in phases.configs(run):
      data = phase_config.data
      if not data.get("instance_shards"):
        raise UsageError(f"{config.name}'s data section has no instance_shards (it makes its "
                         "examples in memory); give --config.data.instance_shards=S to write S "
                         "shards")
      key = pretraining_records.folder(data, None).name
      if key not in seen:
        seen.add(key)
        out.append((name, phase, data))
  return out


def main(argv=None) -> int:
  argv = list(sys.argv if argv is None else argv)
  if any(a in ("--help", "-h", "--helpfull") for a in argv[1:]):
    print(__doc__)
    return 0
  try:
    argv, overridden = run_cli.preprocess(argv)
    values = define_flags(argv)
    try:
      leftover = values(argv)[1:]
    except Exception as e:  # pylint: disable=broad-except  (absl and override errors alike)
      raise UsageError(" ".join(str(e).split())) from None
    if leftover:
      raise UsageError(f"unexpected argument {leftover[0]!r}; every option is a --flag=value")
    if values.num_workers < 1 or not 0 <= values.worker < values.num_workers:
      raise UsageError(f"--worker={values.worker} must lie in [0, --num_workers="
                       f"{values.num_workers}), and --num_workers be positive")
    if values.data_dir is not None and not Path(values.data_dir).is_dir():
      raise UsageError(f"--data_dir={values.data_dir} is not a folder")
    from lamb.data import pretraining_shards  # pylint: disable=import-outside-toplevel
    from lamb.data.errors import DatasetNotFoundError  # pylint: disable=import-outside-toplevel
    try:
      for run_name, phase, data in data_sections(values.config, overridden):
        print(f"{values.config.name}: instances of {run_name}, phase {phase} "
              f"(length {data.max_seq_length})", flush=True)
        pretraining_shards.write(data, worker=values.worker, num_workers=values.num_workers,
                                 data_dir=values.data_dir,
                                 say=lambda line: print(line, flush=True))
    except (DatasetNotFoundError, ValueError, KeyError) as e:
      raise UsageError(" ".join(str(e).split())) from None
  except UsageError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
