"""Build any optimizer of this library from a config section.

    optimizer.name = "lamb"
    optimizer.learning_rate = 1e-3                    # the peak rate of the schedule
    optimizer.schedule = {"name": "warmup_polynomial_decay", "total_steps": 1000, "warmup_ratio": 0.1}
    optimizer.weight_decay = 0.01                     # a shared knob (see below)
    optimizer.kwargs = {"weight_decay_mask": "exclude_bias_and_norm"}

`kwargs` go to the optimizer as they are: an argument it does not take is an error. Other keys
of the section are shared knobs of a sweep over optimizers (weight_decay, momentum, ...): each
goes to every optimizer that takes an argument of that name, and is ignored by the others.

Hyperparameters as data. `split(config)` separates a section into its structure (names,
switches, masks: what decides the program) and its numbers (learning rate, schedule lengths,
weight decay, betas, epsilon, trust-ratio bounds, ...). `create(structure, numbers)` accepts
the numbers as traced arrays, so every run of a sweep that shares a structure runs one compiled
train step (see lamb/train/programs.py).
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


# Numbers that shape the optimizer state (one trust ratio per slice of this axis) stay static.
STRUCTURAL = frozenset({"layer_axis"})
_SLOT = "<hyperparameter>"


def _is_number(value) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def split(config: Mapping[str, Any]) -> tuple:
  """(structure, numbers): the section with each hyperparameter replaced by a slot, and the
  hyperparameters by dotted path (`learning_rate`, `schedule.warmup_ratio`, `kwargs.phi.0`).

  Two sections with equal structures differ only in numbers, so they can share one program.
  """
  numbers = {}

  def walk(node, path):
    if isinstance(node, Mapping) or hasattr(node, "to_dict"):
      return {k: (v if k in STRUCTURAL else walk(v, path + (str(k),)))
              for k, v in _as_dict(node).items()}
    if isinstance(node, (list, tuple)):
      return [walk(v, path + (str(i),)) for i, v in enumerate(node)]
    if _is_number(node):
      numbers[".".join(path)] = float(node)
      return _SLOT
    return node

  return walk(_as_dict(config), ()), numbers


def merge(structure: Mapping[str, Any], numbers: Mapping[str, Any]) -> dict:
  """The inverse of `split`: a section whose slots hold `numbers` (floats or traced arrays)."""
  def walk(node, path):
    if isinstance(node, dict):
      return {k: (v if k in STRUCTURAL else walk(v, path + (str(k),))) for k, v in node.items()}
    if isinstance(node, list):
      return [walk(v, path + (str(i),)) for i, v in enumerate(node)]
    if isinstance(node, str) and node == _SLOT:
      key = ".".join(path)
      if key not in numbers:
        raise KeyError(f"no value for hyperparameter {key!r}")
      return numbers[key]
    return node
  return walk(structure, ())


def create(config: Mapping[str, Any], numbers: Mapping[str, Any] = None
           ) -> optax.GradientTransformation:
  """An optimizer from `{name, learning_rate, schedule, kwargs}` (a ConfigDict or a dict).

  With `numbers`, `config` is a structure from `split` and `numbers` its hyperparameters
  (floats, or traced arrays inside a jitted step).
  """
  config = _as_dict(config) if numbers is None else merge(config, numbers)
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


def learning_rate(config: Mapping[str, Any], numbers: Mapping[str, Any] = None
                  ) -> schedules.Schedule:
  """The learning-rate schedule of an optimizer section (`learning_rate` is its peak); with
  `numbers`, of a structure from `split` (as in `create`)."""
  config = _as_dict(config) if numbers is None else merge(config, numbers)
  schedule = _as_dict(config.get("schedule"))
  return schedules.create(schedule.pop("name", None), config["learning_rate"], **schedule)
