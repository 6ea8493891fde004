"""Figure 5: final validation loss against validation accuracy of every Table 6
run (DavidNet on CIFAR-10, Appendix G).

The figure is drawn from Table 6's runs, so this config is Table 6's sweep under Table 6's name:
it trains into results/table6/ and finds there what table6, figure4 or figure5 already
ran. Draw it with `python -m analysis.figures figure5`."""
from experiments.configs import table6


def get_config(arg: str = "cpu"):
  return table6.get_config(arg)
