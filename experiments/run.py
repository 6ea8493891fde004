"""Run an experiment of the paper: `python experiments/run.py --config=table7`.

  --config=NAME[:VARIANT]   a config in experiments/configs/ (or a path to one); VARIANT is
                            `cpu` (default: shrunk to run on a laptop on small real data) or
                            `paper` (the paper's exact setting, real TFDS data, a pod), optionally
                            followed by `,key=value` options.
  --config.KEY=VALUE        override any config field, e.g. --config.num_epochs=1
                            (overriding a swept field pins the sweep to that value)
  --list                    every config with a one-line description
  --dry_run                 print each run of the sweep with its status and its plan (batch and
                            steps per phase, peak learning rate, warmup steps, weight decay);
                            train nothing, read no data, write nothing
  --estimate                print what each setup of the sweep would cost (parameters, FLOPs
                            per example, steps, total FLOPs, predicted wall time and scaling
                            efficiency on the config's accelerator slice, or on
                            --accelerator/--chips/--utilisation); trains nothing, reads no data
  --target=NAME             the hardware a run is planned for: tpu-v3-1024 (chips, as the
                            paper counts), tpu-v5e-256, h100-80gb-32, ...; each phase's train
                            step is compiled for that device (libtpu's compile-only client for
                            TPUs, `pip install -e .[tpu-plan]`; a host-CPU estimate for GPUs)
                            and the cheapest micro-batches/remat that fit are chosen, printed by
                            --estimate and used when training; a plan that cannot fit exits 2
  --memory_headroom=F       fraction of device memory the plan leaves free (default 0.10)
  --only=REGEX              run only the runs whose names match
  --phase_microbatches=1,4  gradient accumulation per phase (BERT's length 128, then 512)
  --results_dir=DIR         where runs write (default results/): DIR/<experiment>/<scale>/<run>/;
                            a bucket (gs://) through a local mirror, checkpoints
                            in DIR/checkpoints/ (lamb.train.mirror)
  --checkpoint_dir=DIR      checkpoints go to DIR/<experiment>/<scale>/<run>/ instead (a folder
                            or a bucket)
  --data_dir=DIR            TensorFlow Datasets folder for `paper`-scale data
  --progress_every=SECONDS  a progress line (step, loss, steps/s, ETA) this often; 0 = none
  --verbosity=N             0: warnings (default); 1: this library's info; 2: also TensorFlow,
                            orbax and absl
  --compilation_cache_dir=DIR  JAX's persistent compilation cache (default
                            $LAMB_COMPILATION_CACHE or ~/.cache/lamb/jax_compilation; '' = off)
  --distributed=MODE        the multi-process job this process joins (lamb.train.cluster):
                            auto (default: a multi-host Cloud TPU or GKE TPU slice, a SLURM job
                            step or an Open MPI job, read by jax; a lone process joins nothing),
                            tpu, slurm or mpi (that one, an error where it is absent), or none;
                            --coordinator_address/--num_processes/--process_id name it by hand
  --helpfull                every flag, with its default

Each run is planned (lamb.train.plan) and checked before any trains, so a bad value writes
nothing. Runs of a sweep share one compiled train and eval step, and the data set is loaded
once per process. A sweep skips finished runs and resumes unfinished ones from their last
checkpoint; a diverged run is recorded as such and the sweep goes on (in a job of several
processes a crashed run ends every process instead). SIGTERM (a preemption) stops training at
the next step boundary after a checkpoint, and the same command resumes it. Exit status: 0 when
every run completed or diverged, 1 when a run crashed, 2 for a bad command line, missing data,
results of another config or a memory plan that cannot fit (nothing written), 143 when a
SIGTERM stopped the sweep after a checkpoint.
"""
from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
from pathlib import Path

try:
  from experiments import sweep
  from experiments.sweep import UsageError
except ModuleNotFoundError:  # run as a script before `pip install -e .`
  sys.exit("error: the project is not installed; run `pip install -r requirements.txt` (which "
           f"installs it with `-e .`) in {Path(__file__).resolve().parents[1]}")

