"""Table 7's config with a gradient-noise measurement every 4 steps over 4 slices of the batch:
`run.py --config=tests/helpers/tiny_noise_config.py` with the tests' tiny overrides trains the
same steps as the baseline run and also writes `noise` records."""
from experiments.configs import common, table7


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
  config = table7.get_config(scale)
  config.noise_scale_every_steps = 4
  config.noise_scale_parts = 4
  return common.apply_options(config, options)
