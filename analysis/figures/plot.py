"""The drawing layer every figure shares: sizes, colours (one per optimizer), titles that say the
scale and the stand-in data, legends outside the axes, the curve of a setting (mean over its
seeds, with a min-max band) and the legend line of a group that has none, and writing a figure as
a small palette PNG or a PDF that stays byte-identical when its data did not change. Nothing here
knows a figure of the paper; the other modules of `analysis.figures` draw them.
"""
from __future__ import annotations

import dataclasses
import io
import math
import textwrap
from pathlib import Path
from typing import Callable, Optional

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from PIL import Image  # matplotlib's own dependency

from analysis import catalogue, runs, select
from analysis import vocabulary as vocab
from lamb.train import results as result_files  # file formats only: no jax


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
  """The runs of a figure with the arm another experiment trains for it
  (`catalogue.SHARED_ARMS`)."""
  source = catalogue.SHARED_ARMS[experiment][0]
  return runs.with_shared_arm(experiment, _frame(results_dir, experiment, scale),
                              runs.of_scale(results_dir, source, scale))


def _arm_label(experiment: str, label_of: Callable) -> Callable:
  """`label_of`, saying which experiment's runs draw the shared arm."""
  source, variant, _, value = catalogue.SHARED_ARMS[experiment]
  return lambda k: label_of(k) + (f" ({source}'s {variant} runs)" if k == value else "")


def _missing_arm(entries: list, experiment: str, label_of: Callable) -> list:
  """`entries` with a legend line saying what to run when the shared arm has no run."""
  value = catalogue.SHARED_ARMS[experiment][3]
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