ROOT = Path(__file__).resolve().parents[1]
HELP_FLAGS = ("--help", "-h", "--helpfull")
BUCKET_SCHEMES = ("gs",)  # lamb.train.mirror.SCHEMES: etils.epath through TensorFlow's gfile
NOISY_LOGGERS = ("absl", "orbax", "tensorflow", "tensorflow_datasets")


def define_flags(argv=None):
  from absl import flags  # pylint: disable=import-outside-toplevel
  from ml_collections import config_flags  # pylint: disable=import-outside-toplevel
  values = flags.FlagValues()
  # `argv`: the command's own arguments, so that --config.* overrides apply when `cli(argv)` is
  # called from Python (ml_collections reads sys.argv otherwise).
  config_flags.DEFINE_config_file("config", None, "experiment config: NAME[:cpu|paper][,k=v]",
                                  lock_config=True, flag_values=values, sys_argv=argv)
  define = lambda kind, name, default, text: getattr(flags, f"DEFINE_{kind}")(
      name, default, text, flag_values=values)
  define("bool", "list", False, "list every config with a one-line description")
  define("bool", "dry_run", False, "print the sweep with each run's plan; train nothing")
  define("bool", "estimate", False, "print parameters, FLOPs and the predicted wall time")
  define("string", "accelerator", None, "--estimate: tpu_v3, a100 or h100")
  define("integer", "chips", None, "--estimate: chips of the slice (default: the config's)")
  define("float", "utilisation", None, "--estimate: assumed fraction of peak FLOP/s, in (0, 1]")
  define("string", "target", None, "the hardware a run is planned for, e.g. tpu-v3-1024 "
         "(chips) or h100-80gb-32: each phase's step is compiled for it and the cheapest "
         "micro-batches/remat that fit are chosen (lamb.train.memory)")
  define("float", "memory_headroom", None, "--target: fraction of device memory left free "
         "(default 0.10)")
  define("string", "only", None, "regular expression: run only matching run names")
  define("string", "phase_microbatches", None, "micro-batches of each phase, comma-separated "
         "(BERT: e.g. 1,4 to accumulate only at length 512); --config.microbatches sets one "
         "for all")
  define("string", "results_dir", str(ROOT / "results"), "where results are written")
  define("string", "data_dir", None, "TensorFlow Datasets data_dir (paper scale)")
  define("string", "checkpoint_dir", None, "checkpoints go here instead of the run folder")
  define("float", "progress_every", 10.0, "seconds between progress lines; 0 = none")
  define("integer", "verbosity", 0, "0 warnings, 1 info, 2 also TensorFlow/orbax/absl")
  define("string", "compilation_cache_dir", None, "JAX's persistent compilation cache "
         "(default $LAMB_COMPILATION_CACHE or ~/.cache/lamb/jax_compilation; '' turns it off)")
  define("string", "coordinator_address", None, "host:port of process 0 (multi-process)")
  define("integer", "num_processes", None, "number of processes (multi-process)")
  define("integer", "process_id", None, "this process's index (multi-process)")
  flags.DEFINE_enum("distributed", "auto", ["auto", "tpu", "slurm", "mpi", "none"],
                    "the job this process joins: auto (read from a multi-host TPU slice, SLURM "
                    "or Open MPI), one of them by name (an error where it is absent), or none",
                    flag_values=values)
  return values


def print_help() -> None:
  """The usage above, then every flag with its default (--help and --helpfull alike)."""
  print(__doc__)
  print("Every flag:")
  values = define_flags()
  for name in sorted(values):
    flag = values[name]
    print(f"  --{name}: {flag.help} (default: {flag.default!r})")


# --- the command line -----------------------------------------------------------------------

