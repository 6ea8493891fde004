"""Tables 6 and 7 (Appendix G): the small-image comparisons of LAMB with Adam, AdamW, Adagrad and
momentum, each at its best setting of the paper's grid. Table 6 is CIFAR-10 with DavidNet
(`table6`, whose runs also draw Figures 4 and 5), Table 7 MNIST with LeNet-5 (`table7`).
"""
from __future__ import annotations

from analysis import reported, select
from analysis import vocabulary as vocab
from analysis.catalogue import E
from analysis.tables.render import Rendered, _notes, _rendered
from analysis.tables.rows import (ACCURACY, LR, OPTIMIZER, WD, _best_value, _choose, _frame,
                                  _of_choice, _paper, _runs_text, _where)


SELECTION_NOTE = ("The shown setting has the best mean over seeds among settings whose every run "
                  "completed (analysis.select); a setting with a diverged run ranks last, and one "
                  "with a run failed, unfinished or unreadable might be the best, so the cell shows "
                  "no number but names that run. Tuned on the split the table reports, as the "
                  "paper did.")


def table7(results_dir, scale: str) -> Rendered:
  paper = reported.load(7)
  frame = _frame(results_dir, E.TABLE7, scale)
  unplaced = select.unplaced(frame)
  rows = []
  for _, rep in paper.iterrows():
    group = _where(frame, OPTIMIZER, rep.optimizer.lower())
    choice = _choose(group, [LR], ACCURACY, unplaced)
    m = _of_choice(choice, _paper(rep))
    rows.append({"optimizer": vocab.optimizer_label(rep.optimizer.lower()),
                 "paper accuracy (avg of 5)": rep.value,
                 "measured accuracy (mean ± std over seeds)": m, "difference": m.difference,
                 "best lr": _best_value(choice, LR), "seeds": m.seeds,
                 "runs (diverged)": _runs_text(group)})
  batches = sorted(set(frame["config.batch_size"].dropna().astype(int))) \
      if "config.batch_size" in frame else []
  batches = ", ".join(map(str, batches or [1024]))
  notes = _notes(frame, scale, results_dir,
                 f"Test accuracy of LeNet-5 on MNIST, batch {batches}; learning rate tuned per "
                 "optimizer (best mean over seeds).") + [SELECTION_NOTE]
  return _rendered(7, f"Table 7: MNIST with LeNet-5 ({scale} scale)", rows, ["optimizer"],
                   frame, notes, scale)


def _setting_text(choice: select.Choice, with_decay: bool) -> str:
  if choice.best is None:
    return "-"
  text = f"lr {_best_value(choice, LR):g}"
  return text + (f", wd {_best_value(choice, WD):g}" if with_decay else "")


def table6(results_dir, scale: str) -> Rendered:
  paper = reported.load(6)
  frame = _frame(results_dir, E.TABLE6, scale)
  unplaced = select.unplaced(frame)
  rows = []
  for _, rep in paper.iterrows():
    key = rep.optimizer.lower()
    group = _where(frame, OPTIMIZER, key)
    choice = _choose(group, [LR, WD], ACCURACY, unplaced)
    m = _of_choice(choice, _paper(rep))
    rows.append({"optimizer": vocab.optimizer_label(key), "paper test accuracy": rep.value,
                 "measured (best setting)": m, "difference": m.difference,
                 "best setting": _setting_text(choice, key == "adamw"),
                 "runs (diverged)": _runs_text(group)})
  notes = _notes(frame, scale, results_dir,
                 "Test accuracy of DavidNet at batch 512, each optimizer at its best learning rate "
                 "(AdamW: and weight decay) of the paper's grid.") + [SELECTION_NOTE]
  return _rendered(6, f"Table 6: CIFAR-10 with DavidNet ({scale} scale)", rows, ["optimizer"],
                   frame, notes, scale)
