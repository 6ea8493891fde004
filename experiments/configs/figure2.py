"""Figure 2: adam-correction acts like learning-rate warmup: LAMB with and without the bias
correction, with and without warmup, for ResNet-50 on ImageNet at batch 16K (Appendix E).

LAMB with the correction and warmup is Table 3's LAMB: the same config but for its name and how
often it evaluates, so this config trains the other three arms; the analysis reads `table3`'s
runs for the fourth (`analysis.runs.SHARED_ARMS`; `python experiments/run.py --config=table3
--only=lamb`).

The cpu scale trains the ImageNet ladder's shape (`_imagenet.IMAGENET_CPU`: 512 steps at 16K / 64)
on 3 seeds and reports the 9000 test images no grid chose on, which claims 14 and 15 pair.
"""
from experiments.configs import _imagenet, common

BATCH = 16384


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
  config = common.base_config(name="figure2", scale=scale)
  _imagenet.imagenet_resnet50(config, scale, batch_size=BATCH)
  lamb = _imagenet.lamb_section(BATCH)
  variants = {}
  for correction in (True, False):
    for warmup in (True, False):
      if correction and warmup:  # Table 3's LAMB
        continue
      schedule = dict(lamb["schedule"], warmup_ratio=lamb["schedule"]["warmup_ratio"] if warmup
                      else 0.0)
      name = f"{'correction' if correction else 'nocorrection'}_{'warmup' if warmup else 'nowarmup'}"
      variants[name] = (("optimizer", dict(lamb, schedule=schedule, kwargs=dict(
          lamb["kwargs"], bias_correction=correction))),)
  config.variants = tuple(variants.items())
  config.optimizer = lamb
  config.eval_every_epochs = 1.0 if scale == "paper" else 0.5
  seeds = (0,) if scale == "paper" else _imagenet.CPU_SEEDS  # claims 14 and 15 pair them
  config.sweep = common.sweep(("variant", tuple(variants), ""), ("seed", seeds, "seed"))
  return common.apply_options(config, options)
