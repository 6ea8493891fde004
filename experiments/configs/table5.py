"""Table 5: untuned LAMB for ResNet-50 on ImageNet from batch 512 to 32K (90 epochs), with
square-root learning-rate scaling and linear-epoch warmup; top-1 and top-5 accuracy.

The cpu scale runs the ladder's top four rungs (4K-32K; batches 64-512) on 3 seeds, sized so that
its largest batch trains 256 steps; the rungs below 4K would take 2-8x longer at batch 8-32 (the
slowest shapes here, ~200 images/s at batch 8) and are left to the paper scale, except 2K, which
`lars_imagenet` trains (LAMB against LARS) and which this table does not show.
"""
from experiments.configs import _imagenet, common

BATCHES = (512, 1024, 2048, 4096, 8192, 16384, 32768)
CPU_BATCHES = (4096, 8192, 16384, 32768)
# Gradient noise scale measurements (`lamb.train.noise_scale`): 8 per cpu run, each comparing the
# batch with its quarters, so the report places the ladder against the critical batch.
CPU_NOISE_EVERY_EPOCHS = 0.5


def rung(batch: int, divisor: int, rows: tuple = ()) -> tuple:
  """The overrides of one rung: its batch, the LAMB rule's rate and warmup at that batch
  (`_imagenet.lamb_section`), and the paper-facing keys (the paper's batch and printed rate, the
  row it stands for, and the rows this scale's ladder runs, so that analysis tells a rung left
  out from one not yet run)."""
  section = _imagenet.lamb_section(batch)
  rate = section["learning_rate"]
  return (
      ("batch_size", max(1, batch // divisor)),
      ("optimizer.learning_rate", rate),
      ("optimizer.schedule.warmup_ratio", section["schedule"]["warmup_ratio"]),
      ("paper", dict(table=5, row=common.batch_label(batch), batch_size=batch,
                     learning_rate=rate, rows_at_scale=tuple(rows))),
  )


def ladder_config(scale: str, cpu: dict = _imagenet.IMAGENET_CPU):
  """Table 5's LAMB at its base batch, before the ladder's rungs are laid on it."""
  config = common.base_config(name="table5", scale=scale)
  _imagenet.imagenet_resnet50(config, scale, batch_size=_imagenet.LAMB_BASE_BATCH, cpu=cpu)
  config.optimizer = _imagenet.lamb_section(_imagenet.LAMB_BASE_BATCH)
  if scale == "cpu":
    config.shrink_note += "; the ladder's learning rates and warmup fractions as printed"
  return config


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
  config = ladder_config(scale)
  divisor = _imagenet.divisor(scale)
  batches = BATCHES if scale == "paper" else CPU_BATCHES
  rows = tuple(common.batch_label(b) for b in batches)
  config.paper = dict(table=5, row="", batch_size=_imagenet.LAMB_BASE_BATCH,
                      learning_rate=_imagenet.LAMB_BASE_LR, rows_at_scale=rows)
  config.variants = tuple((common.batch_label(b), rung(b, divisor, rows)) for b in batches)
  axes = [("variant", tuple(common.batch_label(b) for b in batches), "batch")]
  if scale == "cpu":
    axes.append(("seed", _imagenet.CPU_SEEDS, "seed"))
    config.noise_scale_every_epochs = CPU_NOISE_EVERY_EPOCHS
    config.noise_scale_parts = _imagenet.NOISE_PARTS
    config.shrink_note += (f"; the top {len(batches)} rungs ({common.batch_label(batches[0])}-"
                           f"{common.batch_label(batches[-1])}), {len(_imagenet.CPU_SEEDS)} seeds")
  config.sweep = common.sweep(*axes)
  return common.apply_options(config, options)
