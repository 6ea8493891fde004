"""Every figure of the paper, redrawn from `results/` (and its reported numbers), as PNG and PDF.

    python -m analysis.figures <name|grids|all> [--results_dir results] [--scale cpu|paper]
                               [--out_dir DIR] [--dpi N]

This file owns the drawing only. Runs, their status and divergence come from `analysis.runs`, the
setting a curve shows from `analysis.select` (best mean over complete seeds; a diverged setting
ranks last), labels from `analysis.vocabulary`, the paper's numbers from `analysis.reported`.

    trust_ratio                 Figures 9-14  LAMB's per-layer trust ratios at six iterations
    figure1                     Figure 1      N-LAMB and NN-LAMB against LAMB, Nadam and momentum
    figure2                     Figure 2      adam-correction acts like learning-rate warmup
    figure3                     Figure 3      the trust-ratio norm: L1, L2, L-infinity
    figure4                     Figure 4      test accuracy per epoch of the Table 6 optimizers
    figure5                     Figure 5      validation loss against accuracy, every Table 6 run
    figure6                     Figure 6      BERT pre-training loss across batch sizes
    figure7                     Figure 7      mixed-batch BERT pre-training loss
    figure8                     Figure 8      scaling efficiency (paper's Table 1 times, cost model)
    imagenet_ladders            Tables 3, 5   LAMB, momentum and LARS across ImageNet batch sizes
    table9_grid .. table25_grid Tables 9-25   a tuning grid, paper above measured (`grids`: all)

What every figure keeps to: the title says the scale and, below paper scale, the stand-in data; a
curve is the mean over the seeds of the chosen setting, with a shaded min-max band when it has
several seeds; a diverged run is marked (legend entry, x marker, hatched cell) and never drawn at
its blown-up values; legends sit outside the axes. A figure with nothing to draw raises `NoData`
with a one-line reason. `render` draws them all, writes each file atomically and says why the
others were skipped; the CLI is `render` plus exit statuses (0 for `all`, 1 when a named figure
has nothing to draw, 2 with one `error:` line for a missing results folder or an unknown name).
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import math
import re
import sys
import textwrap
from pathlib import Path
from typing import Callable, Optional

import matplotlib

matplotlib.use("Agg")  # files only; no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402
from PIL import Image  # noqa: E402  (matplotlib's own dependency)

from analysis import critical_batch, reported, runs, select, stats  # noqa: E402
from analysis import vocabulary as vocab  # noqa: E402
from lamb.train import cost_model  # noqa: E402  (pure Python: no jax)
from lamb.train import results as result_files  # noqa: E402  (file formats only: no jax)

# The PNGs are committed and embedded in the report: 100 dpi and a palette (`_save_png`) keep each
# under ~30 KB while the smallest text (ticks, 7.5 pt: ~10 px) stays legible at the saved size.
DPI = 100
TICK, LABEL, TITLE, LEGEND, CELL = 7.5, 8.5, 9.0, 7.5, 7.0
METRIC = "final.accuracy"
SETTINGS = ("config.optimizer.learning_rate", "config.optimizer.weight_decay")
BAND = "shaded: min-max over seeds"
CURVES = (7.8, 3.5)  # a curve figure: ~5.2 in of axes, the rest for the legend beside it
# One colour per optimizer in every figure (LAMB always red).
COLORS = {"lamb": "tab:red", "adam": "tab:blue", "adamw": "tab:cyan", "adagrad": "tab:green",
          "momentum": "black", "nadam": "tab:purple", "nlamb": "tab:orange",
          "nnlamb": "tab:brown", "lars": "tab:olive"}


class NoData(Exception):
  """Nothing to draw: the message says which runs are missing."""


# --- what every figure shares -----------------------------------------------------------------

def _frame(results_dir, experiment, scale) -> pd.DataFrame:
  frame = runs.of_scale(results_dir, experiment, scale)
  if not len(frame):
    config = experiment + (":paper" if scale == "paper" else "")
    raise NoData(f"no {scale}-scale runs of {experiment} under {results_dir} "
                 f"(python experiments/run.py --config={config})")
  return frame


def _with_arm(results_dir, experiment, scale) -> pd.DataFrame:
  """The runs of a figure with the arm another experiment trains for it (`runs.SHARED_ARMS`)."""
  source = runs.SHARED_ARMS[experiment][0]
  return runs.with_shared_arm(experiment, _frame(results_dir, experiment, scale),
                              runs.of_scale(results_dir, source, scale))


def _arm_label(experiment: str, label_of: Callable) -> Callable:
  """`label_of`, saying which experiment's runs draw the shared arm."""
  source, variant, _, value = runs.SHARED_ARMS[experiment]
  return lambda k: label_of(k) + (f" ({source}'s {variant} runs)" if k == value else "")


