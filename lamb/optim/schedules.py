"""Learning-rate schedules and the paper's batch-size scaling rules.

Every schedule is a function of the 0-based step count written with jnp ops, so the peak
learning rate and the step counts may be traced arrays (one compiled step serves a sweep).
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import jax.numpy as jnp

Schedule = Callable[[jnp.ndarray], jnp.ndarray]


# --- scaling rules (Section 4.3, Tables 4 and 5) ---------------------------------------------

def sqrt_scaled_lr(base_lr: float, base_batch: int, batch: int) -> float:
  """Square-root scaling: lr grows with sqrt(batch / base_batch) (Tables 4, 5)."""
  return base_lr * math.sqrt(batch / base_batch)


def linear_scaled_lr(base_lr: float, base_batch: int, batch: int) -> float:
  """Linear scaling (Goyal et al.): lr grows with batch / base_batch."""
  return base_lr * batch / base_batch


def linear_epoch_warmup(base_warmup: float, base_batch: int, batch: int) -> float:
  """Linear-epoch warmup: the warmup (epochs, or a fraction of training) grows with the batch.

  Table 5: 0.3125 epochs at 512 -> 20 epochs at 32K. Table 4: 1/320 of training at 512 -> 1/5.
  """
  return base_warmup * batch / base_batch


def steps_for_batch(base_steps: int, base_batch: int, batch: int) -> int:
  """Steps of a fixed-epoch budget at another batch size (Table 1: 1000k at 512 -> 15625 at 32K)."""
  return math.ceil(base_steps * base_batch / batch)


def two_phase_steps(base_steps: int, base_batch: int, phase1_batch: int, phase2_batch: int,
                    phase1_fraction: float = 0.9) -> tuple:
  """Steps of BERT's two phases (9/10 of the epochs at length 128, 1/10 at 512) at other
  batch sizes. Section 4.1 at 32K: 14063 + 1562 = 15625 (phase 2 gets the remainder)."""
  phase1 = math.ceil(base_steps * phase1_fraction * base_batch / phase1_batch)
  total_at_phase2_batch = steps_for_batch(base_steps, base_batch, phase2_batch)
  phase2 = total_at_phase2_batch - math.ceil(base_steps * phase1_fraction * base_batch / phase2_batch)
  return phase1, phase2


# --- schedules ------------------------------------------------------------------------------

def _float(count):
  return jnp.asarray(count, dtype=jnp.result_type(float))


def constant(peak_value) -> Schedule:
  return lambda count: peak_value * jnp.ones_like(count, dtype=jnp.result_type(float))


def polynomial_decay(peak_value, total_steps, power=1.0, end_value=0.0) -> Schedule:
  """eta_t = (eta_0 - end) (1 - t/T)^p + end, held at `end` after T (p = 1 in the paper)."""
  def schedule(count):
    frac = jnp.clip(count / total_steps, 0.0, 1.0)
    return (peak_value - end_value) * (1.0 - frac) ** power + end_value
  return schedule


def warmup_polynomial_decay(peak_value, total_steps, *, warmup_steps=None, warmup_ratio=None,
                            power=1.0, end_value=0.0, decay_from_start: bool = True) -> Schedule:
  """Linear warmup from 0 over W steps, then polynomial decay; W by steps or as a ratio of T.

  decay_from_start=True is BERT's reference schedule the paper uses: after warmup the rate is
  eta_0 (1 - t/T)^p on the global step t. False decays over the remaining T - W steps instead.
  """
  if (warmup_steps is None) == (warmup_ratio is None):
    raise ValueError("give exactly one of warmup_steps and warmup_ratio")
  warmup = warmup_steps if warmup_steps is not None else warmup_ratio * total_steps

  def schedule(count):
    count = _float(count)
    warm = peak_value * count / jnp.maximum(warmup, 1.0)
    if decay_from_start:
      decayed = polynomial_decay(peak_value, total_steps, power, end_value)(count)
    else:
      decayed = polynomial_decay(peak_value, jnp.maximum(total_steps - warmup, 1.0), power,
                                 end_value)(count - warmup)
    return jnp.where(count < warmup, warm, decayed)
  return schedule


def goyal(peak_value, steps_per_epoch, *, warmup_epochs=5.0,
          decay_epochs: Sequence[float] = (30, 60, 80), decay_factor=0.1) -> Schedule:
  """Goyal et al.'s recipe: linear warmup over 5 epochs, then x0.1 at epochs 30, 60 and 80."""
  def schedule(count):
    count = _float(count)
    epoch = count / steps_per_epoch
    # jnp.where rather than `if`, so warmup_epochs may be traced (0 means no warmup).
    warm = peak_value * jnp.where(
        warmup_epochs > 0, jnp.minimum(epoch / jnp.maximum(warmup_epochs, 1e-12), 1.0), 1.0)
    drops = sum(jnp.where(epoch >= e, 1.0, 0.0) for e in decay_epochs)
    return warm * decay_factor ** drops
  return schedule


