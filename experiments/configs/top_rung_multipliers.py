"""Each optimizer's rate at the BERT ladder's top rung (32K), chosen with one budget.

Table 4's cpu ladder runs LAMB at 32K with the multiplier chosen at 4K (`ladder_multipliers`,
x8) carried up by the paper's square-root rule, and all three seeds end at the unigram guess
after 256 steps, while 4K leaves that plateau after about 150 of its 2,048 (claim 1, not held).
This grid chooses at 32K instead: LAMB at x2 to x16 of Table 4's rate there (the ladder runs
x8), and BERT's AdamW at x2 to x16 of Devlin et al.'s 1e-4 on the same schedule (the same
number of settings), one seed each, evaluated on the validation split of the training novels
(`data.validation_documents`), never on the reported novel. The choices (`_bert.top_multiplier`,
checked against these runs by a test) are what the mixed batch, whose phase 1 runs this batch
and rule, and Nado et al.'s test (`nado_bert`) run. Claim 1 stays about the untuned ladder.

cpu scale only: at the paper scale every rate is used as printed.
"""
from experiments.configs import ladder_multipliers

CPU_ONLY = True
BATCH = 32768
MULTIPLIERS = {"lamb": (2.0, 4.0, 8.0, 16.0), "adamw": (2.0, 4.0, 8.0, 16.0)}


def get_config(arg: str = "cpu"):
  return ladder_multipliers.grid("top_rung_multipliers", BATCH, MULTIPLIERS, arg)
