"""LAMB against AdamW at 32K on BERT, both tuned with one budget: the BERT test of "A Large Batch
Optimizer Reality Check" (Nado et al., 2021) of the paper's "LAMB beats AdamW at large batches"
(Section 4.1, Table 8).

Nado, Gilmer, Shallue, Anil and Dahl ("A Large Batch Optimizer Reality Check", NeurIPS 2021)
matched LAMB's BERT-Large result at batch 32K with AdamW once it was tuned as carefully (SQuAD
F1 91.58; `analysis/reported/nado2021.csv`). The paper's AdamW (Table 8) runs BERT's recipe at
three rates and 16K; here both optimizers get the same number of settings at the same batch.

- cpu scale: the ladder's 32K rung (`_bert.BERT_CPU_LADDER`: batch 512, 256 steps), each
  optimizer at its own choice of `top_rung_multipliers` (4 multipliers each, one seed, chosen on
  the validation split of the training novels: `_bert.top_multiplier`), on LAMB's Table 4
  schedule at 32K. LAMB runs Table 4's rate at 32K times its choice, AdamW BERT's own recipe
  (Devlin et al.'s 1e-4, no bias correction, clipping at 1.0) times its choice. Seeds 1-3, not
  the tuning's seed 0, read on the reported novel.
- paper scale: Nado et al.'s tuned AdamW settings could not be read here (only their result
  could), so it refuses until PAPER_TUNED holds them or the result of the same protocol run at
  that scale.
"""
from experiments.configs import _bert, common, ladder_multipliers, top_rung_multipliers

BATCH = top_rung_multipliers.BATCH
OPTIMIZERS = ("lamb", "adamw")
TUNING_BUDGET = {name: len(top_rung_multipliers.MULTIPLIERS[name]) for name in OPTIMIZERS}
# Seeds other than the tuning's: the setting that won on seed 0 is reported on fresh models.
CPU_SEEDS = (1, 2, 3)
PAPER_TUNED = {"lamb": None, "adamw": None}
PAPER_NEEDS = "PAPER_TUNED"  # the paper scale refuses until it is set


def multiplier(optimizer: str, scale: str) -> float:
  """`optimizer`'s tuned factor on its printed rate: PAPER_TUNED, or at cpu its choice at the
  ladder's top (`_bert.top_multiplier`)."""
  if scale == "paper":
    return PAPER_TUNED[optimizer]
  return _bert.top_multiplier(scale, optimizer, _bert.BERT_CPU_LADDER)


def section(optimizer: str, scale: str) -> dict:
  """`optimizer`'s section at 32K: its printed rate (Table 4's for LAMB, Devlin et al.'s for
  AdamW) times its tuned factor."""
  printed = ladder_multipliers.SECTIONS[optimizer](BATCH, "paper")
  return dict(printed, learning_rate=printed["learning_rate"] * multiplier(optimizer, scale))


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
  if scale == "paper" and None in PAPER_TUNED.values():
    raise ValueError("nado_bert:paper runs Nado et al.'s tuned BERT-Large settings at 32K, "
                     "which could not be read here (analysis/reported/nado2021.csv holds only "
                     "their result): set PAPER_TUNED in experiments/configs/nado_bert.py from "
                     "their paper, or run nado_bert at the cpu scale")
  cpu = _bert.BERT_CPU_LADDER
  config = common.base_config(name="nado_bert", scale=scale)
  _bert.pretraining(config, scale, batch=BATCH, cpu=cpu)
  overrides = _bert.batch_overrides(scale, BATCH, cpu=cpu)
  variants = {}
  for name in OPTIMIZERS:
    chosen, factor = section(name, scale), multiplier(name, scale)
    variants[f"{name}_32K"] = overrides + (
        ("optimizer", chosen), ("learning_rate_multiplier", factor),
        ("paper", dict(table=0, row=f"{name} 32K (tuned)", batch_size=BATCH,
                       learning_rate=chosen["learning_rate"] / factor,
                       tuning_budget=TUNING_BUDGET[name], tuned_on="top_rung_multipliers",
                       tuned_factor=factor)))
  config.optimizer = dict(dict(variants["lamb_32K"])["optimizer"])
  config.learning_rate_multiplier = multiplier("lamb", scale)
  config.paper = dict(dict(variants["lamb_32K"])["paper"])
  config.variants = tuple(variants.items())
  config.noise_scale_every_steps = 0
  axes = [("variant", tuple(variants), "")]
  if scale == "cpu":
    axes.append(("seed", CPU_SEEDS, "seed"))
    config.shrink_note += (
        "; LAMB and AdamW at 32K (batch 512, 256 steps) on LAMB's Table 4 schedule, each at "
        f"the best of {TUNING_BUDGET['lamb']} multipliers of its printed rate "
        f"({cpu['top_multipliers_chosen_by']}, one seed, on a validation split of the "
        f"training novels): LAMB x{multiplier('lamb', scale):g}, AdamW 1e-4 x"
        f"{multiplier('adamw', scale):g}; seeds "
        + ", ".join(map(str, CPU_SEEDS)))
  config.sweep = common.sweep(*axes)
  return common.apply_options(config, options)
