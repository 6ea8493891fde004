"""LAMB against LARS for ResNet-50 on ImageNet at batch 2K and 32K (Section 4.2: "At a batch
size of 32K, LAMB achieves 76.4% top-1 accuracy while LARS achieves 76.3%. At a batch size of
2K, LAMB is able to achieve 77.11% top-1 accuracy while LARS achieves 76.6%").

The paper prints no LARS settings for ResNet-50; LARS runs the recipe of the TensorFlow ResNet-50
LARS references (tensorflow/tpu, tensorflow/models `poly_rate_fn` with `LARSOptimizer`): peak
rate 5 below 8K (warmup 5 epochs) and 32 from 32K (warmup 14 epochs), linear warmup then
polynomial decay of power 2 to 1e-4 over the remaining steps, momentum 0.9, weight decay 1e-4,
trust coefficient 0.001 (You et al. 2017's form), batch norm and biases neither decayed nor
adapted; each rung at the rate of the paper batch it stands for, as LAMB's rungs are. LAMB is
Table 5's untuned rung: its 2K runs here (the cpu ladder starts at 4K), its 32K is Table 5's
`batch32K` (the claim reads it from there).
"""
from experiments.configs import _imagenet, common, table5

BATCHES = (2048, 32768)
# batch -> (peak rate, warmup epochs of 90): the references' table for the two batches.
LARS_RECIPE = {2048: (5.0, 5.0), 32768: (32.0, 14.0)}
CPU_SEEDS = (0, 1, 2)


def lars_section(batch: int) -> dict:
  rate, warmup_epochs = LARS_RECIPE[batch]
  return dict(name="lars", learning_rate=rate, weight_decay=1e-4, momentum=0.9,
              schedule=dict(name="warmup_polynomial_decay",
                            warmup_ratio=warmup_epochs / _imagenet.GOYAL_EPOCHS, power=2.0,
                            end_value=1e-4, decay_from_start=False),
              kwargs=dict(form="you2017", weight_decay_mask=common.BN_AND_BIAS,
                          adaptation_mask=common.BN_AND_BIAS))


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
  config = table5.ladder_config(scale)
  config.name = "lars_imagenet"
  divisor = 1 if scale == "paper" else _imagenet.IMAGENET_CPU["batch_divisor"]
  variants = {}
  for batch in BATCHES:
    label = common.batch_label(batch)
    rate = LARS_RECIPE[batch][0]
    variants[f"lars_{label}"] = (
        ("batch_size", batch // divisor), ("optimizer", lars_section(batch)),
        ("paper", dict(table=0, row=f"LARS {label}", batch_size=batch, learning_rate=rate)))
  lamb_2k = table5.rung(2048, divisor)
  variants["lamb_2K"] = lamb_2k[:-1] + (
      ("paper", dict(lamb_2k[-1][1], table=0, row="LAMB 2K")),)
  config.paper = dict(table=0, row="", batch_size=2048, learning_rate=LARS_RECIPE[2048][0])
  config.variants = tuple(variants.items())
  axes = [("variant", tuple(variants), "")]
  if scale == "cpu":
    axes.append(("seed", CPU_SEEDS, "seed"))
    config.shrink_note += f"; LARS as the TensorFlow references run it; {len(CPU_SEEDS)} seeds"
  config.sweep = common.sweep(*axes)
  return common.apply_options(config, options)
