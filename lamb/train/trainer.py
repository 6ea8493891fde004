"""The training loop every experiment runs: a plan in, `results/.../<run>/` out.

    summary = train_and_evaluate(config, run_dir)

`Trainer` reads only the run's plan (lamb.train.plan) and works in named steps, in the manner
of flax's imagenet example and init2winit's trainer: `setup_or_restore`, then `train_phase` for
each phase (BERT's sequence length 128, then 512), each step's metrics passed to `record`
(which stops the run at the step where a value stops being finite), `evaluate` at the plan's
intervals and at every phase's end, and `summarise`. The final evaluation (the summary's) also
writes one record per evaluated unit, eval_examples.npz (lamb.train.results), from the rows
the eval program returns alongside its sums.

Resuming is the default: a run folder with a checkpoint continues from it, and the data order,
the per-step keys and the logged records are functions of the step, so a killed and resumed run
ends with the same metrics as an uninterrupted one.
"""
from __future__ import annotations

import hashlib
import itertools
import logging
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from lamb import optim
from lamb.optim import masks as masks_lib
from lamb.train import checkpoint as checkpoint_lib
from lamb.train import cluster as cluster_lib
from lamb.train import layout as layout_lib
from lamb.train import mesh as mesh_lib
from lamb.train import phases as phases_lib
from lamb.train import plan as plan_lib
from lamb.train import prefetch as prefetch_lib
from lamb.train import programs as programs_lib
from lamb.train import noise_scale, results, tasks
from lamb.train.progress import Progress

log = logging.getLogger(__name__)


def train_and_evaluate(config, run_dir: Path, *, data_dir: Optional[str] = None,
                       checkpoint_dir: Optional[Path] = None, task=None,
                       observer: Optional[Callable] = None, identity: str = "",
                       progress_every_s: float = 0.0, run_plan=None,
                       after_write: Optional[Callable[[], None]] = None,
                       run_home: Optional[str] = None) -> dict:
  """Trains `config` into `run_dir` (resuming if it holds a checkpoint); returns the summary.

  `task` is the run's task, or for a config with `phases` a list with one per phase (built
  here when None), or `run_plan` the plan already made of them. `observer(event, phase_name,
  state)`, if given, sees the state at every phase's "start" and "end" (tests use it).
  `identity` (experiments.sweep.identity) is stored with the checkpoints, and checkpoints of
  another identity are refused. `after_write()`, if given, is called (on process 0) once the
  run's records are on disk before each checkpoint, and after its summary (lamb.train.mirror
  pushes them to a bucket), and `run_home` is the run folder's name in its checkpoints (default
  `run_dir`; the bucket URI of a mirrored one).
  """
  if run_plan is None:
    named = phases_lib.configs(config)
    run_plan = plan_lib.make(config, _tasks_for(named, task, data_dir), jax.device_count(),
                             jax.process_count())
  trainer = Trainer(config, run_plan, Path(run_dir), checkpoint_dir=checkpoint_dir,
                    identity=identity, observer=observer, progress_every_s=progress_every_s,
                    after_write=after_write, run_home=run_home)
  return trainer.run()


def _tasks_for(named_configs, task, data_dir) -> list:
  """One task per phase: `task` (a Task, or a list with one per phase) or built here."""
  given = list(task) if isinstance(task, (list, tuple)) else [task] * len(named_configs)
  if len(given) != len(named_configs):
    raise ValueError(f"{len(given)} tasks for {len(named_configs)} phases")
  return [t if t is not None else tasks.build(c, data_dir) for t, (_, c) in
          zip(given, named_configs)]


