"""The one best-setting selector: which setting of an optimizer a table, a figure or a claim shows.

Settings (a learning rate, a weight decay...) are compared on their mean over *complete* seeds:
a setting is complete when every one of its runs finished without diverging and has the metric.
A setting with a diverged run counts as the worst (below every complete one), as the paper
prints such a setting as "diverge". A setting whose runs are still running, failed or cannot be
read might be the best: the group then shows no number but the status and the names of those
runs, so that one lost file never turns a row into another setting's number.

This is how the paper tuned (Tables 3, 6, 7, 9-25): on the split it reports. The report says so
beside every claim it can bias (`analysis.claims`).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence

import pandas as pd

from analysis import vocabulary as vocab

# The config fields a tuned row chooses among (learning rate, weight decay, warmup); a run's other
# fields say which row it belongs to.
SETTINGS = ("config.optimizer.learning_rate", "config.optimizer.weight_decay",
            "config.optimizer.schedule.warmup_ratio")


@dataclasses.dataclass
class Setting:
  """One setting's runs: the metric per seed of its complete runs, and what the others did."""
  key: tuple                      # the values of the setting columns
  runs: pd.DataFrame              # every run of the setting
  values: dict                    # seed -> metric, complete runs only
  status: str                     # completed, diverged, or the status that keeps it from a choice

  @property
  def mean(self) -> float:
    return sum(self.values.values()) / len(self.values) if self.values else math.nan

  @property
  def std(self) -> float:
    """Sample standard deviation over seeds (nan for one seed)."""
    n = len(self.values)
    if n < 2:
      return math.nan
    return math.sqrt(sum((v - self.mean) ** 2 for v in self.values.values()) / (n - 1))

  @property
  def seeds(self) -> int:
    return len(self.values)

  @property
  def eval_examples(self) -> Optional[int]:
    n = pd.to_numeric(self.runs.get("eval_examples"), errors="coerce").dropna()
    return int(n.min()) if len(n) else None


@dataclasses.dataclass
class Choice:
  """The setting a group shows: its best complete setting, or why there is none."""
  group: object
  best: Optional[Setting]
  settings: list                  # every Setting of the group, best first
  status: str                     # completed / diverged / not run / incomplete / unreadable
  partial: list                   # 'run (status)' of each run that kept its setting out

  @property
  def text(self) -> str:
    """A table cell: 'mean ± std' (or '(1 seed)'), else the status and the runs behind it."""
    if self.partial:  # e.g. "lamb_lr0.01_seed1 unreadable"
      return ", ".join(self.partial)
    if self.best is None:
      return self.status
    if self.best.seeds > 1:
      return f"{self.best.mean:.4f} ± {self.best.std:.4f}"
    return f"{self.best.mean:.4f} (1 seed)"


def seed_of(row) -> object:
  """The seed a run's metric is keyed by in `Setting.values` (its folder name when no seed)."""
  seed = row.get("config.seed")
  return seed if seed is not None and not (isinstance(seed, float) and math.isnan(seed)) \
      else row["run"]


def setting(key: tuple, runs: pd.DataFrame, metric: str) -> Setting:
  values, statuses = {}, set(runs.status)
  for _, row in runs.iterrows():
    value = pd.to_numeric(pd.Series([row.get(metric)]), errors="coerce").iloc[0]
    if row.status == vocab.COMPLETED and pd.notna(value) and math.isfinite(value):
      values[seed_of(row)] = float(value)
  if vocab.DIVERGED in statuses:
    status = vocab.DIVERGED
  elif len(values) == len(runs):
    status = vocab.COMPLETED
  else:
    blocking = [s for s in vocab.BLOCKING if s in statuses]
    status = blocking[0] if blocking else vocab.INCOMPLETE  # completed without the metric
  return Setting(key, runs, values if status == vocab.COMPLETED else {}, status)


def choose(runs: pd.DataFrame, settings: Sequence[str], metric: str, *, group=None,
           higher_is_better: bool = True) -> Choice:
  """The best setting of `runs` (one optimizer, say) over the `settings` columns."""
  if not len(runs):
    return Choice(group, None, [], vocab.NOT_RUN, [])
  settings = [c for c in settings if c in runs]
  grouped = runs.groupby(settings, dropna=False, sort=True) if settings else [((), runs)]
  found = [setting(k if isinstance(k, tuple) else (k,), g, metric) for k, g in grouped]
  sign = 1 if higher_is_better else -1
  rank = lambda s: (s.status == vocab.COMPLETED, sign * s.mean if s.values else -math.inf)
  found.sort(key=rank, reverse=True)
  complete = [s for s in found if s.status == vocab.COMPLETED]
  partial = [f"{name} {status}" for s in found
             if s.status not in (vocab.COMPLETED, vocab.DIVERGED)
             for name, status in zip(s.runs.run, s.runs.status)
             if status not in (vocab.COMPLETED, vocab.DIVERGED)]
  if partial:  # the setting held back could be the best: no number until it is readable
    blocking = {status for s in found for status in s.runs.status}
    status = next(s for s in vocab.BLOCKING if s in blocking)
    return Choice(group, None, found, status, partial)
  if complete:
    return Choice(group, complete[0], found, vocab.COMPLETED, [])
  diverged = any(s.status == vocab.DIVERGED for s in found)
  return Choice(group, None, found, vocab.DIVERGED if diverged else vocab.INCOMPLETE, [])


def unplaced(frame: pd.DataFrame) -> list:
  """'run unreadable' for each run of `frame` whose config.json could not be read: no row or
  side can claim it, and it may have been anyone's best."""
  if not len(frame):
    return []
  config = frame[[c for c in frame if c.startswith("config.")]]
  lost = (frame.status == vocab.UNREADABLE) & config.isna().all(axis=1)
  return [f"{run} {vocab.UNREADABLE}" for run in frame.run[lost]]


def held_back(choice: Choice, lost: Sequence[str]) -> Choice:
  """`choice` without a number while `lost` runs (see `unplaced`) might belong to it."""
  if not lost:
    return choice
  return dataclasses.replace(choice, best=None, status=vocab.UNREADABLE,
                             partial=choice.partial + list(lost))


def choose_each(runs: pd.DataFrame, by: str, settings: Sequence[str], metric: str,
                higher_is_better: bool = True) -> dict:
  """{value of `by`: Choice} — one choice per optimizer (or per variant, per batch...)."""
  if not len(runs) or by not in runs:
    return {}
  return {key: choose(g, settings, metric, group=key, higher_is_better=higher_is_better)
          for key, g in runs.groupby(by, sort=False)}
