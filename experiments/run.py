"""Run an experiment of the paper: `python experiments/run.py --config=table7`.

  --config=NAME[:VARIANT]   a config in experiments/configs/ (or a path to one); VARIANT is
                            `cpu` (default: shrunk to run on a laptop on small real data) or
                            `paper` (the paper's exact setting, real TFDS data, a pod), optionally
                            followed by `,key=value` options.
  --config.KEY=VALUE        override any config field, e.g. --config.num_epochs=1
                            (overriding a swept field pins the sweep to that value)
  --list                    every config with a one-line description
  --dry_run                 print the sweep (one line per run) and train nothing
  --estimate                print what each setup of the sweep would cost (parameters, FLOPs
                            per example, steps, total FLOPs, predicted wall time and scaling
                            efficiency on the config's accelerator slice, or on
                            --accelerator/--chips/--utilisation); trains nothing, reads no data
  --only=REGEX              run only the runs whose names match
  --results_dir=DIR         where runs write (default results/): DIR/<experiment>/<scale>/<run>/
  --data_dir=DIR            TensorFlow Datasets folder for `paper`-scale data
  --compilation_cache_dir=DIR  JAX's persistent compilation cache (default
                            $LAMB_COMPILATION_CACHE or ~/.cache/lamb/jax_compilation; '' = off)

Runs of a sweep share one compiled train and eval step (hyperparameters are arguments of the
step, not constants in it), and the data set is loaded once per process.

A sweep skips finished runs and resumes unfinished ones from their last checkpoint; a diverged
run is recorded as such and the sweep goes on. Exit status: 0 when every run completed or
diverged, 1 when a run crashed, 2 for a bad command line or missing data (nothing written).
"""
from __future__ import annotations

import difflib
import importlib.util
import itertools
import json
import logging
import os
import re
import sys
import time
import traceback
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow (via clu, tfds) is only a reader here
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CONFIG_DIR = ROOT / "experiments" / "configs"
NOT_CONFIGS = {"__init__", "common"}


class UsageError(Exception):
  """A bad command line: printed as one line, exit status 2, nothing written."""


def _natural(path: Path):
  """table3 < table7 < table10; figure1 < figures9_14."""
  return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.stem)]


def available_configs() -> dict:
  return {p.stem: p for p in sorted(CONFIG_DIR.glob("*.py"), key=_natural)
          if p.stem not in NOT_CONFIGS and not p.stem.startswith("_")}


