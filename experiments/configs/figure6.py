"""Figure 6: LAMB's BERT pre-training loss curves from batch 512 to 32K (Table 4's untuned
ladder), logged every step and fetched often."""
from experiments.configs import common
from experiments.configs import table4


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
  config = table4.get_config(scale)
  config.name = "figure6"
  config.log_every_steps = 10 if scale == "cpu" else 50
  return common.apply_options(config, options)