def preprocess(argv) -> tuple:
  """Resolves the config name before absl sees it; returns (argv, overridden keys)."""
  specs = [(i, a) for i, a in enumerate(argv) if i and (a == "--config" or
                                                        a.startswith("--config="))]
  if len(specs) > 1:
    raise UsageError("--config is given " + str(len(specs)) + " times; give one config per "
                     "command")
  if not specs:
    raise UsageError("no --config given; try --config=table7, or --list to see them all")
  out, overridden = list(argv), []
  i, arg = specs[0]
  if arg == "--config":
    if i + 1 >= len(out) or out[i + 1].startswith("-"):
      raise UsageError("--config needs a value, e.g. --config=table7")
    out[i + 1] = sweep.resolve_config(out[i + 1])
    spec = out[i + 1]
  else:
    spec = sweep.resolve_config(arg[len("--config="):])
    out[i] = "--config=" + spec
  for a in out[1:]:
    if a.startswith("--config."):
      overridden.append(a[len("--config."):].split("=", 1)[0])
  config = sweep.load_config(spec)
  for key in overridden:
    try:
      sweep.get_path(config, key)
    except KeyError as e:
      raise UsageError(e.args[0]) from None
  return out, set(overridden)


def parse(argv):
  argv, overridden = preprocess(argv)
  values = define_flags(argv)
  try:
    leftover = values(argv)[1:]
  except Exception as e:  # absl flag errors and config override errors alike
    raise UsageError(" ".join(str(e).split())) from None
  if leftover:
    raise UsageError(f"unexpected argument {leftover[0]!r}; every option is a --flag=value")
  check_flags(values)
  return values, overridden


def _check_folder(flag: str, value) -> None:
  """A folder the run may create and write in; UsageError saying why not."""
  if value is None:
    return
  if not str(value).strip():
    raise UsageError(f"--{flag} is empty; give a folder")
  if "://" in str(value):  # a bucket: written through lamb.train.mirror (results) and orbax
    scheme = str(value).split("://", 1)[0]
    if scheme not in BUCKET_SCHEMES:
      raise UsageError(f"--{flag}={value}: {scheme}:// is not a bucket this can write to; "
                       f"give a local folder or one of {', '.join(s + '://' for s in BUCKET_SCHEMES)}")
    return
  path = Path(value)
  if path.exists() and not path.is_dir():
    raise UsageError(f"--{flag}={value} is a file, not a folder")
  existing = next(p for p in [path, *path.absolute().parents] if p.exists())
  try:  # a real probe: permissions alone miss read-only mounts and pseudo file systems
    os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".lamb-probe-"))
  except OSError as e:
    raise UsageError(f"--{flag}={value} cannot be written ({existing}: "
                     f"{e.strerror or type(e).__name__})") from None


def check_flags(flags) -> None:
  _check_folder("results_dir", flags.results_dir)
  _check_folder("checkpoint_dir", flags.checkpoint_dir)
  if flags.data_dir is not None and not Path(flags.data_dir).is_dir():
    raise UsageError(f"--data_dir={flags.data_dir} is not a folder")
  if flags.chips is not None and flags.chips < 1:
    raise UsageError(f"--chips must be a positive integer, got {flags.chips}")
  if flags.utilisation is not None and not 0 < flags.utilisation <= 1:
    raise UsageError(f"--utilisation must lie in (0, 1], got {flags.utilisation}")
  if not flags.progress_every >= 0:
    raise UsageError(f"--progress_every must be >= 0 seconds, got {flags.progress_every}")
  if flags.dry_run and flags.estimate:
    raise UsageError("--dry_run and --estimate are two views; give one")
  if flags.memory_headroom is not None and not 0 <= flags.memory_headroom < 1:
    raise UsageError(f"--memory_headroom must lie in [0, 1), got {flags.memory_headroom}")
  if flags.memory_headroom is not None and not flags.target:
    raise UsageError("--memory_headroom applies to a --target; give one")
  if flags.target:
    from lamb.train import memory  # pylint: disable=import-outside-toplevel  (no jax at import)
    try:
      memory.parse_target(flags.target, flags.chips)
    except ValueError as e:
      raise UsageError(str(e)) from None
  _check_processes(flags)


