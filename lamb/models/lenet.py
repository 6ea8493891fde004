"""LeNet-5 (LeCun, Bottou, Bengio and Haffner 1998) for the MNIST experiment (LAMB, Table 7).

    input  [B, 28, 28, 1] float (see lamb.data.mnist.preprocess), zero-padded to 32x32
    conv1  6 @ 5x5, stride 1 (padding 2 == 'SAME' for 28x28)  -> [B, 28, 28, 6]
    pool   2x2 average, stride 2                               -> [B, 14, 14, 6]
    conv2  16 @ 5x5, 'VALID'                                   -> [B, 10, 10, 16]
    pool   2x2 average, stride 2                               -> [B, 5, 5, 16]
    fc1    400 -> 120;  fc2  120 -> 84;  fc3  84 -> num_classes (logits)

61,706 parameters for 10 classes (156 + 2,416 + 48,120 + 10,164 + 850).

Simplifications of the 1998 network, as in common modern re-implementations: conv2 connects to
all 6 input maps (the paper's C3 uses a sparse connection table), subsampling is a plain average
pool with no trainable coefficient/bias, the activation follows each conv and hidden dense layer
(default ReLU; ``activation="tanh"`` is closer to the paper's scaled tanh), and the output layer
is a dense layer of logits for a softmax cross-entropy instead of RBF units.

Layers are named ``conv1, conv2, fc1, fc2, fc3``, so parameter paths are e.g. ``conv1/kernel``,
``fc3/bias`` (what lamb.optim.masks matches on). `dtype` is the compute dtype (bfloat16 for
mixed precision); parameters are always stored in `param_dtype` (float32) and the logits are
returned in float32 so the loss is computed in full precision.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

ACTIVATIONS = {"relu": nn.relu, "tanh": jnp.tanh}


class LeNet5(nn.Module):
  """LeNet-5; ``__call__(images float [B, 28, 28, 1]) -> float32 logits [B, num_classes]``."""
  num_classes: int = 10
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  activation: str = "relu"

  @nn.compact
  def __call__(self, x):
    if self.activation not in ACTIVATIONS:
      raise ValueError(f"unknown activation {self.activation!r}; expected one of "
                       f"{sorted(ACTIVATIONS)}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
      raise TypeError(f"LeNet5 takes float images (use lamb.data.mnist.preprocess), got {x.dtype}")
    if x.ndim != 4:
      raise ValueError(f"LeNet5 takes images [B, H, W, C], got shape {x.shape}")
    act = ACTIVATIONS[self.activation]
    layer = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    x = jnp.asarray(x, self.dtype)
    x = act(nn.Conv(6, (5, 5), padding=((2, 2), (2, 2)), name="conv1", **layer)(x))
    x = nn.avg_pool(x, (2, 2), strides=(2, 2))
    x = act(nn.Conv(16, (5, 5), padding="VALID", name="conv2", **layer)(x))
    x = nn.avg_pool(x, (2, 2), strides=(2, 2))
    x = x.reshape((x.shape[0], -1))
    x = act(nn.Dense(120, name="fc1", **layer)(x))
    x = act(nn.Dense(84, name="fc2", **layer)(x))
    x = nn.Dense(self.num_classes, name="fc3", **layer)(x)
    return x.astype(jnp.float32)


def num_params(params) -> int:
  """Total number of scalars in a parameter pytree."""
  return int(sum(np.prod(np.shape(leaf), dtype=np.int64)
                 for leaf in jax.tree_util.tree_leaves(params)))
