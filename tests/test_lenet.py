"""LeNet-5: parameter count and paths, output shape, mixed precision."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lamb.models.lenet import LeNet5, num_params


def _init(model, seed=0):
  """Random parameters of the model's shapes and dtypes, filled by numpy.

  (Compiling flax's initialisers takes several seconds on a loaded CPU; the init itself is
  still traced by `_shapes`.)
  """
  rng = np.random.default_rng(seed)

  def fill(s):
    fan_in = int(np.prod(s.shape[:-1])) or 1
    return jnp.asarray(rng.normal(size=s.shape) / np.sqrt(fan_in), s.dtype)

  return jax.tree_util.tree_map(fill, _shapes(model))


def _images(batch):
  return jnp.asarray(np.random.default_rng(1).normal(size=(batch, 28, 28, 1)), jnp.float32)


def _shapes(model):
  """Parameter shapes without running anything (fast)."""
  x = jax.ShapeDtypeStruct((2, 28, 28, 1), jnp.float32)
  return jax.eval_shape(model.init, jax.random.PRNGKey(0), x)["params"]


def test_param_count_and_paths():
  params = _shapes(LeNet5())
  assert num_params(params) == 61_706
  shapes = {f"{layer}/{name}": tuple(p.shape) for layer, d in params.items()
            for name, p in d.items()}
  assert shapes == {
      "conv1/kernel": (5, 5, 1, 6), "conv1/bias": (6,),
      "conv2/kernel": (5, 5, 6, 16), "conv2/bias": (16,),
      "fc1/kernel": (400, 120), "fc1/bias": (120,),
      "fc2/kernel": (120, 84), "fc2/bias": (84,),
      "fc3/kernel": (84, 10), "fc3/bias": (10,),
  }
  assert num_params(_shapes(LeNet5(num_classes=7))) == 61_706 - 84 * 3 - 3


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_output_shape(activation):
  model = LeNet5(activation=activation)
  params = _init(model)
  x = _images(3)
  logits = jax.jit(model.apply)({"params": params}, x)
  assert logits.shape == (3, 10) and logits.dtype == jnp.float32
  assert np.all(np.isfinite(np.asarray(logits)))


def test_bfloat16_compute_keeps_float32_params():
  model = LeNet5(dtype=jnp.bfloat16)
  params = _init(model)
  assert all(p.dtype == jnp.float32 for p in jax.tree_util.tree_leaves(params))
  x = _images(4)
  out_bf16 = jax.jit(model.apply)({"params": params}, x)
  out_f32 = jax.jit(LeNet5().apply)({"params": params}, x)
  assert out_bf16.dtype == jnp.float32  # Logits are cast back for the loss.
  assert not np.array_equal(np.asarray(out_bf16), np.asarray(out_f32))  # Really computed in bf16.
  np.testing.assert_allclose(np.asarray(out_bf16), np.asarray(out_f32), atol=0.1, rtol=0.1)


def test_rejects_uint8_and_unknown_activation():
  params = _shapes(LeNet5())
  with pytest.raises(TypeError, match="preprocess"):
    LeNet5().apply({"params": params}, jnp.zeros((1, 28, 28, 1), jnp.uint8))
  with pytest.raises(ValueError, match="activation"):
    _shapes(LeNet5(activation="sigmoid"))