def _check_processes(flags) -> None:
  """A multi-process job names its coordinator, its size and this process, or none of them."""
  given = [f for f in ("coordinator_address", "num_processes", "process_id")
           if getattr(flags, f) is not None]
  if given and len(given) < 3:
    missing = sorted({"coordinator_address", "num_processes", "process_id"} - set(given))
    raise UsageError(f"--{given[0]} needs {' and '.join('--' + m for m in missing)} too "
                     "(a multi-process job gives all three)")
  if given and flags.num_processes < 1:
    raise UsageError(f"--num_processes must be a positive integer, got {flags.num_processes}")
  if given and not 0 <= flags.process_id < flags.num_processes:
    raise UsageError(f"--process_id must lie in [0, {flags.num_processes}), got "
                     f"{flags.process_id}")


def _phase_microbatches(text: str) -> tuple:
  try:
    counts = tuple(int(part) for part in text.split(","))
  except ValueError:
    counts = ()
  if not counts or any(c < 1 for c in counts):
    raise UsageError(f"--phase_microbatches={text!r}: give positive integers, one per phase, "
                     "comma-separated (e.g. 1,4)")
  return counts


def with_phase_microbatches(run, counts: tuple):
  """`run` with micro-batch count i in phase i (one phase: the run's `microbatches`)."""
  phases = run.get("phases")
  n = len(phases) if phases else 1
  if len(counts) != n:
    raise UsageError(f"--phase_microbatches gives {len(counts)} counts; {run.name}'s runs have "
                     f"{n} phase{'s' if n > 1 else ''}")
  with run.unlocked():
    if not phases:
      run.microbatches = counts[0]
    else:
      run.phases = tuple(dict(phase, overrides=dict(phase.get("overrides", {}),
                                                    microbatches=count))
                         for phase, count in zip(phases, counts))
  return run


def select_runs(config, overridden, only, phase_microbatches=None) -> list:
  """[(name, swept values, run config)] of the sweep (filtered by --only), each run checked
  (and given --phase_microbatches' counts)."""
  counts = _phase_microbatches(phase_microbatches) if phase_microbatches is not None else None
  from lamb.train import plan  # pylint: disable=import-outside-toplevel  (pure Python)
  runs = sweep.expand_sweep(config, overridden)
  if only is not None and not only.strip():
    raise UsageError("--only is empty; give a regular expression of run names (see --dry_run)")
  if only:
    try:
      pattern = re.compile(only)
    except re.error as e:
      raise UsageError(f"--only is not a valid regular expression: {e}") from None
    runs = [r for r in runs if pattern.search(r[0])]
    if not runs:
      raise UsageError(f"--only={only!r} matches no run of {config.name}")
  selected = []
  for name, values in runs:
    try:
      run = sweep.run_config(config, values, overridden)
      if counts is not None:
        run = with_phase_microbatches(run, counts)
      plan.check_config(run)
    except (ValueError, KeyError, TypeError) as e:
      raise sweep.run_error(name, e) from None
    selected.append((name, values, run))
  refuse_duplicates(config.name, selected, overridden)
  return selected


def refuse_duplicates(experiment: str, selected, overridden) -> None:
  """Two runs of one sweep must differ in more than their names: a --config.* override of what
  the grid varies (a variant's learning rate, its seed) would otherwise train one config under
  several names, and the analysis would read copies as a spread of settings or seeds."""
  seen = {}
  for name, _, run in selected:
    key = sweep.fingerprint({k: v for k, v in run.to_dict().items() if k != "variant"})
    if key in seen:
      why = (" once " + ", ".join(f"--config.{p}" for p in sorted(overridden)) + " sets both"
             if overridden else "")
      raise UsageError(f"runs {seen[key]} and {name} of {experiment} would train the same "
                       f"config{why}; pick one with --only")
    seen[key] = name


# --- what is on disk ---------------------------------------------------------------------------