def _missing_arm(entries: list, experiment: str, label_of: Callable) -> list:
  """`entries` with a legend line saying what to run when the shared arm has no run."""
  value = runs.SHARED_ARMS[experiment][3]
  if any(e.key == value for e in entries):
    return entries
  return entries + [Entry(value, label_of(value), _color(value, len(entries)),
                          why=f"not run ({runs.shared_arm_hint(experiment)})")]


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
  """A column, or NaN everywhere when no run has it (unreadable runs have no config)."""
  return frame[name] if name in frame else pd.Series(np.nan, index=frame.index, dtype=object)


def _number(value) -> float:
  try:
    return float(value)
  except (TypeError, ValueError):
    return math.nan


def _data_name(frame) -> str:
  """The stand-in data set in a few words ('Fashion-MNIST'), '' when no run says."""
  data = _column(frame, "data").dropna() if frame is not None else []
  return str(data.iloc[0]).split(" (")[0].split(" from ")[0] if len(data) else ""


def _title(text: str, scale: str, frame=None, width_in: float = 6.0) -> str:
  """The figure's title, then its scale and (below paper scale) the stand-in data, wrapped to
  the figure's width so that a long title never widens the saved image."""
  data = _data_name(frame) if scale != "paper" else ""
  where = f"({scale} scale" + (f", stand-in data: {data})" if data else ")")
  chars = max(40, int(width_in * 15))
  return "\n".join(textwrap.fill(line, chars) for line in (text, where))


def _wrap(text: str, chars: int = 48) -> str:
  return textwrap.fill(str(text), chars)


def _legend(ax, title=None, **kw):
  """Outside the axes, on the right, so that it never covers a curve."""
  kw = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0,
        "fontsize": LEGEND, "frameon": False, **kw}
  legend = ax.legend(title=title, **kw)
  if title:
    legend.get_title().set_fontsize(LEGEND)
  return legend


def _finish(fig):
  """Tick labels at TICK points on every axis (set on the axis, so that ticks made when the file
  is saved get the same size)."""
  for ax in fig.axes:
    ax.tick_params(labelsize=TICK)
  return fig


def _color(key, index: int) -> str:
  return COLORS.get(str(key), f"C{index % 10}")


def _records(path, split: str, column: str) -> pd.Series:
  """`column` of one run's `split` records, by step (finite values only); empty when the run
  left none or its metrics.jsonl cannot be read."""
  try:
    m = runs.metrics(path)
  except (result_files.UnreadableError, OSError):
    return pd.Series(dtype=float)
  if not len(m) or not {"split", "step", column} <= set(m.columns):
    return pd.Series(dtype=float)
  m = m[m["split"] == split]
  steps = pd.to_numeric(m["step"], errors="coerce").to_numpy(float)
  values = pd.to_numeric(m[column], errors="coerce").to_numpy(float)
  keep = np.isfinite(steps) & np.isfinite(values)
  s = pd.Series(values[keep], index=steps[keep])
  return s[~s.index.duplicated(keep="last")].sort_index()


