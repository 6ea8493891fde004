"""The critical batch of the ImageNet task (Tables 3 and 5, Figures 1-3): Table 5's untuned LAMB
at two rungs of its ladder, measuring the gradient noise scale B_simple = tr(Σ)/|G|²
(McCandlish et al. 2018; `lamb.train.noise_scale`) at a steady cadence through training.

A batch far above B_simple buys little per step, so a ladder's rungs beyond it test the step
budget more than the optimizer; the report places the ladder against the measured value. The
two rungs measure it twice; their slices differ in size (16 and 64 examples, each normalised by
its own batch-norm statistics), so they need not agree exactly.
"""
from experiments.configs import _imagenet, common, table5

RUNGS = (4096, 16384)


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
  config = table5.ladder_config(scale, cpu=_imagenet.IMAGENET_CPU_SHORT)
  config.name = "noise_scale"
  divisor = _imagenet.divisor(scale, _imagenet.IMAGENET_CPU_SHORT)
  variants = {}
  for batch in RUNGS:
    section = _imagenet.lamb_section(batch)
    variants[common.batch_label(batch)] = (
        ("batch_size", max(_imagenet.NOISE_PARTS, batch // divisor)),
        ("optimizer.learning_rate", section["learning_rate"]),
        ("optimizer.schedule.warmup_ratio", section["schedule"]["warmup_ratio"]),
    )
  config.variants = tuple(variants.items())
  config.sweep = common.sweep(("variant", tuple(variants), "batch"))
  # 16 measurements over the cpu scale's 2 epochs; one per epoch over the paper's 90.
  config.noise_scale_every_epochs = 1.0 if scale == "paper" else 0.125
  config.noise_scale_parts = _imagenet.NOISE_PARTS
  return common.apply_options(config, options)
