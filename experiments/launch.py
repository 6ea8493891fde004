"""Training the runs of a sweep, once the command line (experiments/run.py) has checked them.

Every run that is not finished has its data loaded (once per process, shared by the runs of a
sweep) and its plan made before the first trains, so missing data or a value that cannot run is
one `error:` line with nothing written. Each run then trains under its folder's lock, which
holds the run's identity: a second process on the same sweep skips the runs the first is
training, and refuses those it would train with another config.
"""
from __future__ import annotations

import logging
import sys
import time
import traceback
from pathlib import Path

from experiments import sweep
from experiments.sweep import UsageError

# What a task is built from: runs that agree on these share one loaded data set.
TASK_KEYS = ("task", "data", "model", "compute_dtype", "label_smoothing", "input_dtype",
             "init_from", "remat")


def task_key(config) -> dict:
  """The fields of `config` its task is built from."""
  return {k: config.get(k).to_dict() if hasattr(config.get(k), "to_dict") else config.get(k)
          for k in TASK_KEYS}


def _quiet_absl(build):
  """tfds warns about missing folders that our own one-line errors already name."""
  absl_logger = logging.getLogger("absl")
  level = absl_logger.level
  absl_logger.setLevel(logging.ERROR)
  try:
    return build()
  finally:
    absl_logger.setLevel(level)


PREEMPTED = "preempted"  # a run's outcome when a preemption notice stopped it (resumable)
RESULTS_DIR = "{results_dir}"  # in `init_from`: the --results_dir this command writes to


def resolved_init_from(run, results_dir, checkpoint_dir=None):
  """`run` with RESULTS_DIR in its `init_from` replaced by where this command's runs keep their
  checkpoints: `checkpoint_dir` (--checkpoint_dir, or a bucket's, lamb.train.mirror) when
  given, else the run folders under `results_dir` (a copy; the run's config and identity keep
  the placeholder, so they do not depend on where results live)."""
  init_from = run.get("init_from") or ""
  if RESULTS_DIR not in init_from:
    return run
  run = run.copy_and_resolve_references()
  with run.unlocked():
    run.init_from = init_from.replace(RESULTS_DIR, str(checkpoint_dir or results_dir).rstrip("/"))
  return run


def prepare(name: str, run, data_dir, task_cache: dict, results_dir=None, checkpoint_dir=None):
  """The plan of `run` on its tasks (one per phase, loaded once per sweep); UsageError when the
  run cannot train."""
  import jax  # pylint: disable=import-outside-toplevel
  from lamb.data.errors import DatasetNotFoundError  # pylint: disable=import-outside-toplevel
  from lamb.train import phases, plan, tasks  # pylint: disable=import-outside-toplevel
  try:
    built = []
    for _, phase_config in phases.configs(resolved_init_from(run, results_dir, checkpoint_dir)):
      key = sweep.fingerprint(task_key(phase_config))
      if key not in task_cache:
        task_cache[key] = _quiet_absl(lambda: tasks.build(phase_config, data_dir))
      built.append(task_cache[key])
    return plan.make(run, built, jax.device_count(), jax.process_count())
  except DatasetNotFoundError as e:
    raise UsageError(" ".join(str(e).split())) from None
  except (ValueError, TypeError, KeyError) as e:
    raise sweep.run_error(name, e) from None


_STARTED = []  # a process joins its job once (run.py starts it early to plan memory)


def start(flags, scale: str):
  """Joins the job (lamb.train.cluster) and makes SIGTERM a preemption notice; before any jax
  computation. Once per process."""
  if _STARTED:
    return
  _STARTED.append(scale)
  if scale == "cpu":  # before JAX's CPU client starts (see lamb/train/host_malloc.py)
    from lamb.train import host_malloc  # pylint: disable=import-outside-toplevel
    host_malloc.reuse_freed_memory()
  from lamb.train import cluster, programs  # pylint: disable=import-outside-toplevel
  try:
    cluster.join(getattr(flags, "distributed", "auto"), flags.coordinator_address,
                 flags.num_processes, flags.process_id)
  except cluster.ClusterError as e:
    raise UsageError(str(e)) from None
  programs.enable_persistent_cache(flags.compilation_cache_dir)
  cluster.watch_for_preemption()


