"""Figures 4 and 5 (Appendix G): the Table 6 optimizers on CIFAR-10 with DavidNet, drawn from
Table 6's runs. Figure 4 is each optimizer's test accuracy per epoch at its best setting, with
the paper's final accuracy beside it; Figure 5 is validation loss against accuracy of every run.
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from analysis import reported
from analysis import vocabulary as vocab
from analysis.catalogue import E
from analysis.figures.plot import (BAND, CURVES, LABEL, METRIC, TITLE, NoData, _color, _column,
                                   _draw_entries, _entries, _finish, _frame, _legend,
                                   _need_curves, _title, _wrap)


def _paper_finals(entries, ax) -> None:
  """A star at the right end for each optimizer's final accuracy in the paper's Table 6."""
  paper = reported.load(6)
  paper = dict(zip(paper["optimizer"], paper["value"]))
  xs = np.concatenate([e.curve.x for e in entries if e.curve is not None])
  right, step = xs.max(), 0.03 * (xs.max() - xs.min() or 1.0)
  drawn = False
  for k, entry in enumerate(entries):
    value = paper.get(vocab.optimizer_label(entry.key))
    if value is not None and math.isfinite(value):
      ax.plot([right + step * (k + 1)], [value], marker="*", ms=10, ls="none", color=entry.color,
              markeredgecolor="white", markeredgewidth=0.5, clip_on=False, zorder=4)
      drawn = True
  if drawn:
    ax.plot([], [], marker="*", ms=10, ls="none", color="grey",
            label=_wrap("paper's final accuracy (CIFAR-10, 24 epochs), in the optimizer's colour"))


def figure4(results_dir, scale):
  """Test accuracy at every evaluation of each Table 6 optimizer's chosen setting (Figure 4)."""
  frame = _frame(results_dir, E.TABLE6, scale)
  entries = _entries(frame, "config.optimizer.name", vocab.optimizer_label,
                     order=("lamb", "adamw", "adam", "adagrad", "momentum"))
  _need_curves(entries, E.TABLE6)
  fig, ax = plt.subplots(figsize=CURVES, layout="constrained")
  ax.set_xlabel(_draw_entries(ax, entries, marker="o") + " (a marker at every evaluation)",
                fontsize=LABEL)
  _paper_finals(entries, ax)
  ax.set_ylabel("test accuracy", fontsize=LABEL)
  ax.grid(alpha=0.3)
  several = any(e.curve is not None and e.curve.seeds > 1 for e in entries)
  _legend(ax, title=BAND if several else None)
  ax.set_title(_title("Figure 4: test accuracy of the Table 6 optimizers, each at its best "
                      "setting (paper: CIFAR-10 / DavidNet)", scale, frame, 5.3), fontsize=TITLE)
  return _finish(fig)


def _loss_cap(done: pd.DataFrame) -> tuple:
  """The largest validation loss drawn on the axis: 10x chance (ln classes) for a classifier,
  else 10x the median. A larger loss belongs to a run stuck with absurd logits; it goes to the
  off-scale strip rather than stretching the axis over decades."""
  chance = pd.to_numeric(_column(done, "chance_loss"), errors="coerce").dropna()
  if len(chance):
    return 10 * chance.median(), "10x chance"
  return 10 * done["_loss"].median(), "10x the median"


def _table6_points(frame):
  frame = frame.assign(_loss=pd.to_numeric(_column(frame, "final.loss"), errors="coerce"),
                       _acc=pd.to_numeric(_column(frame, METRIC), errors="coerce"))
  finite = np.isfinite(frame["_loss"]) & np.isfinite(frame["_acc"])
  done = frame[(frame["status"] == vocab.COMPLETED) & finite]
  diverged = frame[frame["status"] == vocab.DIVERGED]
  return done, diverged