def _smoothed(loss: pd.Series, points: int = 100) -> tuple:
  """A centred rolling mean over ~1/points of the run (per-step losses of small batches are
  too noisy to compare runs by eye), and its window."""
  window = max(1, len(loss) // points)
  return loss.rolling(window, center=True, min_periods=1).mean(), window


# --- curves: the mean over the seeds of one setting ---------------------------------------------

@dataclasses.dataclass
class Curve:
  x: np.ndarray
  mean: np.ndarray
  lo: np.ndarray      # min over seeds
  hi: np.ndarray      # max over seeds
  seeds: int
  unit: str           # what x counts
  window: int = 1     # steps in the rolling mean (1: none)


def _x_scale(row, x: str, steps: pd.Series) -> tuple:
  """(factor from step to x, x's unit) for one run."""
  total = _number(row.get("total_steps"))
  if x == "fraction":
    total = total if total > 0 else float(steps.index.max())
    return 1.0 / total, "fraction of training (step / total steps)"
  epochs = _number(row.get("config.num_epochs"))
  if total > 0 and epochs > 0:
    return epochs / total, "epoch"
  return 1.0, "step"


def _curve(setting_runs: pd.DataFrame, split: str = "eval", column: str = "accuracy",
           x: str = "epoch", smooth: bool = False) -> Optional[Curve]:
  """The mean over the runs (seeds) of one setting, with its min and max; None when no run has
  a record. Only steps every seed recorded are averaged, so that a seed with fewer points does
  not bend the mean."""
  series, scale, unit, window = [], 1.0, "step", 1
  for _, row in setting_runs.iterrows():
    s = _records(row["path"], split, column)
    if not len(s):
      continue
    if smooth:
      s, window = _smoothed(s)
    if not series:
      scale, unit = _x_scale(row, x, s)
    series.append(s.rename(len(series)))
  if not series:
    return None
  table = pd.concat(series, axis=1).sort_index()
  shared = table.dropna()
  table = shared if len(shared) else table
  return Curve(table.index.to_numpy(float) * scale, table.mean(axis=1).to_numpy(),
               table.min(axis=1).to_numpy(), table.max(axis=1).to_numpy(), len(series), unit,
               window)


def _draw_curve(ax, curve: Curve, label: str, color, marker="o", ls="-"):
  seeds = f", mean of {curve.seeds} seeds" if curve.seeds > 1 else ""
  line, = ax.plot(curve.x, curve.mean, marker=marker, ms=3.5, lw=1.4, ls=ls, color=color,
                  label=_wrap(label + seeds))
  if curve.seeds > 1:
    ax.fill_between(curve.x, curve.lo, curve.hi, color=line.get_color(), alpha=0.2, lw=0)
  return line


@dataclasses.dataclass
class Entry:
  """One legend line: a group's curve, or why it has none (diverged, not finished...)."""
  key: object
  label: str
  color: str
  curve: Optional[Curve] = None
  why: str = ""


def _fmt(value) -> str:
  number = _number(value)
  return f"{number:.3g}" if math.isfinite(number) else str(value)


def _setting_text(choice: select.Choice) -> str:
  """'lr 0.04', or 'best of 19: lr 0.002' when the group tried several settings."""
  cols = [c for c in SETTINGS if c in choice.best.runs]
  parts = []
  for i, col in enumerate(cols[:len(choice.best.key)]):
    tried = {_fmt(s.key[i]) for s in choice.settings}
    value = _fmt(choice.best.key[i])
    if value == "nan" or (col.endswith("weight_decay") and len(tried) == 1):
      continue  # a weight decay the group never varied says nothing about the choice
    parts.append(("lr " if col.endswith("learning_rate") else "wd ") + value)
  text = ", ".join(parts)
  return f"best of {len(choice.settings)}: {text}" if len(choice.settings) > 1 else text


def _why_not(choice: select.Choice) -> str:
  """Why a group has no setting to draw, in a few words."""
  if choice.status == vocab.DIVERGED:
    reasons = [r for s in choice.settings for r in s.runs["diverged_because"] if r]
    every = "every setting " if len(choice.settings) > 1 else ""
    return f"{every}diverged" + (f" ({reasons[0]})" if reasons else "")
  return choice.status + (f" ({', '.join(choice.partial[:3])})" if choice.partial else "")


def _entries(frame, by: str, label_of: Callable, order=(), split="eval", column="accuracy",
             x="epoch") -> list:
  """One Entry per value of `by`: the chosen setting's mean curve, or why there is none."""
  choices = select.choose_each(frame, by, SETTINGS, METRIC)
  order = list(order)
  keys = sorted(choices, key=lambda k: (order.index(k) if k in order else len(order), str(k)))
  entries = []
  for i, key in enumerate(keys):
    choice = choices[key]
    entry = Entry(key, label_of(key), _color(key, i))
    if choice.best is None:
      entry.why = _why_not(choice)
    else:
      entry.curve = _curve(choice.best.runs, split, column, x)
      entry.label += f" ({_setting_text(choice)})" if _setting_text(choice) else ""
      entry.why = "" if entry.curve else "no evaluation records"
    entries.append(entry)
  return entries


def _draw_entries(ax, entries: list, marker="o") -> str:
  """Curves for the entries that have one, an x in the legend for the others; x's unit."""
  unit = "step"
  for entry in entries:
    if entry.curve is not None:
      _draw_curve(ax, entry.curve, entry.label, entry.color, marker)
      unit = entry.curve.unit
    else:
      ax.plot([], [], marker="x", ls="none", color=entry.color,
              label=_wrap(f"{entry.label}: {entry.why}"))
  return unit


def _need_curves(entries: list, experiment: str) -> None:
  if not any(e.curve is not None for e in entries):
    why = "; ".join(f"{e.key}: {e.why}" for e in entries) or "no run has a config"
    raise NoData(f"no {experiment} group has a completed setting to draw ({why})")


def _curves_figure(entries, title, scale, frame, ylabel, marker="o", size=CURVES):
  fig, ax = plt.subplots(figsize=size, layout="constrained")
  unit = _draw_entries(ax, entries, marker)
  ax.set_xlabel(unit, fontsize=LABEL)
  ax.set_ylabel(ylabel, fontsize=LABEL)
  ax.grid(alpha=0.3)
  several = any(e.curve is not None and e.curve.seeds > 1 for e in entries)
  _legend(ax, title=BAND if several else None)
  ax.set_title(_title(title, scale, frame, size[0] - 2.5), fontsize=TITLE)
  return _finish(fig), ax


# --- Figures 9-14: LAMB trust ratios ----------------------------------------------------------

# Layer names that open a network (stems, embeddings) or close it (heads, classifiers, poolers);
# every other name keeps its natural order (layer2 before layer10).
_FIRST = re.compile(r"^(stem|prep|input|embed|embeddings|embedding)$")
_LAST = re.compile(r"^(fc\d*|head|heads|classifier|pooler|linear|logits|cls|output_layer)$")


def _natural(text: str) -> tuple:
  return tuple(int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text))


