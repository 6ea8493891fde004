"""The cpu scale's BERT rate multiplier, chosen per optimizer on a validation split.

The tiny BERT of the cpu scale needs larger rates than BERT-Large. The configs of the shorter
shape multiply every printed BERT rate by `_bert.BERT_CPU["lr_multiplier"]` (x8), a value chosen
for LAMB alone by looking at the held-out novel that the tables report. This experiment chooses
it the way it should be chosen: for each optimizer of the BERT tables (LAMB, LARS, AdamW) at the
smallest batch of the ladder (512; 8 at the cpu scale), each multiplier of MULTIPLIERS, evaluated
on 22 chapters drawn at random from the five training novels (`data.validation_documents`; those
chapters are not trained on) instead of "Sense and Sensibility". One seed: a choice, not a claim.
The ladder of Tables 1, 2 and 4 (`_bert.BERT_CPU_LADDER["lr_multipliers"]`) runs each optimizer's
choice; a test checks it against these runs.

cpu scale only: at the paper scale every rate is used as printed.
"""
from experiments.configs import _bert, common

CPU_ONLY = True  # a choice of the cpu scale's shrink: nothing to run at the paper scale
MULTIPLIERS = (2.0, 4.0, 8.0, 16.0, 32.0)
VALIDATION_DOCUMENTS = 22  # 10% of the 219 training chapters
BATCH = _bert.LADDER[0]
SECTIONS = {  # each optimizer's section at batch 512 as printed (multiplier 1)
    "lamb": lambda: _bert.lamb_section(BATCH, "paper"),
    "lars": lambda: _bert.lars_section(BATCH, "paper"),
    "adamw": lambda: _bert.adamw_section(scale="paper"),  # Devlin et al.'s 1e-4, warmup 0.01
}


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
  if scale != "cpu":
    raise ValueError("bert_multipliers chooses the cpu scale's rate multiplier; at the paper "
                     "scale every rate is used as printed (run it at the cpu scale)")
  config = common.base_config(name="bert_multipliers", scale=scale)
  _bert.pretraining(config, scale, batch=BATCH)
  config.data.validation_documents = VALIDATION_DOCUMENTS
  variants = {}
  for name, section in SECTIONS.items():
    for multiplier in MULTIPLIERS:
      printed = section()
      variants[f"{name}_x{multiplier:g}"] = (
          ("optimizer", dict(printed, learning_rate=printed["learning_rate"] * multiplier)),
          ("learning_rate_multiplier", multiplier))
  config.optimizer = variants["lamb_x8"][0][1]
  config.learning_rate_multiplier = 8.0
  config.variants = tuple(variants.items())
  config.sweep = common.sweep(("variant", tuple(variants), ""))
  config.shrink_note += ("; evaluated on a validation split of the training novels; every "
                         "optimizer at multipliers " + ", ".join(f"x{m:g}" for m in MULTIPLIERS))
  return common.apply_options(config, options)
