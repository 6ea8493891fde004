"""Layer-wise adaptation: scale each layer's update u by phi(||x||) / ||u|| (Section 3).

The ratios of the last update are kept in the transformation's state, so `trust_ratios`
reads them back without another pass over the parameters (Figures 9-14 plot them).
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp
import optax

from lamb.optim import masks as masks_lib
from lamb.optim.moments import state_dtype

NORMS = ("l2", "l1", "linf")


class TrustRatioState(NamedTuple):
  ratios: optax.Updates  # per leaf: the ratio of the last update (a vector with layer_axis)


def layer_norm(x: jax.Array, norm: str, axis: Optional[int] = None) -> jax.Array:
  """The l2, l1 or l-infinity norm of a layer; per slice along `axis` when it is given."""
  x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
  axes = None if axis is None else tuple(a for a in range(x.ndim) if a != axis % x.ndim)
  if norm == "l2":
    return jnp.sqrt(jnp.sum(x * x, axis=axes))
  if norm == "l1":
    return jnp.sum(jnp.abs(x), axis=axes)
  if norm == "linf":
    return jnp.max(jnp.abs(x), axis=axes)
  raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")


def _concrete(values) -> bool:
  """False for traced bounds (a sweep's hyperparameters); those were checked before tracing."""
  return not any(isinstance(v, jax.core.Tracer) for v in values)


def _check(norm, phi):
  if norm not in NORMS:
    raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
  if phi is not None and (len(phi) != 2 or _concrete(phi) and not phi[0] <= phi[1]):
    raise ValueError(f"phi must be None or (gamma_l, gamma_u) with gamma_l <= gamma_u, got {phi!r}")


def scale_by_trust_ratio(*, norm: str = "l2", phi: Optional[Tuple[float, float]] = None,
                         eps=0.0, trust_coefficient=1.0, mask=None,
                         layer_axis=None) -> optax.GradientTransformation:
  """u -> trust_coefficient * phi(||x||) / (||u|| + eps) * u, layer by layer.

  phi=None is phi(z) = z; phi=(gamma_l, gamma_u) is phi(z) = min(max(z, gamma_l), gamma_u).
  The ratio is 1 where ||x|| or ||u|| is zero (the reference behaviour: a zero-initialised
  bias still moves, and nothing divides by zero) and on leaves outside `mask`. With phi bounds
  this is a deliberate jump: at ||x|| = 0 the paper's formula would give gamma_l / ||u||.
  `layer_axis` (an int, a per-leaf pytree or a callable) gives stacked parameters one ratio
  per slice; without it an array of L scanned layers would get a single ratio.
  """
  _check(norm, phi)

  def ratio_of(x, u, axis):
    x_norm, u_norm = layer_norm(x, norm, axis), layer_norm(u, norm, axis)
    scaled = x_norm if phi is None else jnp.clip(x_norm, phi[0], phi[1])
    ratio = trust_coefficient * scaled / (u_norm + eps)
    return jnp.where((x_norm == 0) | (u_norm == 0), jnp.ones_like(ratio), ratio)

  def init_fn(params):
    axes = masks_lib.resolve_layer_axis(layer_axis, params)
    leaves, treedef = jax.tree.flatten(params)
    ratios = [jnp.ones([] if a is None else [p.shape[a]], state_dtype(p.dtype))
              for p, a in zip(leaves, axes)]
    return TrustRatioState(jax.tree.unflatten(treedef, ratios))

  def update_fn(updates, state, params=None):
    if params is None:
      raise ValueError("the trust ratio needs the parameters: call update(grads, state, params)")
    adapted = masks_lib.resolve(mask, params)
    axes = masks_lib.resolve_layer_axis(layer_axis, params)
    u_leaves, treedef = jax.tree.flatten(updates)
    x_leaves = treedef.flatten_up_to(params)
    new_u, ratios = [], []
    for u, x, on, axis in zip(u_leaves, x_leaves, adapted, axes):
      if not on:
        ratios.append(jnp.ones([] if axis is None else [x.shape[axis]], state_dtype(x.dtype)))
        new_u.append(u)
        continue
      ratio = ratio_of(x, u, axis)
      ratios.append(ratio)
      shape = [1] * u.ndim
      if axis is not None:
        shape[axis] = -1
      new_u.append(u * ratio.reshape(shape).astype(u.dtype))
    return (jax.tree.unflatten(treedef, new_u),
            TrustRatioState(jax.tree.unflatten(treedef, ratios)))

  return optax.GradientTransformation(init_fn, update_fn)


def trust_ratios(opt_state) -> optax.Updates:
  """The per-layer trust ratios of the last update, found in any optimizer state of this library."""
  is_state = lambda s: isinstance(s, TrustRatioState)
  found = [s for s in jax.tree.leaves(opt_state, is_leaf=is_state) if is_state(s)]
  if len(found) != 1:
    raise ValueError(f"expected one trust-ratio state in the optimizer state, found {len(found)} "
                     "(only lamb, lars, nlamb and nnlamb keep trust ratios)")
  return found[0].ratios
