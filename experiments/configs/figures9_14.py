"""Figures 9-14: LAMB's per-layer trust ratios at several iterations of ResNet-50 training on
ImageNet (batch 16K), recorded for every layer."""
from experiments.configs import _imagenet, common

BATCH = 16384


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
  config = common.base_config(name="figures9_14", scale=scale)
  _imagenet.imagenet_resnet50(config, scale, batch_size=BATCH, cpu=_imagenet.IMAGENET_CPU_SHORT)
  config.optimizer = _imagenet.lamb_section(BATCH)
  # Trust ratios of every layer: each 100 of the 7038 steps at paper scale, every step of the
  # short cpu-scale run.
  config.trust_ratio_every_steps = 100 if scale == "paper" else 1
  config.sweep = common.sweep()
  return common.apply_options(config, options)
