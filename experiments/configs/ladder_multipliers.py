"""The BERT ladder's rate multiplier for LAMB and LARS, chosen at the smallest rung that runs.

The tiny BERT of the cpu scale needs larger rates than BERT-Large, so every printed BERT rate is
multiplied by a factor per optimizer. `bert_multipliers` chose those factors at batch 512 (8 at
the cpu scale) on the shorter budget; on the ladder sized from the top (`_bert.BERT_CPU_LADDER`,
131,072 sequences), LAMB at its choice (x16) times the square-root rule ended its first 4K run
at the unigram guess (a run on the reported novel, discarded). This grid chooses again where the
ladder starts: LAMB and LARS at 4K (batch 64,
2,048 steps), MULTIPLIERS each (the same budget), evaluated on 22 chapters drawn from the
training novels (`data.validation_documents`), never on the reported novel. One seed: a choice,
not a claim. The ladder (Tables 2 and 4) runs the choices; a test checks them against these runs.
The baseline (AdamW at 512) keeps `bert_multipliers`' choice, made at its own batch.

cpu scale only: at the paper scale every rate is used as printed.
"""
from experiments.configs import _bert, common, table4

CPU_ONLY = True  # a choice of the cpu scale's shrink: nothing to run at the paper scale
BATCH = 4096
MULTIPLIERS = {"lamb": (1.0, 2.0, 4.0, 8.0), "lars": (8.0, 16.0, 32.0, 64.0)}
VALIDATION_DOCUMENTS = 22  # 10% of the 219 training chapters, as bert_multipliers
SECTIONS = {"lamb": _bert.lamb_section, "lars": _bert.lars_section,
            "adamw": _bert.adamw_at_rung}


def get_config(arg: str = "cpu"):
  return grid("ladder_multipliers", BATCH, MULTIPLIERS, arg)


def grid(name: str, batch: int, multipliers: dict, arg: str):
  """One seed of each optimizer of `multipliers` at each of its factors, at the ladder's rung
  `batch` (the paper's batch size), evaluated on the validation split of the training novels."""
  scale, options = common.parse_arg(arg)
  if scale != "cpu":
    raise ValueError(f"{name} chooses the cpu scale's rate multipliers; at the paper "
                     f"scale every rate is used as printed (run it at the cpu scale)")
  config = table4.get_config(scale)
  config.name = name
  rung = dict(dict(config.variants)[_bert.label(batch)])
  config.data.validation_documents = VALIDATION_DOCUMENTS
  config.noise_scale_every_steps = 0
  variants = {}
  for optimizer, factors in multipliers.items():
    printed = SECTIONS[optimizer](batch, "paper")
    for m in factors:
      variants[f"{optimizer}_x{m:g}"] = (
          ("phases", rung["phases"]), ("batch_size", rung["batch_size"]),
          ("num_steps", rung["num_steps"]), ("hardware", rung["hardware"]),
          ("optimizer", dict(printed, learning_rate=printed["learning_rate"] * m)),
          ("learning_rate_multiplier", m),
          ("paper", dict(table=0, row=f"{optimizer} {_bert.label(batch)}", batch_size=batch,
                         learning_rate=printed["learning_rate"], tuning_budget=len(factors))))
  first = next(iter(variants.values()))
  config.optimizer = dict(first)["optimizer"]
  config.paper = dict(dict(first)["paper"])
  config.variants = tuple(variants.items())
  config.sweep = common.sweep(("variant", tuple(variants), ""))
  config.shrink_note = (_bert.cpu_note(_bert.BERT_CPU_LADDER).split("; every printed")[0]
                        + "; evaluated on a validation split of the training novels; "
                        + " and ".join(f"{o.upper()} at "
                                       + ", ".join(f"x{m:g}" for m in factors)
                                       for o, factors in multipliers.items())
                        + f" of their printed rates at {_bert.label(batch)}; one seed")
  return common.apply_options(config, options)