def resolve_config(spec: str) -> str:
  """`table7:paper` -> `/.../experiments/configs/table7.py:paper`; paths pass through."""
  name, sep, variant = spec.partition(":")
  if name.endswith(".py") or os.sep in name:
    if not Path(name).is_file():
      raise UsageError(f"config file {name} does not exist")
    return spec
  configs = available_configs()
  if name not in configs:
    close = difflib.get_close_matches(name, configs, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    raise UsageError(f"unknown config {name!r}{hint} (see --list)")
  return f"{configs[name]}{sep}{variant}"


def describe(path: Path) -> str:
  spec = importlib.util.spec_from_file_location(f"config_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return " ".join((module.__doc__ or "").split()).split(". ")[0].rstrip(".")


def _preprocess_argv(argv):
  """Resolve bare config names before absl sees them; collect the overridden keys."""
  out, overridden = [], set()
  for i, arg in enumerate(argv):
    if i > 1 and argv[i - 1] == "--config":  # `--config table7`, the form absl also accepts
      arg = resolve_config(arg)
    elif i and arg.startswith("--config="):
      arg = "--config=" + resolve_config(arg[len("--config="):])
    elif i and arg.startswith("--config."):
      overridden.add(arg[len("--config."):].split("=", 1)[0])
    out.append(arg)
  if not any(a.startswith("--config=") for a in out[1:]) and "--config" not in out \
      and not any(a in ("--list", "--help", "-h", "--helpfull") for a in out):
    raise UsageError("no --config given; try --config=table7, or --list to see them all")
  return out, overridden


def _unknown_field(argv, overridden):
  """The first overridden key that the config does not have, said plainly (or None)."""
  spec = next(a for a in argv[1:] if a.startswith("--config="))[len("--config="):]
  path, _, variant = spec.partition(":")
  module_spec = importlib.util.spec_from_file_location("config_under_check", path)
  module = importlib.util.module_from_spec(module_spec)
  try:
    module_spec.loader.exec_module(module)
    config = module.get_config(variant) if variant else module.get_config()
  except Exception as e:
    return f"config {Path(path).stem} failed to build: {type(e).__name__}: {e}"
  for key in sorted(overridden):
    node = config
    for depth, part in enumerate(key.split(".")):
      if not hasattr(node, "keys") or part not in node:
        parent = ".".join(key.split(".")[:depth]) or "the config"
        fields = ", ".join(sorted(node.keys())) if hasattr(node, "keys") else "none"
        return f"unknown config field {key!r}; fields of {parent}: {fields}"
      node = node[part]
  return None


def define_flags():
  from absl import flags
  from ml_collections import config_flags
  config_flags.DEFINE_config_file("config", None, "experiment config: NAME[:cpu|paper][,k=v]",
                                  lock_config=True)
  flags.DEFINE_bool("list", False, "list every config with a one-line description")
  flags.DEFINE_bool("dry_run", False, "print the expanded sweep and train nothing")
  flags.DEFINE_bool("estimate", False, "print parameters, FLOPs and the predicted wall time on "
                    "an accelerator slice; train nothing, read no data")
  flags.DEFINE_string("accelerator", None, "--estimate: tpu_v3, a100 or h100 (default: the "
                      "config's hardware)")
  flags.DEFINE_integer("chips", None, "--estimate: chips of the slice (default: the config's)")
  flags.DEFINE_float("utilisation", None, "--estimate: assumed fraction of peak FLOP/s")
  flags.DEFINE_string("only", None, "regular expression: run only matching run names")
  flags.DEFINE_string("results_dir", str(ROOT / "results"), "where results are written")
  flags.DEFINE_string("data_dir", None, "TensorFlow Datasets data_dir (paper scale)")
  flags.DEFINE_string("checkpoint_dir", None, "checkpoints go here instead of the run folder")
  flags.DEFINE_string("compilation_cache_dir", None,
                      "JAX's persistent compilation cache (default $LAMB_COMPILATION_CACHE or "
                      "~/.cache/lamb/jax_compilation; '' turns it off)")
  flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-process)")
  flags.DEFINE_integer("num_processes", None, "number of processes (multi-process)")
  flags.DEFINE_integer("process_id", None, "this process's index (multi-process)")
  return flags.FLAGS


def _format(value) -> str:
  if isinstance(value, float):
    return f"{value:g}"
  return str(value)


def expand_sweep(config, overridden=()):
  """[(run name, {path: value})] of the config's grid, in grid order."""
  axes = [(path, values, label) for path, values, label in config.get("sweep", ())]
  for i, (path, values, label) in enumerate(axes):
    if path in overridden:  # the command line pinned this axis
      node = config
      for part in path.split("."):
        node = node[part]
      axes[i] = (path, (node,), label)
  runs = []
  for combo in itertools.product(*(values for _, values, _ in axes)):
    parts = [f"{label}{_format(v)}" if label else _format(v)
             for (_, _, label), v in zip(axes, combo)]
    runs.append(("_".join(parts) or "run", {p: v for (p, _, _), v in zip(axes, combo)}))
  return runs


def run_config(config, overrides: dict, pinned=()):
  """The config of one run: the sweep's values set on a copy. The reserved axis "variant"
  names an entry of `config.variants`, a tuple of (name, ((path, value), ...)) (e.g. Table 3's
  "adam+" = adam with Goyal et al.'s schedule), applied before the other axes. `pinned` paths
  (the command line's --config.* overrides) keep the config's value over both."""
  run = config.copy_and_resolve_references()
  overrides = dict(overrides)
  keep = {}
  for path in pinned:
    node = config
    for part in path.split("."):
      node = node[part]
    keep[path] = node.to_dict() if hasattr(node, "to_dict") else node
  with run.unlocked():
    if "variant" in overrides:
      name = overrides.pop("variant")
      variants = dict(run.get("variants", ()))
      if name not in variants:
        raise KeyError(f"unknown variant {name!r} of {run.name}")
      run.variant = name
      for path, value in variants[name]:
        _set(run, path, value)
    for path, value in overrides.items():
      _set(run, path, value)
    for path, value in keep.items():
      _set(run, path, value)
    if "variants" in run:  # the grid's table, not this run's (which records `variant`)
      del run["variants"]
  return run


def _set(config, path: str, value):
  node = config
  *parents, leaf = path.split(".")
  for part in parents:
    node = node[part]
  node[leaf] = value


def fingerprint(config_dict: dict) -> str:
  """What makes two runs the same run: the resolved config minus the sweep declaration."""
  # The sweep and the variants table describe the whole grid, not this run (which records the
  # variant it ran and its resolved values): growing a grid must not orphan finished runs.
  # `hardware` only feeds --estimate and never changes what a run trains.
  plain = json.loads(json.dumps({k: v for k, v in config_dict.items()
                                 if k not in ("sweep", "variants", "hardware")},
                                sort_keys=True, default=str))
  return json.dumps(plain, sort_keys=True)


def conflicts(run_dir: Path, run) -> bool:
  """True when `run_dir` holds results of a different config (e.g. another --config.* override)."""
  try:
    stored = json.loads((run_dir / "config.json").read_text())
  except (OSError, ValueError):
    return False
  return fingerprint(stored) != fingerprint(run.to_dict())


def validate(run, data_dir, task_cache, build_task: bool = True):
  """Everything that can be checked before training: optimizer, schedule, batch split, data
  (the data only when `build_task`: a finished run needs none). Returns the run's task, or for
  a run with `phases` a list with one task per phase."""
  from lamb import optim
  from lamb.data.errors import DatasetNotFoundError
  from lamb.train import mesh as mesh_lib, phases, tasks, trainer
  try:
    named = phases.configs(run)
    optim.create(trainer.resolved_optimizer(run, steps_per_epoch=1, total_steps=100,
                                            phase_steps=[50] * len(named)))
    for _, phase_run in named:
      mesh_lib.check_batch_size(phase_run.batch_size, phase_run.get("microbatches", 1))
    if not build_task:
      return None
    built = []
    for _, phase_run in named:
      key = _task_key(phase_run)
      if key not in task_cache:
        absl_logger = logging.getLogger("absl")
        level = absl_logger.level
        absl_logger.setLevel(logging.ERROR)  # tfds warns about missing folders we report ourselves
        try:
          task_cache[key] = tasks.build(phase_run, data_dir)
        finally:
          absl_logger.setLevel(level)
      built.append(task_cache[key])
    return built if phases.is_phased(run) else built[0]
  except (DatasetNotFoundError, ValueError, TypeError, KeyError) as e:
    raise UsageError(" ".join(str(e).split())) from None


def _task_key(config) -> str:
  return json.dumps({k: config.get(k).to_dict() if hasattr(config.get(k), "to_dict")
                     else config.get(k) for k in ("task", "data", "model", "compute_dtype",
                                                  "label_smoothing", "input_dtype",
                                                  "init_from")},
                    sort_keys=True, default=str)


def main(argv) -> int:
  if "--list" in argv:
    for name, path in available_configs().items():
      print(f"{name:<12} {describe(path)}")
    return 0
  argv, overridden = _preprocess_argv(argv)
  FLAGS = define_flags()
  try:
    FLAGS(argv)
  except Exception as e:  # absl flag errors and config override errors alike
    raise UsageError(_unknown_field(argv, overridden) or " ".join(str(e).split())) from None
  config = FLAGS.config
  runs = expand_sweep(config, overridden)
  if FLAGS.only:
    try:
      pattern = re.compile(FLAGS.only)
    except re.error as e:
      raise UsageError(f"--only is not a valid regular expression: {e}") from None
    runs = [r for r in runs if pattern.search(r[0])]
    if not runs:
      raise UsageError(f"--only={FLAGS.only!r} matches no run of {config.name}")
  out_dir = Path(FLAGS.results_dir) / config.name / config.scale
  from lamb.train import results  # files only: a dry run never imports jax
  if FLAGS.dry_run:
    for name, values in runs:
      status = ("conflict" if conflicts(out_dir / name, run_config(config, values, overridden))
                else
                "done" if results.is_finished(out_dir / name) else "todo")
      print(f"{name:<40} {status}  " + " ".join(f"{k}={_format(v)}" for k, v in values.items()))
    print(f"{len(runs)} runs of {config.name} ({config.scale}) -> {out_dir}")
    return 0

  if FLAGS.estimate:
    return _estimate(config, runs, FLAGS, overridden)

  if config.get("scale") == "cpu":  # before JAX's CPU client starts (see lamb/train/host_malloc.py)
    from lamb.train import host_malloc
    host_malloc.reuse_freed_memory()
  import jax
  from lamb.train import mesh as mesh_lib, programs, trainer
  mesh_lib.initialize_distributed(FLAGS.coordinator_address, FLAGS.num_processes,
                                  FLAGS.process_id)
  programs.enable_persistent_cache(FLAGS.compilation_cache_dir)
  # Check every run before training any, so a bad command line writes nothing.
  task_cache, planned = {}, []
  for name, values in runs:
    run = run_config(config, values, overridden)
    if conflicts(out_dir / name, run):
      raise UsageError(f"{out_dir / name} holds results of a different config (another "
                       "--config.* override?); pass --results_dir to keep both, or remove it")
    planned.append((name, run, validate(run, FLAGS.data_dir, task_cache,
                                        build_task=not results.is_finished(out_dir / name))))
  crashed = 0
  for i, (name, run, task) in enumerate(planned):
    run_dir = out_dir / name
    if results.is_finished(run_dir):
      print(f"[{i + 1}/{len(runs)}] {name}: finished before, skipped")
      continue
    lock = results.RunLock(run_dir)
    if jax.process_count() == 1 and not lock.acquire():
      print(f"[{i + 1}/{len(runs)}] {name}: running in another process, skipped")
      continue
    if results.is_finished(run_dir):  # another process may have finished it while we loaded data
      lock.release()
      print(f"[{i + 1}/{len(runs)}] {name}: finished before, skipped")
      continue
    try:
      start = time.time()
      if task is None:  # it was finished at planning time and has been removed since
        task = validate(run, FLAGS.data_dir, task_cache)
      summary = trainer.train_and_evaluate(run, run_dir, data_dir=FLAGS.data_dir,
                                           checkpoint_dir=_ckpt_dir(FLAGS.checkpoint_dir, run, name),
                                           task=task)
      final = summary.get("final") or {}
      last_task = task[-1] if isinstance(task, list) else task
      metric = next(iter(last_task.better))
      print(f"[{i + 1}/{len(runs)}] {name}: {summary['status']} after {summary['steps']} steps, "
            f"{metric} {final.get(metric, float('nan')):.4f} ({time.time() - start:.0f}s)",
            flush=True)
    except Exception as e:  # a crashed run is recorded and the sweep goes on
      crashed += 1
      logging.exception("run %s crashed", name)
      if jax.process_index() == 0:
        results.write_json(run_dir / results.SUMMARY, {
            "status": "failed", "experiment": config.name, "scale": config.scale, "run": name,
            "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-4000:]})
      print(f"[{i + 1}/{len(runs)}] {name}: FAILED ({type(e).__name__}: {e})", flush=True)
    finally:
      lock.release()
  return 1 if crashed else 0


def _estimate(config, runs, FLAGS, overridden=()) -> int:
  from experiments import estimate
  setups = {}  # one estimate per distinct setup, in sweep order
  for name, values in runs:
    run = run_config(config, values, overridden)
    setups.setdefault(estimate.setup_key(run), []).append((name, run))
  for members in setups.values():
    name, run = members[0]
    try:
      text = estimate.report(run, FLAGS.accelerator, FLAGS.chips, FLAGS.utilisation)
    except (ValueError, KeyError, TypeError) as e:
      raise UsageError(" ".join(str(e).split())) from None
    more = f" and {len(members) - 1} more runs of the same shapes" if len(members) > 1 else ""
    print(f"[{name}{more}] {text}")
  return 0


def _ckpt_dir(base, config, name):
  return None if not base else Path(base) / config.name / config.scale / name


def cli(argv=None) -> int:
  argv = list(sys.argv if argv is None else argv)
  if any(a in ("--help", "-h") for a in argv[1:]):
    print(__doc__)
    return 0
  try:
    return main(argv)
  except UsageError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  logging.basicConfig(level=logging.WARNING)
  sys.exit(cli())
