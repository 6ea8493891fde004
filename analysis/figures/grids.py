"""Tables 9-25 (Appendix H.1) as heat maps: each ImageNet tuning grid of Adagrad, Adam and AdamW,
the paper's accuracies above the measured ones over the same learning rates and weight decays,
diverged and unfinished cells marked rather than coloured.
"""
from __future__ import annotations

import math
from typing import Callable

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle

from analysis import reported, select
from analysis import vocabulary as vocab
from analysis.catalogue import TUNING_GRID
from analysis.figures.plot import (CELL, LABEL, METRIC, SETTINGS, TITLE, NoData, _column,
                                   _finish, _frame, _number, _title)


GRID_TABLES = tuple(TUNING_GRID)  # the numbers of the tables that print a tuning grid
_SHORT_STATUS = {vocab.DIVERGED: "div", vocab.FAILED: "fail", vocab.INCOMPLETE: "inc",
                 vocab.UNREADABLE: "unr", vocab.MISPLACED: "mis", vocab.RENAMED: "ren",
                 vocab.DUPLICATE: "dup", vocab.EDITED: "edit"}


def _axis_values(rep_values, run_values) -> list:
  """The distinct finite values of both sides, sorted; numbers within 1e-6 relative count once."""
  out = []
  values = [_number(v) for v in list(rep_values) + list(run_values)]
  for v in sorted(v for v in values if math.isfinite(v)):
    if not out or not math.isclose(v, out[-1], rel_tol=1e-6):
      out.append(v)
  return out


def _grid_axes(rep: pd.DataFrame, measured: pd.DataFrame) -> tuple:
  """(learning rates, weight decays or [None]) of a grid: the paper's and the measured ones."""
  run_lr = _column(measured, "config.optimizer.learning_rate")
  lrs = _axis_values(rep["learning_rate"].dropna(), pd.to_numeric(run_lr, errors="coerce"))
  rep_wd = rep["weight_decay"].dropna() if "weight_decay" in rep else pd.Series(dtype=float)
  if not len(rep_wd):
    return lrs, [None]  # the paper's grid has no weight-decay axis: the measured rows pool
  run_wd = pd.to_numeric(_column(measured, "config.optimizer.weight_decay"), errors="coerce")
  return lrs, _axis_values(rep_wd, run_wd)[::-1]


def _at(frame, lr_col, wd_col, lr, wd):
  lr_values = pd.to_numeric(_column(frame, lr_col), errors="coerce").to_numpy(float)
  keep = np.isclose(lr_values, lr, rtol=1e-6, atol=0)
  if wd is not None:
    wd_values = pd.to_numeric(_column(frame, wd_col), errors="coerce").to_numpy(float)
    keep &= np.isclose(wd_values, wd, rtol=1e-6, atol=0)
  return frame[keep]


def _paper_cells(rep, lrs, wds) -> tuple:
  """(values, cell texts, footnotes) of the paper's grid; a setting printed twice shows its
  first value with '*' and both in a footnote."""
  values = np.full((len(wds), len(lrs)), np.nan)
  texts = np.full(values.shape, "", dtype=object)
  notes = []
  for (i, wd), (j, lr) in ((a, b) for a in enumerate(wds) for b in enumerate(lrs)):
    cell = _at(rep, "learning_rate", "weight_decay", lr, wd)
    if not len(cell):
      continue
    first = cell.iloc[0]
    if str(first["status"]) != "ok":
      texts[i, j] = "div"
      continue
    values[i, j] = first["value"]
    texts[i, j] = f"{first['value']:.3f}" + ("*" if len(cell) > 1 else "")
    if len(cell) > 1:
      notes.append(f"* lr {lr:g} printed {len(cell)} times: "
                   + " and ".join(f"{v:.3g}" for v in cell["value"]))
  return values, texts, notes


def _measured_cells(measured, lrs, wds) -> tuple:
  """(values, cell texts, most seeds in a cell) of the measured grid: each cell is the mean over
  its complete seeds (`select.choose`); diverged and unfinished cells say so, blank = not run."""
  values = np.full((len(wds), len(lrs)), np.nan)
  texts = np.full(values.shape, "", dtype=object)
  seeds = 0
  for (i, wd), (j, lr) in ((a, b) for a in enumerate(wds) for b in enumerate(lrs)):
    cell = _at(measured, "config.optimizer.learning_rate", "config.optimizer.weight_decay", lr, wd)
    choice = select.choose(cell, SETTINGS[1:], METRIC)  # pooled rows: the best weight decay
    if choice.best is not None:
      values[i, j] = choice.best.mean
      texts[i, j] = f"{choice.best.mean:.3f}"
      seeds = max(seeds, choice.best.seeds)
    elif choice.status != vocab.NOT_RUN:
      texts[i, j] = _SHORT_STATUS.get(choice.status, choice.status[:4])
  return values, texts, seeds


