"""LAMB's rate at the BERT ladder's top rung: does 32K sit at the unigram guess for its rate?

Table 4's cpu ladder runs LAMB at 32K with the multiplier chosen at 4K (`ladder_multipliers`,
x8) carried up by the paper's square-root rule, and all three seeds end at the unigram guess
after 256 steps, while 4K leaves that plateau after about 150 of its 2,048 (claim 1, not held).
This grid asks whether a smaller or larger rate at 32K would have left it: LAMB at 32K, x2 to
x16 of the printed rate (the ladder runs x8), one seed, evaluated on the validation split of the
training novels (`data.validation_documents`), never on the reported novel. It is a diagnosis
beside claim 1, not a re-tuning of it: the claim is about the untuned ladder.

cpu scale only: at the paper scale every rate is used as printed.
"""
from experiments.configs import ladder_multipliers

CPU_ONLY = True
BATCH = 32768
MULTIPLIERS = {"lamb": (2.0, 4.0, 8.0, 16.0)}


def get_config(arg: str = "cpu"):
  return ladder_multipliers.grid("top_rung_multipliers", BATCH, MULTIPLIERS, arg)