def layer_key(path: str) -> tuple:
  """Sort key that puts parameter paths in network order, input to output."""
  return tuple((0 if _FIRST.match(p) else 2 if _LAST.match(p) else 1, _natural(p))
               for p in str(path).split("/"))


def network_order(paths) -> list:
  """The distinct paths in network order (see `layer_key`)."""
  return sorted(dict.fromkeys(paths), key=layer_key)


_SHORT = ((r"/(kernel|embedding|weight)$", ""), (r"^bert/", ""), (r"(^|/)encoder/", r"\1"),
          (r"layer_?(\d+)", r"L\1"), (r"block(\d+)", r"b\1"), (r"attention", "attn"),
          (r"_embeddings$", ""), (r"embeddings", "emb"), (r"/dense$", ""))


def short_name(path: str) -> str:
  """A tick label: 'layer1/block0/conv1/kernel' -> 'L1/b0/conv1'."""
  name = str(path)
  for pattern, repl in _SHORT:
    name = re.sub(pattern, repl, name)
  return name or str(path)


def _trust_runs(results_dir, scale) -> tuple:
  """(candidate LAMB runs best first, source, frame): figures9_14's run, else Table 7's LAMB
  runs with the setting `select` chooses first."""
  try:
    frame = _frame(results_dir, "figures9_14", scale)
    source = "figures9_14"
  except NoData as e:
    try:
      frame = _frame(results_dir, "table7", scale)
    except NoData:
      raise NoData(f"{e}; nor of table7, whose LAMB runs would serve") from None
    frame = frame[_column(frame, "config.optimizer.name") == "lamb"]
    source = "table7 (LAMB)"
  choice = select.choose(frame, SETTINGS, METRIC)
  best = list(choice.best.runs.index) if choice.best is not None else []
  rank = {vocab.COMPLETED: 0, vocab.DIVERGED: 1}
  rest = sorted((i for i in frame.index if i not in best),
                key=lambda i: (rank.get(frame.at[i, "status"], 2), frame.at[i, "run"]))
  return frame.loc[best + rest], source, frame


def _read_trust(candidates) -> tuple:
  for _, row in candidates.iterrows():
    try:
      ratios = runs.trust_ratios(row["path"])
    except (result_files.UnreadableError, OSError, ValueError):
      continue
    if len(ratios):
      return row, ratios
  return None, None


