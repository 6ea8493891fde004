"""Figure 6: LAMB's BERT pre-training loss curves from batch 512 to 32K (Table 4's untuned
ladder).

The figure is drawn from Table 4's runs (one LAMB ladder, many views), so this config is Table
4's sweep under Table 4's name: it trains into results/table4/ and finds there what table4 or
figure6 already ran. Draw it with `python -m analysis.figures figure6`."""
from experiments.configs import table4


def get_config(arg: str = "cpu"):
  return table4.get_config(arg)
