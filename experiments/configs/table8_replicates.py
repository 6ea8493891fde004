"""Table 8's best AdamW setting on three fresh seeds: what claim 6 is judged on.

Table 8's grid runs one seed per setting and picks AdamW's best on the held-out text it reports
(as the paper did), so its best cell carries the luck of that seed. This config reruns the cell
chosen by the cpu grid (`python -m analysis.tables table8`: warmup 0.20 x 2e-4, seed 0) on
seeds 1-3, so that the claim compares the baseline with AdamW over three seeds. The held-out
text is the one the choice looked at (the baseline is read on it too), so the choice's luck on
those sequences stays, and favours AdamW: against the claim.

cpu scale only: at the paper scale the chosen setting comes from table8:paper's own grid.
"""
from experiments.configs import _bert, common, table8

CPU_ONLY = True
SEEDS = (1, 2, 3)
# The best cell of table8's cpu grid: held-out masked-LM accuracy 0.1297 (seed 0).
CHOSEN_WARMUP_RATIO = 0.20
CHOSEN_LEARNING_RATE = 0.0002  # printed; the run multiplies it by AdamW's multiplier


def get_config(arg: str = "cpu"):
  config, options = common.replicates_of(table8, "table8_replicates", arg)
  rate = CHOSEN_LEARNING_RATE * _bert.lr_multiplier("cpu", "adamw", _bert.BERT_CPU_LADDER)
  config.sweep = common.sweep(("optimizer.schedule.warmup_ratio", (CHOSEN_WARMUP_RATIO,),
                               "warmup"),
                              ("optimizer.learning_rate", (rate,), "lr"),
                              ("seed", SEEDS, "seed"))
  config.shrink_note = config.shrink_note.replace(
      "; one seed per setting",
      f"; the grid's best cell (warmup {CHOSEN_WARMUP_RATIO:g} x {CHOSEN_LEARNING_RATE:g}, "
      "chosen on seed 0) rerun on seeds 1-3")
  return common.apply_options(config, options)