def status_of(run_dir: Path, run, checkpoint_dir, home=None) -> str:
  """done, todo, or conflict (results, checkpoints or a running process of another config).
  Reads only; a damaged file is a UsageError naming it."""
  from experiments import launch  # pylint: disable=import-outside-toplevel  (no jax at import)
  from lamb.train import checkpoint, results  # pylint: disable=import-outside-toplevel
  identity = sweep.identity(run.to_dict())
  try:
    if not launch.same_config(run_dir, identity):
      return "conflict"
    if checkpoint_dir is not None and checkpoint.has_checkpoints(checkpoint_dir) and \
        checkpoint.ownership_problem(checkpoint_dir, identity, home or run_dir, own=False):
      return "conflict"
    if results.is_finished(run_dir):
      return "done"
    results.read_jsonl(run_dir / results.METRICS)  # a damaged record stops the sweep here
    results.read_trust_rows(run_dir / results.TRUST_RATIOS)
  except results.UnreadableError as e:
    raise UsageError(str(e)) from None
  lock = results.RunLock(run_dir)
  if lock.held_elsewhere() and lock.holder() not in ("", identity):
    return "conflict"
  return "todo"


def statuses(runs, out_dir: Path, ckpt_base, home=None) -> dict:
  """{name: status} of every run (see status_of); `home`: the bucket `out_dir` mirrors."""
  return {name: status_of(out_dir / name, run, sweep.checkpoint_dir(ckpt_base, run, name),
                          f"{home}/{name}" if home else None)
          for name, _, run in runs}


def refuse_conflicts(found: dict, out_dir: Path) -> None:
  clashing = [name for name, status in found.items() if status == "conflict"]
  if clashing:
    shown = ", ".join(clashing[:5]) + (f" and {len(clashing) - 5} more" if len(clashing) > 5
                                       else "")
    raise UsageError(f"{len(clashing)} run(s) in {out_dir} hold results, checkpoints or a "
                     f"running process of a different config: {shown} (another --config.* "
                     "override?); pass --results_dir (and --checkpoint_dir) to keep both, or "
                     "remove them")




# --- the three things a command does -----------------------------------------------------------

def dry_run(runs, found: dict, out_dir: Path, config) -> int:
  """Each run's line; exit status 2 when any run could not train."""
  from experiments import estimate  # pylint: disable=import-outside-toplevel
  failed = 0
  for name, values, run in runs:
    try:
      described = estimate.abstract_plan(run).describe()
    except (ValueError, KeyError, TypeError) as e:
      described, failed = f"cannot run: {' '.join(str(e).split())}", failed + 1
    swept = " ".join(f"{k}={sweep.format_value(v)}" for k, v in values.items())
    print(f"{name:<40} {found[name]:<8} {swept} | {described}")
  print(f"{len(runs)} runs of {config.name} ({config.scale}) -> {out_dir}")
  if failed:
    print(f"error: {failed} of {len(runs)} runs cannot run (see their lines)", file=sys.stderr)
  return 2 if failed else 0


def _setups(runs, memory: bool = False) -> dict:
  """{setup key: [(name, run)]}: runs of equal shapes share one estimate; a memory plan also
  needs one optimizer (its state), compute dtype and parallelism."""
  from experiments import estimate  # pylint: disable=import-outside-toplevel
  setups = {}
  for name, _, run in runs:
    key = estimate.setup_key(run)
    if memory:
      key += repr((run.optimizer.get("name"), run.get("compute_dtype"), run.get("sharding"),
                   run.get("gradient_reduction"), run.get("gradient_reduction_dtype")))
    setups.setdefault(key, []).append((name, run))
  return setups


def _memory_plan(run, flags, fixed: bool):
  from experiments import estimate  # pylint: disable=import-outside-toplevel
  from lamb.train import memory  # pylint: disable=import-outside-toplevel
  try:
    return estimate.memory_plan(run, memory.parse_target(flags.target, flags.chips),
                                flags.memory_headroom, fixed)
  except (ValueError, KeyError, TypeError) as e:
    raise UsageError(" ".join(str(e).split())) from None


