"""A run's plan: its config resolved once into what the training loop does.

    check_config(config)              # every field in range, before anything is built or written
    run_plan = make(config, tasks)    # phases, batches, steps, intervals, optimizer in steps
    run_plan.describe()               # what --dry_run prints: the paper's arithmetic, checkable

The plan is the only thing the loop reads. A phase (lamb.train.phases) is a range of global
steps with its batch size, micro-batches, step count and intervals (log, eval, trust ratios,
checkpoint) in the phase's own steps; the optimizer section carries every schedule length in
steps (lamb.optim.schedules.resolve). Fixed-epoch budgets follow Section 4: a stream runs
ceil(epochs x examples / batch) steps (90 ImageNet epochs at 16K are 7038), in-memory data is
batched by epoch, each epoch's remainder dropped.

`check_config` needs no jax, no data and no device: the command line calls it on every run of
a sweep before it imports jax, so a bad number costs a fraction of a second and writes nothing.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional

from lamb.data import batches as batches_lib
from lamb.data import splits
from lamb.train import phases as phases_lib

# Intervals a config may give in steps or in epochs (`<what>_every_steps|epochs`); 0 = only at
# the end of each phase (evaluation, checkpoint) or never (trust ratios).
INTERVALS = ("eval", "trust_ratio", "checkpoint", "noise_scale")
_UNIT_RANGE = ("b1", "b2", "momentum", "beta", "decay_factor")
_NON_NEGATIVE = ("learning_rate", "weight_decay", "l2", "eps", "eps_root", "end_value",
                 "warmup_ratio", "warmup_steps", "warmup_epochs")


def _is_int(value) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive_int(config, field: str, where: str = "") -> None:
  value = config.get(field)
  if not _is_int(value) or value < 1:
    raise ValueError(f"{where}{field} must be a positive integer, got {value!r}")


def _check_counts(config, where: str) -> None:
  _positive_int(config, "batch_size", where)
  for optional in ("microbatches", "eval_batch_size", "log_every_steps", "noise_scale_parts"):
    if optional in config:
      _positive_int(config, optional, where)
  if config.batch_size % config.get("microbatches", 1):
    raise ValueError(f"{where}microbatches={config.microbatches} does not divide "
                     f"batch_size={config.batch_size}")
  steps = config.get("num_steps") or 0
  if not _is_int(steps) or steps < 0:
    raise ValueError(f"{where}num_steps must be a non-negative integer (0: from num_epochs), "
                     f"got {steps!r}")
  epochs = config.get("num_epochs")
  if not steps and not (_is_number(epochs) and math.isfinite(epochs) and epochs > 0):
    raise ValueError(f"{where}num_epochs must be a positive number (or num_steps > 0), "
                     f"got {epochs!r}")


def _check_intervals(config, where: str) -> None:
  for what in INTERVALS:
    steps, epochs = config.get(f"{what}_every_steps"), config.get(f"{what}_every_epochs")
    if steps is not None and (not _is_int(steps) or steps < 0):
      raise ValueError(f"{where}{what}_every_steps must be a non-negative integer, got {steps!r}")
    if epochs is not None and not (_is_number(epochs) and math.isfinite(epochs) and epochs >= 0):
      raise ValueError(f"{where}{what}_every_epochs must be a non-negative number, "
                       f"got {epochs!r}")


def _check_data(config, where: str) -> None:
  data = config.get("data") or {}
  if data.get("eval_split"):
    try:
      splits.split_and_slice(str(data.get("eval_split")))
    except ValueError as e:
      raise ValueError(f"{where}data.eval_split: {e}") from None
  for field in ("train_examples", "eval_examples", "validation_documents"):
    value = data.get(field)
    if value is not None and (not _is_int(value) or value < 0):
      raise ValueError(f"{where}data.{field} must be a non-negative integer (0: "
                       f"{'none' if field == 'validation_documents' else 'the whole split'}), "
                       f"got {value!r}")


def _check_numbers(section, path: str) -> None:
  """Every number of the optimizer section finite; rates and decays >= 0; betas in [0, 1]."""
  items = section.items() if hasattr(section, "items") else enumerate(section)
  for key, value in items:
    here = f"{path}.{key}"
    if hasattr(value, "items") or isinstance(value, (list, tuple)):
      _check_numbers(value, here)
    elif _is_number(value):
      leaf = here.split(".")[-1] if not isinstance(key, int) else here.split(".")[-2]
      if not math.isfinite(value):
        raise ValueError(f"{here} must be finite, got {value!r}")
      if leaf in _NON_NEGATIVE and value < 0:
        raise ValueError(f"{here} must be >= 0, got {value!r}")
      if leaf in _UNIT_RANGE and not 0 <= value <= 1:
        raise ValueError(f"{here} must lie in [0, 1], got {value!r}")


# Model fields with a fixed set of values, checked before anything is built (the models hold the
# same tuples, e.g. lamb.models.resnet.CONVS; a test checks they agree).
MODEL_CHOICES = {"conv": ("xla", "matmul"), "attention_probs_dtype": ("float32", "bfloat16")}


REMAT_POLICIES = ("none", "minimal", "full")  # lamb.models.bert.REMAT_POLICIES


def _check_model(config, where: str) -> None:
  model = config.get("model") or {}
  for field, allowed in MODEL_CHOICES.items():
    if field in model and model[field] not in allowed:
      raise ValueError(f"{where}model.{field}={model[field]!r} is not one of {allowed}")
  remat = config.get("remat") or "none"
  if remat not in REMAT_POLICIES:
    raise ValueError(f"{where}remat={remat!r} is not one of {REMAT_POLICIES}")
  if remat != "none" and model.get("name") != "bert":
    raise ValueError(f"{where}remat={remat!r}: only BERT's encoder layers are rematerialised; "
                     f"model {model.get('name')!r} takes remat='none'")


RNG_IMPLS = ("threefry2x32", "unsafe_rbg")  # jax_default_prng_impl values a run may ask for


def check_config(config) -> None:
  """ValueError naming the first field out of range (and what is allowed); pure Python."""
  if config.get("rng_impl", RNG_IMPLS[0]) not in RNG_IMPLS:
    raise ValueError(f"rng_impl={config.get('rng_impl')!r} is not one of {RNG_IMPLS}")
  seed = config.get("seed", 0)
  if not _is_int(seed) or seed < 0:
    raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
  _check_numbers(config.optimizer, "optimizer")
  for name, phase_config in phases_lib.configs(config):
    where = f"phase {name}: " if phases_lib.is_phased(config) else ""
    _check_counts(phase_config, where)
    _check_intervals(phase_config, where)
    _check_data(phase_config, where)
    _check_model(phase_config, where)


@dataclasses.dataclass(frozen=True)
class PhasePlan:
  name: str
  config: Any  # the run's config with this phase's overrides (its data, model and task)
  task: Any
  start: int  # global steps done when the phase begins
  steps: int
  steps_per_epoch: float
  batch_size: int
  microbatches: int
  eval_batch_size: int
  log_every: int
  eval_every: int  # in the phase's own steps; 0 = at its end only
  trust_every: int  # 0 = never
  checkpoint_every: int  # 0 = at its end only
  noise_every: int = 0  # gradient noise scale measurements (lamb.train.noise_scale); 0 = never
  noise_parts: int = 0  # slices of the batch a measurement compares with the whole

  @property
  def end(self) -> int:
    return self.start + self.steps


@dataclasses.dataclass(frozen=True)
class Plan:
  phases: tuple
  optimizer: dict  # the optimizer section, every schedule length in steps
  seed: int
  phased: bool  # declared phases (summaries and records name them)

  @property
  def total_steps(self) -> int:
    return self.phases[-1].end

  def index_at(self, step: int) -> int:
    """The phase that continues a run with `step` steps done (the last once all are done)."""
    return next((i for i, p in enumerate(self.phases) if step < p.end), len(self.phases) - 1)

  def epochs_at(self, step: int) -> float:
    return sum(min(max(step - p.start, 0), p.steps) / p.steps_per_epoch for p in self.phases)

  def describe(self) -> str:
    """The values that matter, for checking the paper's arithmetic without training."""
    from lamb.optim import schedules  # pylint: disable=import-outside-toplevel
    parts = [f"{p.name + ' ' if self.phased else ''}batch {p.batch_size}"
             f"{f'/{p.microbatches}mb' if p.microbatches > 1 else ''} x {p.steps} steps "
             f"({p.steps / p.steps_per_epoch:.3g} ep)" for p in self.phases]
    warmup = "+".join(f"{w:.0f}" for w in schedules.warmup_steps(self.optimizer["schedule"]))
    wd = self.optimizer.get("weight_decay")
    return (f"{'; '.join(parts)}; peak lr {self.optimizer['learning_rate']:g}, warmup {warmup} "
            f"steps, weight decay {'-' if wd is None else f'{wd:g}'}")


