"""A run as consecutive phases: BERT's sequence length 128 for 9/10 of the epochs, then 512.

`config.phases` is data, a tuple of ``{"name": ..., "overrides": {path: value}}``; each phase
is the run's config with its overrides set (batch size, sequence length, max predictions, its
own number of steps). The phases share one model, one optimizer state, one global step counter
and one learning-rate schedule over all their steps; what differs is the data, its shapes and
the batch size, so each phase has its own task and compiled step. A config without `phases` is
one phase, "train", the config itself.

A phase is a half-open range of global steps [start, end); a run resumed at step s continues
in the phase whose range holds s (the step that ends a phase is checkpointed, so a run killed
there resumes at the first step of the next phase).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

SINGLE = "train"


def configs(config) -> list:
  """[(name, config)] of the run's phases, each a resolved copy with its overrides set."""
  phases = config.get("phases")
  if not phases:
    return [(SINGLE, config)]
  out = []
  for phase in phases:
    phase_config = config.copy_and_resolve_references()
    with phase_config.unlocked():
      for path, value in dict(phase.get("overrides", {})).items():
        node = phase_config
        *parents, leaf = path.split(".")
        for part in parents:
          node = node[part]
        if leaf not in node:
          raise KeyError(f"phase {phase['name']!r} overrides {path!r}, which the config lacks")
        node[leaf] = value
    out.append((phase["name"], phase_config))
  return out


def is_phased(config) -> bool:
  return bool(config.get("phases"))


@dataclasses.dataclass(frozen=True)
class Phase:
  name: str
  config: Any  # the run's config with this phase's overrides
  task: Any
  start: int  # global steps done when the phase begins
  steps: int
  steps_per_epoch: float

  @property
  def end(self) -> int:
    return self.start + self.steps

  @property
  def batch_size(self) -> int:
    return self.config.batch_size


def plan(named_configs, tasks, run_length) -> list:
  """The phases laid end to end; `run_length(config, task)` -> (steps per epoch, steps)."""
  out, start = [], 0
  for (name, config), task in zip(named_configs, tasks):
    steps_per_epoch, steps = run_length(config, task)
    if steps < 1:
      raise ValueError(f"phase {name!r} has no steps")
    out.append(Phase(name, config, task, start, steps, steps_per_epoch))
    start += steps
  return out


def index_at(phases, step: int) -> int:
  """The phase that continues a run with `step` steps done (the last one once all are done)."""
  for i, phase in enumerate(phases):
    if step < phase.end:
      return i
  return len(phases) - 1


def declared_steps(config) -> Optional[tuple]:
  """Each phase's `num_steps` override, when every phase declares one (else None): the
  schedule's phase lengths without building any task."""
  phases = config.get("phases")
  if not phases:
    return None
  steps = tuple(dict(p.get("overrides", {})).get("num_steps") for p in phases)
  return steps if all(steps) else None