def run_estimates(runs, flags, fixed_layout: bool = False) -> int:
  from lamb.train import memory  # pylint: disable=import-outside-toplevel
  memory.prepare_planning_process()  # before jax starts: an estimate never claims a device
  from experiments import estimate  # pylint: disable=import-outside-toplevel
  refusals = []
  for members in _setups(runs, memory=bool(flags.target)).values():
    name, run = members[0]
    plan = _memory_plan(run, flags, fixed_layout) if flags.target else None
    try:
      text = estimate.report(run, flags.accelerator, flags.chips, flags.utilisation,
                             memory.parse_target(flags.target, flags.chips)
                             if flags.target else None, plan)
    except (ValueError, KeyError, TypeError) as e:
      raise UsageError(" ".join(str(e).split())) from None
    more = f" and {len(members) - 1} more runs of the same shapes" if len(members) > 1 else ""
    print(f"[{name}{more}] {text}", flush=True)
    if plan is not None and not plan.fits:
      refusals.append(f"{name}: {plan.refusal()}")
  if refusals:
    print(f"error: {refusals[0]}" + (f" (and {len(refusals) - 1} more setups)"
                                     if len(refusals) > 1 else ""), file=sys.stderr)
    return 2
  return 0


def with_memory_plans(runs, flags, fixed_layout: bool) -> list:
  """The runs with each phase's layout from its setup's memory plan on --target (printed);
  UsageError, before anything trains, when a setup cannot fit."""
  import jax  # pylint: disable=import-outside-toplevel  (the job is joined: launch.start)
  from lamb.train import memory  # pylint: disable=import-outside-toplevel
  target = memory.parse_target(flags.target, flags.chips)
  if target.devices != jax.device_count():
    raise UsageError(f"--target={flags.target} plans for {target.devices:,} devices "
                     f"({target.describe()}) but this job has {jax.device_count():,}; give the "
                     "target of the slice that trains (chips, as the paper counts them)")
  out = []
  for members in _setups(runs, memory=True).values():
    name, run = members[0]
    plan = _memory_plan(run, flags, fixed_layout)
    print(f"[{name}] memory plan:\n" + "\n".join(plan.lines()), flush=True)
    if not plan.fits:
      raise UsageError(f"{name}: {plan.refusal()}")
    chosen = {n: with_layout(r, [p.layout for p in plan.phases]) for n, r in members}
    if any(p.layout.microbatches > 1 for p in plan.phases) and not fixed_layout:
      print(f"[{name}] the plan accumulates over micro-batches: part of a run's identity, so "
            "these are other runs than the config's own 1-micro-batch ones; keep the same "
            "--target to resume them", flush=True)
    out.extend(chosen.items())
  order = {name: i for i, (name, _, _) in enumerate(runs)}
  laid_out = dict(out)
  return [(name, values, laid_out[name]) for name, values, _ in
          sorted(runs, key=lambda r: order[r[0]])]


def with_layout(run, layouts: list):
  """`run` with phase i's micro-batches and remat from layouts[i] (lamb.train.memory.Layout),
  each set only where it differs from what the run already does: remat is layout
  (experiments.sweep.LAYOUT_KEYS), micro-batches are part of the identity, so a plan that keeps
  them keeps the run the config's own."""
  phases = run.get("phases")
  default = run.get("microbatches", 1) or 1
  with run.unlocked():
    if not phases:
      if layouts[0].microbatches != default:
        run.microbatches = layouts[0].microbatches
      if layouts[0].remat != (run.get("remat") or "none"):
        run.remat = layouts[0].remat
      return run
    laid_out = []
    for phase, layout in zip(phases, layouts):
      overrides = dict(phase.get("overrides", {}))
      if layout.microbatches != overrides.get("microbatches", default):
        overrides["microbatches"] = layout.microbatches
      if layout.remat != overrides.get("remat", run.get("remat") or "none"):
        overrides["remat"] = layout.remat
      laid_out.append(dict(phase, overrides=overrides))
    run.phases = tuple(laid_out)
  return run


