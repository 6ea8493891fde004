"""The training loop every experiment runs: config in, `results/.../<run>/` out.

    summary = train_and_evaluate(config, run_dir)

Resuming is the default: a run folder with a checkpoint continues from it, and the data
order, the per-step keys and the logged records are functions of the step, so a killed and
resumed run ends with the same metrics as an uninterrupted one.
"""
from __future__ import annotations

import itertools
import logging
import math
import subprocess
import time
from pathlib import Path
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from lamb import optim
from lamb.data import batches as batches_lib
from lamb.optim import masks as masks_lib
from lamb.train import checkpoint as checkpoint_lib
from lamb.train import mesh as mesh_lib
from lamb.train import phases as phases_lib
from lamb.train import prefetch as prefetch_lib
from lamb.train import programs as programs_lib
from lamb.train import results, tasks

log = logging.getLogger(__name__)


def resolved_optimizer(config, steps_per_epoch: int, total_steps: int,
                       phase_steps=None) -> dict:
  """The optimizer section with the run's step counts filled in (schedules speak in epochs
  or ratios in configs; the factory wants steps).

  A two-phase run has one schedule over all its steps: `warmup_polynomial_decay` runs over
  `total_steps` (BERT's reference recipe), and `mixed_batch_rewarmup` (Section 4.1's 64K/32K
  run) takes its two lengths from `phase_steps` (else from the phases' declared num_steps) and
  its warmups as `warmup_ratio1` / `warmup_ratio2` of each phase.
  """
  opt = config.optimizer.to_dict()
  schedule = dict(opt.get("schedule") or {})
  if schedule.get("name") == "mixed_batch_rewarmup":
    steps = tuple(phase_steps or phases_lib.declared_steps(config) or (total_steps, total_steps))
    if len(steps) != 2:
      raise ValueError(f"mixed_batch_rewarmup needs two phases, got {len(steps)}")
    schedule.setdefault("steps1", steps[0])
    schedule.setdefault("steps2", steps[1])
    for i in (1, 2):
      if f"warmup_ratio{i}" in schedule:
        schedule[f"warmup{i}"] = schedule.pop(f"warmup_ratio{i}") * schedule[f"steps{i}"]
  if schedule.get("name") in ("polynomial_decay", "warmup_polynomial_decay"):
    schedule.setdefault("total_steps", total_steps)
    if "warmup_epochs" in schedule:
      schedule["warmup_steps"] = schedule.pop("warmup_epochs") * steps_per_epoch
  if schedule.get("name") == "goyal":
    schedule.setdefault("steps_per_epoch", steps_per_epoch)
  opt["schedule"] = schedule
  return opt


def run_length(config, task) -> tuple:
  """(steps per epoch, total steps). In-memory data is batched by epoch, dropping each epoch's
  remainder; a stream (ImageNet, CIFAR-10 at paper scale) runs on, so 90 epochs of ImageNet at
  16K are ceil(90 x 1281167 / 16384) = 7038 steps, as the paper counts them."""
  num_train, batch_size = task.num_train_examples, config.batch_size
  if batch_size > num_train:
    raise ValueError(f"batch size {batch_size} exceeds the {num_train} training examples")
  if task.train_source is not None and not task.train_arrays:
    steps_per_epoch = num_train / batch_size
    total = config.get("num_steps") or math.ceil(config.num_epochs * num_train / batch_size)
  else:
    steps_per_epoch = batches_lib.steps_per_epoch(num_train, batch_size)
    total = config.get("num_steps") or math.ceil(config.num_epochs * steps_per_epoch)
  return steps_per_epoch, int(total)


def _best(evals: list, better: dict) -> dict:
  """The best finite value of each evaluation metric; `better` maps a metric to max or min."""
  best = {}
  for key, pick in better.items():
    values = [r[key] for r in evals if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
    if values:
      best[key] = pick(values)
  return best


def _interval(config, what: str, steps_per_epoch: int) -> int:
  """`<what>_every_steps`, or `<what>_every_epochs` in steps; 0 = only at the end."""
  steps = config.get(f"{what}_every_steps") or 0
  epochs = config.get(f"{what}_every_epochs") or 0
  return int(steps) or (max(1, round(epochs * steps_per_epoch)) if epochs else 0)


def _git_commit() -> Optional[str]:
  try:
    return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                          cwd=Path(__file__).parent, timeout=5).stdout.strip() or None
  except (OSError, subprocess.SubprocessError):
    return None


def _versions() -> dict:
  import flax
  import optax
  return {"jax": jax.__version__, "jaxlib": jax.lib.__version__ if hasattr(jax.lib, "__version__")
          else None, "flax": flax.__version__, "optax": optax.__version__}


def _flat_ratios(ratios) -> dict:
  flat = jax.tree_util.tree_flatten_with_path(jax.device_get(ratios))[0]
  return {masks_lib.path_to_str(p): np.atleast_1d(np.asarray(v, np.float64)).tolist() for p, v in flat}


