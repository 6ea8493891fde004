"""LAMB against Nesterov momentum at 32K on ImageNet, both tuned: Nado et al. (2021)'s test of
Section 4.2's "beyond 8K, LAMB beats momentum".

Nado, Gilmer, Shallue, Anil and Dahl ("A Large Batch Optimizer Reality Check", NeurIPS 2021)
reached the LARS result at 32K with Nesterov momentum once it was tuned as carefully. The paper's
momentum baseline (`momentum_ladder`, Table 3) follows Goyal et al.'s fixed rule while LAMB runs
the rates the paper printed for it; here both get one tuning budget and the report judges the
claim against it too.

- cpu scale: each optimizer at the best of its `nado_tuning` grid (TUNING_BUDGET learning rates,
  1/4x to 8x of its own rule, chosen on `test[:1000]` with seed 0), seeds 1-3, evaluated on
  `test[1000:]`.
  `CPU_TUNED` is data read off the committed tuning runs; a test checks it with
  `analysis.select`.
- paper scale: the same protocol at 90 epochs (Nado et al.'s own tuned point could not be read
  here; see `nado_tuning`): `nado_tuning:paper` chooses on ImageNet's first 10,000 validation
  images, this config reports the other 40,000. Its choice goes into `PAPER_TUNED`; until then
  the paper scale refuses to run.
"""
from experiments.configs import _imagenet, common, nado_tuning, table5

BATCH = nado_tuning.BATCH
# The best factor of each optimizer's nado_tuning grid (test[:1000], seed 0): LAMB 0.859 at x0.5,
# Nesterov 0.839 at x2 (`analysis.report`'s tuning table).
CPU_TUNED = {"lamb": 0.5, "nesterov": 2.0}
# Seeds other than the tuning's: the setting that won on seed 0 is reported on fresh models, so
# the luck of the winning run does not follow it onto the reported split.
CPU_SEEDS = (1, 2, 3)
# The same at the paper scale, once nado_tuning:paper has run; until then the paper scale refuses.
PAPER_TUNED = {"lamb": None, "nesterov": None}
PAPER_NEEDS = "nado_tuning:paper"


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
  config = table5.ladder_config(scale)
  config.name = "nado_imagenet"
  divisor = _imagenet.divisor(scale)
  lamb = dict(table5.rung(BATCH, divisor))
  variants = {}
  tuned = CPU_TUNED if scale == "cpu" else PAPER_TUNED
  if None in tuned.values():
    raise ValueError(f"nado_imagenet:{scale} runs the best rates of nado_tuning:{scale}, which "
                     f"are not recorded yet: run nado_tuning:{scale}, then set "
                     f"{'CPU' if scale == 'cpu' else 'PAPER'}_TUNED in "
                     "experiments/configs/nado_imagenet.py from the report's tuning table")
  rules = nado_tuning.rule_rates(divisor)
  lamb_rate = rules["lamb"] * tuned["lamb"]
  nesterov = nado_tuning.nesterov_section(rules["nesterov"] * tuned["nesterov"])
  budget = dict(tuning_budget=nado_tuning.TUNING_BUDGET, tuned_on="nado_tuning")
  if scale == "paper":
    config.data.eval_split = nado_tuning.REPORTED_SPLIT["paper"]
  variants["lamb_32K"] = (
      ("batch_size", lamb["batch_size"]), ("optimizer.learning_rate", lamb_rate),
      ("optimizer.schedule.warmup_ratio", lamb["optimizer.schedule.warmup_ratio"]),
      ("paper", dict(table=0, row="LAMB 32K", batch_size=BATCH, learning_rate=lamb_rate,
                     **dict(budget, tuned_factor=tuned["lamb"]))))
  variants["nesterov_32K"] = (
      ("batch_size", BATCH // divisor), ("optimizer", nesterov),
      ("paper", dict(table=0, row="Nesterov 32K", batch_size=BATCH,
                     learning_rate=nesterov["learning_rate"] * divisor,
                     **dict(budget, tuned_factor=tuned["nesterov"]))))
  config.paper = dict(variants["lamb_32K"][-1][1])
  config.variants = tuple(variants.items())
  axes = [("variant", tuple(variants), "")]
  if scale == "cpu":
    axes.append(("seed", CPU_SEEDS, "seed"))
    config.shrink_note += (f"; LAMB and Nesterov each at the best of {nado_tuning.TUNING_BUDGET}"
                           f" learning rates (nado_tuning, chosen on {nado_tuning.TUNING_SPLIT['cpu']});"
                           f" seeds {', '.join(map(str, CPU_SEEDS))}")
  config.sweep = common.sweep(*axes)
  return common.apply_options(config, options)
