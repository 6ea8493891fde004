"""AdamW's two decoupled weight-decay forms against the formulas written out in NumPy."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from lamb import optim


def numpy_adamw(x, grads, lr, wd, scaled, b1=0.9, b2=0.999, eps=1e-8):
  m = np.zeros_like(x)
  v = np.zeros_like(x)
  for t, g in enumerate(grads, start=1):
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    adam = (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    x = x - lr * (adam + wd * x) if scaled else x - lr * adam - wd * x
  return x


@pytest.mark.parametrize("scaled", [True, False])
def test_adamw_matches_its_formula(scaled):
  rng = np.random.default_rng(0)
  x0 = rng.normal(size=(5, 3))
  grads = [rng.normal(size=(5, 3)) for _ in range(4)]
  lr, wd = 1e-3, 0.01
  tx = optim.adamw(lr, weight_decay=wd, decay_scaled_by_lr=scaled)
  params = jnp.asarray(x0, jnp.float32)
  state = tx.init(params)
  for g in grads:
    updates, state = tx.update(jnp.asarray(g, jnp.float32), state, params)
    params = params + updates
  np.testing.assert_allclose(params, numpy_adamw(x0, grads, lr, wd, scaled), rtol=2e-5,
                             atol=1e-6)


def test_unscaled_decay_removes_a_fixed_fraction_whatever_the_rate():
  x = jnp.ones([4])
  for lr in (1e-6, 1e-1):
    tx = optim.adamw(lr, weight_decay=0.01, decay_scaled_by_lr=False)
    updates, _ = tx.update(jnp.zeros([4]), tx.init(x), x)
    np.testing.assert_allclose(updates, -0.01 * np.ones(4), rtol=1e-6)


def numpy_bert_adam_weight_decay(x, grads, lr, wd, b1=0.9, b2=0.999, eps=1e-6, clip=1.0,
                                 decay=None):
  """BERT's optimization.py written out: tf.clip_by_global_norm(grads, 1.0), then
  AdamWeightDecayOptimizer (no bias correction; decay added to the update; `decay` masks it)."""
  m = {k: np.zeros_like(v) for k, v in x.items()}
  v2 = {k: np.zeros_like(v) for k, v in x.items()}
  x = dict(x)
  for g in grads:
    norm = np.sqrt(sum(np.sum(gi * gi) for gi in g.values()))
    g = {k: gi * clip / max(norm, clip) for k, gi in g.items()}
    for k in x:
      m[k] = b1 * m[k] + (1 - b1) * g[k]
      v2[k] = b2 * v2[k] + (1 - b2) * g[k] * g[k]
      update = m[k] / (np.sqrt(v2[k]) + eps)
      if decay is None or decay[k]:
        update = update + wd * x[k]
      x[k] = x[k] - lr * update
  return x


def test_berts_adam_weight_decay_matches_its_reference_code():
  rng = np.random.default_rng(1)
  x0 = {"kernel": rng.normal(size=(4, 3)), "bias": rng.normal(size=(3,))}
  # Gradients above and below the clip's global norm of 1.
  grads = [{k: rng.normal(size=v.shape) * s for k, v in x0.items()} for s in (3.0, 0.1, 1.0)]
  lr, wd = 1e-2, 0.01
  tx = optim.adamw(lr, weight_decay=wd, eps=1e-6, bias_correction=False, max_grad_norm=1.0,
                   weight_decay_mask={"kernel": True, "bias": False})
  params = {k: jnp.asarray(v, jnp.float32) for k, v in x0.items()}
  state = tx.init(params)
  for g in grads:
    updates, state = tx.update({k: jnp.asarray(v, jnp.float32) for k, v in g.items()}, state,
                               params)
    params = {k: params[k] + updates[k] for k in params}
  want = numpy_bert_adam_weight_decay(x0, grads, lr, wd,
                                      decay={"kernel": True, "bias": False})
  for k in params:
    np.testing.assert_allclose(params[k], want[k], rtol=2e-5, atol=1e-6)
  # A bias-corrected Adam's first step moves each weight by about lr; BERT's by (1 - b1) /
  # sqrt(1 - b2) = 3.2x that.
  first = optim.adamw(lr, weight_decay=0.0, eps=1e-6, bias_correction=False)
  p = jnp.ones([3])
  update, _ = first.update(jnp.full([3], 0.5), first.init(p), p)
  np.testing.assert_allclose(update, -lr * 0.05 / (np.sqrt(0.001 * 0.25) + 1e-6), rtol=1e-5)
  with pytest.raises(ValueError, match="decay_scaled_by_lr"):
    optim.adamw(lr, bias_correction=False, decay_scaled_by_lr=False)
