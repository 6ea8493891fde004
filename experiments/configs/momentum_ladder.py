"""Momentum beyond 8K on ImageNet (Section 4.2: "Beyond a batch size of 8K, LAMB's accuracy is
higher than the momentum"): Goyal et al.'s momentum (0.1 per 256 examples, their recipe) at 8K,
16K and 32K, beside Table 5's LAMB at the same batches.

At the cpu scale the 16K rung is Table 3's `momentum` row (the same run: batch 256, the same
rule), so this config trains 8K and 32K; the claim reads the three together.
"""
from experiments.configs import _imagenet, common

BATCHES = (8192, 16384, 32768)
CPU_BATCHES = (8192, 32768)


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
  config = common.base_config(name="momentum_ladder", scale=scale)
  _imagenet.imagenet_resnet50(config, scale, batch_size=BATCHES[0])
  divisor = _imagenet.divisor(scale)
  batches = BATCHES if scale == "paper" else CPU_BATCHES
  rows = tuple(common.batch_label(b) for b in batches)
  config.optimizer = _imagenet.goyal_momentum(config, BATCHES[0] // divisor)
  variants = {}
  for batch in batches:
    section = _imagenet.goyal_momentum(config, batch // divisor)
    variants[common.batch_label(batch)] = (
        ("batch_size", batch // divisor), ("optimizer", section),
        ("paper", dict(table=0, row=f"momentum {common.batch_label(batch)}", batch_size=batch,
                       learning_rate=section["learning_rate"] * divisor, rows_at_scale=rows)))
  config.paper = dict(variants[rows[0]][-1][1])
  config.variants = tuple(variants.items())
  axes = [("variant", rows, "batch")]
  if scale == "cpu":
    axes.append(("seed", _imagenet.CPU_SEEDS, "seed"))
    config.shrink_note += (f"; momentum by Goyal et al.'s rule at the batch that runs; 16K is "
                           f"Table 3's momentum row; {len(_imagenet.CPU_SEEDS)} seeds")
  config.sweep = common.sweep(*axes)
  return common.apply_options(config, options)