class Trainer:
  """One run of one plan. Attributes are the run's live state: `state`, `step`, `status`."""

  def __init__(self, config, run_plan, run_dir: Path, *, checkpoint_dir=None, identity="",
               observer=None, progress_every_s: float = 0.0, after_write=None,
               run_home=None):
    self.config, self.plan, self.run_dir = config, run_plan, Path(run_dir)
    # The run folder as its checkpoints name it: the bucket's URI when it is mirrored
    # (lamb.train.mirror), whichever machine's staging folder trains it.
    self.run_home = run_home or self.run_dir
    self.own_checkpoints = checkpoint_dir is None
    self.checkpoints = checkpoint_lib.Checkpointer(checkpoint_dir or self.run_dir / "checkpoints")
    self.identity, self.observer = identity, observer
    self.writes = jax.process_index() == 0
    self.after_write = after_write if self.writes and after_write else (lambda: None)
    self.recorder = results.RunRecorder(self.run_dir, enabled=self.writes, torn=_say_torn)
    self.progress = Progress(run_plan.total_steps, every_s=progress_every_s, label=run_dir.name)
    self.mesh = mesh_lib.make_mesh()
    self.structure, numbers = optim.split(run_plan.optimizer)
    self.hyperparameters = programs_lib.hyperparameters(numbers, self.mesh)
    self.status, self.diverged_at, self.step, self.start_step = results.COMPLETED, None, 0, 0
    self.commit, self.resumed_from_commit = _GIT_COMMIT, None
    self.layout_change = None  # a change of memory layout at a resume (lamb.train.layout)
    self.train_time = self.compile_time = 0.0
    self.segment_start = 0.0  # when the current stretch of training began (evaluation excluded)
    self.examples = 0
    self.started = time.time()
    self.compilations_before = programs_lib.compilations()
    self.state = self.writer = self.tb_progress = self.noise_step = None

  def _programs(self, phase):
    """The shared compiled programs of a phase, laid out as its config says (gradient
    reduction and sharding, lamb.train.mesh.parallelism)."""
    return programs_lib.get(phase.task, self.structure, self.mesh, phase.microbatches,
                            phase.noise_parts,
                            parallelism=mesh_lib.parallelism(phase.config, jax.device_count(),
                                                             phase.microbatches))

  # --- set up or restore -----------------------------------------------------------------------

  def setup_or_restore(self) -> None:
    t0 = time.time()
    first = self.plan.phases[0]
    programs = self._programs(first)
    self.state = programs.init(np.int32(self.plan.seed), self.hyperparameters)
    self.compile_time += time.time() - t0
    self.checkpoints.check_identity(self.identity, self.run_home, own=self.own_checkpoints)
    if self.checkpoints.latest_step() is not None:
      self._restore()
    if self.step == 0:
      self.recorder.resume(0)  # a fresh start: records a kill left before any checkpoint go
      if first.task.warm_start is not None:  # fine-tuning: pre-trained weights, fresh optimizer
        params = first.task.warm_start(jax.device_get(self.state.params))
        self.state = self.state.replace(params=programs.place(params, self.state.params))
    if self.writes:
      results.remove_stale_temporaries(self.run_dir)
      if not self._has_final_evaluation():  # records of an evaluation a kill left unlogged
        (self.run_dir / results.EVAL_EXAMPLES).unlink(missing_ok=True)
      results.write_json(self.run_dir / results.CONFIG, self.config.to_dict())
      self.checkpoints.write_identity(self.identity, self.run_home)
    self.writer, self.tb_progress = _writers(self.run_dir, self.plan.total_steps, self.writes)

  def _restore(self) -> None:
    """Resumes from the newest checkpoint the metrics on disk cover (see Checkpointer)."""
    # Process 0 alone writes the metrics: its count decides for every process.
    records = self.recorder.read() if self.writes else []
    recorded = max((r.get("step", 0) for r in records if r.get("split") == "train"), default=0)
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
      recorded = int(multihost_utils.broadcast_one_to_all(np.int64(recorded)))
    say = lambda text: print(f"{self.run_dir.name}: {text}", file=sys.stderr, flush=True)
    self.state, step = self.checkpoints.restore_newest_usable(self.state, recorded, say)
    if step == 0:
      say("no usable checkpoint; training from the start")
      return
    self.step = self.start_step = int(self.state.step)
    self.train_time = self.checkpoints.train_time(self.step)
    self.resumed_from_commit = self.checkpoints.commit_at(self.step)
    self.layout_change = layout_lib.check_resume(self.checkpoints.directory, self.step,
                                                 self.plan, self.run_dir.name)
    self.recorder.resume(self.step, records if self.writes else None)
    log.info("resumed %s at step %d", self.run_dir.name, self.step)

  # --- train one phase -------------------------------------------------------------------------

  def train_phase(self, phase) -> None:
    """Trains `phase` from the current step to its end, or until the run diverges."""
    t_compile = time.time()
    programs = self._programs(phase)
    batches = prefetch_lib.to_devices(phase.task.train_batches(
        phase.batch_size, seed=self.plan.seed, start_step=self.step - phase.start,
        process_index=jax.process_index(), process_count=jax.process_count()), self.mesh)
    try:
      first = next(batches)
      # Both steps are compiled before the clock starts (and once per sweep: see programs.py),
      # so that train_time_s is training alone.
      train_step = programs.train_step.lower(self.state, first, self.hyperparameters).compile()
      eval_step = programs.eval_step.lower(self.state, mesh_lib.global_batch(
          next(self._eval_batches(phase)), self.mesh)).compile()
      self.noise_step = (programs.noise_step.lower(self.state, first).compile()
                         if phase.noise_every else None)
      self.compile_time += time.time() - t_compile
      self._notify("start", phase)
      self._steps(phase, train_step, eval_step, itertools.chain([first], batches))
    finally:  # also when a step raises: no producer thread left behind
      batches.close()
    self._notify("end", phase)

  def _steps(self, phase, train_step, eval_step, batches) -> None:
    self.segment_start, first_step, previous = time.time(), self.step, None
    while self.step < phase.end:
      batch = next(batches)
      if self.noise_step is not None and (self.step - phase.start) % phase.noise_every == 0:
        self._measure_noise(phase, batch)
      self.state, metrics = train_step(self.state, batch, self.hyperparameters)
      self.step += 1
      # The previous step's metrics are read while this one runs: the run stops at the step
      # after a divergence (nothing is evaluated or checkpointed past it), and the devices
      # always have a step queued while the host reads.
      if previous is not None:
        ok, previous = self.record(phase, *previous), None
        if not ok:
          break
      previous = (self.step, metrics)
      local = self.step - phase.start  # intervals count the phase's own steps
      last = self.step == phase.end  # every phase ends with a checkpoint and an evaluation
      act = {"checkpoint": _due(phase.checkpoint_every, local) or last,
             "eval": _due(phase.eval_every, local) or last,
             "trust": bool(phase.trust_every) and (_due(phase.trust_every, local)
                                                   or self.step == 1 or last)}
      if any(act.values()) or local % phase.log_every == 0:
        ok, previous = self.record(phase, *previous), None
        if not ok:
          break
        self._act(phase, eval_step, act)
      if self.tb_progress is not None:
        self.tb_progress(self.step)
      self.progress.update(self.step)
      if cluster_lib.preemption_reached():  # SIGTERM: every process stops at this same step
        if previous is not None and not self.record(phase, *previous):
          break  # diverged at this very step: the run ends as diverged, nothing to resume
        self._stop_for_preemption(phase, eval_step, saved=act["checkpoint"])
    jax.block_until_ready(self.state)
    self.train_time += time.time() - self.segment_start
    self.examples += (self.step - first_step) * phase.batch_size

  def _act(self, phase, eval_step, act: dict) -> None:
    """Trust ratios, evaluation and checkpoint due at this step."""
    if act["trust"]:
      self._record_trust_ratios()
    if act["eval"]:
      t_eval = time.time()
      self.evaluate(phase, eval_step, final=self.step == self.plan.total_steps)
      self.segment_start += time.time() - t_eval  # evaluation time is not training time
    if act["checkpoint"]:
      self.recorder.flush()  # the records a checkpoint's step needs are on disk before it
      self.after_write()
      self.checkpoints.save_commit(self.step, self.commit)  # before: a kill in save keeps it
      layout_lib.save(self.checkpoints.directory, self.step, phase)
      self.checkpoints.save(self.step, self.state)
      self.checkpoints.save_train_time(
          self.step, self.train_time + time.time() - self.segment_start)

  def _stop_for_preemption(self, phase, eval_step, saved: bool) -> None:
    """A preemption notice (lamb.train.cluster): the step's records and its checkpoint (unless
    its schedule wrote it just now) go to disk, and the run stops with cluster.Preempted; the
    same command resumes from this checkpoint and ends as an uninterrupted run would."""
    if not saved:
      self._act(phase, eval_step, {"trust": False, "eval": False, "checkpoint": True})
    raise cluster_lib.Preempted(self.step)

  # --- record and detect divergence ------------------------------------------------------------

  def record(self, phase, step: int, metrics) -> bool:
    """Logs one step's training metrics; False (and the run diverged) if any is not finite."""
    values = {k: float(v) for k, v in jax.device_get(metrics).items()}
    tag = self._tag(phase)
    if not all(math.isfinite(v) for v in values.values()):
      self.status, self.diverged_at = results.DIVERGED, step
      self.recorder.log({"step": step, "split": "train", **tag, "diverged": True})
      return False
    self.recorder.log({"step": step, "split": "train", **tag, **values})
    self.progress.loss = values.get("loss")
    if self.writes and step % phase.log_every == 0:
      self.writer.write_scalars(step, {f"train_{k}": v for k, v in values.items()})
    return True

  def _measure_noise(self, phase, batch) -> None:
    """One gradient-noise measurement on the batch step `self.step + 1` trains on, recorded
    under that step (a resume that retrains it measures it again, never twice); its time is not
    training time. See lamb.train.noise_scale."""
    jax.block_until_ready(self.state)  # the step before is training time, not measuring time
    t_noise = time.time()
    norms = {k: float(v) for k, v in jax.device_get(self.noise_step(self.state, batch)).items()}
    if all(math.isfinite(v) for v in norms.values()):
      self.recorder.log(noise_scale.record(
          self.step + 1, norms["g_small_sq"], norms["g_big_sq"],
          phase.batch_size // phase.noise_parts, phase.batch_size, **self._tag(phase)))
    self.segment_start += time.time() - t_noise

  def _tag(self, phase) -> dict:
    return {"phase": phase.name} if self.plan.phased else {}

  def _record_trust_ratios(self) -> None:
    try:
      ratios = optim.trust_ratios(self.state.opt_state)
    except ValueError:  # this optimizer keeps no trust ratios
      return
    flat = jax.tree_util.tree_flatten_with_path(jax.device_get(ratios))[0]
    self.recorder.log_trust_ratios(self.step, {
        masks_lib.path_to_str(p): np.atleast_1d(np.asarray(v, np.float64)).tolist()
        for p, v in flat})

  # --- evaluate --------------------------------------------------------------------------------

  def _eval_batches(self, phase):
    return phase.task.eval_batches(phase.eval_batch_size, process_index=jax.process_index(),
                                   process_count=jax.process_count())

  def evaluate(self, phase, eval_step, final: bool = False) -> dict:
    """Evaluates the current state; the `final` evaluation (the summary's) also writes its
    per-unit records, eval_examples.npz, before its metrics are logged, so a run whose final
    evaluation is on record has its file."""
    totals, rows = None, []
    for local in self._eval_batches(phase):
      sums, batch_rows = eval_step(self.state, mesh_lib.global_batch(local, self.mesh))
      totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
      if final:  # other evaluations leave the rows on the devices, never read
        rows.append(batch_rows)
    totals = jax.device_get(totals)
    metrics = phase.task.finalize_eval(totals)
    if final and phase.task.eval_records is not None:
      records = phase.task.eval_records(_concatenated(jax.device_get(rows)), totals)
      metrics = dict(metrics, eval_unit=records.unit, eval_units=len(records))
      if self.writes:
        results.write_eval_examples(self.run_dir, records.arrays, {
            "unit": records.unit, "metric": records.metric, "step": self.step,
            "eval_set": results.eval_set_fingerprint(records.identity)})
    self.recorder.log({"step": self.step, "split": "eval", **self._tag(phase), **metrics})
    if self.writes:
      self.writer.write_scalars(self.step, {f"eval_{k}": v for k, v in metrics.items()
                                            if not isinstance(v, str)})
    return metrics

  # --- the whole run ---------------------------------------------------------------------------

  def run(self) -> dict:
    try:
      self.setup_or_restore()
      for phase in self.plan.phases[self.plan.index_at(self.step):]:
        if self.step >= phase.end:  # a finished run resumed: nothing left to train
          break
        self.train_phase(phase)
        if self.status == results.DIVERGED:
          break
      if self.status == results.COMPLETED and not self._has_final_evaluation():
        self._final_evaluation()  # resumed at the end, its last evaluation lost with a kill
      self.recorder.flush()
    finally:  # no checkpoint write left behind
      self.checkpoints.close()
    if self.writes:
      self.writer.flush()
    return self.summarise()

  def _has_final_evaluation(self) -> bool:
    evals = self.recorder.evals
    return bool(evals) and evals[-1]["step"] == self.step == self.plan.total_steps

  def _final_evaluation(self) -> None:
    phase = self.plan.phases[-1]
    programs = self._programs(phase)
    self.evaluate(phase, programs.eval_step, final=True)

  def _notify(self, event: str, phase) -> None:
    if self.observer is not None:
      self.observer(event, phase.name, self.state)

  def summarise(self) -> dict:
    steps = self.diverged_at or self.step
    evals, last = self.recorder.evals, self.plan.phases[-1]
    final = evals[-1] if evals and evals[-1]["step"] == steps else None
    if self.status == results.COMPLETED and final is None:
      raise RuntimeError(f"{self.run_dir.name} ended at step {steps} without its final "
                         "evaluation; rerun it to complete")
    summary = {
        "status": self.status, "experiment": self.config.name, "scale": self.config.scale,
        "run": self.run_dir.name, "identity": self.identity,
        # The bytes of config.json this run wrote: an edit of it later is named by the analysis.
        "config_sha256": _file_sha256(self.run_dir / results.CONFIG), "steps": steps,
        "total_steps": self.plan.total_steps,
        "steps_per_epoch": self.plan.phases[0].steps_per_epoch,
        "epochs": self.plan.epochs_at(steps), "diverged_at_step": self.diverged_at,
        "final": ({k: v for k, v in final.items() if k not in ("step", "split", "phase")}
                  if self.status == results.COMPLETED else None),
        "best": _best(evals, last.task.better) if evals else None,
        "wall_time_s": time.time() - self.started, "train_time_s": self.train_time,
        "compile_time_s": self.compile_time,
        # XLA compilations during this run: 0 when an earlier run of the sweep (or the
        # persistent cache) already compiled its programs.
        "compilations": programs_lib.compilations() - self.compilations_before,
        "examples_per_s": self.examples / self.train_time if self.train_time > 0 else None,
        "resumed_from_step": self.start_step or None,
        # The code that trained the steps before the resume, when it was recorded: a run
        # trained partly by other code is named by the analysis.
        "resumed_from_commit": self.resumed_from_commit if self.start_step else None,
        **_environment(),
        "data": self.plan.phases[0].task.description,
    }
    if self.plan.phased:
      summary["phases"] = [{"name": p.name, "start_step": p.start, "steps": p.steps,
                            "batch_size": p.batch_size, "steps_per_epoch": p.steps_per_epoch,
                            "microbatches": p.microbatches,
                            "remat": p.config.get("remat") or "none"}
                           for p in self.plan.phases]
    if self.layout_change and self.start_step:
      summary["layout_change"] = self.layout_change
    if self.writes:
      results.write_json(self.run_dir / results.SUMMARY, summary)
      self.after_write()
    return summary


def _concatenated(batches: list) -> dict:
  """Per-row outputs of every evaluation batch, one array per key (rows in global order)."""
  if not batches or not batches[0]:
    return {}
  return {k: np.concatenate([np.asarray(b[k]) for b in batches]) for k in batches[0]}


def _file_sha256(path: Path) -> Optional[str]:
  try:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
  except OSError:
    return None


def _due(every: int, local_step: int) -> bool:
  return bool(every) and local_step % every == 0


_SAID_TORN: set = set()


def _say_torn(path: Path, text: str) -> None:
  if (path, text) not in _SAID_TORN:
    _SAID_TORN.add((path, text))
    print(f"{path}: dropped a torn last line ({len(text)} characters) that an interrupted "
          "write left", file=sys.stderr, flush=True)


def _best(evals: list, better: dict) -> dict:
  """The best finite value of each evaluation metric; `better` maps a metric to max or min."""
  best = {}
  for key, pick in better.items():
    values = [r[key] for r in evals
              if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
    if values:
      best[key] = pick(values)
  return best


def _git_commit() -> Optional[str]:
  try:
    return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                          cwd=Path(__file__).parent, timeout=5).stdout.strip() or None
  except (OSError, subprocess.SubprocessError):
    return None


_GIT_COMMIT = _git_commit()  # the code this process runs, read once


def _environment() -> dict:
  import flax  # pylint: disable=import-outside-toplevel
  import optax  # pylint: disable=import-outside-toplevel
  return {"device_kind": jax.devices()[0].device_kind, "device_count": jax.device_count(),
          "process_count": jax.process_count(), "git_commit": _GIT_COMMIT,
          "versions": {"jax": jax.__version__,
                       "jaxlib": getattr(jax.lib, "__version__", None),
                       "flax": flax.__version__, "optax": optax.__version__}}


def _writers(run_dir: Path, total_steps: int, writes: bool):
  """clu's TensorBoard writer and its steps/s reporter (`tensorboard --logdir results/`)."""
  from clu import metric_writers, periodic_actions  # pylint: disable=import-outside-toplevel
  writer = metric_writers.create_default_writer(str(run_dir / "tensorboard"),
                                                just_logging=not writes)
  report = periodic_actions.ReportProgress(num_train_steps=total_steps, writer=writer,
                                           every_secs=30) if writes else None
  return writer, report
