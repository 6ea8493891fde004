"""Table 8: AdamW for BERT-Large pre-training at batch 16K (31250 steps), warmup 0.05 / 0.10 /
0.20 of the steps x learning rate 1e-4 / 2e-4 / 3e-4; last loss and step, SQuAD F1."""
from experiments.configs import _bert, common

BATCH = 16384
WARMUP_RATIOS = (0.05, 0.10, 0.20)
LEARNING_RATES = (0.0001, 0.0002, 0.0003)


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
  config = common.base_config(name="table8", scale=scale)
  _bert.pretraining(config, scale, batch=BATCH)  # 28125 + 3125 = 31250 steps
  config.optimizer = _bert.adamw_section(LEARNING_RATES[0], WARMUP_RATIOS[0], scale)
  config.sweep = common.sweep(("optimizer.schedule.warmup_ratio", WARMUP_RATIOS, "warmup"),
                              ("optimizer.learning_rate",
                               tuple(lr * _bert.lr_multiplier(scale) for lr in LEARNING_RATES), "lr"))
  if scale == "cpu":
    config.shrink_note += ("; the printed warmup x learning-rate grid, its rates x "
                           f"{_bert.lr_multiplier(scale):g}")
  return common.apply_options(config, options)
