"""Figure 7: the loss curve of LAMB's mixed-batch BERT pre-training (64K at length 128, then 32K
at 512 with the learning rate re-warmed from zero), logged every step.

At the cpu scale it is mixed_batch's re-warm-up run (the ladder's shape, 64K/32K / 128: 231 +
51 steps), logged every 5 steps so that phase 2's curve has points enough to judge claim 21;
mixed_batch logs its runs as often, so the analysis reads its seed 0 when this config has not
run (`analysis.runs.mixed_curve`) and the cpu reproduction trains the run once."""
from experiments.configs import _bert, common, mixed_batch


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
  cpu = _bert.BERT_CPU_LADDER
  config = common.base_config(name="figure7", scale=scale)
  _bert.pretraining(config, scale, batch=_bert.MIXED[0], cpu=cpu)
  _bert.set_batch(config, scale, *_bert.MIXED, cpu=cpu)
  config.optimizer = _bert.mixed_lamb_section(scale, cpu)
  config.learning_rate_multiplier = _bert.top_multiplier(scale, "lamb", cpu)
  config.log_every_steps = 5 if scale == "cpu" else 50
  if scale == "cpu":
    config.shrink_note += mixed_batch.cpu_note(cpu)
  config.sweep = ()
  return common.apply_options(config, options)