def two_phase(phase1: Schedule, phase1_steps, phase2: Schedule) -> Schedule:
  """Phase 1 for the first `phase1_steps` steps, then phase 2 restarted from its own step 0."""
  def schedule(count):
    count = _float(count)
    return jnp.where(count < phase1_steps, phase1(count), phase2(count - phase1_steps))
  return schedule


def mixed_batch_rewarmup(peak1, steps1, warmup1, peak2, steps2, warmup2, power=1.0) -> Schedule:
  """Section 4.1's mixed-batch BERT schedule: warmup and decay in phase 1, then re-warm-up from
  zero and decay again in phase 2 (which runs at another batch size and sequence length)."""
  return two_phase(
      warmup_polynomial_decay(peak1, steps1, warmup_steps=warmup1, power=power), steps1,
      warmup_polynomial_decay(peak2, steps2, warmup_steps=warmup2, power=power))


SCHEDULES = {
    "constant": constant,
    "polynomial_decay": polynomial_decay,
    "warmup_polynomial_decay": warmup_polynomial_decay,
    "goyal": goyal,
    "mixed_batch_rewarmup": mixed_batch_rewarmup,
}


def create(name: Optional[str], peak_value, **kwargs) -> Schedule:
  """A schedule by name; `peak_value` is the configured learning rate."""
  if name is None:
    name = "constant"
  if name not in SCHEDULES:
    raise ValueError(f"unknown schedule {name!r}; known: {sorted(SCHEDULES)}")
  if name == "mixed_batch_rewarmup":
    return SCHEDULES[name](peak1=peak_value, **kwargs)
  return SCHEDULES[name](peak_value, **kwargs)


# --- the configs' vocabulary, resolved into steps ----------------------------------------------

def resolve(schedule: Optional[dict], *, steps_per_epoch: float, total_steps: int,
            phase_steps: Optional[Sequence[int]] = None) -> dict:
  """A config's schedule section with every length in steps, as `create` takes it.

  Configs speak in epochs (`warmup_epochs`, Goyal's `decay_epochs`) and ratios (`warmup_ratio`,
  `warmup_ratio1/2`) so that one config serves every batch of a ladder and both scales; a run
  knows its steps. `polynomial_decay` and `warmup_polynomial_decay` run over `total_steps`
  (a two-phase BERT run has one schedule over both phases, as BERT's reference does);
  `mixed_batch_rewarmup` (Section 4.1's 64K/32K run) takes its two lengths from `phase_steps`
  and each warmup as a ratio of its own phase.
  """
  schedule = dict(schedule or {})
  name = schedule.get("name")
  if name == "mixed_batch_rewarmup":
    steps = tuple(phase_steps or ())
    if len(steps) != 2:
      raise ValueError(f"optimizer.schedule mixed_batch_rewarmup needs two phases, got "
                       f"{len(steps)}")
    schedule.setdefault("steps1", steps[0])
    schedule.setdefault("steps2", steps[1])
    for i in (1, 2):
      if f"warmup_ratio{i}" in schedule:
        schedule[f"warmup{i}"] = schedule.pop(f"warmup_ratio{i}") * schedule[f"steps{i}"]
  if name in ("polynomial_decay", "warmup_polynomial_decay"):
    schedule.setdefault("total_steps", total_steps)
    if "warmup_epochs" in schedule:
      schedule["warmup_steps"] = schedule.pop("warmup_epochs") * steps_per_epoch
  if name == "goyal":
    schedule.setdefault("steps_per_epoch", steps_per_epoch)
  return schedule


def warmup_steps(resolved: dict) -> tuple:
  """The warmup of a resolved schedule in steps, one entry per warmup (two for the mixed batch)."""
  name = resolved.get("name")
  if name == "warmup_polynomial_decay":
    if resolved.get("warmup_steps") is not None:
      return (float(resolved["warmup_steps"]),)
    return (float(resolved.get("warmup_ratio") or 0.0) * resolved["total_steps"],)
  if name == "goyal":
    return (float(resolved.get("warmup_epochs", 5.0)) * resolved["steps_per_epoch"],)
  if name == "mixed_batch_rewarmup":
    return (float(resolved.get("warmup1", 0.0)), float(resolved.get("warmup2", 0.0)))
  return (0.0,)
