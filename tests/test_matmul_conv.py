"""`MatmulConv` (lamb.models.matmul_conv) against XLA's convolution, and ResNet's `conv` choice.

The reference is `jax.lax.conv_general_dilated` through `nn.Conv`, the convolution the committed
runs used: outputs and gradients (input and kernel) must agree to float32 rounding, parameters
must be the same tree, and the run's identity must not move while `conv` keeps its old value.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import sweep
from experiments.configs import table5
from lamb.models import resnet
from lamb.models.matmul_conv import MatmulConv
from lamb.train import plan


def _both(features, kernel, strides, x):
  pad = (kernel - 1) // 2
  xla = nn.Conv(features, (kernel, kernel), strides=(strides, strides),
                padding=((pad, pad), (pad, pad)), use_bias=False)
  ours = MatmulConv(features, kernel, strides)
  params = xla.init(jax.random.PRNGKey(0), x)
  assert jax.tree.map(jnp.shape, ours.init(jax.random.PRNGKey(0), x)) == jax.tree.map(
      jnp.shape, params)
  return xla, ours, params


@pytest.mark.parametrize("kernel,strides,size", [(1, 1, 8), (1, 2, 8), (1, 2, 7), (3, 1, 8),
                                                 (3, 2, 8), (3, 2, 7), (3, 1, 1)])
def test_matches_xla_convolution_in_value_and_gradients(kernel, strides, size):
  x = jax.random.normal(jax.random.PRNGKey(1), (3, size, size + 1, 5))
  xla, ours, params = _both(6, kernel, strides, x)
  weights = jax.random.normal(jax.random.PRNGKey(2), (3,) + xla.apply(params, x).shape[1:])

  def loss(module):
    return lambda p, inputs: jnp.sum(module.apply(p, inputs) * weights)

  np.testing.assert_allclose(ours.apply(params, x), xla.apply(params, x), rtol=1e-5, atol=1e-5)
  expected = jax.jit(jax.grad(loss(xla), argnums=(0, 1)))(params, x)
  got = jax.jit(jax.grad(loss(ours), argnums=(0, 1)))(params, x)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)


def test_computes_in_its_dtype_from_float32_parameters():
  x = jnp.ones((2, 4, 4, 3))
  module = MatmulConv(4, 3, dtype=jnp.bfloat16)
  params = module.init(jax.random.PRNGKey(0), x)
  assert jax.tree.leaves(params)[0].dtype == jnp.float32
  assert module.apply(params, x).dtype == jnp.bfloat16
  # as nn.Conv, no dtype computes in the inputs' and parameters' dtype
  assert MatmulConv(4, 3).apply(params, x.astype(jnp.bfloat16)).dtype == jnp.float32
  assert MatmulConv(4, 3).apply(jax.tree.map(lambda p: p.astype(jnp.bfloat16), params),
                                x.astype(jnp.bfloat16)).dtype == jnp.bfloat16


@pytest.mark.parametrize("block", [resnet.BasicBlock, resnet.BottleneckBlock])
def test_blocks_initialise_the_same_parameters(block):
  """One seed, one initial model whichever computes it: the parameters are named alike, so
  they draw the same random numbers (a checkpoint of either serves the other)."""
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 16))
  xla = block(8, strides=2).init(jax.random.PRNGKey(1), x, True)
  ours = block(8, strides=2, conv_impl="matmul").init(jax.random.PRNGKey(1), x, True)
  assert jax.tree.structure(ours) == jax.tree.structure(xla)
  for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(xla)):
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("depth,convolutions", [(18, 1 + 8 * 2 + 3), (50, 1 + 16 * 3 + 4)])
def test_every_block_convolution_is_a_matrix_product(depth, convolutions):
  """With "matmul" the stem is the only convolution left in the program; with "xla" every conv
  of the blocks and the projection shortcuts is one (counted on the traced program)."""
  x = jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32)
  counts = {}
  for conv in resnet.CONVS:
    model = resnet.ResNet(depth=depth, width=0.125, num_classes=10, conv=conv)
    variables = jax.eval_shape(lambda images, m=model: m.init(jax.random.PRNGKey(0), images,
                                                               False), x)
    program = str(jax.make_jaxpr(lambda v, images, m=model: m.apply(v, images, False))(
        variables, x))
    counts[conv] = program.count("conv_general_dilated[")
  assert counts == {"xla": convolutions, "matmul": 1}
  with pytest.raises(ValueError, match="conv"):
    resnet.BottleneckBlock(8, conv_impl="fast").init(jax.random.PRNGKey(0),
                                                     jnp.zeros((1, 4, 4, 8)), False)


@pytest.mark.parametrize("depth,gradients", [(50, False),
                                              pytest.param(50, True, marks=pytest.mark.slow)])
def test_resnet_matmul_conv_is_the_same_model(depth, gradients):
  """Same parameter tree, same logits and BN statistics, and (slow) the same gradients (the
  kernels' gradients are checked above)."""
  x = jax.random.normal(jax.random.PRNGKey(0), (8, 32, 32, 3))
  labels = jnp.arange(8) % 10
  xla = resnet.ResNet(depth=depth, width=0.125, num_classes=10)
  ours = resnet.ResNet(depth=depth, width=0.125, num_classes=10, conv="matmul")
  variables = jax.jit(lambda key, images: xla.init(key, images, True))(jax.random.PRNGKey(1), x)
  assert jax.tree.map(jnp.shape, jax.eval_shape(
      lambda key, images: ours.init(key, images, True), jax.random.PRNGKey(1), x)) == (
      jax.tree.map(jnp.shape, variables))
  # zero_init_residual makes every block the identity at init: perturb the scales so that the
  # blocks' convolutions reach the logits and their gradients.
  params = jax.tree_util.tree_map_with_path(
      lambda path, p: p + 0.5 if "scale" in jax.tree_util.keystr(path) else p,
      variables["params"])

  def loss(model):
    def f(p):
      logits, state = model.apply({"params": p, "batch_stats": variables["batch_stats"]}, x,
                                  True, mutable=["batch_stats"])
      return jnp.mean(jax.nn.logsumexp(logits, -1) - logits[jnp.arange(8), labels]), state
    return f

  if not gradients:
    (want, want_state), (got, got_state) = (jax.jit(loss(m))(params) for m in (xla, ours))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(got_state), jax.tree.leaves(want_state)):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    return
  (want, want_state), want_grads = jax.jit(jax.value_and_grad(loss(xla), has_aux=True))(params)
  (got, got_state), got_grads = jax.jit(jax.value_and_grad(loss(ours), has_aux=True))(params)
  np.testing.assert_allclose(got, want, rtol=1e-5)
  for a, b in zip(jax.tree.leaves((got_grads, got_state)), jax.tree.leaves((want_grads,
                                                                             want_state))):
    np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-5)
  conv_grads = [g for path, g in jax.tree_util.tree_leaves_with_path(got_grads)
                if "conv" in jax.tree_util.keystr(path)]
  assert all(float(jnp.abs(g).max()) > 0 for g in conv_grads)