def _eval_batches(task, batch_size: int):
  return task.eval_batches(batch_size, process_index=jax.process_index(),
                           process_count=jax.process_count())


def evaluate(task, eval_step, state, mesh, batch_size: int) -> dict:
  totals = None
  for local in _eval_batches(task, batch_size):
    sums = eval_step(state, mesh_lib.global_batch(local, mesh))
    totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
  return task.finalize_eval(jax.device_get(totals))


def _tasks_for(named_configs, task, data_dir) -> list:
  """One task per phase: `task` (a Task, or a list with one per phase) or built here."""
  given = list(task) if isinstance(task, (list, tuple)) else [task] * len(named_configs)
  if len(given) != len(named_configs):
    raise ValueError(f"{len(given)} tasks for {len(named_configs)} phases")
  return [t if t is not None else tasks.build(c, data_dir) for t, (_, c) in
          zip(given, named_configs)]


def train_and_evaluate(config, run_dir: Path, *, data_dir: Optional[str] = None,
                       checkpoint_dir: Optional[Path] = None, task=None,
                       observer: Optional[Callable] = None) -> dict:
  """Trains `config` into `run_dir` (resuming if it holds a checkpoint); returns the summary.

  A config with `phases` (lamb.train.phases) trains them in order with one state, one step
  counter and one schedule; `task` is then a list with one task per phase (or None).
  `observer(event, phase_name, state)`, if given, sees the state at every phase's "start" and
  "end" (tests use it).
  """
  run_dir = Path(run_dir)
  writes = jax.process_index() == 0
  start_time = time.time()
  phased = phases_lib.is_phased(config)
  named = phases_lib.configs(config)
  plan = phases_lib.plan(named, _tasks_for(named, task, data_dir), run_length)
  for phase in plan:
    mesh_lib.check_batch_size(phase.batch_size, phase.config.get("microbatches", 1))
  mesh = mesh_lib.make_mesh()
  total_steps = plan[-1].end
  opt_config = resolved_optimizer(config, plan[0].steps_per_epoch, total_steps,
                                  phase_steps=[p.steps for p in plan] if phased else None)
  structure, numbers = optim.split(opt_config)
  hyperparameters = programs_lib.hyperparameters(numbers, mesh)
  compilations_before, t_compile = programs_lib.compilations(), time.time()
  first_programs = programs_lib.get(plan[0].task, structure, mesh,
                                    plan[0].config.get("microbatches", 1))
  state = first_programs.init(np.int32(config.seed), hyperparameters)
  compile_time = time.time() - t_compile

  ckpt = checkpoint_lib.Checkpointer(Path(checkpoint_dir or run_dir / "checkpoints"))
  recorder = results.RunRecorder(run_dir, enabled=writes)
  start_step = 0
  if ckpt.latest_step() is not None:
    state = ckpt.restore(state)
    start_step = int(state.step)
    recorder.resume(start_step)
    log.info("resumed %s at step %d", run_dir.name, start_step)
  elif plan[0].task.warm_start is not None:  # fine-tuning: pre-trained weights, fresh optimizer
    params = plan[0].task.warm_start(jax.device_get(state.params))
    state = state.replace(params=jax.device_put(params, mesh_lib.replicated(mesh)))
  if writes:
    results.write_json(run_dir / results.CONFIG, config.to_dict())
  writer, report = _writers(run_dir, total_steps, writes)

  status, diverged_at = "completed", None
  train_time, examples = 0.0, 0
  step = start_step
  prefetcher = None
  try:
    for phase in plan[phases_lib.index_at(plan, start_step):]:
      if step >= phase.end:  # a finished run resumed: nothing left to train
        break
      pconfig, ptask = phase.config, phase.task
      tag = {"phase": phase.name} if phased else {}
      t_compile = time.time()
      programs = programs_lib.get(ptask, structure, mesh, pconfig.get("microbatches", 1))
      local_batches = ptask.train_batches(
          phase.batch_size, seed=config.seed, start_step=step - phase.start,
          process_index=jax.process_index(), process_count=jax.process_count())
      prefetcher = prefetch_lib.to_devices(local_batches, mesh)
      # Padded eval batches must split over every device: round up (padding is masked out).
      eval_batch_size = -(-pconfig.get("eval_batch_size", phase.batch_size) // jax.device_count()) \
          * jax.device_count()
      # Both steps are compiled before the clock starts (and once per sweep: see programs.py), so
      # that train_time_s is training alone.
      first = next(prefetcher)
      train_step = programs.train_step.lower(state, first, hyperparameters).compile()
      eval_step = programs.eval_step.lower(state, mesh_lib.global_batch(
          next(_eval_batches(ptask, eval_batch_size)), mesh)).compile()
      compile_time += time.time() - t_compile
      device_batches = itertools.chain([first], prefetcher)
      if observer is not None:
        observer("start", phase.name, state)

      log_every = max(1, pconfig.get("log_every_steps", 50))
      eval_every = _interval(pconfig, "eval", phase.steps_per_epoch)
      trust_every = _interval(pconfig, "trust_ratio", phase.steps_per_epoch)
      ckpt_every = _interval(pconfig, "checkpoint", phase.steps_per_epoch)
      pending = []
      t0, phase_start_step = time.time(), step
      while step < phase.end:
        state, metrics = train_step(state, next(device_batches), hyperparameters)
        step += 1
        local = step - phase.start  # intervals count the phase's own steps
        pending.append((step, metrics))
        last = step == phase.end  # every phase ends with a checkpoint and an evaluation
        checkpoint_now = bool(ckpt_every and local % ckpt_every == 0) or last
        eval_now = bool(eval_every and local % eval_every == 0) or last
        trust_now = bool(trust_every and (local % trust_every == 0 or step == 1 or last))
        # Records are drained (and checked for divergence) before every checkpoint, evaluation
        # and trust-ratio record, so a resumed run loses none and nothing is evaluated past a NaN.
        if local % log_every == 0 or checkpoint_now or eval_now or trust_now:
          fetched = jax.device_get(pending)
          pending = []
          for s, m in fetched:
            if not all(math.isfinite(float(v)) for v in m.values()):
              status, diverged_at = "diverged", s
              break
            record = {"step": s, "split": "train", **tag, **{k: float(v) for k, v in m.items()}}
            recorder.log(record)
          if writes and status == "completed":
            writer.write_scalars(step, {f"train_{k}": v for k, v in record.items()
                                        if k not in ("step", "split", "phase")})
          if status == "diverged":
            recorder.log({"step": diverged_at, "split": "train", **tag, "diverged": True})
            break
        if trust_now:
          try:
            recorder.log_trust_ratios(step, _flat_ratios(optim.trust_ratios(state.opt_state)))
          except ValueError:  # this optimizer keeps no trust ratios
            trust_every = 0
        if eval_now:
          t_eval = time.time()
          metrics = evaluate(ptask, eval_step, state, mesh, eval_batch_size)
          recorder.log({"step": step, "split": "eval", **tag, **metrics})
          if writes:
            writer.write_scalars(step, {f"eval_{k}": v for k, v in metrics.items()})
          t0 += time.time() - t_eval  # evaluation time is not training time
        if report is not None:
          report(step)
        if checkpoint_now:
          recorder.flush()
          ckpt.save(step, state)
      jax.block_until_ready(state)
      train_time += time.time() - t0
      examples += (step - phase_start_step) * phase.batch_size
      prefetcher.close()
      if observer is not None:
        observer("end", phase.name, state)
      if status == "diverged":
        break
    recorder.flush()
  finally:  # also when a step raises: no producer thread or checkpoint write left behind
    if prefetcher is not None:
      prefetcher.close()
    ckpt.close()
  if writes:
    writer.flush()

  evals = [r for r in recorder.metrics if r.get("split") == "eval"]
  epochs = sum(min(max(step - p.start, 0), p.steps) / p.steps_per_epoch for p in plan)
  summary = {
      "status": status, "experiment": config.name, "scale": config.scale,
      "run": run_dir.name, "steps": diverged_at or step, "total_steps": total_steps,
      "steps_per_epoch": plan[0].steps_per_epoch, "epochs": epochs,
      "diverged_at_step": diverged_at,
      "final": {k: v for k, v in evals[-1].items() if k not in ("step", "split", "phase")}
               if evals and status == "completed" else None,
      "best": _best(evals, plan[-1].task.better) if evals else None,
      "wall_time_s": time.time() - start_time,
      "train_time_s": train_time,
      "compile_time_s": compile_time,
      # XLA compilations during this run: 0 when an earlier run of the sweep (or the persistent
      # cache) already compiled its programs.
      "compilations": programs_lib.compilations() - compilations_before,
      "examples_per_s": examples / train_time if train_time > 0 else None,
      "resumed_from_step": start_step or None,
      "device_kind": jax.devices()[0].device_kind, "device_count": jax.device_count(),
      "process_count": jax.process_count(), "versions": _versions(), "git_commit": _git_commit(),
      "data": plan[0].task.description,
  }
  if phased:
    summary["phases"] = [{"name": p.name, "start_step": p.start, "steps": p.steps,
                          "batch_size": p.batch_size, "steps_per_epoch": p.steps_per_epoch}
                         for p in plan]
  if writes:
    results.write_json(run_dir / results.SUMMARY, summary)
  return summary


def _writers(run_dir: Path, total_steps: int, writes: bool):
  """clu's TensorBoard + console writer and its steps/s + ETA reporter."""
  from clu import metric_writers, periodic_actions
  writer = metric_writers.create_default_writer(str(run_dir / "tensorboard"),
                                                just_logging=not writes)
  report = periodic_actions.ReportProgress(num_train_steps=total_steps, writer=writer,
                                           every_secs=30) if writes else None
  return writer, report