def _adapted(ratios: pd.DataFrame) -> tuple:
  """(ratios of the layers LAMB adapts, how many were left out). A layer whose ratio is exactly
  1 at every recorded step is outside the adaptation mask (batch-norm parameters, biases)."""
  ratios = ratios.assign(ratio=pd.to_numeric(ratios["ratio"], errors="coerce"))
  sliced = ratios.groupby("path")["slice"].transform("max") > 0
  ratios["layer"] = np.where(sliced, ratios["path"] + "[" + ratios["slice"].astype(str) + "]",
                             ratios["path"])
  outside = ratios.groupby("layer")["ratio"].transform(lambda r: bool((r == 1.0).all()))
  return ratios[~outside.astype(bool)], ratios[outside.astype(bool)]["layer"].nunique()


def _six(steps: list) -> list:
  if len(steps) <= 6:
    return steps
  return [steps[round(i * (len(steps) - 1) / 5)] for i in range(6)]


def _layer_order(ratios: pd.DataFrame) -> list:
  pairs = ratios[["layer", "path", "slice"]].drop_duplicates("layer")
  ordered = sorted(zip(pairs["layer"], pairs["path"], pairs["slice"]),
                   key=lambda t: (layer_key(t[1]), int(t[2])))
  return [layer for layer, _, _ in ordered]


def trust_ratio(results_dir, scale):
  """Per-layer trust ratios at six iterations of one LAMB run (Figures 9-14), layers in network
  order."""
  candidates, source, frame = _trust_runs(results_dir, scale)
  row, ratios = _read_trust(candidates)
  if row is None:
    raise NoData(f"no readable trust_ratios.csv in the {source} runs")
  ratios, hidden = _adapted(ratios)
  if not len(ratios):
    raise NoData(f"every layer of {row['run']} has trust ratio 1 (nothing adapted)")
  layers = _layer_order(ratios)
  steps = sorted(ratios["step"].unique())
  picks = _six(steps)
  groups = [str(ratios.loc[ratios["layer"] == l, "path"].iloc[0]).split("/")[0] for l in layers]
  colors = [f"C{list(dict.fromkeys(groups)).index(g) % 10}" for g in groups]
  width = max(6.5, 0.15 * len(layers) + 1.5)
  fig, axes = plt.subplots(len(picks), 1, figsize=(width, 1.1 * len(picks) + 1.8), sharex=True,
                           sharey=True, layout="constrained")
  axes = np.atleast_1d(axes)
  for ax, step, number in zip(axes, picks, range(9, 15)):
    at = ratios[ratios["step"] == step].set_index("layer")["ratio"].reindex(layers)
    values = at.to_numpy(float, copy=True)
    values[~np.isfinite(values)] = np.nan  # an inf would stretch the log axis: leave a gap
    ax.bar(range(len(layers)), values, color=colors, width=0.8)
    ax.axhline(1.0, color="grey", lw=0.6, ls=":")
    ax.set_yscale("log")
    ax.set_title(f"Figure {number}: iteration {step}", fontsize=LABEL, loc="left", pad=2)
  fig.supylabel("trust ratio (log scale)", fontsize=LABEL)
  axes[-1].set_xticks(range(len(layers)))
  axes[-1].set_xticklabels([short_name(l) for l in layers], rotation=90, fontsize=TICK)
  axes[-1].set_xlabel("layer, input to output (bar colour: network stage)", fontsize=LABEL)
  axes[-1].set_xlim(-0.7, len(layers) - 0.3)
  note = (f"; {hidden} layers outside the adaptation mask (ratio always 1) not shown"
          if hidden else "")
  fig.suptitle(_title(f"LAMB trust ratio phi(||x||) / ||r + lambda x|| per layer at {len(picks)} "
                      f"of {len(steps)} recorded iterations; {source} run '{row['run']}'{note}",
                      scale, frame, width), fontsize=TITLE)
  return _finish(fig)


# --- Figures 1-3: the ResNet-50 ablations -------------------------------------------------------

def _run_batch(frame, scale) -> str:
  batch = pd.to_numeric(_column(frame, "config.batch_size"), errors="coerce").dropna()
  return f", batch {batch.iloc[0]:g} here" if scale != "paper" and len(batch) else ""