def run_length(config, task) -> tuple:
  """(steps per epoch, total steps) of one phase on its task's training set."""
  num_train, batch_size = task.num_train_examples, config.batch_size
  if batch_size > num_train:
    raise ValueError(f"batch_size {batch_size} exceeds the {num_train} training examples")
  requested = (config.get("data") or {}).get("train_examples") or 0
  if requested > num_train:
    raise ValueError(f"data.train_examples={requested} exceeds the {num_train} examples of the "
                     "training split")
  if task.train_source is not None and not task.train_arrays:  # a stream: epochs run on
    steps_per_epoch = num_train / batch_size
    total = config.get("num_steps") or math.ceil(config.num_epochs * num_train / batch_size)
  else:
    steps_per_epoch = batches_lib.steps_per_epoch(num_train, batch_size)
    total = config.get("num_steps") or math.ceil(config.num_epochs * steps_per_epoch)
  return steps_per_epoch, int(total)


def interval(config, what: str, steps_per_epoch: float) -> int:
  """`<what>_every_steps`, or `<what>_every_epochs` in steps (at least 1); 0 = none."""
  steps = config.get(f"{what}_every_steps") or 0
  epochs = config.get(f"{what}_every_epochs") or 0
  return int(steps) or (max(1, round(epochs * steps_per_epoch)) if epochs else 0)


