"""The sweep benchmark's grid: Table 7's LeNet-5/MNIST LAMB run at cpu scale over 20 learning
rates (log-spaced from 1e-4 to 1e-1, the span of the paper's grid), one seed."""
import numpy as np

from experiments.configs import common, table7

LEARNING_RATES = tuple(float(f"{lr:.3g}") for lr in np.logspace(-4, -1, 20))


def get_config(arg: str = "cpu"):
  config = table7.get_config(arg)
  config.name = "lr_grid_benchmark"
  config.optimizer.name = "lamb"
  config.sweep = common.sweep(("optimizer.learning_rate", LEARNING_RATES, "lr"))
  return config
