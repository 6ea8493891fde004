"""Batch normalisation over groups of a fixed number of examples ("ghost" batch norm).

ResNet-50's references normalise over each worker's examples, not the global batch: Goyal et al.
(2017), the momentum baseline of Tables 3 and 5, over 32 images per GPU, and the TPU references
over each core's share. Normalising over all 16K-32K images of a data-parallel step (what one
jitted step over a sharded batch does by default) is a different model. `GroupBatchNorm`
splits the batch into consecutive groups of `group_size` examples and normalises each with its
own statistics, whatever the mesh or the micro-batching; the running averages take the mean of
the groups' statistics (as TensorFlow's `virtual_batch_size`).

It keeps flax BatchNorm's variables (params `scale`, `bias`; batch_stats `mean`, `var`), so a
checkpoint does not depend on the grouping. `batch_norm(group_size, ...)` gives flax's own
BatchNorm when `group_size` is 0 (the whole batch).
"""
from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax.numpy as jnp


class GroupBatchNorm(nn.Module):
  """BatchNorm over groups of `group_size` consecutive examples of the batch (axis 0)."""
  group_size: int
  use_running_average: bool = False
  momentum: float = 0.99
  epsilon: float = 1e-5
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  scale_init: Callable = nn.initializers.ones
  bias_init: Callable = nn.initializers.zeros

  @nn.compact
  def __call__(self, x):
    features = x.shape[-1]
    mean_var = self.variable("batch_stats", "mean", lambda: jnp.zeros((features,), jnp.float32))
    var_var = self.variable("batch_stats", "var", lambda: jnp.ones((features,), jnp.float32))
    scale = self.param("scale", self.scale_init, (features,), self.param_dtype)
    bias = self.param("bias", self.bias_init, (features,), self.param_dtype)
    x32 = jnp.asarray(x, jnp.float32)
    if self.use_running_average:
      y = (x32 - mean_var.value) * jnp.reciprocal(jnp.sqrt(var_var.value + self.epsilon))
    else:
      batch = x.shape[0]
      if self.group_size < 1 or batch % self.group_size:
        raise ValueError(f"a batch of {batch} examples does not split into BatchNorm groups of "
                         f"{self.group_size} (model.bn_group_size must divide every "
                         "micro-batch)")
      groups = x32.reshape((batch // self.group_size, self.group_size) + x.shape[1:])
      axes = tuple(range(1, groups.ndim - 1))  # the group's examples and spatial positions
      mean = groups.mean(axes, keepdims=True)
      var = jnp.maximum((groups * groups).mean(axes, keepdims=True) - mean * mean, 0.0)
      if not self.is_initializing():
        m = self.momentum
        mean_var.value = m * mean_var.value + (1 - m) * mean.reshape(-1, features).mean(0)
        var_var.value = m * var_var.value + (1 - m) * var.reshape(-1, features).mean(0)
      y = ((groups - mean) * jnp.reciprocal(jnp.sqrt(var + self.epsilon))).reshape(x.shape)
    y = y * jnp.asarray(scale, jnp.float32) + jnp.asarray(bias, jnp.float32)
    return jnp.asarray(y, self.dtype)


def batch_norm(group_size: int = 0, **kwargs) -> nn.Module:
  """flax's BatchNorm over the whole batch (`group_size` 0) or GroupBatchNorm."""
  if group_size:
    return GroupBatchNorm(group_size, **kwargs)
  return nn.BatchNorm(**kwargs)
