"""Table 6: DavidNet on CIFAR-10 at batch 512 for 24 epochs: Adagrad, Adam, AdamW, momentum and
LAMB, each tuned over the paper's 34 learning rates (and AdamW over 5 weight decays).

The paper scale runs the TensorFlow TPU port of DavidNet the paper used, without Cutout;
`table6:paper,cutout` adds the 8x8 Cutout of Page's PyTorch DAWNBench original. The cpu scale
keeps that Cutout (its committed runs have it; its shrink note says so)."""
from experiments.configs import _cifar, common

LEARNING_RATES = (0.0001, 0.0002, 0.0004, 0.0006, 0.0008, 0.001, 0.002, 0.004, 0.006, 0.008,
                  0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0,
                  10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0)
ADAMW_WEIGHT_DECAYS = (0.0001, 0.001, 0.01, 0.1, 1.0)
WARMUP_EPOCHS = 5  # DavidNet's schedule: linear up to the peak at epoch 5, down to 0 at 24


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg, named=("cutout",))
  cutout = "cutout" in common.named_variants(options)
  if cutout and scale != "paper":
    raise ValueError("the cpu scale of table6 already has Cutout; `cutout` is a paper-scale "
                     "variant (table6:paper,cutout)")
  config = common.base_config(name="table6", scale=scale)
  _cifar.cifar10_davidnet(config, scale, cutout=cutout)
  # Every optimizer gets DavidNet's piecewise-linear schedule (the momentum baseline's, "tuned by
  # the baseline implementer"), its warmup a fixed fraction of training.
  schedule = dict(name="warmup_polynomial_decay", warmup_ratio=WARMUP_EPOCHS / 24,
                  decay_from_start=False)
  variants = {}
  for name in ("adagrad", "adam", "lamb"):
    for lr in LEARNING_RATES:
      variants[f"{name}_lr{lr:g}"] = (("optimizer.name", name),
                                      ("optimizer.learning_rate", lr))
  for wd in ADAMW_WEIGHT_DECAYS:
    for lr in LEARNING_RATES:
      variants[f"adamw_wd{wd:g}_lr{lr:g}"] = (("optimizer.name", "adamw"),
                                              ("optimizer.learning_rate", lr),
                                              ("optimizer.weight_decay", wd))
  # The baseline as its implementer tuned it: lr 0.4, Nesterov momentum 0.9, L2 5e-4.
  variants["momentum"] = (("optimizer.name", "momentum"), ("optimizer.learning_rate", 0.4),
                          ("optimizer.kwargs", dict(nesterov=True, l2_regularization=5e-4)))
  config.variants = tuple(variants.items())
  config.optimizer = dict(name="lamb", learning_rate=0.01, weight_decay=0.01, momentum=0.9,
                          schedule=schedule, kwargs={})
  config.sweep = common.sweep(("variant", tuple(variants), ""))
  return common.apply_options(config, options)
