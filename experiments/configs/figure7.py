"""Figure 7: the loss curve of LAMB's mixed-batch BERT pre-training (64K at length 128, then 32K
at 512 with the learning rate re-warmed from zero), logged every step.

At the cpu scale it is mixed_batch's re-warm-up run (the ladder's shape, 64K/32K / 128: 231 +
51 steps), logged every 5 steps so that phase 2's curve has points enough to judge claim 21."""
from experiments.configs import _bert, common


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
  cpu = _bert.BERT_CPU_LADDER
  config = common.base_config(name="figure7", scale=scale)
  _bert.pretraining(config, scale, batch=_bert.MIXED[0], cpu=cpu)
  _bert.set_batch(config, scale, *_bert.MIXED, cpu=cpu)
  config.optimizer = _bert.mixed_lamb_section(scale, cpu)
  config.log_every_steps = 5 if scale == "cpu" else 50
  config.sweep = ()
  return common.apply_options(config, options)
