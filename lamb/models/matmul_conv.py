"""A k x k convolution computed as one matrix product, for ResNet's residual blocks on CPUs.

The cpu-scale ResNet-50 stand-in (width 1/8, 32x32 images: 8-64 channels on 8x8 to 1x1 maps)
runs at 7-8% of the machine's float32 matmul peak under XLA's CPU convolutions. A profile of
its train step puts about 30% of the time in the transposes that feed the weight-gradient
convolutions. Written as a dot product the same arithmetic needs none of them: a 1x1
convolution is a dot over the channels (strided: of every s-th row and column), a k x k one a
dot of the k*k shifted copies of the zero-padded input, concatenated along the channels
("im2col"), with the kernel reshaped to [k*k*in, out].

`MatmulConv` keeps `nn.Conv`'s parameter (`kernel`, [k, k, in, out], the same initialiser), so a
checkpoint does not depend on which one computed it; it agrees with `nn.Conv` to float rounding,
not bit for bit (the sums run in another order). The copies cost k*k times the input's memory,
which is nothing at cpu scale and far too much for ImageNet at 224x224: the paper scale keeps
XLA's convolution (`ResNet.conv = "xla"`).
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.linen.dtypes import promote_dtype


class MatmulConv(nn.Module):
  """``__call__(x [B, H, W, in]) -> [B, H', W', features]``: a `kernel_size` x `kernel_size`
  convolution with stride `strides`, zero padding (k - 1) // 2 on each side and no bias, as
  ``nn.Conv(features, (k, k), strides, padding=((p, p), (p, p)), use_bias=False)``."""
  features: int
  kernel_size: int
  strides: int = 1
  kernel_init: Callable = nn.initializers.lecun_normal()
  dtype: Optional[Any] = None  # as nn.Conv: None computes in the inputs' and kernel's dtype
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    k, s = self.kernel_size, self.strides
    kernel = self.param("kernel", self.kernel_init, (k, k, x.shape[-1], self.features),
                        self.param_dtype)
    x, kernel = promote_dtype(x, kernel, dtype=self.dtype)
    pad = (k - 1) // 2
    height = (x.shape[1] + 2 * pad - k) // s + 1
    width = (x.shape[2] + 2 * pad - k) // s + 1
    if pad:
      x = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    # Tap (i, j) of output (r, c) reads input (s*r + i, s*c + j): one strided slice per tap,
    # ordered as the kernel's flattened [k, k, in] rows.
    taps = [x[:, i:i + s * (height - 1) + 1:s, j:j + s * (width - 1) + 1:s, :]
            for i in range(k) for j in range(k)]
    patches = taps[0] if len(taps) == 1 else jnp.concatenate(taps, axis=-1)
    return jax.lax.dot_general(patches, kernel.reshape(-1, self.features),
                               (((3,), (0,)), ((), ())))
