"""Table 8: AdamW for BERT-Large pre-training at batch 16K (31250 steps), warmup 0.05 / 0.10 /
0.20 of the steps x learning rate 1e-4 / 2e-4 / 3e-4; last loss and step, SQuAD F1.

AdamW is BERT's own optimizer (`_bert.adamw_section`). At the cpu scale the runs have the
ladder's shape (`_bert.BERT_CPU_LADDER`: 131,072 sequences, so 16K = batch 256 trains 512 steps)
and AdamW's multiplier, so that claim 6 compares them with the baseline of Table 1 (same task,
same budget); one seed per setting."""
from experiments.configs import _bert, common

BATCH = 16384
WARMUP_RATIOS = (0.05, 0.10, 0.20)
LEARNING_RATES = (0.0001, 0.0002, 0.0003)


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
  cpu = _bert.BERT_CPU_LADDER
  config = common.base_config(name="table8", scale=scale)
  _bert.pretraining(config, scale, batch=BATCH, cpu=cpu)  # 28125 + 3125 = 31250 steps
  multiplier = _bert.lr_multiplier(scale, "adamw", cpu)
  config.learning_rate_multiplier = multiplier
  config.optimizer = _bert.adamw_section(LEARNING_RATES[0], WARMUP_RATIOS[0], scale, cpu)
  config.sweep = common.sweep(("optimizer.schedule.warmup_ratio", WARMUP_RATIOS, "warmup"),
                              ("optimizer.learning_rate",
                               tuple(lr * multiplier for lr in LEARNING_RATES), "lr"))
  if scale == "cpu":
    config.shrink_note += ("; the printed warmup x learning-rate grid, its rates x "
                           f"{multiplier:g}; one seed per setting")
  return common.apply_options(config, options)
