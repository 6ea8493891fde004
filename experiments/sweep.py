"""From a config name to the runs of its sweep: names, overrides, identities. Pure Python.

    spec = resolve_config("table7:paper")            # a config file and its variant
    runs = expand_sweep(config, pinned)              # [(run name, {path: value})] in grid order
    run = run_config(config, values, pinned)         # one run's config, resolved
    identity(run.to_dict())                          # what makes two runs the same run

A sweep is data beside its config (`config.sweep`: axes of (dotted path, values, label)), as
big_vision declares its sweeps. This module imports neither absl nor jax, so the command line,
the tests and the notebooks share it at no cost.
"""
from __future__ import annotations

import difflib
import hashlib
import importlib.util
import itertools
import json
import re
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
NOT_CONFIGS = {"__init__", "common"}
# Keys that describe the grid rather than one run of it, or that feed only --estimate: they
# never change what a run trains, so growing a grid does not orphan finished runs.
# What describes a grid or a run without changing what it computes: two runs that differ only in
# these are the same run (the shrink note is prose; the fields it describes are in the config).
NOT_IDENTITY = ("sweep", "variants", "hardware", "shrink_note",
                "input_workers")  # lamb.data.streams.batches: the same batches with any number
# Keys added after runs were committed, at the value that computes what those runs computed:
# at that value a key stays out of the fingerprint, so the runs keep their identity; any other
# value is another run. Section None: a top-level key.
LATER_KEYS = {("model", "conv"): "xla", ("model", "attention_probs_dtype"): "float32",
              (None, "gradient_reduction"): "auto",  # lamb.train.mesh.Parallelism
              (None, "gradient_reduction_dtype"): "float32",
              (None, "sharding"): "replicated",
              (None, "rng_impl"): "threefry2x32"}  # jax's default PRNG
# How a run is laid out in memory, not what it computes: rematerialisation recomputes the same
# operations in the backward pass, so a run keeps its identity when the memory plan changes it
# (lamb.train.memory; a change is allowed at a phase boundary and recorded, lamb.train.layout).
# Micro-batches are not layout: each draws its own dropout masks, BERT's masked-LM loss is a
# mean over each micro-batch's masked tokens, and BatchNorm normalises each micro-batch; the
# memory plan decides them before a run's identity is taken, so the same --target resumes.
LAYOUT_KEYS = ("remat",)


class UsageError(Exception):
  """A bad command line or config value: printed as one line, exit status 2, nothing written."""


def _natural(path: Path):
  """table3 < table7 < table10; figure1 < figures9_14."""
  return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.stem)]


def available_configs() -> dict:
  return {p.stem: p for p in sorted(CONFIG_DIR.glob("*.py"), key=_natural)
          if p.stem not in NOT_CONFIGS and not p.stem.startswith("_")}


