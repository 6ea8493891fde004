"""The ImageNet figures, ResNet-50 (at cpu scale its Fashion-MNIST stand-in): Figure 1 (Appendix
D: N-LAMB and NN-LAMB against LAMB, Nadam and momentum at 32K), Figure 2 (Appendix E:
adam-correction against learning-rate warmup), Figure 3 (Appendix F: the trust-ratio norm), and
the batch ladders of Tables 3 and 5 and Section 4.2 (LAMB, momentum and LARS across batch sizes,
beside the paper's and the task's measured critical batch).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, NullFormatter

from analysis import critical_batch, reported, runs, select, stats
from analysis import vocabulary as vocab
from analysis.catalogue import E, IMAGENET_LADDERS
from analysis.figures.plot import (BAND, CELL, COLORS, LABEL, LEGEND, METRIC, SETTINGS, TITLE,
                                   NoData, _arm_label, _column, _curves_figure, _draw_entries,
                                   _entries, _finish, _legend, _missing_arm, _need_curves,
                                   _number, _title, _with_arm, _wrap)


# --- Figures 1-3: the ResNet-50 ablations -------------------------------------------------------

def _run_batch(frame, scale) -> str:
  batch = pd.to_numeric(_column(frame, "config.batch_size"), errors="coerce").dropna()
  return f", batch {batch.iloc[0]:g} here" if scale != "paper" and len(batch) else ""


def figure1(results_dir, scale):
  """Top-1 accuracy per epoch of each optimizer's chosen setting (Figure 1)."""
  frame = _with_arm(results_dir, E.FIGURE1, scale)
  label = _arm_label(E.FIGURE1, vocab.optimizer_label)
  entries = _missing_arm(_entries(frame, "config.optimizer.name", label,
                                  order=("lamb", "nlamb", "nnlamb", "nadam", "momentum")),
                         E.FIGURE1, label)
  _need_curves(entries, E.FIGURE1)
  title = ("Figure 1: N-LAMB and NN-LAMB against LAMB, Nadam and momentum (paper: "
           f"ImageNet/ResNet-50, batch 32K{_run_batch(frame, scale)})")
  fig, _ = _curves_figure(entries, title, scale, frame, "top-1 validation accuracy")
  return fig


FIGURE2_LABELS = {"correction_warmup": "adam-correction + warmup",
                  "correction_nowarmup": "adam-correction, no warmup",
                  "nocorrection_warmup": "no adam-correction, warmup",
                  "nocorrection_nowarmup": "no adam-correction, no warmup"}


def figure2(results_dir, scale):
  """Top-1 accuracy per epoch of LAMB with and without adam-correction and warmup (Figure 2)."""
  frame = _with_arm(results_dir, E.FIGURE2, scale)
  label = _arm_label(E.FIGURE2, lambda k: FIGURE2_LABELS.get(k, str(k)))
  entries = _missing_arm(_entries(frame, "config.variant", label, order=list(FIGURE2_LABELS)),
                         E.FIGURE2, label)
  _need_curves(entries, E.FIGURE2)
  fig, _ = _curves_figure(entries, "Figure 2: adam-correction acts like learning-rate warmup "
                          f"(LAMB, paper: batch 16K{_run_batch(frame, scale)})", scale, frame,
                          "top-1 validation accuracy")
  return fig


NORMS = {"l1": "L1", "l2": "L2", "linf": "L-infinity"}


def _norm_finals(entries, frame) -> list:
  """(label, [final accuracy of each seed], colour) of each norm's chosen setting."""
  choices = select.choose_each(frame, "config.optimizer.kwargs.norm", SETTINGS, METRIC)
  out = []
  for entry in entries:
    choice = choices.get(entry.key)
    values = list(choice.best.values.values()) if choice and choice.best is not None else []
    out.append((NORMS.get(entry.key, str(entry.key)), values, entry.color))
  return out


def figure3(results_dir, scale):
  """LAMB with an L1, L2 or L-infinity trust-ratio norm (Figure 3): accuracy per epoch, and the
  final accuracy of every seed."""
  frame = _with_arm(results_dir, E.FIGURE3, scale)
  label = _arm_label(E.FIGURE3, lambda k: NORMS.get(k, str(k)))
  entries = _missing_arm(_entries(frame, "config.optimizer.kwargs.norm", label,
                                  order=list(NORMS)), E.FIGURE3, label)
  _need_curves(entries, E.FIGURE3)
  fig, (ax, right) = plt.subplots(1, 2, figsize=(8.6, 3.9), width_ratios=(2.2, 1),
                                  layout="constrained")
  ax.set_xlabel(_draw_entries(ax, entries), fontsize=LABEL)
  ax.set_ylabel("top-1 validation accuracy", fontsize=LABEL)
  ax.grid(alpha=0.3)
  several = any(e.curve is not None and e.curve.seeds > 1 for e in entries)
  fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=3,
             fontsize=LEGEND, frameon=False, title=BAND if several else None,
             title_fontsize=LEGEND)
  for i, (label, values, color) in enumerate(_norm_finals(entries, frame)):
    right.scatter([i] * len(values), values, color=color, s=18, zorder=3)
    if values:
      right.hlines(np.mean(values), i - 0.25, i + 0.25, color=color, lw=2)
  right.set_xticks(range(len(entries)))
  right.set_xticklabels([NORMS.get(e.key, str(e.key)) for e in entries])
  right.set_xlim(-0.6, len(entries) - 0.4)
  right.set_ylabel("final top-1 accuracy\n(dots: seeds, bar: mean)", fontsize=LABEL)
  right.grid(alpha=0.3, axis="y")
  fig.suptitle(_title("Figure 3: the trust-ratio norm in LAMB (paper: batch 16K; the norms "
                      "differ by < 0.1 percentage point)", scale, frame, 8.6), fontsize=TITLE)
  return _finish(fig)


