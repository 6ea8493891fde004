"""What every experiment config shares: scales, run options, sweeps as plain data.

`get_config(arg)` takes `cpu` (the default), `paper`, and `key=value` options after the scale
(e.g. `table7:cpu,num_epochs=1`), the way big_vision configs take variants.
"""
from __future__ import annotations

import ml_collections

SCALES = ("cpu", "paper")


def parse_arg(arg: str | None):
  parts = [p for p in (arg or "cpu").split(",") if p]
  scale = parts[0] if parts and "=" not in parts[0] else "cpu"
  options = [p for p in parts if "=" in p]
  if scale not in SCALES:
    raise ValueError(f"unknown scale {scale!r}; expected one of {SCALES}")
  return scale, options


def base_config(name: str, scale: str) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.name = name
  config.scale = scale
  config.seed = 0
  config.compute_dtype = "float32" if scale == "cpu" else "bfloat16"
  config.microbatches = 1
  config.num_steps = 0  # 0: derived from num_epochs
  config.log_every_steps = 50
  config.eval_batch_size = 1000
  return config


def sweep(*axes):
  """Axes of a grid, each (config path, values, label for run names; '' = value only)."""
  return tuple((path, tuple(values), label) for path, values, label in axes)


def apply_options(config, options):
  for option in options:
    key, value = option.split("=", 1)
    if key not in config:
      raise ValueError(f"unknown config option {key!r}")
    config[key] = type(config[key])(value) if config[key] is not None else value
  return config
