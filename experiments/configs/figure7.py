"""Figure 7: the loss curve of LAMB's mixed-batch BERT pre-training (64K at length 128, then 32K
at 512 with the learning rate re-warmed from zero), logged every step."""
from experiments.configs import _bert, common


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
  config = common.base_config(name="figure7", scale=scale)
  _bert.pretraining(config, scale)
  _bert.set_batch(config, scale, *_bert.MIXED)
  config.optimizer = _bert.mixed_lamb_section(scale)
  config.log_every_steps = 5 if scale == "cpu" else 50
  config.sweep = ()
  return common.apply_options(config, options)
