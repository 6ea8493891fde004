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
