"""The baseline tuning grids of Appendix H.1 (Tables 9-25): ResNet-50 on ImageNet at batch
16384 for 90 epochs (7038 iterations), one table per optimizer setting, each a grid of learning
rate x weight decay exactly as printed.

"default" optimizers (Tables 9, 11, 13-20) run the schedule of every other run of the paper,
eta_0 (1 - t/T) with no warmup (the appendix prints no warmup for them); "+" (Tables 10, 12,
21-25) is Goyal et al.'s recipe (5-epoch warmup, x0.1 at epochs 30, 60 and 80). AdamW's
"L2 regularization: default (0.01)" is an L2 term 0.01/2 ||x||^2 in the loss next to the
decoupled weight decay; "disable" drops it.
"""
from experiments.configs import _imagenet, common

LR_ADAGRAD = (0.0001, 0.001, 0.002, 0.004, 0.008, 0.01, 0.02, 0.04, 0.08, 0.1, 0.2, 0.4, 0.8,
              1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 18.0, 20.0, 30.0, 40.0, 50.0)
LR_ADAM = (0.0001, 0.0002, 0.0004, 0.0006, 0.0008, 0.001, 0.002, 0.004, 0.006, 0.008, 0.01)
LR_ADAM_PLUS = LR_ADAM + (0.012, 0.014, 0.016, 0.02, 0.04, 0.06, 0.08, 0.1)
LR_ADAMW = LR_ADAM + (0.012, 0.014, 0.016, 0.018, 0.02, 0.025, 0.03, 0.04, 0.05)
# Table 15 prints no 0.0004 (its first setting is printed twice, with two accuracies).
LR_ADAMW_T15 = tuple(lr for lr in LR_ADAMW if lr != 0.0004)
LR_ADAMW_PLUS_SHORT = LR_ADAM[:10]  # 0.0001 ... 0.008

L2_DEFAULT = 0.01

# table: (optimizer, Goyal recipe?, L2 regularization, weight decays, learning rates)
GRIDS = {
    9: ("adagrad", False, None, None, LR_ADAGRAD),
    10: ("adagrad", True, None, None, LR_ADAGRAD),
    11: ("adam", False, None, None, LR_ADAM),
    12: ("adam", True, None, None, LR_ADAM_PLUS),
    13: ("adamw", False, L2_DEFAULT, (0.00001,), LR_ADAMW),
    14: ("adamw", False, L2_DEFAULT, (0.0001,), LR_ADAMW),
    15: ("adamw", False, L2_DEFAULT, (0.001,), LR_ADAMW_T15),
    16: ("adamw", False, L2_DEFAULT, (0.01,), LR_ADAMW),
    17: ("adamw", False, 0.0, (0.00001,), LR_ADAMW),
    18: ("adamw", False, 0.0, (0.0001,), LR_ADAMW),
    19: ("adamw", False, 0.0, (0.001,), LR_ADAMW),
    20: ("adamw", False, 0.0, (0.01,), LR_ADAMW),
    21: ("adamw", True, L2_DEFAULT, (0.01, 0.001), LR_ADAMW_PLUS_SHORT),
    22: ("adamw", True, L2_DEFAULT, (0.0001, 0.00001), LR_ADAMW_PLUS_SHORT),
    23: ("adamw", True, 0.0, (0.01, 0.001), LR_ADAMW_PLUS_SHORT),
    24: ("adamw", True, 0.0, (0.0001,), LR_ADAMW),
    25: ("adamw", True, 0.0, (0.00001,), LR_ADAMW),
}


def get_config(table: int, arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
  optimizer, goyal, l2, weight_decays, learning_rates = GRIDS[table]
  config = common.base_config(name=f"table{table}", scale=scale)
  _imagenet.imagenet_resnet50(config, scale, cpu=_imagenet.IMAGENET_CPU_SHORT)
  kwargs = {}
  if l2 is not None:
    kwargs["l2_regularization"] = l2
    kwargs["l2_mask"] = common.BN_AND_BIAS
  if weight_decays is not None:
    kwargs["weight_decay_mask"] = common.BN_AND_BIAS
    kwargs["decay_scaled_by_lr"] = _imagenet.IMAGENET_ADAMW_DECAY_SCALED_BY_LR
  config.optimizer = dict(name=optimizer, learning_rate=learning_rates[0],
                          schedule=_imagenet.goyal_schedule(config) if goyal else dict(common.POLY),
                          kwargs=kwargs)
  axes = []
  if weight_decays is not None:
    config.optimizer.weight_decay = weight_decays[0]
    axes.append(("optimizer.weight_decay", weight_decays, "wd"))
  axes.append(("optimizer.learning_rate", learning_rates, "lr"))
  config.sweep = common.sweep(*axes)
  if scale == "cpu":
    config.data.train_examples = _imagenet.IMAGENET_TUNING_CPU_EXAMPLES
    config.shrink_note = _imagenet.imagenet_cpu_note(
        _imagenet.IMAGENET_CPU_SHORT,
        _imagenet.IMAGENET_TUNING_CPU_EXAMPLES) + "; the paper's full grid"
  return common.apply_options(config, options)
