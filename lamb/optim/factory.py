"""Build any optimizer of this library from a config section.

    optimizer.name = "lamb"
    optimizer.learning_rate = 1e-3                    # the peak rate of the schedule
    optimizer.schedule = {"name": "warmup_polynomial_decay", "total_steps": 1000, "warmup_ratio": 0.1}
    optimizer.weight_decay = 0.01                     # a shared knob (see below)
    optimizer.kwargs = {"weight_decay_mask": "exclude_bias_and_norm"}

`kwargs` go to the optimizer as they are: an argument it does not take is an error. Other keys
of the section are shared knobs of a sweep over optimizers (weight_decay, momentum, ...): each
goes to every optimizer that takes an argument of that name, and is ignored by the others.
"""
from __future__ import annotations

import difflib
import inspect
from typing import Any, Mapping

import optax

from lamb.optim import baselines, masks, schedules
from lamb.optim.lamb import lamb
from lamb.optim.lars import lars
from lamb.optim.moments import dozat_momentum_schedule
from lamb.optim.nlamb import nlamb, nnlamb

OPTIMIZERS = {
    "lamb": lamb, "lars": lars, "nlamb": nlamb, "nnlamb": nnlamb,
    "adam": baselines.adam, "adamw": baselines.adamw, "adagrad": baselines.adagrad,
    "momentum": baselines.momentum, "nadam": baselines.nadam,
}
SECTION_KEYS = ("name", "learning_rate", "schedule", "kwargs")
_ANY_ACCEPTS = {p for fn in OPTIMIZERS.values() for p in inspect.signature(fn).parameters} - {
    "learning_rate"}
# Configs name the {beta^t} schedules of N-LAMB/NN-LAMB (Appendix D); each is built from the
# optimizer's own b1 (or b2).
MOMENTUM_SCHEDULES = {"constant": lambda beta: None, "dozat": dozat_momentum_schedule}
_MASK_KWARGS = ("weight_decay_mask", "adaptation_mask", "l2_mask")


def _as_dict(section) -> dict:
  if section is None:
    return {}
  if hasattr(section, "to_dict"):
    return section.to_dict()
  return dict(section)


def _unknown(kind, name, known) -> ValueError:
  close = difflib.get_close_matches(name, known, n=3)
  hint = f" (did you mean {', '.join(close)}?)" if close else ""
  return ValueError(f"unknown {kind} {name!r}{hint}; known: {', '.join(sorted(known))}")


def create(config: Mapping[str, Any]) -> optax.GradientTransformation:
  """An optimizer from `{name, learning_rate, schedule, kwargs}` (a ConfigDict or a dict)."""
  config = _as_dict(config)
  name = config.get("name")
  if name not in OPTIMIZERS:
    raise _unknown("optimizer", str(name), OPTIMIZERS)
  fn = OPTIMIZERS[name]
  accepted = [p for p in inspect.signature(fn).parameters if p != "learning_rate"]
  shared = {k: v for k, v in config.items() if k not in SECTION_KEYS}
  for key in shared:
    if key not in _ANY_ACCEPTS:
      raise _unknown("optimizer setting", key, sorted(_ANY_ACCEPTS | set(SECTION_KEYS)))
  kwargs = {k: v for k, v in shared.items() if k in accepted}
  strict = _as_dict(config.get("kwargs"))
  for key in strict:
    if key not in accepted:
      raise _unknown(f"argument of {name}", key, accepted)
  kwargs.update(strict)
  for key in _MASK_KWARGS:
    if key in kwargs:
      kwargs[key] = masks.from_config(kwargs[key])
  for key in ("b1_schedule", "b2_schedule"):
    if isinstance(kwargs.get(key), str):
      if kwargs[key] not in MOMENTUM_SCHEDULES:
        raise _unknown(key, kwargs[key], MOMENTUM_SCHEDULES)
      beta = kwargs.get("b1" if key == "b1_schedule" else "b2", 0.975 if key == "b1_schedule" else 0.999)
      kwargs[key] = MOMENTUM_SCHEDULES[kwargs[key]](beta)
  if kwargs.get("phi") is not None:
    kwargs["phi"] = tuple(kwargs["phi"])
  return fn(learning_rate(config), **kwargs)


def learning_rate(config: Mapping[str, Any]) -> schedules.Schedule:
  """The learning-rate schedule of an optimizer section (`learning_rate` is its peak)."""
  config = _as_dict(config)
  schedule = _as_dict(config.get("schedule"))
  return schedules.create(schedule.pop("name", None), config["learning_rate"], **schedule)