def figure1(results_dir, scale):
  """Top-1 accuracy per epoch of each optimizer's chosen setting (Figure 1)."""
  frame = _with_arm(results_dir, "figure1", scale)
  label = _arm_label("figure1", vocab.optimizer_label)
  entries = _missing_arm(_entries(frame, "config.optimizer.name", label,
                                  order=("lamb", "nlamb", "nnlamb", "nadam", "momentum")),
                         "figure1", label)
  _need_curves(entries, "figure1")
  title = ("Figure 1: N-LAMB and NN-LAMB against LAMB, Nadam and momentum (paper: "
           f"ImageNet/ResNet-50, batch 32K{_run_batch(frame, scale)})")
  fig, _ = _curves_figure(entries, title, scale, frame, "top-1 validation accuracy")
  return fig


# --- the ImageNet batch ladders: LAMB, momentum and LARS across batch sizes --------------------

# (optimizer, experiments holding its rungs): runs are placed by their recorded paper batch.
LADDER_SOURCES = (("lamb", ("table5", "lars_imagenet")),
                  ("momentum", ("table3", "momentum_ladder")),
                  ("lars", ("lars_imagenet",)))


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
    raise NoData("no runs of table5, table3, momentum_ladder or lars_imagenet record their paper "
                 "batch (python experiments/run.py --config=table5)")
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
  frame = runs.of_scale(results_dir, "table5", scale)
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


FIGURE2_LABELS = {"correction_warmup": "adam-correction + warmup",
                  "correction_nowarmup": "adam-correction, no warmup",
                  "nocorrection_warmup": "no adam-correction, warmup",
                  "nocorrection_nowarmup": "no adam-correction, no warmup"}


def figure2(results_dir, scale):
  """Top-1 accuracy per epoch of LAMB with and without adam-correction and warmup (Figure 2)."""
  frame = _with_arm(results_dir, "figure2", scale)
  label = _arm_label("figure2", lambda k: FIGURE2_LABELS.get(k, str(k)))
  entries = _missing_arm(_entries(frame, "config.variant", label, order=list(FIGURE2_LABELS)),
                         "figure2", label)
  _need_curves(entries, "figure2")
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
  frame = _with_arm(results_dir, "figure3", scale)
  label = _arm_label("figure3", lambda k: NORMS.get(k, str(k)))
  entries = _missing_arm(_entries(frame, "config.optimizer.kwargs.norm", label,
                                  order=list(NORMS)), "figure3", label)
  _need_curves(entries, "figure3")
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