def _scatter_groups(ax, points, x, marker, colors, **kw):
  for name, group in points.groupby("config.optimizer.name", sort=False):
    ax.scatter(x(group), group["_acc"], marker=marker, color=colors[name], **kw)


def _off_scale(strip, off, diverged, cap, colors) -> None:
  """The strip right of the axis: completed runs with a loss above the cap, and diverged runs,
  at their accuracy (x jittered so that equal accuracies stay visible)."""
  rng = np.random.default_rng(0)
  jitter = lambda g, at: at + rng.uniform(-0.25, 0.25, len(g))
  _scatter_groups(strip, off, lambda g: jitter(g, 0), ">", colors, s=14, alpha=0.7)
  shown = diverged[np.isfinite(diverged["_acc"])]
  _scatter_groups(strip, shown, lambda g: jitter(g, 1), "x", colors, s=14, alpha=0.7)
  strip.set_xticks([0, 1])
  strip.set_xticklabels([f"loss\n> {cap:.3g}", "diverged"])
  strip.set_xlim(-0.6, 1.6)
  strip.tick_params(axis="y", labelleft=False)
  strip.grid(alpha=0.3, axis="y")
  strip.set_title("off scale", fontsize=LABEL)


def figure5(results_dir, scale):
  """Validation loss against validation accuracy of every Table 6 run (Figure 5): completed runs
  on the axis, absurd losses and diverged runs in a strip beside it."""
  frame = _frame(results_dir, E.TABLE6, scale)
  frame = frame.assign(**{"config.optimizer.name": _column(frame, "config.optimizer.name")
                          .fillna("?")})
  done, diverged = _table6_points(frame)
  if not len(done):
    raise NoData(f"no completed {E.TABLE6} run with a final loss and accuracy "
                 f"({len(diverged)} diverged of {len(frame)})")
  names = list(dict.fromkeys(frame["config.optimizer.name"]))
  colors = {n: _color(n, i) for i, n in enumerate(names)}
  cap, why = _loss_cap(done)
  inside, off = done[done["_loss"] <= cap], done[done["_loss"] > cap]
  fig, (ax, strip) = plt.subplots(1, 2, figsize=(8.4, 3.6), sharey=True, width_ratios=(4, 1.4),
                                  layout="constrained")
  _scatter_groups(ax, inside, lambda g: g["_loss"], "o", colors, s=14, alpha=0.8)
  _off_scale(strip, off, diverged, cap, colors)
  ax.set_xscale("log")
  ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
  ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
  ax.xaxis.set_minor_formatter(NullFormatter())
  ax.set_xlabel("final validation loss (log scale)", fontsize=LABEL)
  ax.set_ylabel("final validation accuracy", fontsize=LABEL)
  ax.grid(alpha=0.3, which="both")
  _figure5_legend(strip, names, colors, len(inside), off, diverged, f"{cap:.3g} ({why})")
  fig.suptitle(_title("Figure 5: a lower validation loss does not mean a higher accuracy "
                      "(every Table 6 run; paper: CIFAR-10 / DavidNet)", scale, frame, 9.5),
               fontsize=TITLE)
  return _finish(fig)


def _figure5_legend(strip, names, colors, n_inside, off, diverged, cap) -> None:
  handles = [Line2D([], [], marker="o", ls="none", color=colors[n], label=vocab.optimizer_label(n))
             for n in names if n != "?"]
  no_acc = int((~np.isfinite(diverged["_acc"])).sum())
  handles += [Line2D([], [], marker="o", ls="none", color="grey",
                     label=f"completed, on the axis ({n_inside})"),
              Line2D([], [], marker=">", ls="none", color="grey",
                     label=_wrap(f"completed, validation loss > {cap}: {len(off)}", 36)),
              Line2D([], [], marker="x", ls="none", color="grey",
                     label=_wrap(f"diverged: {len(diverged)}" + (
                         f" ({no_acc} without a final evaluation, not shown)" if no_acc
                         else ""), 36))]
  _legend(strip, handles=handles)