def main(argv) -> int:
  if any(a in HELP_FLAGS for a in argv[1:]):
    print_help()
    return 0
  if "--list" in argv[1:]:
    for name, path in sweep.available_configs().items():
      print(f"{name:<12} {sweep.describe(path)}")
    return 0
  flags, overridden = parse(argv)
  set_verbosity(flags.verbosity)
  config = flags.config
  runs = select_runs(config, overridden, flags.only, flags.phase_microbatches)
  out_dir, home = results_folder(flags, config)
  try:
    return act(flags, config, runs, out_dir, home, overridden)
  finally:
    if home:  # the bucket holds everything; the staging folder was this command's alone
      from lamb.train import mirror  # pylint: disable=import-outside-toplevel
      mirror.remove_staging(out_dir.parents[1])


def act(flags, config, runs, out_dir: Path, home, overridden=()) -> int:
  """The command's one job on the checked runs: a dry run, an estimate, or training."""
  fixed_layout = flags.phase_microbatches is not None or bool(
      {"microbatches", "remat"} & set(overridden))
  if flags.target and not (flags.dry_run or flags.estimate):
    # The job is joined first: planning compiles, which starts jax, and jax.distributed must
    # come before that. Before the statuses: under BatchNorm the micro-batches are part of a
    # run's identity.
    from experiments import launch  # pylint: disable=import-outside-toplevel  (imports jax)
    launch.start(flags, config.scale)
    runs = with_memory_plans(runs, flags, fixed_layout)
  found = statuses(runs, out_dir, flags.checkpoint_dir, home)
  if flags.dry_run:
    return dry_run(runs, found, home or out_dir, config)
  refuse_conflicts(found, home or out_dir)
  if flags.estimate:
    return run_estimates(runs, flags, fixed_layout)
  from experiments import launch  # pylint: disable=import-outside-toplevel  (imports jax)
  return launch.train_sweep(runs, found, out_dir, flags, home)


def results_folder(flags, config) -> tuple:
  """(the local folder the config's runs write in, the bucket URI it mirrors or None). A
  results URI is pulled into its staging folder first, and its checkpoints go to the bucket
  (lamb.train.mirror)."""
  if "://" not in flags.results_dir:
    return Path(flags.results_dir) / config.name / config.scale, None
  from lamb.train import mirror  # pylint: disable=import-outside-toplevel  (pure Python)
  home = f"{flags.results_dir.rstrip('/')}/{config.name}/{config.scale}"
  out_dir = mirror.staging_root(flags.results_dir) / config.name / config.scale
  flags.checkpoint_dir = mirror.checkpoint_base(flags.results_dir, flags.checkpoint_dir)
  try:
    mirror.pull(home, out_dir)
  except Exception as e:  # pylint: disable=broad-except  (no credentials, no bucket, offline)
    mirror.remove_staging(out_dir.parents[1])
    raise UsageError(f"--results_dir={flags.results_dir} cannot be read ({type(e).__name__}: "
                     f"{' '.join(str(e).split())[:300]})") from None
  return out_dir, home


def set_verbosity(level: int) -> None:
  logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
  logging.getLogger().setLevel(logging.INFO if level >= 1 else logging.WARNING)
  os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0" if level >= 2 else "2"
  if level < 2:
    # TensorFlow only reads data here; its oneDNN banner prints before its log level applies.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
  for name in NOISY_LOGGERS:
    # Their errors about a damaged checkpoint or a missing folder are said again, in one line,
    # by this library.
    logging.getLogger(name).setLevel(logging.INFO if level >= 2 else logging.CRITICAL)


def cli(argv=None) -> int:
  argv = list(sys.argv if argv is None else argv)
  try:
    return main(argv)
  except UsageError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow (via clu, tfds) only reads
  sys.exit(cli())
