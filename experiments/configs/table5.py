"""Table 5: untuned LAMB for ResNet-50 on ImageNet from batch 512 to 32K (90 epochs), with
square-root learning-rate scaling and linear-epoch warmup; top-1 and top-5 accuracy.

The cpu scale runs the ladder's top four rungs (4K-32K; batches 64-512) on 3 seeds, sized so that
its largest batch trains 256 steps; the rungs below 4K would need 8-64x more steps of batch 8-32
(the slowest shapes here, ~200 images/s at batch 8) and are left to the paper scale.
"""
from experiments.configs import common
from lamb.optim import schedules

BASE_BATCH = 512
BASE_LR = 4 / (2 ** 3.0 * 100)  # printed 4/(2^3.0 x 100) at 512
BASE_WARMUP_EPOCHS = 0.3125
BATCHES = (512, 1024, 2048, 4096, 8192, 16384, 32768)
CPU_BATCHES = (4096, 8192, 16384, 32768)
CPU_SEEDS = (0, 1, 2)
# Gradient noise scale measurements (`lamb.train.noise_scale`): 8 per cpu run, each comparing the
# batch with its quarters, so the report places the ladder against the critical batch.
CPU_NOISE_EVERY_EPOCHS, NOISE_PARTS = 0.5, 4


def label(batch: int) -> str:
  return f"{batch // 1024}K" if batch >= 1024 else str(batch)


def rung(batch: int, divisor: int, rows: tuple = ()) -> tuple:
  """The overrides of one rung: its batch, square-root scaled rate and linear-epoch warmup, and
  the paper-facing keys (the paper's batch and printed rate, the row it stands for, and the rows
  this scale's ladder runs, so that analysis tells a rung left out from one not yet run)."""
  rate = schedules.sqrt_scaled_lr(BASE_LR, BASE_BATCH, batch)
  warmup = schedules.linear_epoch_warmup(BASE_WARMUP_EPOCHS, BASE_BATCH, batch)
  return (
      ("batch_size", max(1, batch // divisor)),
      ("optimizer.learning_rate", rate),
      # Warmup in epochs of 90, kept as the same fraction of a shorter cpu-scale run.
      ("optimizer.schedule.warmup_ratio", warmup / common.GOYAL_EPOCHS),
      ("paper", dict(table=5, row=label(batch), batch_size=batch, learning_rate=rate,
                     rows_at_scale=tuple(rows))),
  )


def ladder_config(scale: str, cpu: dict = common.IMAGENET_CPU):
  """Table 5's LAMB at its base batch, before the ladder's rungs are laid on it."""
  config = common.base_config(name="table5", scale=scale)
  common.imagenet_resnet50(config, scale, batch_size=BASE_BATCH, cpu=cpu)
  config.optimizer = dict(
      name="lamb", learning_rate=BASE_LR, weight_decay=0.01,
      schedule=dict(common.POLY, warmup_ratio=BASE_WARMUP_EPOCHS / common.GOYAL_EPOCHS),
      kwargs=dict(weight_decay_mask=common.BN_AND_BIAS, adaptation_mask=common.BN_AND_BIAS))
  if scale == "cpu":
    config.shrink_note += "; the ladder's learning rates and warmup fractions as printed"
  return config


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
  config = ladder_config(scale)
  divisor = 1 if scale == "paper" else common.IMAGENET_CPU["batch_divisor"]
  batches = BATCHES if scale == "paper" else CPU_BATCHES
  rows = tuple(label(b) for b in batches)
  config.paper = dict(table=5, row="", batch_size=BASE_BATCH, learning_rate=BASE_LR,
                      rows_at_scale=rows)
  config.variants = tuple((label(b), rung(b, divisor, rows)) for b in batches)
  axes = [("variant", tuple(label(b) for b in batches), "batch")]
  if scale == "cpu":
    axes.append(("seed", CPU_SEEDS, "seed"))
    config.noise_scale_every_epochs = CPU_NOISE_EVERY_EPOCHS
    config.noise_scale_parts = NOISE_PARTS
    config.shrink_note += (f"; the top {len(batches)} rungs ({label(batches[0])}-"
                           f"{label(batches[-1])}), {len(CPU_SEEDS)} seeds")
  config.sweep = common.sweep(*axes)
  return common.apply_options(config, options)
