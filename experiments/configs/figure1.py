"""Figure 1: N-LAMB and NN-LAMB against LAMB, Nadam (Goyal et al.'s recipe, tuned) and momentum
for ResNet-50 on ImageNet at batch 32K (Appendix D: b1 = 0.975, b2 = 0.999, eps = 1e-8).

LAMB's curve is Table 5's 32K rung: the same config but for its name and how often it evaluates,
so this config does not train it again; the analysis reads `table5`'s runs
(`analysis.runs.SHARED_ARMS`; `python experiments/run.py --config=table5 --only=32K`).

The cpu scale trains the ImageNet ladder's shape (`_imagenet.IMAGENET_CPU`: 256 steps at 32K / 64)
and reports the 9000 test images no grid chose on. N-LAMB, NN-LAMB and momentum run 3 seeds, the
seeds of Table 5 (claims 13a and 13b pair them: variants `nlamb_seed1`, ...); Nadam's grid, whose
best the figure draws, one seed. That grid is the paper's at paper scale; at the cpu scale the
paper's 19 rates put the best at the top edge (0.01), so it runs 1, 2 and 5 per decade from 1e-3
to 0.1 (`NADAM_CPU_LEARNING_RATES`, a choice made by looking at results: no claim reads Nadam).
"""
from experiments.configs import _imagenet, common
from lamb.optim import schedules

BATCH = 32768
NADAM_LEARNING_RATES = tuple(round(m * 10.0 ** e, 6) for e in (-4, -3) for m in range(1, 10)) + (
    0.01,)  # {1e-4, 2e-4, ..., 9e-4, 1e-3, 2e-3, ..., 9e-3, 1e-2}
NADAM_CPU_LEARNING_RATES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)
DOZAT = dict(b1=0.975, b2=0.999, eps=1e-8)


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
  config = common.base_config(name="figure1", scale=scale)
  _imagenet.imagenet_resnet50(config, scale, batch_size=BATCH)
  goyal = _imagenet.goyal_schedule(config)
  lamb = _imagenet.lamb_section(BATCH)
  compared = {"nlamb": dict(lamb, name="nlamb", kwargs=dict(lamb["kwargs"], **DOZAT)),
              "nnlamb": dict(lamb, name="nnlamb", kwargs=dict(lamb["kwargs"], **DOZAT)),
              "momentum": dict(
                  name="momentum", learning_rate=schedules.linear_scaled_lr(0.1, 256, BATCH),
                  schedule=goyal, kwargs=dict(l2_regularization=1e-4, l2_mask=common.BN_AND_BIAS))}
  # Seeds are variants, not an axis, so that the Nadam grid runs once, not once per seed.
  seeds = (0,) if scale == "paper" else _imagenet.CPU_SEEDS
  variants = {f"{name}_seed{seed}": (("optimizer", section), ("seed", seed))
              for name, section in compared.items() for seed in seeds}
  for lr in NADAM_LEARNING_RATES if scale == "paper" else NADAM_CPU_LEARNING_RATES:
    variants[f"nadam_lr{lr:g}"] = (("optimizer", dict(name="nadam", learning_rate=lr,
                                                      schedule=goyal, kwargs=dict(DOZAT))),)
  config.variants = tuple(variants.items())
  config.optimizer = lamb
  config.eval_every_epochs = 1.0 if scale == "paper" else 0.5  # the figure plots curves
  config.sweep = common.sweep(("variant", tuple(variants), ""))
  return common.apply_options(config, options)
