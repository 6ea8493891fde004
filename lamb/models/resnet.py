"""ResNet v1.5 (He et al. 2016; torchvision/MLPerf variant) for ImageNet (LAMB, Tables 3-5).

"v1.5" puts the stride-2 of a downsampling bottleneck block in its 3x3 conv instead of the first
1x1 conv (as torchvision, the flax ImageNet example, NVIDIA's and MLPerf's ResNet-50 do), which
is what the paper's ResNet-50 baselines (Goyal et al. 2017, MLPerf) train.

    stem "imagenet": conv 7x7/2 (pad 3) - BN - ReLU - max pool 3x3/2 (pad 1)   224 -> 56
    stem "cifar":    conv 3x3/1 (pad 1) - BN - ReLU (no pool), for 32x32 inputs  32 -> 32
    layer1..layer4:  blocks of 64, 128, 256, 512 channels (x4 out for bottlenecks); the first
                     block of layer2..4 has stride 2 and every block whose shape changes has a
                     projection shortcut conv 1x1/stride - BN
    head:            global average pool - dense num_classes (with bias)

    depth   blocks per layer   block                              params (1000 classes)
    18      2, 2, 2, 2         basic: 3x3 - 3x3                   11,689,512
    34      3, 4, 6, 3         basic                              21,797,672
    50      3, 4, 6, 3         bottleneck: 1x1 - 3x3/s - 1x1 (x4)  25,557,032
    101     3, 4, 23, 3        bottleneck                         44,549,160
    152     3, 8, 36, 3        bottleneck                         60,192,808

(the torchvision counts: convs have no bias, BN has a scale and a bias; BN's running mean and
variance are not parameters but live in the ``batch_stats`` collection).

Initialisation as torchvision and Goyal et al.: conv kernels He normal with fan_out
(std sqrt(2 / (k*k*out))), BN scale 1 and bias 0, the classifier N(0, 0.01) with zero bias, and
with ``zero_init_residual`` (default, Goyal et al. Sec. 5.1) the last BN scale of every residual
block is 0 so each block starts as the identity. BN running-average momentum 0.9 (PyTorch's
0.1) and epsilon 1e-5, as the flax ImageNet example. ``bn_group_size`` normalises over groups of
that many examples instead of the whole batch (``lamb.models.batch_norm``), as Goyal et al.'s 32
images per GPU; 0 (the default) is the whole batch that one step sees.

``width`` multiplies every channel count (``max(1, round(c * width))``, bottleneck outputs are
4x the rounded width); it exists only for CPU-scale stand-ins, the paper's setting is 1.
Parameter paths: ``stem/conv/kernel``, ``stem/bn/scale``, ``layer1/block0/conv1/kernel``,
``layer1/block0/bn1/bias``, ``layer2/block0/proj_conv/kernel``, ``layer2/block0/proj_bn/scale``,
``fc/kernel``, ``fc/bias``; BN parameters and the classifier bias end in ``scale``/``bias``,
so ``(^|/)(bias|scale)$`` selects them (lamb.optim.masks). `dtype` is the compute dtype
(bfloat16 for mixed precision); parameters stay in `param_dtype` (float32) and the logits are
returned in float32.

``conv`` chooses how the residual blocks' convolutions are computed: ``"xla"`` (the default and
the paper scale's) is ``nn.Conv``; ``"matmul"`` is `lamb.models.matmul_conv.MatmulConv`, the same
parameters and the same function to float rounding, faster on CPUs at the stand-in's narrow
widths (benchmarks/RESULTS.md). The stem keeps ``nn.Conv`` either way (no gain measured there).
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from lamb.models.batch_norm import batch_norm
from lamb.models.matmul_conv import MatmulConv

STAGE_SIZES = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3),
               152: (3, 8, 36, 3)}
STAGE_CHANNELS = (64, 128, 256, 512)
STEMS = ("imagenet", "cifar")
CONVS = ("xla", "matmul")
BOTTLENECK_EXPANSION = 4

# torchvision: kaiming_normal_(mode="fan_out", nonlinearity="relu"), untruncated.
conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
fc_init = nn.initializers.normal(stddev=0.01)


def scaled(channels: int, width: float) -> int:
  """``channels * width`` rounded, at least 1."""
  return max(1, int(round(channels * width)))


class _Block(nn.Module):
  """Shared fields and layer factories of the two residual blocks."""
  features: int
  strides: int = 1
  zero_init_residual: bool = True
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5
  bn_group_size: int = 0
  conv_impl: str = "xla"

  def conv(self, features, kernel, strides, name):
    if self.conv_impl not in CONVS:
      raise ValueError(f"unknown ResNet conv {self.conv_impl!r}; expected one of {CONVS}")
    if self.conv_impl == "matmul":
      return MatmulConv(features, kernel, strides, kernel_init=conv_init, dtype=self.dtype,
                        param_dtype=self.param_dtype, name=name)
    pad = (kernel - 1) // 2
    return nn.Conv(features, (kernel, kernel), strides=(strides, strides),
                   padding=((pad, pad), (pad, pad)), use_bias=False, kernel_init=conv_init,
                   dtype=self.dtype, param_dtype=self.param_dtype, name=name)

  def bn(self, train, name, zero_scale=False):
    return batch_norm(self.bn_group_size, use_running_average=not train,
                      momentum=self.bn_momentum, epsilon=self.bn_epsilon, dtype=self.dtype,
                      param_dtype=self.param_dtype,
                      scale_init=nn.initializers.zeros if zero_scale else nn.initializers.ones,
                      name=name)

  def shortcut(self, x, out_features, train):
    if x.shape[-1] == out_features and self.strides == 1:
      return x
    x = self.conv(out_features, 1, self.strides, "proj_conv")(x)
    return self.bn(train, "proj_bn")(x)


class BasicBlock(_Block):
  """3x3/stride - BN - ReLU - 3x3 - BN, plus the shortcut, then ReLU (ResNet-18/34)."""
  expansion = 1

  @nn.compact
  def __call__(self, x, train: bool):
    y = nn.relu(self.bn(train, "bn1")(self.conv(self.features, 3, self.strides, "conv1")(x)))
    y = self.bn(train, "bn2", self.zero_init_residual)(self.conv(self.features, 3, 1, "conv2")(y))
    return nn.relu(y + self.shortcut(x, self.features, train))


class BottleneckBlock(_Block):
  """1x1 - BN - ReLU - 3x3/stride - BN - ReLU - 1x1 (x4) - BN, plus the shortcut, then ReLU."""
  expansion = BOTTLENECK_EXPANSION

  @nn.compact
  def __call__(self, x, train: bool):
    out = self.features * self.expansion
    y = nn.relu(self.bn(train, "bn1")(self.conv(self.features, 1, 1, "conv1")(x)))
    y = nn.relu(self.bn(train, "bn2")(self.conv(self.features, 3, self.strides, "conv2")(y)))
    y = self.bn(train, "bn3", self.zero_init_residual)(self.conv(out, 1, 1, "conv3")(y))
    return nn.relu(y + self.shortcut(x, out, train))


class Stem(nn.Module):
  """``imagenet``: conv 7x7/2 - BN - ReLU - max pool 3x3/2; ``cifar``: conv 3x3/1 - BN - ReLU."""
  features: int
  kind: str = "imagenet"
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5
  bn_group_size: int = 0

  @nn.compact
  def __call__(self, x, train: bool):
    kernel, strides = (7, 2) if self.kind == "imagenet" else (3, 1)
    pad = (kernel - 1) // 2
    x = nn.Conv(self.features, (kernel, kernel), strides=(strides, strides),
                padding=((pad, pad), (pad, pad)), use_bias=False, kernel_init=conv_init,
                dtype=self.dtype, param_dtype=self.param_dtype, name="conv")(x)
    x = batch_norm(self.bn_group_size, use_running_average=not train, momentum=self.bn_momentum,
                   epsilon=self.bn_epsilon, dtype=self.dtype, param_dtype=self.param_dtype,
                   name="bn")(x)
    x = nn.relu(x)
    if self.kind == "imagenet":
      x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
    return x


class Stage(nn.Module):
  """`blocks` residual blocks ``block0, block1, ...``; the first one has stride `strides`."""
  block: Any
  blocks: int
  features: int
  strides: int
  kwargs: Any = None

  @nn.compact
  def __call__(self, x, train: bool):
    for j in range(self.blocks):
      x = self.block(self.features, strides=self.strides if j == 0 else 1, name=f"block{j}",
                     **dict(self.kwargs or {}))(x, train)
    return x


class ResNet(nn.Module):
  """``__call__(images float [B, H, W, C], train) -> float32 logits [B, num_classes]``.

  With ``train=True`` BN normalises with the batch statistics and updates the running averages
  in the mutable ``batch_stats`` collection (``apply(..., mutable=["batch_stats"])``); with
  ``train=False`` it uses the running averages and changes nothing.
  """
  depth: int = 50
  num_classes: int = 1000
  width: float = 1.0
  stem: str = "imagenet"
  zero_init_residual: bool = True
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5
  bn_group_size: int = 0  # examples per BatchNorm group (lamb.models.batch_norm); 0: the batch
  conv: str = "xla"  # how the blocks' convolutions are computed (CONVS; see the docstring)

  @nn.compact
  def __call__(self, x, train: bool):
    if self.depth not in STAGE_SIZES:
      raise ValueError(f"unknown ResNet depth {self.depth}; expected one of {sorted(STAGE_SIZES)}")
    if self.stem not in STEMS:
      raise ValueError(f"unknown ResNet stem {self.stem!r}; expected one of {STEMS}")
    if self.conv not in CONVS:
      raise ValueError(f"unknown ResNet conv {self.conv!r}; expected one of {CONVS}")
    if self.width <= 0:
      raise ValueError(f"width must be positive, got {self.width}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
      raise TypeError(f"ResNet takes float (normalised) images, got {x.dtype}")
    if x.ndim != 4:
      raise ValueError(f"ResNet takes images [B, H, W, C], got shape {x.shape}")
    layer = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    bn = dict(bn_momentum=self.bn_momentum, bn_epsilon=self.bn_epsilon,
              bn_group_size=self.bn_group_size)
    x = jnp.asarray(x, self.dtype)
    x = Stem(scaled(STAGE_CHANNELS[0], self.width), self.stem, name="stem", **layer, **bn)(
        x, train)
    block = BottleneckBlock if self.depth >= 50 else BasicBlock
    block_kwargs = dict(zero_init_residual=self.zero_init_residual, conv_impl=self.conv,
                        **layer, **bn)
    for i, (blocks, channels) in enumerate(zip(STAGE_SIZES[self.depth], STAGE_CHANNELS)):
      x = Stage(block, blocks, scaled(channels, self.width), strides=1 if i == 0 else 2,
                kwargs=block_kwargs, name=f"layer{i + 1}")(x, train)
    x = jnp.mean(x, axis=(1, 2))
    x = nn.Dense(self.num_classes, kernel_init=fc_init, name="fc", **layer)(x)
    return x.astype(jnp.float32)