# --- the ImageNet batch ladders: LAMB, momentum and LARS across batch sizes --------------------

LADDER_SOURCES = IMAGENET_LADDERS  # (optimizer, experiments holding its rungs)


def _ladder_points(results_dir, scale, optimizer: str, experiments) -> list:
  """[(paper batch, {seed: accuracy}, status)] of one optimizer's rungs, smallest first."""
  frames = [runs.of_scale(results_dir, e, scale) for e in experiments]
  frame = pd.concat([f for f in frames if len(f)]) if any(len(f) for f in frames) else None
  if frame is None or "config.paper.batch_size" not in frame:
    return []
  frame = frame[_column(frame, "config.optimizer.name") == optimizer]
  points = []
  for batch, group in frame.groupby("config.paper.batch_size"):
    choice = select.choose(group, select.SETTINGS, METRIC)
    best = choice.best
    points.append((int(batch), dict(best.values) if best else {}, choice.status))
  return points


def _paper_ladders() -> dict:
  """The paper's ImageNet top-1 by optimizer: Table 5's LAMB, Table 3's momentum (Goyal et al.)
  and Section 4.2's LARS at 2K and 32K."""
  t5 = reported.load(5)
  t5 = t5[t5.metric == "top1_accuracy"]
  t3 = reported.load(3).set_index("optimizer")
  text = reported.figures().set_index("quantity").value
  return {"lamb": list(zip(t5.batch_size, t5.value)),
          "momentum": [(16384, float(t3.loc["Momentum", "value"]))],
          "lars": [(2048, text["lars_2k_top1_percent"] / 100),
                   (32768, text["lars_32k_top1_percent"] / 100)]}


def imagenet_ladders(results_dir, scale):
  """Final top-1 of LAMB, momentum and LARS at each ImageNet batch they run (Tables 3 and 5,
  Section 4.2), beside the paper's, with the task's measured critical batch."""
  measured = {o: _ladder_points(results_dir, scale, o, e) for o, e in LADDER_SOURCES}
  if not any(measured.values()):
    raise NoData(f"no runs of {E.TABLE5}, {E.TABLE3}, {E.MOMENTUM_LADDER} or {E.LARS_IMAGENET} "
                 f"record their paper batch (python experiments/run.py --config={E.TABLE5})")
  fig, (ax, right) = plt.subplots(1, 2, figsize=(8.6, 3.6), sharex=True, layout="constrained")
  for optimizer, points in measured.items():
    color, label = COLORS[optimizer], vocab.optimizer_label(optimizer)
    done = [(b, list(v.values())) for b, v, _ in points if v]
    for b, values in done:
      ax.scatter([b] * len(values), values, color=color, s=10, alpha=0.6, zorder=3)
    if done:
      ax.plot([b for b, _ in done], [np.mean(v) for _, v in done], color=color, marker="o",
              label=label)
    for b, values, status in points:
      if not values:
        ax.annotate(status, (b, 0.02), xycoords=("data", "axes fraction"), color=color,
                    fontsize=CELL, rotation=90, ha="center")
  frame = runs.of_scale(results_dir, E.TABLE5, scale)
  estimate = None
  if len(frame) and scale != "paper":
    table = critical_batch.measured(results_dir, scale)
    estimate = critical_batch.task_estimate(table, stats.task_key(frame.iloc[:1]).iloc[0]) \
        if len(table) else None
  if estimate is not None:  # B_simple in examples of the batch that runs, drawn in paper batches
    divisor = _number(frame["config.paper.batch_size"].iloc[0]) / \
        _number(frame["config.batch_size"].iloc[0])
    value, lo, hi = (x * divisor for x in estimate)
    ax.axvspan(max(lo, 1.0), hi, color="grey", alpha=0.15, lw=0)
    ax.axvline(value, color="grey", ls="--", lw=1,
               label=_wrap(f"critical batch B_simple (95%), x{divisor:g}"))
  for optimizer, points in _paper_ladders().items():
    right.plot(*zip(*points), color=COLORS[optimizer], marker="o",
               label=vocab.optimizer_label(optimizer))
  for a, what in ((ax, "measured final top-1 (dots: seeds, line: mean)"),
                  (right, "paper's top-1 (ImageNet, 90 epochs)")):
    a.set_xscale("log", base=2)
    a.xaxis.set_major_formatter(FuncFormatter(lambda x, _: vocab.batch_label(x)))
    a.xaxis.set_minor_formatter(NullFormatter())
    a.set_xlabel("batch size (paper's; this scale runs it / 64)" if a is ax and scale != "paper"
                 else "batch size", fontsize=LABEL)
    a.set_ylabel(_wrap(what, 34), fontsize=LABEL)
    a.grid(alpha=0.3)
  _legend(right)
  if ax.get_legend_handles_labels()[0]:
    ax.legend(fontsize=LEGEND, frameon=False, loc="lower left")
  fig.suptitle(_title("LAMB, momentum and LARS across ImageNet batch sizes (Tables 3 and 5, "
                      "Section 4.2)", scale, frame if len(frame) else None, 8.6), fontsize=TITLE)
  return _finish(fig)
