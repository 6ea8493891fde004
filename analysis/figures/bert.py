"""Figures 6 and 7 (Appendix H.0.1): BERT pre-training loss. Figure 6 is LAMB's training loss
over the batch ladder (Table 4's runs), Figure 7 the 64K/32K mixed-batch run with its switch to
the second phase marked.
"""
from __future__ import annotations

from typing import Optional

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis import runs
from analysis import vocabulary as vocab
from analysis.catalogue import E
from analysis.figures.plot import (CURVES, LABEL, TITLE, NoData, _column, _curve, _draw_curve,
                                   _finish, _frame, _legend, _records, _title, _wrap)
from lamb.train import results as result_files  # file formats only: no jax


def _loss_limits(ax, curves: list, diverged: list) -> None:
  """The y range of the finished curves; a diverged curve may leave it (its blow-up is marked in
  the legend, not drawn at full height)."""
  shown = curves or diverged
  lo = min(float(np.nanmin(c.mean)) for c in shown)
  hi = max(float(np.nanmax(c.mean)) for c in curves) if curves else \
      1.5 * max(float(c.mean[0]) for c in diverged)
  pad = 0.05 * (hi - lo if hi > lo else abs(hi) or 1.0)
  ax.set_ylim(lo - pad, hi + pad)


def _ladder(frame) -> list:
  """(label, completed runs, diverged runs) per batch size of the ladder, smallest first."""
  frame = frame.assign(_batch=pd.to_numeric(_column(frame, "config.batch_size"), errors="coerce"))
  out = []
  for batch, group in frame.groupby("_batch", sort=True):
    variant = _column(group, "config.variant").dropna()
    name = str(variant.iloc[0]) if len(variant) else vocab.batch_label(batch)
    out.append((f"{name} (batch {batch:g} here)", group[group["status"] == vocab.COMPLETED],
                group[group["status"] == vocab.DIVERGED]))
  return out


def figure6(results_dir, scale):
  """Training loss against the fraction of training, one curve per batch of the ladder: Table
  4's runs (`figure6` is Table 4's sweep; a figure6 folder of an older layout is read when Table
  4 has none), runs of an older config beside the ladder's set aside."""
  try:
    frame, source = _frame(results_dir, E.TABLE4, scale), E.TABLE4
  except NoData:
    frame, source = _frame(results_dir, E.FIGURE6, scale), E.FIGURE6
  frame = runs.recorded_rows(frame)[0]
  plotted = []
  for i, (label, done, diverged) in enumerate(_ladder(frame)):
    for runs_, ls, note in ((done, "-", ""), (diverged, "--", ", diverged")):
      curve = _curve(runs_, "train", "loss", "fraction", smooth=True) if len(runs_) else None
      if curve is not None:
        plotted.append((curve, f"{label}{note}", f"C{i % 10}", ls, bool(note)))
  if not plotted:
    raise NoData(f"no {source} run with training losses")
  fig, ax = plt.subplots(figsize=CURVES, layout="constrained")
  for curve, label, color, ls, _ in plotted:
    window = f", rolling mean of {curve.window} steps" if curve.window > 1 else ""
    _draw_curve(ax, curve, label + window, color, marker=None, ls=ls)
  _loss_limits(ax, [p[0] for p in plotted if not p[4]], [p[0] for p in plotted if p[4]])
  ax.set_xlabel("fraction of training (step / total steps)", fontsize=LABEL)
  ax.set_ylabel("training loss (masked LM + NSP), rolling mean", fontsize=LABEL)
  ax.grid(alpha=0.3)
  _legend(ax)
  ax.set_title(_title(f"Figure 6: LAMB's BERT pre-training loss across batch sizes ({source} "
                      "runs)", scale, frame, 5.3), fontsize=TITLE)
  return _finish(fig)


def _phase_switch(path) -> Optional[float]:
  """The first training step of the second phase, None for a one-phase run."""
  try:
    m = runs.metrics(path)
  except (result_files.UnreadableError, OSError):
    return None
  if "phase" not in m or "split" not in m:
    return None
  train = m[m["split"] == "train"]
  switch = train[train["phase"] != train["phase"].iloc[0]]["step"].min() if len(train) else None
  return float(switch) if pd.notna(switch) else None


def figure7(results_dir, scale):
  """The mixed-batch run's training loss, with the phase switch marked (Figure 7)."""
  frame = runs.mixed_curve(runs.of_scale(results_dir, E.FIGURE7, scale),
                           runs.of_scale(results_dir, E.MIXED_BATCH, scale))
  if not len(frame):
    _frame(results_dir, E.FIGURE7, scale)  # names the command that makes the run
  frame = frame[frame["status"].isin([vocab.COMPLETED, vocab.DIVERGED])]
  if not len(frame):
    raise NoData(f"no finished {E.FIGURE7} run, and no finished re-warm-up run of "
                 f"{E.MIXED_BATCH}")
  row = frame.iloc[0]
  loss = _records(row["path"], "train", "loss")
  if not len(loss):
    raise NoData(f"no training losses in {row['path']}")
  fig, ax = plt.subplots(figsize=CURVES, layout="constrained")
  diverged = row["status"] == vocab.DIVERGED
  ax.plot(loss.index, loss.to_numpy(), lw=1.0, marker="." if len(loss) < 60 else None,
          label=_wrap("training loss" + (f" (diverged: {row['diverged_because']})"
                                         if diverged else "")))
  if diverged:  # the blow-up leaves the axis rather than flattening the rest of the curve
    ax.set_ylim(top=1.5 * float(loss.iloc[0]))
  phase = _phase_switch(row["path"])
  if phase is not None:
    ax.axvline(phase, ls="--", color="grey", label=_wrap(
        "phase 2: longer sequences, smaller batch, learning rate re-warmed"))
  ax.set_xlabel("step", fontsize=LABEL)
  ax.set_ylabel("training loss (masked LM + next sentence)", fontsize=LABEL)
  ax.grid(alpha=0.3)
  _legend(ax)
  ax.set_title(_title("Figure 7: LAMB's mixed-batch BERT pre-training", scale, frame, 5.3),
               fontsize=TITLE)
  return _finish(fig)