def test_conv_choices_are_checked_before_anything_is_built():
  assert plan.MODEL_CHOICES["conv"] == resnet.CONVS
  with pytest.raises(ValueError, match="conv"):
    resnet.ResNet(depth=18, conv="fast").init(jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3)),
                                              False)
  config = table5.get_config("cpu")
  run = sweep.run_config(config, sweep.expand_sweep(config)[0][1])
  plan.check_config(run)
  run.model.conv = "matmul"
  plan.check_config(run)
  run.model.conv = "fast"
  with pytest.raises(ValueError, match=r"model.conv='fast' is not one of \('xla', 'matmul'\)"):
    plan.check_config(run)


def test_identity_keeps_runs_made_before_the_conv_key():
  assert resnet.ResNet.conv == sweep.LATER_KEYS[("model", "conv")]  # the value old runs computed
  base = {"name": "x", "model": {"name": "resnet", "depth": 50}, "seed": 0}
  with_xla = {**base, "model": {**base["model"], "conv": "xla"}}
  with_matmul = {**base, "model": {**base["model"], "conv": "matmul"}}
  assert sweep.identity(with_xla) == sweep.identity(base)
  assert sweep.identity(with_matmul) != sweep.identity(base)
  assert sweep.differences(with_xla, base) == []
  assert sweep.differences(with_matmul, base) == ["model.conv"]
