"""Figure 3: LAMB with the l1, l2 and l-infinity norms in the trust ratio, ResNet-50 on ImageNet
at batch 16K (Appendix F: the accuracy differs by less than 0.1%).

L2, LAMB's own norm, is Table 3's LAMB (the same config but for its name), so this config trains
L1 and L-infinity; the analysis reads `table3`'s runs for L2 (`analysis.runs.SHARED_ARMS`;
`python experiments/run.py --config=table3 --only=lamb`).

The cpu scale trains the ImageNet ladder's shape (`_imagenet.IMAGENET_CPU`) on 3 seeds; claim 16
pairs them on the 9000 test images no grid chose on.
"""
from experiments.configs import _imagenet, common

BATCH = 16384
NORMS = ("l1", "linf")  # and l2: Table 3's LAMB


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
  config = common.base_config(name="figure3", scale=scale)
  _imagenet.imagenet_resnet50(config, scale, batch_size=BATCH)
  config.optimizer = _imagenet.lamb_section(BATCH, norm="l2")
  seeds = (0,) if scale == "paper" else _imagenet.CPU_SEEDS  # claim 16 pairs them
  config.sweep = common.sweep(("optimizer.kwargs.norm", NORMS, ""), ("seed", seeds, "seed"))
  return common.apply_options(config, options)
