"""The ImageNet tables, ResNet-50 (at cpu scale its Fashion-MNIST stand-in): Table 3 (Section
4.2: the optimizers at batch 16K, each at its tuned setting), Table 5 (untuned LAMB across the
batch ladder, 512 to 32K) and Tables 9-25 (Appendix H.1: the tuning grids of Adagrad, Adam and
AdamW, every printed learning rate and weight decay beside its run).
"""
from __future__ import annotations

import pandas as pd

from analysis import reported, runs, select
from analysis import vocabulary as vocab
from analysis.catalogue import E, TUNING_GRID
from analysis.tables.render import Rendered, _notes, _rendered
from analysis.tables.rows import (ACCURACY, LR, WD, _batch_order, _choose, _close, _first, _frame,
                                  _int_or_dash, _left_out, _of_choice, _paper, _where)


def table3(results_dir, scale: str) -> Rendered:
  paper = reported.load(3)
  frame = _frame(results_dir, E.TABLE3, scale)
  unplaced = select.unplaced(frame)
  rows = []
  for _, rep in paper.iterrows():
    group = _where(frame, "config.variant", rep.optimizer.lower())
    m = _of_choice(_choose(group, [], ACCURACY, unplaced), _paper(rep))
    rows.append({"optimizer": rep.optimizer, "paper top-1": rep.value,
                 "measured top-1 (mean ± std over seeds)": m, "difference": m.difference,
                 "runs": len(group)})
  notes = _notes(frame, scale, results_dir,
                 "Top-1 accuracy of ResNet-50 at batch 16K (cpu scale: 256), each optimizer at its "
                 "tuned setting; + = Goyal et al.'s learning-rate recipe.")
  return _rendered(3, f"Table 3: ImageNet with ResNet-50 ({scale} scale)", rows, ["optimizer"],
                   frame, notes, scale)


def table5(results_dir, scale: str) -> Rendered:
  paper = reported.load(5)
  frame, stale = runs.recorded_rows(_frame(results_dir, E.TABLE5, scale))
  unplaced = select.unplaced(frame)
  at_scale = runs.rows_at_scale(frame)
  rows = []
  for _, rep in paper.groupby("batch_size", sort=True):
    label = rep.batch_size_text.iloc[0]
    group = _where(frame, "config.variant", label)
    record = lambda metric: rep[rep.metric == metric].iloc[0]
    if at_scale is not None and label not in at_scale and not len(group):
      top1, top5 = (_left_out(_paper(record(m))) for m in ("top1_accuracy", "top5_accuracy"))
    else:
      top1 = _of_choice(_choose(group, [], ACCURACY, unplaced), _paper(record("top1_accuracy")))
      top5 = _of_choice(_choose(group, [], "final.top5_accuracy", unplaced),
                        _paper(record("top5_accuracy")))
    rows.append({"batch (paper)": label,
                 "batch run": _int_or_dash(_first(group, "config.batch_size")),
                 "learning rate": record("learning_rate").value,
                 "warmup epochs": record("warmup_epochs").value,
                 "paper top-1": top1.reported, "measured top-1": top1,
                 "difference": top1.difference, "paper top-5": top5.reported,
                 "measured top-5": top5})
  notes = _notes(frame, scale, results_dir,
                 "Untuned LAMB across the batch ladder: square-root learning-rate scaling and "
                 "linear-epoch warmup (cpu scale: batches / 64, warmup as the same fraction)." +
                 (f" This scale runs the rows {', '.join(sorted(at_scale, key=_batch_order))}; "
                  f"'{vocab.NOT_AT_SCALE}' marks the others." if at_scale else "") +
                 (f" Set aside, as runs of an older config: {', '.join(stale)}." if stale else ""))
  return _rendered(5, f"Table 5: LAMB's batch ladder on ImageNet/ResNet-50 ({scale} scale)",
                   rows, ["batch (paper)"], frame, notes, scale)


def _grid_row(rep, group: pd.DataFrame, unplaced: list) -> dict:
  """One printed row of a tuning grid: its setting as printed beside its runs."""
  m = _of_choice(_choose(group, [], ACCURACY, unplaced), _paper(rep))
  row = {"learning rate": rep.learning_rate_text}
  if pd.notna(rep.get("weight_decay_text")):
    row["weight decay"] = rep.weight_decay_text
  if pd.notna(rep.get("l2_regularization")):
    row["L2 regularization"] = rep.l2_regularization
  row.update({"paper top-1": rep.value if rep.status == "ok" else rep.status,
              "measured top-1": m, "difference": m.difference})
  if isinstance(rep.get("note"), str) and rep.note:
    row["note"] = rep.note
  return row


def tuning_grid(table: int):
  """Tables 9-25: every printed row (learning rate, weight decay, L2) beside its run."""
  def render(results_dir, scale: str) -> Rendered:
    paper = reported.load(table)
    paper = paper[paper.metric == "top1_accuracy"]
    frame = _frame(results_dir, TUNING_GRID[table], scale)
    unplaced = select.unplaced(frame)
    rows = []
    for _, rep in paper.iterrows():
      matches = _close(frame, LR, rep.learning_rate)
      if pd.notna(rep.get("weight_decay")):
        matches &= _close(frame, WD, rep.weight_decay)
      rows.append(_grid_row(rep, frame[matches], unplaced))
    optimizer = paper.optimizer.iloc[0]
    notes = _notes(frame, scale, results_dir,
                   f"Appendix H.1 tuning grid of {optimizer} for ResNet-50 at batch 16K (cpu "
                   "scale: 256), every printed row.")
    return _rendered(table, f"Table {table}: {optimizer} tuning ({scale} scale)", rows,
                     ["learning rate", "weight decay", "L2 regularization"], frame, notes, scale)
  return render
