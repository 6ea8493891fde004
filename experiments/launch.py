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
             "init_from")


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


def _start(flags, scale: str):
  if scale == "cpu":  # before JAX's CPU client starts (see lamb/train/host_malloc.py)
    from lamb.train import host_malloc  # pylint: disable=import-outside-toplevel
    host_malloc.reuse_freed_memory()
  from lamb.train import mesh, programs  # pylint: disable=import-outside-toplevel
  mesh.initialize_distributed(flags.coordinator_address, flags.num_processes, flags.process_id)
  programs.enable_persistent_cache(flags.compilation_cache_dir)


def train_sweep(runs, found: dict, out_dir: Path, flags, home: str = None) -> int:
  """Trains the unfinished runs; 0, 1 when a run crashed, 2 when one clashed with another.
  `home`: the bucket URI that `out_dir` mirrors (lamb.train.mirror), or None."""
  config = runs[0][2]
  _start(flags, config.scale)
  task_cache, planned = {}, []
  for name, _, run in runs:
    run_plan = None if found[name] == "done" else prepare(name, run, flags.data_dir, task_cache,
                                                          flags.results_dir, flags.checkpoint_dir)
    planned.append((name, run, run_plan))
  outcomes = [train_one(i, len(planned), entry, out_dir, flags, task_cache, home)
              for i, entry in enumerate(planned)]
  if "conflict" in outcomes:
    return 2
  return 1 if "failed" in outcomes else 0


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
    return _train(run, run_dir, identity, run_plan or prepare(
        run_dir.name, run, flags.data_dir, task_cache, flags.results_dir, flags.checkpoint_dir),
                  flags, say, home)
  finally:
    lock.release()


def same_config(run_dir: Path, identity: str) -> bool:
  """Whether the run folder holds no config yet, or this one (UnreadableError if damaged)."""
  from lamb.train import results  # pylint: disable=import-outside-toplevel
  stored = results.read_json(run_dir / results.CONFIG)
  return stored is None or sweep.identity(stored) == identity


def _train(run, run_dir: Path, identity: str, run_plan, flags, say, home=None) -> str:
  import jax  # pylint: disable=import-outside-toplevel
  from lamb.train import mirror, results, trainer  # pylint: disable=import-outside-toplevel
  start = time.time()
  push = mirror.Pusher(run_dir, home) if home and jax.process_index() == 0 else None
  try:
    summary = trainer.train_and_evaluate(
        run, run_dir, data_dir=flags.data_dir, identity=identity,
        checkpoint_dir=sweep.checkpoint_dir(flags.checkpoint_dir, run, run_dir.name),
        run_plan=run_plan, progress_every_s=flags.progress_every, after_write=push,
        run_home=home)
  except Exception as e:  # a crashed run is recorded and the sweep goes on
    logging.getLogger(__name__).debug("run %s crashed", run_dir.name, exc_info=True)
    where = "the traceback is in " + str(run_dir / results.SUMMARY)
    try:
      if jax.process_index() == 0:
        results.write_json(run_dir / results.SUMMARY, {
            "status": results.FAILED, "experiment": run.name, "scale": run.scale,
            "run": run_dir.name, "identity": identity, "error": f"{type(e).__name__}: {e}",
            "traceback": traceback.format_exc()[-4000:]})
        if push is not None:
          push()
    except OSError as write_error:  # the folder itself may be what failed
      where = f"its summary could not be written either: {write_error}"
    say(f"FAILED ({type(e).__name__}: {' '.join(str(e).split())}; {where})")
    return results.FAILED
  final = summary.get("final") or {}
  metric = next(iter(run_plan.phases[-1].task.better))
  say(f"{summary['status']} after {summary['steps']} steps, {metric} "
      f"{final.get(metric, float('nan')):.4f} ({time.time() - start:.0f}s)")
  return summary["status"]
