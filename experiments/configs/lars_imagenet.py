"""LAMB against LARS for ResNet-50 on ImageNet at batch 2K and 32K (Section 4.2: "At a batch
size of 32K, LAMB achieves 76.4% top-1 accuracy while LARS achieves 76.3%. At a batch size of
2K, LAMB is able to achieve 77.11% top-1 accuracy while LARS achieves 76.6%").

The paper prints no LARS settings for ResNet-50; LARS runs the recipe of the TensorFlow ResNet-50
LARS reference (tensorflow/models, official/resnet `resnet_run_loop.poly_rate_fn` with
`tf.contrib.opt.LARSOptimizer`): peak rate 5 below 8K (warmup 5 epochs) and 32 from 32K (warmup
14 epochs), linear warmup then polynomial decay of power 2 to 1e-4 over the remaining steps,
momentum 0.9, LARS's weight decay 1e-4 and trust coefficient 0.001 (You et al. 2017's form),
plus the reference's L2 term 1e-4/2 ||x||^2 in the loss; batch norm and biases are neither
decayed nor adapted. Two differences remain: the reference's L2 term also covers the classifier's
bias, and its trust ratio divides by ||g|| + lambda ||x|| where ours divides by ||g + lambda x||.
Each rung runs at the rate of the paper batch it stands for, as LAMB's rungs do. LAMB is Table 5's
untuned rung: its 2K runs here (the cpu ladder of Table 5 starts at 4K), its 32K is Table 5's
`batch32K` (the claim reads it from there).
"""
from experiments.configs import _imagenet, common, table5

BATCHES = (2048, 32768)
# batch -> (peak rate, warmup epochs of 90): the references' table for the two batches.
LARS_RECIPE = {2048: (5.0, 5.0), 32768: (32.0, 14.0)}


def lars_section(batch: int) -> dict:
  rate, warmup_epochs = LARS_RECIPE[batch]
  return dict(name="lars", learning_rate=rate, weight_decay=1e-4, momentum=0.9,
              schedule=dict(name="warmup_polynomial_decay",
                            warmup_ratio=warmup_epochs / _imagenet.GOYAL_EPOCHS, power=2.0,
                            end_value=1e-4, decay_from_start=False),
              kwargs=dict(form="you2017", weight_decay_mask=common.BN_AND_BIAS,
                          adaptation_mask=common.BN_AND_BIAS, l2_regularization=1e-4,
                          l2_mask=common.BN_AND_BIAS))


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
  config = table5.ladder_config(scale)
  config.name = "lars_imagenet"
  divisor = _imagenet.divisor(scale)
  variants = {}
  for batch in BATCHES:
    label = common.batch_label(batch)
    rate = LARS_RECIPE[batch][0]
    variants[f"lars_{label}"] = (
        ("batch_size", batch // divisor), ("optimizer", lars_section(batch)),
        ("paper", dict(table=0, row=f"LARS {label}", batch_size=batch, learning_rate=rate)))
  lamb_2k = table5.rung(2048, divisor)
  paper = {k: v for k, v in lamb_2k[-1][1].items() if k != "rows_at_scale"}
  variants["lamb_2K"] = lamb_2k[:-1] + (("paper", dict(paper, table=0, row="LAMB 2K")),)
  config.paper = dict(table=0, row="", batch_size=2048, learning_rate=LARS_RECIPE[2048][0])
  config.variants = tuple(variants.items())
  axes = [("variant", tuple(variants), "")]
  if scale == "cpu":
    axes.append(("seed", _imagenet.CPU_SEEDS, "seed"))
    config.shrink_note += f"; LARS as the TensorFlow references run it; {len(_imagenet.CPU_SEEDS)} seeds"
  config.sweep = common.sweep(*axes)
  return common.apply_options(config, options)
