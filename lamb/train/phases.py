"""A run as consecutive phases: BERT's sequence length 128 for 9/10 of the epochs, then 512.

`config.phases` is data, a tuple of ``{"name": ..., "overrides": {path: value}}``; each phase
is the run's config with its overrides set (batch size, sequence length, max predictions, its
own number of steps). The phases share one model, one optimizer state, one global step counter
and one learning-rate schedule over all their steps; what differs is the data, its shapes and
the batch size, so each phase has its own task and compiled step. A config without `phases` is
one phase, "train", the config itself.

In a run's plan (lamb.train.plan) a phase is a half-open range of global steps [start, end); a
run resumed at step s continues in the phase whose range holds s (the step that ends a phase is
checkpointed, so a run killed there resumes at the first step of the next phase).
"""
from __future__ import annotations


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
