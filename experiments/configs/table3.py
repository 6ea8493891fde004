"""Table 3: ResNet-50 on ImageNet at batch 16K for 90 epochs: Adagrad, Adam and AdamW, each
plain and with Goyal et al.'s recipe (+), momentum and LAMB, each at its tuned setting.

At the cpu scale every optimizer follows its own rule at the batch that runs (16K / 64 = 256):
LAMB its square-root rule from its base (Table 5's rung), momentum Goyal et al.'s 0.1 x B/256,
and each adaptive baseline the best setting of its cpu-scale grid (Tables 9-25, chosen on the
first 1000 test images; Table 3 reports the other 9000). 3 seeds.
"""
from experiments.configs import _imagenet, common

BATCH = 16384
# The best setting of each baseline's tuning grid (Appendix H.1; tests check these against the
# reported tables): Adagrad Table 9, Adagrad+ Table 10, Adam Table 11, Adam+ Table 12, AdamW
# Tables 13-20 (best: Table 17, L2 disabled), AdamW+ Tables 21-25 (best: Table 22, L2 default).
TUNED = {
    "adagrad": dict(name="adagrad", learning_rate=0.4, goyal=False),
    "adagrad+": dict(name="adagrad", learning_rate=14.0, goyal=True),
    "adam": dict(name="adam", learning_rate=0.001, goyal=False),
    "adam+": dict(name="adam", learning_rate=0.002, goyal=True),
    "adamw": dict(name="adamw", learning_rate=0.002, goyal=False, weight_decay=0.00001,
                  l2_regularization=0.0),
    "adamw+": dict(name="adamw", learning_rate=0.002, goyal=True, weight_decay=0.0001,
                   l2_regularization=0.01),
}

# The same six at the cpu scale: the best setting of each cpu-scale grid (`analysis.select` over
# the committed results/table{9..25}/cpu; a test checks these against it). Adam's 0.01 is the top
# of Table 11's grid. The grids ran 48 steps on 6144 images, Table 3 runs 512 steps on 32768: the
# settings are the grids' best, not re-tuned for the longer run.
CPU_TUNED = {
    "adagrad": dict(name="adagrad", learning_rate=0.8, goyal=False, table=9),
    "adagrad+": dict(name="adagrad", learning_rate=0.2, goyal=True, table=10),
    "adam": dict(name="adam", learning_rate=0.01, goyal=False, table=11),
    "adam+": dict(name="adam", learning_rate=0.02, goyal=True, table=12),
    "adamw": dict(name="adamw", learning_rate=0.014, goyal=False, weight_decay=0.001,
                  l2_regularization=0.0, table=19),
    "adamw+": dict(name="adamw", learning_rate=0.02, goyal=True, weight_decay=0.0001,
                   l2_regularization=0.0, table=24),
}


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
  config = common.base_config(name="table3", scale=scale)
  _imagenet.imagenet_resnet50(config, scale, batch_size=BATCH)
  goyal = _imagenet.goyal_schedule(config)
  poly = dict(common.POLY)
  divisor = _imagenet.divisor(scale)
  tuned = TUNED if scale == "paper" else CPU_TUNED
  variants = {}
  for label, t in tuned.items():
    kwargs = {}
    if "l2_regularization" in t:
      kwargs = dict(l2_regularization=t["l2_regularization"], l2_mask=common.BN_AND_BIAS,
                    weight_decay_mask=common.BN_AND_BIAS,
                    decay_scaled_by_lr=_imagenet.IMAGENET_ADAMW_DECAY_SCALED_BY_LR)
    section = dict(name=t["name"], learning_rate=t["learning_rate"],
                   weight_decay=t.get("weight_decay", 0.0), momentum=0.9,
                   schedule=goyal if t["goyal"] else poly, kwargs=kwargs)
    variants[label] = (("optimizer", section),)
  # Momentum as Goyal et al. ran it (their 0.7520 is the reported number), at the batch that runs.
  variants["momentum"] = (("optimizer", _imagenet.goyal_momentum(config, BATCH // divisor)),)
  # LAMB untuned at 16K: Table 5's rule (square-root scaled rate, linear-epoch warmup).
  variants["lamb"] = (("optimizer", dict(_imagenet.lamb_section(BATCH), momentum=0.9)),)
  for label, overrides in variants.items():
    section = overrides[0][1]
    paper = dict(table=3, row=label, batch_size=BATCH,
                 learning_rate=(TUNED[label]["learning_rate"] if label in TUNED
                                else section["learning_rate"] * divisor if label == "momentum"
                                else section["learning_rate"]))
    if scale == "cpu" and label in CPU_TUNED:
      paper["tuned_on"] = f"table{CPU_TUNED[label]['table']}"
    variants[label] = overrides + (("paper", paper),)
  config.variants = tuple(variants.items())
  config.optimizer = variants["lamb"][0][1]
  config.paper = dict(variants["lamb"][1][1])
  seeds = (0,) if scale == "paper" else _imagenet.CPU_SEEDS
  config.sweep = common.sweep(("variant", tuple(variants), ""), ("seed", seeds, "seed"))
  if scale == "cpu":
    config.shrink_note += ("; each optimizer by its own rule at batch 256: LAMB square-root "
                           "scaled, momentum 0.1 x 256/256, the adaptive baselines at their "
                           f"cpu-scale grids' best setting; {len(seeds)} seeds")
  return common.apply_options(config, options)