def train_sweep(runs, found: dict, out_dir: Path, flags, home: str = None) -> int:
  """Trains the unfinished runs; 0, 1 when a run crashed, 2 when one clashed with another,
  cluster.PREEMPTED_EXIT when a preemption notice stopped the sweep after a checkpoint.
  `home`: the bucket URI that `out_dir` mirrors (lamb.train.mirror), or None.

  In a job of several processes a failure on any one ends the command on every one (see
  lamb.train.cluster): the others would otherwise wait for it in a collective."""
  from lamb.train import cluster  # pylint: disable=import-outside-toplevel
  config = runs[0][2]
  start(flags, config.scale)
  use_rng_impl(runs)
  if cluster.is_multi_process():
    cluster.watch_for_failures(_failed_elsewhere(runs, out_dir, home))
  try:
    return _train_sweep(runs, found, out_dir, flags, home)
  except Exception as e:  # pylint: disable=broad-except
    if not cluster.is_multi_process():
      raise
    usage = isinstance(e, UsageError)  # e.g. data that one host does not see
    cluster.stop_every_process("the sweep", e, traceback.format_exc(),
                               then=("rerun the same command once that is mended" if usage
                                     else "rerun the same command to resume"),
                               code=2 if usage else 1)
    raise  # not reached: stop_every_process exits


def use_rng_impl(runs) -> None:
  """Makes the runs' PRNG (`rng_impl`) jax's default for this process, before any key exists:
  one per process, so a sweep mixing two is refused (split it with --only)."""
  import jax  # pylint: disable=import-outside-toplevel
  impls = sorted({run.get("rng_impl") or "threefry2x32" for _, _, run in runs})
  if len(impls) > 1:
    raise UsageError(f"the selected runs ask for PRNGs {', '.join(impls)}; one process uses "
                     "one: run each with its own --only")
  jax.config.update("jax_default_prng_impl", impls[0])


def _train_sweep(runs, found: dict, out_dir: Path, flags, home) -> int:
  from lamb.train import cluster  # pylint: disable=import-outside-toplevel
  task_cache, planned = {}, []
  for name, _, run in runs:
    run_plan = None if found[name] == "done" else prepare(name, run, flags.data_dir, task_cache,
                                                          flags.results_dir, flags.checkpoint_dir)
    planned.append((name, run, run_plan))
  outcomes = []
  for i, entry in enumerate(planned):
    outcomes.append(train_one(i, len(planned), entry, out_dir, flags, task_cache, home))
    if outcomes[-1] == PREEMPTED:  # the job is going away: the next run would be killed
      return cluster.PREEMPTED_EXIT
  if "conflict" in outcomes:
    return 2
  return 1 if "failed" in outcomes else 0


def _failed_elsewhere(runs, out_dir: Path, home):
  """What process 0 does when another process's run failed: the failed summary, as for a run
  that failed here (the other processes write no results)."""
  configs = {name: run for name, _, run in runs}

  def write_summary(failure: dict) -> None:
    from lamb.train import cluster, mirror  # pylint: disable=import-outside-toplevel
    name = failure.get("run")
    if cluster.process_index() != 0 or name not in configs:
      return
    run_dir = out_dir / name
    push = mirror.Pusher(run_dir, f"{home}/{name}") if home else None
    _write_failed_summary(configs[name], run_dir, sweep.identity(configs[name].to_dict()),
                          f"{failure['error']} (on process {failure['process']})",
                          failure.get("traceback", ""), push)
  return write_summary


def train_one(i: int, n: int, entry, out_dir: Path, flags, task_cache, home=None) -> str:
  """One run under its lock; prints its line and returns its outcome."""
  from lamb.train import results  # pylint: disable=import-outside-toplevel
  name, run, run_plan = entry
  run_dir, identity = out_dir / name, sweep.identity(run.to_dict())
  say = lambda text: print(f"[{i + 1}/{n}] {name}: {text}", flush=True)
  try:
    if results.is_finished(run_dir) and same_config(run_dir, identity):
      say("finished before, skipped")
      return "skipped"
    return _locked(run, run_dir, identity, run_plan, flags, task_cache, say,
                   f"{home}/{name}" if home else None)
  except (results.UnreadableError, OSError) as e:  # changed under us, or cannot be written
    print(f"error: {' '.join(str(e).split())}", file=sys.stderr, flush=True)
    return "conflict"