def _draw_cells(ax, values, texts, lrs, wds, cell_pt: float):
  """A heat map with the value in each cell (when it fits) and diverged cells hatched."""
  image = ax.imshow(values, aspect="auto", vmin=0, vmax=1, cmap="viridis",
                    interpolation="nearest")
  for (i, j), text in np.ndenumerate(texts):
    if not text:
      continue
    if text in _SHORT_STATUS.values():
      ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="0.9", edgecolor="0.45",
                             hatch="xxx" if text == "div" else "...", lw=0))
    fits = 0.62 * CELL * len(text) <= cell_pt
    if fits:
      dark = math.isfinite(values[i, j]) and values[i, j] < 0.55
      box = {"facecolor": "white", "edgecolor": "none", "pad": 1} if not dark and \
          text in _SHORT_STATUS.values() else None
      ax.text(j, i, text, ha="center", va="center", fontsize=CELL,
              color="white" if dark else "black", bbox=box)
  ax.set_yticks(range(len(wds)) if wds != [None] else [])
  ax.set_yticklabels([f"{w:g}" for w in wds] if wds != [None] else [])
  ax.set_xticks(range(len(lrs)))
  ax.set_xticks(np.arange(-0.5, len(lrs)), minor=True)
  ax.set_yticks(np.arange(-0.5, len(wds)), minor=True)
  ax.grid(which="minor", color="white", lw=1.0)
  ax.tick_params(which="minor", length=0)
  return image


_STATUS_WORDS = {"div": "diverged", "fail": "failed", "inc": "still running or stopped",
                 "unr": "unreadable"}


def _cell_key(*texts) -> str:
  """What the marks in the cells mean: 'div' always (hatched), the others when present."""
  present = {t for grid in texts for t in grid.ravel()}
  marks = [f"'{m}': {w}" for m, w in _STATUS_WORDS.items() if m == "div" or m in present]
  return "hatched " + ", ".join(marks) + "; blank: not run"


def _grid_caption(table: int, rep: pd.DataFrame) -> str:
  caption = reported.tables()
  caption = caption[caption["table"] == table]["caption_short"]
  return f"Table {table}: " + (caption.iloc[0] if len(caption) else str(rep["optimizer"].iloc[0]))


def _grid(table: int, results_dir, scale):
  rep = reported.load(table)
  rep = rep[rep["metric"] == "top1_accuracy"]
  try:
    measured = _frame(results_dir, TUNING_GRID[table], scale)
  except NoData as e:
    raise NoData(f"{e}; the paper's grid alone is in the report's Table {table}") from None
  lrs, wds = _grid_axes(rep, measured)
  width = max(6.5, 0.4 * len(lrs) + 2.4)
  axes_in = width - 2.4
  fig, (top, bottom) = plt.subplots(2, 1, figsize=(width, 0.9 * len(wds) + 2.2), sharex=True,
                                    layout="constrained")
  paper_values, paper_texts, notes = _paper_cells(rep, lrs, wds)
  run_values, run_texts, seeds = _measured_cells(measured, lrs, wds)
  cell_pt = 72 * axes_in / max(1, len(lrs))
  image = _draw_cells(top, paper_values, paper_texts, lrs, wds, cell_pt)
  _draw_cells(bottom, run_values, run_texts, lrs, wds, cell_pt)
  top.set_title("paper (ImageNet / ResNet-50, batch 16K, 90 epochs)", fontsize=LABEL, loc="left")
  per_cell = f", mean of up to {seeds} seeds per cell" if seeds > 1 else ""
  lost = int(pd.to_numeric(_column(measured, "config.optimizer.learning_rate"),
                           errors="coerce").isna().sum())  # e.g. an unreadable config.json
  lost = f"; {lost} runs without a learning rate (unreadable?) not placed" if lost else ""
  bottom.set_title(f"measured ({scale} scale{per_cell}{lost})", fontsize=LABEL, loc="left")
  bottom.set_xticklabels([f"{lr:g}" for lr in lrs], rotation=45, ha="right",
                         rotation_mode="anchor")
  bottom.set_xlabel("learning rate;  " + _cell_key(paper_texts, run_texts)
                    + ("\n" + "; ".join(notes) if notes else ""), fontsize=LABEL)
  for ax in (top, bottom):
    ax.set_ylabel("weight decay" if wds != [None] else "", fontsize=LABEL)
  fig.colorbar(image, ax=[top, bottom], label="top-1 accuracy", pad=0.01, fraction=0.04)
  fig.suptitle(_title(_grid_caption(table, rep), scale, measured, width), fontsize=TITLE)
  return _finish(fig)


def _grid_figure(table: int) -> Callable:
  def draw(results_dir, scale):
    return _grid(table, results_dir, scale)
  draw.__name__ = f"table{table}_grid"
  draw.__doc__ = f"Table {table}'s tuning grid as a heat map: the paper's above the measured."
  return draw
