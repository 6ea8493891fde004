"""LAMB for ResNet-50 on ImageNet as Table 5 runs it, at any batch of its ladder: the square-root
scaled rate and linear-epoch warmup from 4/(2^3 x 100) and 0.3125 epochs at batch 512."""
from experiments.configs import common
from lamb.optim import schedules

BASE_BATCH, BASE_LR, BASE_WARMUP_EPOCHS = 512, 4 / (2 ** 3.0 * 100), 0.3125


def section(batch: int, **kwargs) -> dict:
  """The optimizer section of untuned LAMB at `batch` (paper batch sizes)."""
  warmup = schedules.linear_epoch_warmup(BASE_WARMUP_EPOCHS, BASE_BATCH, batch)
  return dict(name="lamb", learning_rate=schedules.sqrt_scaled_lr(BASE_LR, BASE_BATCH, batch),
              weight_decay=0.01,
              schedule=dict(common.POLY, warmup_ratio=warmup / common.GOYAL_EPOCHS),
              kwargs=dict(dict(weight_decay_mask=common.BN_AND_BIAS,
                               adaptation_mask=common.BN_AND_BIAS), **kwargs))
