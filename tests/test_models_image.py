"""DavidNet and ResNet v1.5: parameter counts and paths, BN state, initialisation, mixed precision.

Full-size models are only traced (jax.eval_shape, nothing allocated); what runs is built at a
small `width` with numpy-filled variables, because compiling flax's initialisers for a whole
network takes 5-15 s on a loaded 2-core CPU (initialisers are checked on single blocks).
"""
from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lamb.models import davidnet, resnet
from lamb.models.davidnet import DavidNet
from lamb.models.lenet import num_params
from lamb.models.resnet import ResNet
from lamb.optim import masks

BN_OR_BIAS = r"(^|/)(bias|scale)$"


def _variables(model, shape=(2, 32, 32, 3)):
  """Variable shapes and dtypes of `model` for inputs of `shape`, without running anything."""
  x = jax.ShapeDtypeStruct(shape, jnp.float32)
  return jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x, train=False), x)


def _paths(tree) -> dict:
  return {masks.path_to_str(kp): leaf for kp, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def _filled(model, shape=(2, 32, 32, 3), seed=0):
  """Random variables of the model's shapes (kernels ~ N(0, 1/fan_in), BN as initialised)."""
  rng = np.random.default_rng(seed)

  def fill(kp, s):
    name = masks.path_to_str(kp).rsplit("/", 1)[-1]
    if name in ("scale", "var"):
      return jnp.ones(s.shape, s.dtype)
    if name in ("bias", "mean"):
      return jnp.zeros(s.shape, s.dtype)
    fan_in = int(np.prod(s.shape[:-1])) or 1
    return jnp.asarray(rng.normal(size=s.shape) / np.sqrt(fan_in), s.dtype)

  return jax.tree_util.tree_map_with_path(fill, _variables(model, shape))


def _images(shape, seed=1):
  return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


# ---------------------------------------------------------------------------------------------
# DavidNet


def test_davidnet_param_count_and_paths():
  variables = _variables(DavidNet())
  params = _paths(variables["params"])
  assert num_params(variables["params"]) == 6_573_120
  assert num_params(variables["batch_stats"]) == 4_480  # mean and var of 2,240 BN channels
  assert {k: tuple(v.shape) for k, v in params.items() if not k.endswith("bias")} == {
      "prep/conv/kernel": (3, 3, 3, 64), "prep/bn/scale": (64,),
      "layer1/conv/kernel": (3, 3, 64, 128), "layer1/bn/scale": (128,),
      "layer1/res1/conv/kernel": (3, 3, 128, 128), "layer1/res1/bn/scale": (128,),
      "layer1/res2/conv/kernel": (3, 3, 128, 128), "layer1/res2/bn/scale": (128,),
      "layer2/conv/kernel": (3, 3, 128, 256), "layer2/bn/scale": (256,),
      "layer3/conv/kernel": (3, 3, 256, 512), "layer3/bn/scale": (512,),
      "layer3/res1/conv/kernel": (3, 3, 512, 512), "layer3/res1/bn/scale": (512,),
      "layer3/res2/conv/kernel": (3, 3, 512, 512), "layer3/res2/bn/scale": (512,),
      "linear/kernel": (512, 10),
  }
  assert {k.replace("/bias", "/scale") for k in params if k.endswith("bias")} == {
      k for k in params if k.endswith("/bn/scale")}  # Only BN has biases: no conv/linear bias.
  assert all(p.dtype == jnp.float32 for p in params.values())
  assert num_params(_variables(DavidNet(num_classes=100))["params"]) == 6_573_120 + 512 * 90


def test_davidnet_width_multiplier():
  params = _paths(_variables(DavidNet(width=0.25))["params"])
  assert params["prep/conv/kernel"].shape == (3, 3, 3, 16)
  assert params["layer3/res2/conv/kernel"].shape == (3, 3, 128, 128)
  assert params["linear/kernel"].shape == (128, 10)
  assert num_params(_variables(DavidNet(width=0.25))["params"]) < 6_573_120 / 15
  tiny = _paths(_variables(DavidNet(width=0.001))["params"])  # Never below one channel.
  assert tiny["layer3/conv/kernel"].shape == (3, 3, 1, 1)
  assert davidnet.scaled(64, 1 / 3) == 21


def test_davidnet_forward_and_batch_norm_state():
  model = DavidNet(width=1 / 16)
  variables = _filled(model)
  x = _images((4, 32, 32, 3))
  logits, updates = jax.jit(lambda v, x: model.apply(v, x, train=True,
                                                     mutable=["batch_stats"]))(variables, x)
  assert logits.shape == (4, 10) and logits.dtype == jnp.float32
  assert np.all(np.isfinite(np.asarray(logits)))
  before, after = _paths(variables["batch_stats"]), _paths(updates["batch_stats"])
  assert before.keys() == after.keys() and "layer1/res2/bn/mean" in after
  for k in after:  # Every running average moved towards the batch statistics ...
    assert not np.allclose(np.asarray(after[k]), np.asarray(before[k])), k
  mean = np.asarray(after["prep/bn/mean"])  # ... by (1 - momentum) = 0.1 of the way.
  conv = jax.lax.conv_general_dilated(
      x, variables["params"]["prep"]["conv"]["kernel"], (1, 1), "SAME",
      dimension_numbers=("NHWC", "HWIO", "NHWC"))
  np.testing.assert_allclose(mean, 0.1 * np.asarray(conv).mean(axis=(0, 1, 2)), rtol=1e-4,
                             atol=1e-6)

  eval_fn = jax.jit(lambda v, x: model.apply(v, x, train=False))
  full = np.asarray(eval_fn(variables, x))
  alone = np.asarray(eval_fn(variables, x[:1]))  # Eval mode: no dependence on the batch.
  np.testing.assert_allclose(full[:1], alone, rtol=1e-5, atol=1e-6)
  train_alone = jax.jit(lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"])[0])
  assert not np.allclose(np.asarray(train_alone(variables, x[:2]))[:1], np.asarray(logits)[:1])


def test_davidnet_logit_scale_and_28x28_input():
  model = DavidNet(width=1 / 16)
  variables = _filled(model, (2, 28, 28, 3))
  x = _images((2, 28, 28, 3))
  unscaled = DavidNet(width=1 / 16, logit_scale=1.0)
  f = jax.jit(lambda v, x: (model.apply(v, x, train=False), unscaled.apply(v, x, train=False)))
  scaled, raw = f(variables, x)
  assert scaled.shape == (2, 10)
  np.testing.assert_allclose(np.asarray(scaled), 0.125 * np.asarray(raw), rtol=1e-6)


@pytest.mark.parametrize("size", [8, 7])
def test_davidnet_max_pool_matches_flax_in_value_and_gradient(size):
  """The reshape pool against nn.max_pool, on ReLU outputs (zeros tie) as DavidNet pools them,
  including an odd size whose last row and column 'VALID' pooling drops."""
  import flax.linen as nn  # pylint: disable=import-outside-toplevel
  pre = jnp.asarray(np.random.default_rng(0).normal(size=(3, size, size, 4)), jnp.float32)
  weights = jnp.asarray(np.random.default_rng(1).normal(size=(3, size // 2, size // 2, 4)),
                        jnp.float32)
  ours = lambda x: jnp.sum(weights * davidnet.max_pool_2x2(jax.nn.relu(x)))
  flax = lambda x: jnp.sum(weights * nn.max_pool(jax.nn.relu(x), (2, 2), strides=(2, 2)))
  np.testing.assert_array_equal(davidnet.max_pool_2x2(jax.nn.relu(pre)),
                                nn.max_pool(jax.nn.relu(pre), (2, 2), strides=(2, 2)))
  np.testing.assert_array_equal(jax.grad(ours)(pre), jax.grad(flax)(pre))


def test_davidnet_init_is_pytorch_default():
  kernel = davidnet.pytorch_default_init(jax.random.PRNGKey(0), (3, 3, 64, 128))
  bound = 1 / np.sqrt(3 * 3 * 64)
  assert float(jnp.max(jnp.abs(kernel))) <= bound
  assert float(jnp.max(jnp.abs(kernel))) > 0.99 * bound
  block = davidnet.ConvBN(8).init(jax.random.PRNGKey(0), jnp.ones((1, 4, 4, 3)), train=False)
  np.testing.assert_array_equal(block["params"]["bn"]["scale"], np.ones(8))
  np.testing.assert_array_equal(block["params"]["bn"]["bias"], np.zeros(8))
  assert "bias" not in block["params"]["conv"]


# ---------------------------------------------------------------------------------------------
# ResNet


@pytest.mark.parametrize("depth,count", [(18, 11_689_512), (34, 21_797_672), (50, 25_557_032),
                                         (101, 44_549_160), (152, 60_192_808)])
def test_resnet_param_counts_match_torchvision(depth, count):
  variables = _variables(ResNet(depth=depth), (1, 224, 224, 3))
  assert num_params(variables["params"]) == count
  logits = jax.eval_shape(lambda v, x: ResNet(depth=depth).apply(v, x, train=False), variables,
                          jax.ShapeDtypeStruct((3, 224, 224, 3), jnp.float32))
  assert logits.shape == (3, 1000) and logits.dtype == jnp.float32


def test_resnet50_paths_and_shapes():
  params = _paths(_variables(ResNet(depth=50), (1, 224, 224, 3))["params"])
  assert params["stem/conv/kernel"].shape == (7, 7, 3, 64)
  assert params["stem/bn/scale"].shape == (64,)
  assert params["layer1/block0/conv1/kernel"].shape == (1, 1, 64, 64)
  assert params["layer1/block0/conv3/kernel"].shape == (1, 1, 64, 256)
  assert params["layer1/block0/proj_conv/kernel"].shape == (1, 1, 64, 256)  # channels change
  assert "layer1/block1/proj_conv/kernel" not in params  # identity shortcut
  # v1.5: the stride is in the 3x3 conv; the 1x1 convs are the same in every block.
  assert params["layer2/block0/conv2/kernel"].shape == (3, 3, 128, 128)
  assert params["layer4/block2/bn3/scale"].shape == (2048,)
  assert params["fc/kernel"].shape == (2048, 1000) and params["fc/bias"].shape == (1000,)
  assert sum(1 for k in params if re.fullmatch(r"layer\d/block\d+/conv1/kernel", k)) == 16
  assert not any("bias" in k for k in params if "conv" in k)


def test_resnet_spatial_sizes():
  variables = _variables(resnet.Stem(64), (1, 224, 224, 3))
  out = jax.eval_shape(lambda v, x: resnet.Stem(64).apply(v, x, train=False), variables,
                       jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32))
  assert out.shape == (1, 56, 56, 64)
  cifar = resnet.Stem(64, "cifar")
  out = jax.eval_shape(lambda v, x: cifar.apply(v, x, train=False),
                       _variables(cifar), jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32))
  assert out.shape == (1, 32, 32, 64)


def test_resnet_cifar_stem_and_width():
  params = _paths(_variables(ResNet(depth=18, num_classes=10, stem="cifar"))["params"])
  assert params["stem/conv/kernel"].shape == (3, 3, 3, 64)
  assert num_params(params) == 11_173_962  # the usual CIFAR ResNet-18
  narrow = _paths(_variables(ResNet(depth=50, width=0.25, num_classes=10))["params"])
  assert narrow["stem/conv/kernel"].shape == (7, 7, 3, 16)
  assert narrow["layer4/block2/conv3/kernel"].shape == (1, 1, 128, 512)
  assert narrow["fc/kernel"].shape == (512, 10)
  assert num_params(narrow) < 25_557_032 / 12


@pytest.mark.parametrize("depth,stem,size", [(18, "cifar", 32), (50, "imagenet", 32)])
def test_resnet_forward_and_batch_norm_state(depth, stem, size):
  model = ResNet(depth=depth, width=1 / 16, num_classes=10, stem=stem)
  shape = (4, size, size, 3)
  variables = _filled(model, shape)
  x = _images(shape)
  logits, updates = jax.jit(lambda v, x: model.apply(v, x, train=True,
                                                     mutable=["batch_stats"]))(variables, x)
  assert logits.shape == (4, 10) and logits.dtype == jnp.float32
  assert np.all(np.isfinite(np.asarray(logits)))
  before, after = _paths(variables["batch_stats"]), _paths(updates["batch_stats"])
  assert before.keys() == after.keys() and "layer4/block1/bn2/var" in after
  assert all(not np.allclose(np.asarray(after[k]), np.asarray(before[k])) for k in after)
  eval_fn = jax.jit(lambda v, x: model.apply(v, x, train=False))
  np.testing.assert_allclose(np.asarray(eval_fn(variables, x))[:1],
                             np.asarray(eval_fn(variables, x[:1])), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("block,last_bn", [(resnet.BasicBlock, "bn2"),
                                           (resnet.BottleneckBlock, "bn3")])
def test_resnet_block_init(block, last_bn):
  x = jnp.ones((1, 8, 8, 8))
  params = block(4, strides=2).init(jax.random.PRNGKey(0), x, train=False)["params"]
  bns = [k for k in params if k.startswith("bn") or k == "proj_bn"]
  assert "proj_bn" in bns  # strided: projection shortcut
  for name in bns:  # Goyal et al.: the block's last BN starts at scale 0, the others at 1.
    want = 0.0 if name == last_bn else 1.0
    np.testing.assert_array_equal(params[name]["scale"], np.full(params[name]["scale"].shape,
                                                                 want))
    np.testing.assert_array_equal(params[name]["bias"], np.zeros(params[name]["bias"].shape))
  plain = block(4, strides=2, zero_init_residual=False).init(jax.random.PRNGKey(0), x,
                                                             train=False)["params"]
  np.testing.assert_array_equal(plain[last_bn]["scale"], np.ones(plain[last_bn]["scale"].shape))
  # With an identity shortcut, a block whose last BN scale is 0 starts as relu(x).
  identity = block(8 // block.expansion)
  x = _images((2, 4, 4, 8))
  variables = identity.init(jax.random.PRNGKey(1), x, train=False)
  assert "proj_conv" not in variables["params"]
  np.testing.assert_allclose(np.asarray(identity.apply(variables, x, train=False)),
                             np.maximum(np.asarray(x), 0), rtol=1e-6)


def test_resnet_conv_init_he_normal_fan_out():
  kernel = np.asarray(resnet.conv_init(jax.random.PRNGKey(0), (3, 3, 64, 128)))
  std = np.sqrt(2.0 / (3 * 3 * 128))
  assert abs(kernel.std() / std - 1) < 0.02 and abs(kernel.mean()) < 0.05 * std
  assert np.abs(kernel).max() > 3 * std  # Untruncated normal, as torchvision.
  fc = np.asarray(resnet.fc_init(jax.random.PRNGKey(1), (512, 100)))
  assert abs(fc.std() / 0.01 - 1) < 0.03


# ---------------------------------------------------------------------------------------------
# Both


@pytest.mark.parametrize("make", [lambda **kw: DavidNet(width=1 / 8, **kw),
                                  lambda **kw: ResNet(depth=18, width=1 / 8, num_classes=10,
                                                      stem="cifar", **kw)])
def test_bfloat16_compute_gives_float32_logits(make):
  variables = _filled(make())
  x = _images((2, 32, 32, 3))
  f = jax.jit(lambda v, x: (make(dtype=jnp.bfloat16).apply(v, x, train=False),
                            make().apply(v, x, train=False)))
  out_bf16, out_f32 = f(variables, x)
  assert all(p.dtype == jnp.float32 for p in jax.tree_util.tree_leaves(
      _variables(make(dtype=jnp.bfloat16))))
  assert out_bf16.dtype == jnp.float32
  assert not np.array_equal(np.asarray(out_bf16), np.asarray(out_f32))  # Really computed in bf16.
  scale = float(np.abs(np.asarray(out_f32)).max())
  np.testing.assert_allclose(np.asarray(out_bf16), np.asarray(out_f32), atol=0.1 * scale)


@pytest.mark.parametrize("model,shape", [(DavidNet(), (1, 32, 32, 3)),
                                         (ResNet(depth=50), (1, 224, 224, 3))])
def test_bias_and_scale_regex_selects_exactly_batch_norm(model, shape):
  params = _variables(model, shape)["params"]
  keep = masks.resolve(masks.path_mask(exclude=(BN_OR_BIAS,)), params)
  paths = list(_paths(params))
  excluded = {p for p, k in zip(paths, keep) if not k}
  assert excluded == {p for p in paths if re.search(r"(^|/)bn\d?/|proj_bn/", p)} | (
      {"fc/bias"} if "fc/bias" in paths else set())
  assert all(k for p, k in zip(paths, keep) if p.endswith("kernel"))


def test_rejects_bad_input_and_settings():
  with pytest.raises(TypeError, match="float"):
    DavidNet().apply(_variables(DavidNet()), jnp.zeros((1, 32, 32, 3), jnp.uint8), train=False)
  with pytest.raises(TypeError, match="float"):
    ResNet(depth=18).apply(_variables(ResNet(depth=18)), jnp.zeros((1, 32, 32, 3), jnp.uint8),
                           train=False)
  with pytest.raises(ValueError, match="depth"):
    _variables(ResNet(depth=42))
  with pytest.raises(ValueError, match="stem"):
    _variables(ResNet(stem="tiny"))
  with pytest.raises(ValueError, match="width"):
    _variables(DavidNet(width=0))