# --- Figures 4 and 5: the Table 6 optimizers ----------------------------------------------------

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
  frame = _frame(results_dir, "table6", scale)
  entries = _entries(frame, "config.optimizer.name", vocab.optimizer_label,
                     order=("lamb", "adamw", "adam", "adagrad", "momentum"))
  _need_curves(entries, "table6")
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
  frame = _frame(results_dir, "table6", scale)
  frame = frame.assign(**{"config.optimizer.name": _column(frame, "config.optimizer.name")
                          .fillna("?")})
  done, diverged = _table6_points(frame)
  if not len(done):
    raise NoData(f"no completed table6 run with a final loss and accuracy "
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


# --- Figures 6 and 7: BERT pre-training loss curves ---------------------------------------------

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
    frame, source = _frame(results_dir, "table4", scale), "table4"
  except NoData:
    frame, source = _frame(results_dir, "figure6", scale), "figure6"
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
  frame = runs.mixed_curve(runs.of_scale(results_dir, "figure7", scale),
                           runs.of_scale(results_dir, "mixed_batch", scale))
  if not len(frame):
    _frame(results_dir, "figure7", scale)  # names the command that makes the run
  frame = frame[frame["status"].isin([vocab.COMPLETED, vocab.DIVERGED])]
  if not len(frame):
    raise NoData("no finished figure7 run, and no finished re-warm-up run of mixed_batch")
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


# --- Figure 8: scaling efficiency from Table 1 ---------------------------------------------------

# BERT-Large for the cost model's curve: one TPU v3 chip per 32 sequences (Table 1), 9/10 of
# the steps at length 128 and 1/10 at 512 (Section 4.1), FLOPs per sequence of length s from
# the usual analytic count 6 N s + 12 L s^2 h (N = 302M non-embedding weights, L = 24 layers,
# h = 1024; Kaplan et al. 2020), float32 gradients of all 336M parameters on the ring.
BERT_BATCH_PER_CHIP = 32
BERT_LARGE = dict(weights=302e6, params=336.2e6, layers=24, hidden=1024)


def _bert_flops(length: int) -> float:
  b = BERT_LARGE
  return 6 * b["weights"] * length + 12 * b["layers"] * length ** 2 * b["hidden"]


def _predicted_hours(batch: int, steps: int) -> float:
  """The cost model's time for a Table 1 row (`run.py --config=table4:paper --estimate` gives
  the same with XLA's own FLOP count for the LAMB rows, `table1:paper` for the baseline and the
  mixed batch)."""
  hardware = cost_model.slice_from("tpu_v3", batch // BERT_BATCH_PER_CHIP)
  phases = [cost_model.Phase(f"seq{length}", n, batch, _bert_flops(length),
                             optimizer_flops=20 * BERT_LARGE["params"])
            for length, n in ((128, round(0.9 * steps)), (512, steps - round(0.9 * steps)))]
  return cost_model.run_seconds(phases, 4 * BERT_LARGE["params"], hardware) / 3600


def figure8(results_dir, scale):
  """Speedup against TPU chips from Table 1's reported times (the paper's own numbers)."""
  del results_dir, scale
  t1 = reported.load(1)
  times = t1[t1.metric == "time_hours"]
  base = times[(times.optimizer == "LAMB") & (times.batch_size_text == "512")].iloc[0]
  fig, ax = plt.subplots(figsize=(7.8, 4.0), layout="constrained")
  rows = []
  for _, r in times[times.optimizer == "LAMB"].iterrows():
    speedup = base.value / r.value
    rows.append((int(r.tpus), speedup, r.batch_size_text))
  plain = [r for r in rows if "/" not in r[2]]
  mixed = [r for r in rows if "/" in r[2]]
  xs = [r[0] for r in rows]
  ax.plot([r[0] for r in plain], [r[1] for r in plain], marker="o",
          label="LAMB (paper, Table 1 times)")
  if mixed:
    ax.scatter([r[0] for r in mixed], [r[1] for r in mixed], marker="*", s=120, color="tab:red",
               zorder=3, label="LAMB mixed batch (paper)")
  ideal = sorted(set(xs))
  ax.plot(ideal, [x / base.tpus for x in ideal], ls="--", color="grey", label="linear")
  steps = t1[(t1.metric == "steps") & (t1.optimizer == "LAMB")]
  steps = {int(r.batch_size): int(r.value) for _, r in steps.iterrows()
           if str(r.batch_size).isdigit()}
  predicted = {b: _predicted_hours(b, n) for b, n in sorted(steps.items())}
  if 512 in predicted:
    chips = [b // BERT_BATCH_PER_CHIP for b in predicted]
    ax.plot(chips, [predicted[512] / h for h in predicted.values()], marker="s", ms=4,
            ls=":", color="tab:green",
            label=_wrap(f"cost model (TPU v3 at {cost_model.DEFAULT_UTILISATION:.0%} of peak, "
                        "analytic FLOPs)", 36))
  for x, s, label in rows:  # the mixed-batch label above-left, clear of the 32k point
    ax.annotate(label, (x, s), textcoords="offset points", fontsize=TICK,
                xytext=(-44, 4) if "/" in label else (4, -10))
  ax.set_xscale("log", base=2)
  ax.set_yscale("log", base=2)
  ax.set_xlabel("TPUv3 chips", fontsize=LABEL)
  ax.set_ylabel(f"speedup over {int(base.tpus)} chips", fontsize=LABEL)
  ax.grid(alpha=0.3, which="both")
  _legend(ax)
  fig.suptitle("\n".join(textwrap.fill(line, 112) for line in (
      "Figure 8: scaling BERT pre-training, from the paper's Table 1 times and the cost model "
      "(no runs of ours)", _figure8_note(predicted),
      "per row: run.py --config=table4:paper --estimate (LAMB), table1:paper (baseline, "
      "64K/32K)")), fontsize=TITLE)
  return _finish(fig)


def _figure8_note(predicted: dict) -> str:
  eff = reported.figures()
  eff = eff[(eff.figure == "Figure 8") & (eff.quantity == "scaling_efficiency_percent")]
  note = f"paper: {eff.value.iloc[0]:g}% efficiency at 64x" if len(eff) else ""
  if 512 in predicted and 32768 in predicted:
    note += (f", cost model: {100 * predicted[512] / predicted[32768] / 64:.1f}% (no input, host "
             "or straggler time in the model)")
  return note


# --- Tables 9-25: one tuning grid each, paper above measured ----------------------------------

GRID_TABLES = tuple(range(9, 26))
_SHORT_STATUS = {vocab.DIVERGED: "div", vocab.FAILED: "fail", vocab.INCOMPLETE: "inc",
                 vocab.UNREADABLE: "unr", vocab.MISPLACED: "mis"}


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
    measured = _frame(results_dir, f"table{table}", scale)
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


FIGURES = {"trust_ratio": trust_ratio, "figure1": figure1, "figure2": figure2,
           "figure3": figure3, "figure4": figure4, "figure5": figure5, "figure6": figure6,
           "figure7": figure7, "figure8": figure8, "imagenet_ladders": imagenet_ladders,
           **{f"table{t}_grid": _grid_figure(t) for t in GRID_TABLES}}
ALIASES = {"grids": [f"table{t}_grid" for t in GRID_TABLES]}


# --- writing -----------------------------------------------------------------------------------

def _save(fig, path: Path, ext: str, dpi: int) -> Path:
  """Write through a temporary file in the same folder, then rename: a reader never sees half a
  file. Metadata that changes on every save (dates, versions) is left out, so that a figure
  whose data did not change is byte-identical in git."""
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(f".{path.stem}.tmp.{ext}")
  try:
    if ext == "png":
      _save_png(fig, tmp, dpi)
    else:
      fig.savefig(tmp, format=ext, dpi=dpi, bbox_inches="tight", pad_inches=0.05,
                  metadata={"CreationDate": None, "Producer": None} if ext == "pdf" else None)
    tmp.replace(path)
  finally:
    tmp.unlink(missing_ok=True)
  return path


def _save_png(fig, path: Path, dpi: int) -> None:
  """A 256-colour palette PNG: the PNGs are committed, and a palette makes them a third of
  matplotlib's RGBA size with no visible change on these flat-coloured plots (octree keeps the
  colour bar's gradient smooth; no dithering, so that cells stay flat)."""
  buffer = io.BytesIO()
  fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.05,
              metadata={"Software": None})
  image = Image.open(buffer).convert("RGB")
  image = image.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
  image.save(path, format="PNG", optimize=True, dpi=(dpi, dpi))


def render(results_dir, scale: str, out_dir, formats=("png", "pdf"), dpi: int = DPI,
           names=None) -> list:
  """Draw every figure (or `names`) into `out_dir` as `<name>_<scale>.<format>`.

  Returns (name, path of its first format or None, why it was not drawn or '') per figure."""
  out = []
  for name in (names or list(FIGURES)):
    try:
      fig = FIGURES[name](Path(results_dir), scale)
    except NoData as e:
      out.append((name, None, str(e)))
      continue
    try:
      paths = [_save(fig, Path(out_dir) / f"{name}_{scale}.{ext}", ext, dpi) for ext in formats]
    finally:
      plt.close(fig)
    out.append((name, paths[0] if paths else None, "" if paths else "no format asked for"))
  return out


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("name", help="a figure (" + ", ".join([*FIGURES, *ALIASES]) + ") or 'all'")
  parser.add_argument("--results_dir", default=str(runs.RESULTS))
  parser.add_argument("--scale", default="cpu", choices=("cpu", "paper"))
  parser.add_argument("--out_dir", default=None, help="default: <results_dir>/figures")
  parser.add_argument("--dpi", type=int, default=DPI)
  args = parser.parse_args(argv)
  if runs.check_results_dir(args.results_dir):
    print(f"error: {runs.check_results_dir(args.results_dir)}", file=sys.stderr)
    return 2
  if args.name != "all" and args.name not in FIGURES and args.name not in ALIASES:
    print(f"error: unknown figure {args.name!r}; known: {', '.join([*FIGURES, *ALIASES])}, all",
          file=sys.stderr)
    return 2
  names = list(FIGURES) if args.name == "all" else ALIASES.get(args.name, [args.name])
  out = Path(args.out_dir or Path(args.results_dir) / "figures")
  drawn = 0
  for name, path, reason in render(args.results_dir, args.scale, out, dpi=args.dpi, names=names):
    print(f"{name}: {path}" if path else f"{name}: skipped ({reason})")
    drawn += path is not None
  return 0 if drawn or args.name == "all" else 1


if __name__ == "__main__":
  sys.exit(main())