def _check_eval_examples(config, task) -> None:
  requested = (config.get("data") or {}).get("eval_examples") or 0
  arrays = task.eval_arrays or {}
  available = len(next(iter(arrays.values()))) if arrays else None
  if available and requested > available:
    raise ValueError(f"data.eval_examples={requested} exceeds the {available} examples of the "
                     "evaluation split")


def _phase(name, config, task, start: int, device_count: int) -> PhasePlan:
  steps_per_epoch, steps = run_length(config, task)
  if steps < 1:
    raise ValueError(f"phase {name!r} has no steps (num_epochs={config.get('num_epochs')})")
  microbatches = config.get("microbatches", 1) or 1
  if config.batch_size % (microbatches * device_count):
    raise ValueError(f"batch_size {config.batch_size} does not split into {microbatches} "
                     f"micro-batches over {device_count} devices")
  _check_eval_examples(config, task)
  noise_every = interval(config, "noise_scale", steps_per_epoch)
  noise_parts = _noise_parts(config, microbatches, device_count) if noise_every else 0
  _check_bn_groups(config, microbatches, noise_parts)
  from lamb.train import mesh as mesh_lib  # pylint: disable=import-outside-toplevel  (jax)
  mesh_lib.parallelism(config, device_count, microbatches)  # refuses what BatchNorm forbids
  # Padded evaluation batches must split over every device: rounded up (padding is masked).
  eval_batch = -(-config.get("eval_batch_size", config.batch_size) // device_count) * device_count
  return PhasePlan(name, config, task, start, steps, steps_per_epoch, config.batch_size,
                   microbatches, eval_batch, max(1, config.get("log_every_steps", 50)),
                   interval(config, "eval", steps_per_epoch),
                   interval(config, "trust_ratio", steps_per_epoch),
                   interval(config, "checkpoint", steps_per_epoch), noise_every, noise_parts)


def _check_bn_groups(config, microbatches: int, noise_parts: int) -> None:
  """Every slice a step normalises (a micro-batch, a noise-scale slice) holds whole BatchNorm
  groups (`model.bn_group_size`, lamb.models.batch_norm)."""
  group = (config.get("model") or {}).get("bn_group_size") or 0
  if not group:
    return
  if not _is_int(group) or group < 0:
    raise ValueError(f"model.bn_group_size must be a non-negative integer, got {group!r}")
  for what, parts in (("a micro-batch", microbatches), ("a noise-scale slice", noise_parts)):
    if parts and (config.batch_size // parts) % group:
      raise ValueError(f"model.bn_group_size={group} does not divide {what} of "
                       f"{config.batch_size // parts} examples (batch_size {config.batch_size} "
                       f"/ {parts}); pick a group size that does, or 0 for the whole batch")


def _noise_parts(config, microbatches: int, device_count: int) -> int:
  """Slices a noise measurement splits the batch into: `noise_scale_parts`, else 4, and never
  fewer than the micro-batches (a slice must fit where a micro-batch fits)."""
  parts = max(config.get("noise_scale_parts") or 4, microbatches)
  if parts < 2 or config.batch_size % (parts * device_count):
    raise ValueError(f"noise_scale_parts={parts} must be at least 2 and split batch_size "
                     f"{config.batch_size} evenly over {device_count} device(s)")
  return parts


def make(config, tasks, device_count: int = 1, process_count: int = 1) -> Plan:
  """The plan of `config` on `tasks` (one per phase); ValueError when it cannot run."""
  from lamb import optim  # pylint: disable=import-outside-toplevel
  check_config(config)
  named = phases_lib.configs(config)
  if len(tasks) != len(named):
    raise ValueError(f"{len(tasks)} tasks for {len(named)} phases")
  phases, start = [], 0
  for (name, phase_config), task in zip(named, tasks):
    if phase_config.batch_size % process_count:
      raise ValueError(f"batch_size {phase_config.batch_size} is not divisible by the "
                       f"{process_count} processes")
    phases.append(_phase(name, phase_config, task, start, device_count))
    start = phases[-1].end
  opt = optimizer_section(config, phases[0].steps_per_epoch, start,
                          [p.steps for p in phases] if phases_lib.is_phased(config) else None)
  optim.create(opt)  # an unknown optimizer, schedule or argument fails here, not mid-sweep
  return Plan(tuple(phases), opt, int(config.seed), phases_lib.is_phased(config))


def optimizer_section(config, steps_per_epoch: float, total_steps: int,
                      phase_steps: Optional[list] = None) -> dict:
  """The optimizer section with its schedule in steps (lamb.optim.schedules.resolve)."""
  from lamb.optim import schedules  # pylint: disable=import-outside-toplevel
  opt = config.optimizer.to_dict()
  opt["schedule"] = schedules.resolve(opt.get("schedule"), steps_per_epoch=steps_per_epoch,
                                      total_steps=total_steps, phase_steps=phase_steps)
  return opt
