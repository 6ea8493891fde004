"""The seed spread of a task, for arms of one seed: pooled over the task's replicated settings
only where they share one spread.

A comparison's interval comes from the one engine (`analysis.intervals`, through
`analysis.evidence`), which uses each arm's own spread between seeds. An arm that ran one seed
has none: it borrows the task's pooled seed variance (`task_noise`: each shown setting of the
same model on the same data at this scale that ran more than one seed, weighted by its degrees
of freedom), but only when Bartlett's test does not reject that those settings share one spread
(`intervals.homogeneity`); otherwise it has no spread to go on and the comparison is not
testable, saying so.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional

import pandas as pd

from analysis import intervals, select


@dataclasses.dataclass
class Noise:
  """The pooled spread between seeds of one task at one scale."""
  std: float
  df: int
  settings: int
  source: str  # which experiments it was pooled from
  p_homogeneous: float = 1.0  # Bartlett's test that the settings share one spread
  homogeneous: bool = True    # pooling allowed (else no arm may borrow it)

  def __str__(self) -> str:
    return (f"seed std {self.std:.4f} pooled over {self.settings} replicated settings of "
            f"{self.source} (df {self.df}; Bartlett p = {self.p_homogeneous:.2g}"
            f"{'' if self.homogeneous else ', spreads differ: not pooled'})")


TASK_COLUMNS = ("scale", "config.data.name", "config.model.name", "config.data.train_examples",
                "config.data.eval_split", "config.data.validation_documents", "config.num_epochs",
                "config.train_sequences")


def _part(value) -> str:
  """One column's part of a task key, written the same whatever the frame's column dtype (4, 4.0
  and '4' are one value; a missing value is '-')."""
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return "-"
  try:
    return f"{float(value):g}"
  except (TypeError, ValueError):
    return str(value)


def task_key(frame: pd.DataFrame) -> pd.Series:
  """What makes runs comparable for their seed noise: the model, the data (and the part of it
  evaluated on) and how long it trains, at one scale (the ImageNet stand-in's short shape and its
  ladder sized from the top are two tasks). Every column counts, present or not, so that keys
  built from different frames of the same runs agree."""
  return pd.Series(["/".join(_part(row.get(c)) for c in TASK_COLUMNS)
                    for _, row in frame.iterrows()], index=frame.index, dtype=object)


def task_label(key: str) -> str:
  """A task key as the report prints it: its recorded parts only."""
  return "/".join(part for part in key.split("/") if part != "-")


def task_noise(all_runs: pd.DataFrame, task: str, metric: str) -> Optional[Noise]:
  """The pooled seed spread of `metric` over the shown settings of `task` (see module).

  Only each group's chosen setting counts (the best over `select.SETTINGS` of the runs that
  differ in nothing else): the spread of a rate far from the optimum (a run at 0.19 beside one at
  0.94) says nothing about the settings that are compared.
  """
  if not len(all_runs):
    return None
  runs = all_runs[task_key(all_runs) == task]
  if not len(runs) or metric not in runs:
    return None
  fixed = sorted(c for c in runs if c.startswith("config.") and c != "config.seed"
                 and c not in select.SETTINGS)
  keys = runs[["experiment"] + fixed].map(str).agg("|".join, axis=1)
  ss, df, settings, sources, seen, parts = 0.0, 0, 0, set(), set(), []
  for _, group in runs.groupby(keys):
    best = select.choose(group, select.SETTINGS, metric).best
    # The same config and seeds under two experiments (Figure 3's L2 is Table 3's LAMB) is one
    # measurement of the spread, not two.
    same = tuple(sorted(best.values.items(), key=str)) if best is not None else None
    if best is not None and best.seeds >= 2 and same not in seen:
      seen.add(same)
      ss += best.std ** 2 * (best.seeds - 1)
      df += best.seeds - 1
      parts.append((best.std ** 2, best.seeds - 1))
      settings += 1
      sources.add(str(group.experiment.iloc[0]))
  if not df:
    return None
  p, same = intervals.homogeneity(parts)
  return Noise(math.sqrt(ss / df), df, settings, ", ".join(sorted(sources)), p, same)
