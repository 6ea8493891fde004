"""The words every analysis module shares: run statuses, verdicts, optimizer and batch labels.

Run statuses are the runner's own (`lamb.train.results`) plus those only analysis can see: a
run folder without a summary (`incomplete`), one whose files cannot be read (`unreadable`), one
copied into another experiment's folder (`misplaced`), one whose folder is not named as its
summary names the run (`renamed`), one of several folders holding the same run (`duplicate`),
one whose records disagree with its summary or whose config changed after it ran (`edited`;
`analysis.join` decides these four), and a run that does not exist (`not run`). `diverged`
covers what the paper calls diverged: a non-finite value (the runner stops there), a training
loss that ends above where it started or above the chance level, or (from rule set v2) a run
that ends at the chance level after a spike in its loss or after it had left chance
(`analysis.runs` decides it under a rule set; the runner's own word stays in `runner_status`).
"""
from __future__ import annotations

from lamb.train.results import COMPLETED, DIVERGED, FAILED  # no jax: file formats only

INCOMPLETE, UNREADABLE, NOT_RUN = "incomplete", "unreadable", "not run"
MISPLACED = "misplaced"  # its own files name another experiment or scale than its folder
RENAMED = "renamed"      # its folder name is not the run its summary.json records
DUPLICATE = "duplicate"  # another folder of its experiment and scale holds the same run
EDITED = "edited"        # its summary disagrees with its own records, or its config changed
# A paper row this scale's config leaves out (its runs record `paper.rows_at_scale`).
NOT_AT_SCALE = "not at this scale"
STATUSES = (COMPLETED, DIVERGED, FAILED, INCOMPLETE, UNREADABLE, MISPLACED, RENAMED, DUPLICATE,
            EDITED)
# What keeps a run out of every choice (it may have been the best): named wherever it counts.
BLOCKING = (UNREADABLE, MISPLACED, RENAMED, DUPLICATE, EDITED, FAILED, INCOMPLETE)

# Verdicts on a claim of the paper (analysis.claims).
HELD, NOT_HELD, INCONCLUSIVE = "held", "not held", "inconclusive"
NOT_TESTABLE = "not testable at this scale"
VERDICTS = (HELD, NOT_HELD, INCONCLUSIVE, NOT_TESTABLE, NOT_RUN)

OPTIMIZER_LABELS = {"momentum": "Momentum", "adagrad": "Adagrad", "adam": "Adam",
                    "adamw": "AdamW", "lamb": "LAMB", "lars": "LARS", "nlamb": "N-LAMB",
                    "nnlamb": "NN-LAMB", "nadam": "Nadam", "adagrad+": "Adagrad+",
                    "adam+": "Adam+", "adamw+": "AdamW+"}


def optimizer_label(name) -> str:
  return OPTIMIZER_LABELS.get(str(name), str(name))


def batch_label(batch) -> str:
  """The paper's way of printing a batch size: 512, 1K, ..., 32K (K = 1024)."""
  batch = int(batch)
  return f"{batch // 1024}K" if batch >= 1024 and batch % 1024 == 0 else str(batch)
