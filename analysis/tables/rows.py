"""Which runs a printed row holds, and the cell (`Measure`) they make: the chosen setting's mean
over seeds, one run's number, or the status that stops a number (not run, not at this scale,
diverged). Shared by every table of the paper; the tables themselves are in `bert`, `imagenet`
and `small_images`.
"""
from __future__ import annotations

import math
from typing import Sequence

import pandas as pd

from analysis import runs, select
from analysis import vocabulary as vocab
from analysis.tables.render import PARTIAL, Measure, _fmt


NO_PAPER = (math.nan, "")
ACCURACY = "final.accuracy"
OPTIMIZER = "config.optimizer.name"
LR = "config.optimizer.learning_rate"
WD = "config.optimizer.weight_decay"


# --- the cell of a row -----------------------------------------------------------------------

def _paper(rec, metric: str = "") -> tuple:
  """(number, printed text) of one record of analysis/reported; a word has no number. `metric`
  prefixes a printed number measured by another metric than the column beside it."""
  if rec is None:
    return NO_PAPER
  if rec.status != "ok":
    return math.nan, str(rec.status)
  return float(rec.value), f"{metric}{rec.value_text}"


def _of_choice(choice: select.Choice, paper: tuple = NO_PAPER) -> Measure:
  """The cell of a chosen setting: its mean and spread over seeds, or the status that stops it."""
  best = choice.best
  looked = pd.concat([s.runs for s in choice.settings]) if choice.settings else None
  diverged = {}
  if choice.status == vocab.DIVERGED and looked is not None:
    gone = looked[looked.status == vocab.DIVERGED]
    diverged = dict(zip(gone.run, gone.get("diverged_because", pd.Series("", gone.index))))
  if best is None:
    return Measure(status=choice.status, text=choice.text, reported=paper[0],
                   reported_text=paper[1], runs=tuple(looked.run) if looked is not None else (),
                   diverged=diverged)
  return Measure(best.mean, best.std, best.seeds, PARTIAL if choice.partial else vocab.COMPLETED,
                 choice.text, paper[0], paper[1], tuple(looked.run))


def _of_run(group: pd.DataFrame, value: float, paper: tuple = NO_PAPER) -> Measure:
  """A number of the group's one run (steps, train time, last loss), shown whatever its status:
  a diverged run's last step is what the paper prints too."""
  if not len(group):
    return Measure(reported=paper[0], reported_text=paper[1], plain=True)
  status = str(group.status.iloc[0])
  finite = value is not None and math.isfinite(value)
  return Measure(value if finite else math.nan, math.nan, 1 if finite else 0, status,
                 _fmt(value) if finite else status, paper[0], paper[1], tuple(group.run),
                 plain=True)


# --- the runs of a row -----------------------------------------------------------------------

def _frame(results_dir, experiment: str, scale: str) -> pd.DataFrame:
  return runs.of_scale(results_dir, experiment, scale)


def _where(frame: pd.DataFrame, column: str, value) -> pd.DataFrame:
  """The runs whose `column` equals `value` (none when the column is absent)."""
  if not len(frame) or column not in frame:
    return frame.iloc[0:0]
  return frame[frame[column] == value]


def _close(frame: pd.DataFrame, column: str, value: float) -> pd.Series:
  """Which runs have `column` equal to the printed number `value` (up to rounding)."""
  if column not in frame:
    return pd.Series(False, index=frame.index)
  return (pd.to_numeric(frame[column], errors="coerce") - value).abs() <= 1e-9 * abs(value)


def _choose(group: pd.DataFrame, settings: Sequence[str], metric: str, unplaced: Sequence = (),
            higher_is_better: bool = True) -> select.Choice:
  return select.held_back(
      select.choose(group, settings, metric, higher_is_better=higher_is_better), unplaced)


def _first(group: pd.DataFrame, column: str) -> float:
  """The group's first run's number in `column` (nan when there is none)."""
  if not len(group) or column not in group:
    return math.nan
  value = pd.to_numeric(pd.Series([group[column].iloc[0]]), errors="coerce").iloc[0]
  return float(value) if pd.notna(value) else math.nan


def _int_or_dash(value: float):
  return int(value) if math.isfinite(value) else "-"


def _best_value(choice: select.Choice, column: str) -> float:
  if choice.best is None or column not in choice.best.runs:
    return math.nan
  return float(choice.best.runs[column].iloc[0])


def _runs_text(group: pd.DataFrame) -> str:
  """'8 (2)': runs of a row and how many of them diverged."""
  return f"{len(group)} ({int((group.status == vocab.DIVERGED).sum())})" if len(group) else "0"


# --- rows of the batch ladders (Tables 1, 2, 4, 5), which a scale may leave out --------------

def _left_out(paper: tuple) -> Measure:
  return Measure(status=vocab.NOT_AT_SCALE, text=vocab.NOT_AT_SCALE, reported=paper[0],
                 reported_text=paper[1])


def _batch_order(label: str) -> float:
  return float(label[:-1]) * 1024 if label.endswith("K") else float(label)
