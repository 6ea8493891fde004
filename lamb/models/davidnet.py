"""DavidNet: the 9-layer residual network of the DAWNBench CIFAR-10 entry (LAMB, Table 6).

David Page's "ResNet-9" ("How to train your ResNet", Myrtle.ai 2018), in the TensorFlow port
the paper ran on TPUs (fenwickslab/dl_tutorials, tutorial3_cifar10_davidnet_fix):

    input   [B, 32, 32, 3] float (normalised; see lamb.data.image_pipelines)
    prep    conv 64 3x3 - BN - ReLU                                      -> [B, 32, 32, 64]
    layer1  conv 128 - BN - ReLU - max pool 2, + res(128)                -> [B, 16, 16, 128]
    layer2  conv 256 - BN - ReLU - max pool 2                            -> [B, 8, 8, 256]
    layer3  conv 512 - BN - ReLU - max pool 2, + res(512)                -> [B, 4, 4, 512]
    pool    global max pool                                              -> [B, 512]
    linear  512 -> num_classes, no bias, then logits * 0.125

where ``res(c)`` adds ``relu(bn(conv(relu(bn(conv(h))))))`` to its input ``h`` (the sum is not
followed by another ReLU). Every conv is 3x3, stride 1, 'SAME' padding and has no bias (the BN
after it has one). 6,573,120 parameters for 10 classes (6,563,520 in conv kernels, 4,480 BN
scales and biases, 5,120 in the linear layer); BN keeps 4,480 running statistics (mean, var)
in the ``batch_stats`` collection.

Initialisation and BN settings follow the TF port, which copied PyTorch's defaults so that
Page's hyper-parameters carry over: kernels ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's
kaiming_uniform(a=sqrt(5))), BN scale 1 and bias 0, running-average momentum 0.9 (PyTorch's
0.1) and epsilon 1e-5. The 0.125 logit scale is Page's: it stands in for a lower learning rate
of the last layer. Global max pooling makes the network accept any input of at least 8x8, so a
28x28 image works too (28 -> 14 -> 7 -> 3 before the global pool).

``width`` multiplies every channel count (``max(1, round(c * width))``); it exists only for the
CPU-scale stand-ins, the paper's setting is ``width=1``. Parameter paths read like the layers:
``prep/conv/kernel``, ``prep/bn/scale``, ``layer1/conv/kernel``, ``layer1/bn/bias``,
``layer1/res1/conv/kernel``, ``layer1/res2/bn/scale``, ``layer2/...``, ``layer3/res2/...``,
``linear/kernel``; BN parameters end in ``scale``/``bias``, so ``(^|/)(bias|scale)$`` selects
exactly them (lamb.optim.masks). `dtype` is the compute dtype (bfloat16 for mixed precision);
parameters stay in `param_dtype` (float32) and the logits are returned in float32.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

CHANNELS = {"prep": 64, "layer1": 128, "layer2": 256, "layer3": 512}
RESIDUAL_LAYERS = ("layer1", "layer3")

# PyTorch's default conv/linear init: U(-b, b) with b = sqrt(3 * scale / fan_in) = 1/sqrt(fan_in).
pytorch_default_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def scaled(channels: int, width: float) -> int:
  """``channels * width`` rounded, at least 1."""
  return max(1, int(round(channels * width)))


def conv_bn_relu(module, x, train: bool):
  """conv 3x3 (no bias) - BN - ReLU as children ``conv`` and ``bn`` of `module`.

  Called from inside `module`'s compact ``__call__`` (flax binds the new layers to it).
  """
  x = nn.Conv(module.features, (3, 3), padding="SAME", use_bias=False,
              kernel_init=pytorch_default_init, dtype=module.dtype,
              param_dtype=module.param_dtype, name="conv")(x)
  x = nn.BatchNorm(use_running_average=not train, momentum=module.bn_momentum,
                   epsilon=module.bn_epsilon, dtype=module.dtype,
                   param_dtype=module.param_dtype, name="bn")(x)
  return nn.relu(x)


def max_pool_2x2(x):
  """2x2 max pool, stride 2, 'VALID' (an odd last row or column is dropped), as a reshape and a
  max: the same values and, on the ReLU outputs it pools, the same gradients as
  ``nn.max_pool(x, (2, 2), strides=(2, 2))``, whose select-and-scatter backward is ~15% of a
  narrow DavidNet's CPU step."""
  n, h, w, c = x.shape
  x = x[:, : h // 2 * 2, : w // 2 * 2]
  return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


class ConvBN(nn.Module):
  """conv 3x3 (no bias) - BN - ReLU, as submodules ``conv`` and ``bn``."""
  features: int
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x, train: bool):
    return conv_bn_relu(self, x, train)


class Layer(nn.Module):
  """conv-BN-ReLU and a 2x2 max pool, then (if `residual`) ``h + res2(res1(h))``.

  The first conv-BN-ReLU belongs to this module itself (not to a ConvBN child), so its
  parameters read ``layerN/conv/kernel`` and ``layerN/bn/scale``; the residual branch is
  ``res1``, ``res2``.
  """
  features: int
  residual: bool
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x, train: bool):
    x = conv_bn_relu(self, x, train)
    x = max_pool_2x2(x)
    if self.residual:
      kw = dict(dtype=self.dtype, param_dtype=self.param_dtype, bn_momentum=self.bn_momentum,
                bn_epsilon=self.bn_epsilon)
      h = ConvBN(self.features, name="res1", **kw)(x, train)
      h = ConvBN(self.features, name="res2", **kw)(h, train)
      x = x + h
    return x


class DavidNet(nn.Module):
  """``__call__(images float [B, H, W, C], train) -> float32 logits [B, num_classes]``.

  With ``train=True`` BN normalises with the batch statistics and updates the running averages
  in the mutable ``batch_stats`` collection (``apply(..., mutable=["batch_stats"])``); with
  ``train=False`` it uses the running averages and changes nothing.
  """
  num_classes: int = 10
  width: float = 1.0
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  logit_scale: float = 0.125
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x, train: bool):
    if not jnp.issubdtype(x.dtype, jnp.floating):
      raise TypeError(f"DavidNet takes float (normalised) images, got {x.dtype}")
    if x.ndim != 4:
      raise ValueError(f"DavidNet takes images [B, H, W, C], got shape {x.shape}")
    if self.width <= 0:
      raise ValueError(f"width must be positive, got {self.width}")
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype, bn_momentum=self.bn_momentum,
              bn_epsilon=self.bn_epsilon)
    x = jnp.asarray(x, self.dtype)
    x = ConvBN(scaled(CHANNELS["prep"], self.width), name="prep", **kw)(x, train)
    for name in ("layer1", "layer2", "layer3"):
      x = Layer(scaled(CHANNELS[name], self.width), residual=name in RESIDUAL_LAYERS, name=name,
                **kw)(x, train)
    x = jnp.max(x, axis=(1, 2))
    x = nn.Dense(self.num_classes, use_bias=False, kernel_init=pytorch_default_init,
                 dtype=self.dtype, param_dtype=self.param_dtype, name="linear")(x)
    return x.astype(jnp.float32) * jnp.float32(self.logit_scale)