def _locked(run, run_dir: Path, identity: str, run_plan, flags, task_cache, say,
            home=None) -> str:
  import jax  # pylint: disable=import-outside-toplevel
  from lamb.train import results  # pylint: disable=import-outside-toplevel
  lock = results.RunLock(run_dir)
  if jax.process_count() == 1 and not lock.acquire(identity):
    if lock.holder() not in ("", identity):
      print(f"error: {run_dir} is being trained by another process with a different config; "
            "rerun with --results_dir elsewhere", file=sys.stderr, flush=True)
      return "conflict"
    say("running in another process, skipped")
    return "skipped"
  try:
    if not same_config(run_dir, identity):  # another process wrote another config meanwhile
      print(f"error: {run_dir} holds results of a different config; pass --results_dir to keep "
            "both, or remove it", file=sys.stderr, flush=True)
      return "conflict"
    if results.is_finished(run_dir):  # another process finished it while we loaded data
      say("finished before, skipped")
      return "skipped"
    run_plan = run_plan or prepare(run_dir.name, run, flags.data_dir, task_cache,
                                   flags.results_dir, flags.checkpoint_dir)
    refused = layout_refusal(run_dir, run, run_plan, flags)
    if refused:
      print(f"error: {refused}", file=sys.stderr, flush=True)
      return "conflict"
    return _train(run, run_dir, identity, run_plan, flags, say, home)
  finally:
    lock.release()


def layout_refusal(run_dir: Path, run, run_plan, flags) -> str:
  """Why this command may not resume the run with its memory layout (a change inside a phase,
  lamb.train.layout), or ""."""
  from lamb.train import checkpoint, layout  # pylint: disable=import-outside-toplevel
  directory = sweep.checkpoint_dir(flags.checkpoint_dir, run, run_dir.name) or (
      run_dir / "checkpoints")
  if not checkpoint.has_checkpoints(directory):
    return ""
  folder = checkpoint._path(directory)  # pylint: disable=protected-access
  latest = max(int(p.name) for p in folder.iterdir() if p.name.isdigit())
  try:
    layout.check_resume(directory, latest, run_plan, run_dir.name)
  except ValueError as e:
    return str(e)
  return ""


def same_config(run_dir: Path, identity: str) -> bool:
  """Whether the run folder holds no config yet, or this one (UnreadableError if damaged)."""
  from lamb.train import results  # pylint: disable=import-outside-toplevel
  stored = results.read_json(run_dir / results.CONFIG)
  return stored is None or sweep.identity(stored) == identity


def _train(run, run_dir: Path, identity: str, run_plan, flags, say, home=None) -> str:
  import jax  # pylint: disable=import-outside-toplevel
  # pylint: disable-next=import-outside-toplevel
  from lamb.train import cluster, mirror, results, trainer
  start = time.time()
  push = mirror.Pusher(run_dir, home) if home and jax.process_index() == 0 else None
  try:
    summary = trainer.train_and_evaluate(
        run, run_dir, data_dir=flags.data_dir, identity=identity,
        checkpoint_dir=sweep.checkpoint_dir(flags.checkpoint_dir, run, run_dir.name),
        run_plan=run_plan, progress_every_s=flags.progress_every, after_write=push,
        run_home=home)
  except cluster.Preempted as p:
    say(f"preempted: stopped after saving the checkpoint of step {p.step}; rerun the same "
        "command to resume from it")
    return PREEMPTED
  except Exception as e:  # a crashed run is recorded and the sweep goes on
    logging.getLogger(__name__).debug("run %s crashed", run_dir.name, exc_info=True)
    where = "the traceback is in " + str(run_dir / results.SUMMARY)
    trace = traceback.format_exc()
    try:
      if jax.process_index() == 0:
        _write_failed_summary(run, run_dir, identity, f"{type(e).__name__}: {e}", trace, push)
    except OSError as write_error:  # the folder itself may be what failed
      where = f"its summary could not be written either: {write_error}"
    if cluster.is_multi_process():  # the others wait for this one in a collective: all stop
      cluster.stop_every_process(f"run {run_dir.name}", e, trace, run=run_dir.name)
    say(f"FAILED ({type(e).__name__}: {' '.join(str(e).split())}; {where})")
    return results.FAILED
  final = summary.get("final") or {}
  metric = next(iter(run_plan.phases[-1].task.better))
  say(f"{summary['status']} after {summary['steps']} steps, {metric} "
      f"{final.get(metric, float('nan')):.4f} ({time.time() - start:.0f}s)")
  return summary["status"]


def _write_failed_summary(run, run_dir: Path, identity: str, error: str, trace: str,
                          push=None) -> None:
  """summary.json of a crashed run (process 0 alone): a rerun of the sweep trains it again."""
  from lamb.train import results  # pylint: disable=import-outside-toplevel
  results.write_json(run_dir / results.SUMMARY, {
      "status": results.FAILED, "experiment": run.name, "scale": run.scale,
      "run": run_dir.name, "identity": identity, "error": error,
      "traceback": trace[-4000:]})
  if push is not None:
    push()
