"""Table 5: untuned LAMB for ResNet-50 on ImageNet from batch 512 to 32K (90 epochs), with
square-root learning-rate scaling and linear-epoch warmup; top-1 and top-5 accuracy."""
from experiments.configs import common
from lamb.optim import schedules

BASE_BATCH = 512
BASE_LR = 4 / (2 ** 3.0 * 100)  # printed 4/(2^3.0 x 100) at 512
BASE_WARMUP_EPOCHS = 0.3125
BATCHES = (512, 1024, 2048, 4096, 8192, 16384, 32768)


def label(batch: int) -> str:
  return f"{batch // 1024}K" if batch >= 1024 else str(batch)


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
  config = common.base_config(name="table5", scale=scale)
  common.imagenet_resnet50(config, scale, batch_size=BASE_BATCH)
  divisor = 1 if scale == "paper" else common.IMAGENET_CPU["batch_divisor"]
  variants = {}
  for batch in BATCHES:
    warmup = schedules.linear_epoch_warmup(BASE_WARMUP_EPOCHS, BASE_BATCH, batch)
    variants[label(batch)] = (
        ("batch_size", max(1, batch // divisor)),
        ("optimizer.learning_rate", schedules.sqrt_scaled_lr(BASE_LR, BASE_BATCH, batch)),
        # Warmup in epochs of 90, kept as the same fraction of a shorter cpu-scale run.
        ("optimizer.schedule.warmup_ratio", warmup / common.GOYAL_EPOCHS),
    )
  config.variants = tuple(variants.items())
  config.optimizer = dict(
      name="lamb", learning_rate=BASE_LR, weight_decay=0.01,
      schedule=dict(common.POLY, warmup_ratio=BASE_WARMUP_EPOCHS / common.GOYAL_EPOCHS),
      kwargs=dict(weight_decay_mask=common.BN_AND_BIAS, adaptation_mask=common.BN_AND_BIAS))
  config.sweep = common.sweep(("variant", tuple(variants), "batch"))
  if scale == "cpu":
    config.shrink_note += "; the ladder's learning rates and warmup fractions as printed"
  return common.apply_options(config, options)