def resolve_config(spec: str) -> str:
  """`table7:paper` -> `/.../experiments/configs/table7.py:paper`; paths pass through."""
  name, sep, variant = spec.partition(":")
  if not name:
    raise UsageError("--config is empty; try --config=table7, or --list to see them all")
  if name.endswith(".py") or "/" in name:
    if not name.endswith(".py") or not Path(name).is_file():
      raise UsageError(f"config file {name} is not a .py file that exists (a config defines "
                       "get_config(arg))")
    return spec
  configs = available_configs()
  if name not in configs:
    close = difflib.get_close_matches(name, configs, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    raise UsageError(f"unknown config {name!r}{hint} (see --list)")
  return f"{configs[name]}{sep}{variant}"


def _module(path: Path, name: str):
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def describe(path: Path) -> str:
  """The first sentence of a config's docstring: its line in --list."""
  module = _module(path, f"config_{path.stem}")
  return " ".join((module.__doc__ or "").split()).split(". ")[0].rstrip(".")


def load_config(resolved_spec: str):
  """The ConfigDict of a resolved `path[:variant]`, or UsageError saying why it did not build."""
  path, _, variant = resolved_spec.partition(":")
  try:
    module = _module(Path(path), "config_under_check")
    return module.get_config(variant) if variant else module.get_config()
  except Exception as e:  # a config is user code: any failure is the user's to read
    raise UsageError(f"config {Path(path).stem} failed to build: {type(e).__name__}: {e}") \
        from None


def get_path(config, path: str):
  """`config["a"]["b"]` for "a.b"; KeyError naming the missing part and the fields there."""
  node = config
  parts = path.split(".")
  for depth, part in enumerate(parts):
    if not hasattr(node, "keys") or part not in node:
      parent = ".".join(parts[:depth]) or "the config"
      fields = ", ".join(sorted(node.keys())) if hasattr(node, "keys") else "none"
      raise KeyError(f"unknown config field {path!r}; fields of {parent}: {fields}")
    node = node[part]
  return node


def set_path(config, path: str, value) -> None:
  *parents, leaf = path.split(".")
  node = get_path(config, ".".join(parents)) if parents else config
  node[leaf] = value


def format_value(value) -> str:
  return f"{value:g}" if isinstance(value, float) else str(value)


def expand_sweep(config, pinned=()) -> list:
  """[(run name, {path: value})] of the config's grid, in grid order. An axis whose path the
  command line overrode (`pinned`) holds only the config's value."""
  axes = [(path, tuple(values), label) for path, values, label in config.get("sweep", ())]
  axes = [(path, (get_path(config, path),) if path in pinned else values, label)
          for path, values, label in axes]
  runs = []
  for combo in itertools.product(*(values for _, values, _ in axes)):
    parts = [f"{label}{format_value(v)}" if label else format_value(v)
             for (_, _, label), v in zip(axes, combo)]
    runs.append(("_".join(parts) or "run", {p: v for (p, _, _), v in zip(axes, combo)}))
  return runs


def run_config(config, overrides: dict, pinned=()):
  """The config of one run: the sweep's values set on a copy. The reserved axis "variant"
  names an entry of `config.variants`, a tuple of (name, ((path, value), ...)) (e.g. Table 3's
  "adam+" = adam with Goyal et al.'s schedule), applied before the other axes. `pinned` paths
  (the command line's --config.* overrides) keep the config's value over both."""
  run = config.copy_and_resolve_references()
  overrides = dict(overrides)
  keep = {}
  for path in pinned:
    node = get_path(config, path)
    keep[path] = node.to_dict() if hasattr(node, "to_dict") else node
  with run.unlocked():
    if "variant" in overrides:
      name = overrides.pop("variant")
      variants = dict(run.get("variants", ()))
      if name not in variants:
        raise KeyError(f"unknown variant {name!r} of {run.name}")
      run.variant = name
      for path, value in variants[name]:
        set_path(run, path, value)
    for path, value in {**overrides, **keep}.items():
      set_path(run, path, value)
    if "variants" in run:  # the grid's table, not this run's (which records `variant`)
      del run["variants"]
  return run


def identity_view(config_dict: dict) -> dict:
  """What a run's identity is made of: the resolved config as plain JSON values, minus what
  describes the grid (NOT_IDENTITY), the ladder's recorded rows, and LATER_KEYS at their value."""
  plain = json.loads(json.dumps({k: v for k, v in config_dict.items() if k not in NOT_IDENTITY},
                                sort_keys=True, default=str))
  if isinstance(plain.get("paper"), dict):
    # Which rows its config runs at this scale is a record about the config, not the run: a
    # rung added to a ladder must not re-key the rungs already trained.
    plain["paper"].pop("rows_at_scale", None)
  for (section, key), value in LATER_KEYS.items():
    where = plain if section is None else plain.get(section)
    if isinstance(where, dict) and where.get(key, value) == value:
      where.pop(key, None)
  _normalise_layout(plain)
  return plain


def _normalise_layout(plain: dict) -> None:
  """LAYOUT_KEYS out of the fingerprint (runs committed before them had none)."""
  phases = [p for p in plain.get("phases") or () if isinstance(p, dict)]
  for where in [plain] + phases + [p["overrides"] for p in phases
                                   if isinstance(p.get("overrides"), dict)]:
    for key in LAYOUT_KEYS:
      where.pop(key, None)


def fingerprint(config_dict: dict) -> str:
  """The identity view (`identity_view`) as canonical JSON."""
  return json.dumps(identity_view(config_dict), sort_keys=True)


def identity(config_dict: dict) -> str:
  """A short name of the fingerprint, stored with a run's config, metrics and checkpoints."""
  return hashlib.sha256(fingerprint(config_dict).encode()).hexdigest()[:16]


def run_error(name: str, error: Exception) -> UsageError:
  """A run's config error as the one line the command line prints."""
  return UsageError(f"run {name}: {' '.join(str(error).strip(chr(39)).split())}")


def differences(a: dict, b: dict) -> list:
  """The dotted paths where two configs' identities differ (for saying what a conflict is)."""
  return _differences(identity_view(a), identity_view(b), "")


def _differences(a: dict, b: dict, prefix: str) -> list:
  out = []
  for key in sorted(set(a) | set(b), key=str):
    va, vb = a.get(key), b.get(key)
    if isinstance(va, dict) and isinstance(vb, dict):
      out += _differences(va, vb, f"{prefix}{key}.")
    elif json.dumps(va, sort_keys=True, default=str) != json.dumps(vb, sort_keys=True,
                                                                   default=str):
      out.append(f"{prefix}{key}")
  return out


def checkpoint_dir(base, config, name: str):
  """Where a run's checkpoints go under --checkpoint_dir (None: inside its run folder)."""
  if not base:
    return None
  if "://" in str(base):  # a bucket (lamb.train.mirror): a URI, which Path would mangle
    return f"{str(base).rstrip('/')}/{config.name}/{config.scale}/{name}"
  return Path(base) / config.name / config.scale / name
