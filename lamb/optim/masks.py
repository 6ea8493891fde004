"""Parameter masks: which leaves get weight decay, which get layer-wise adaptation.

A mask is what optax accepts: ``None`` (every leaf), a pytree of bools with the params'
structure (or a prefix of it), or a callable ``params -> pytree of bools``. ``path_mask``
builds the callable from regular expressions on the '/'-joined parameter path, which is how
configs say "exclude LayerNorm and bias" the way the reference BERT LAMB does.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Iterable, Union

import jax

Mask = Union[None, Any, Callable[[Any], Any]]

# The reference BERT optimizer excludes ["LayerNorm", "layer_norm", "bias"] from weight decay
# and from layer adaptation; batch-norm parameters are the image models' equivalent.
BIAS_AND_NORM_PATTERNS = ("bias", "LayerNorm", "layer_norm", "BatchNorm", "batch_norm")


def path_to_str(path) -> str:
  """'/'-joined names of a jax key path, e.g. ``encoder/layer_0/LayerNorm/scale``."""
  parts = []
  for key in path:
    for attr in ("key", "name", "idx"):
      if hasattr(key, attr):
        parts.append(str(getattr(key, attr)))
        break
    else:
      parts.append(str(key))
  return "/".join(parts)


def path_mask(include: Iterable[str] = (), exclude: Iterable[str] = ()) -> Callable[[Any], Any]:
  """A mask that is True where a leaf's path matches any `include` and no `exclude` regex.

  An empty `include` matches every path. Matching is ``re.search`` on the '/'-joined path.
  """
  include = tuple(re.compile(p) for p in include)
  exclude = tuple(re.compile(p) for p in exclude)

  def selected(path: str) -> bool:
    if include and not any(p.search(path) for p in include):
      return False
    return not any(p.search(path) for p in exclude)

  def mask_fn(params):
    return jax.tree_util.tree_map_with_path(lambda kp, _: selected(path_to_str(kp)), params)

  return mask_fn


exclude_bias_and_norm = path_mask(exclude=BIAS_AND_NORM_PATTERNS)

_NAMED_MASKS = {"exclude_bias_and_norm": exclude_bias_and_norm, "all": None}


def from_config(spec) -> Mask:
  """A mask from config data: None, a registered name, or a tuple of regexes to exclude."""
  if spec is None or callable(spec):
    return spec
  if isinstance(spec, str):
    if spec not in _NAMED_MASKS:
      raise ValueError(f"unknown mask {spec!r}; known: {sorted(_NAMED_MASKS)} or a tuple of "
                       "regexes to exclude")
    return _NAMED_MASKS[spec]
  if isinstance(spec, (tuple, list)) and all(isinstance(s, str) for s in spec):
    return path_mask(exclude=tuple(spec))
  return spec


def resolve(mask: Mask, params) -> list:
  """The mask as a flat list of Python bools, one per leaf of `params` (prefixes broadcast)."""
  if mask is None:
    return [True] * len(jax.tree.leaves(params))
  if callable(mask):
    mask = mask(params)
  full = jax.tree.map(lambda m, sub: jax.tree.map(lambda _: m, sub), mask, params)
  return [bool(m) for m in jax.tree.leaves(full)]


def resolve_layer_axis(layer_axis, params) -> list:
  """Per-leaf Optional[int] slicing axis: None, an int for every leaf, a pytree or a callable."""
  leaves = jax.tree.leaves(params)
  if layer_axis is None:
    return [None] * len(leaves)
  if isinstance(layer_axis, int):
    return [layer_axis] * len(leaves)
  if callable(layer_axis):
    layer_axis = layer_axis(params)
  full = jax.tree.map(lambda a, sub: jax.tree.map(lambda _: a, sub), layer_axis, params,
                      is_leaf=lambda x: x is None)
  return jax.tree.leaves(full, is_leaf=lambda x: x is None)


def layer_axis_by_path(include: Iterable[str], axis: int = 0) -> Callable[[Any], Any]:
  """`axis` for leaves whose path matches `include` (e.g. scanned layers), None elsewhere."""
  include = tuple(re.compile(p) for p in include)
  return lambda params: jax.tree_util.tree_map_with_path(
      lambda kp, _: axis if any(p.search(path_to_str(kp)) for p in include) else None, params)
