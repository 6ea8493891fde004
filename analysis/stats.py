"""The uncertainty of a comparison between two settings: an analytic 95% interval.

Two sources of noise are counted (`difference`):
- **seeds**: training the same setting again with another seed moves its score. Over seeds that
  both settings share (at least `MIN_PAIRED` of them) the difference is taken seed by seed
  (paired). Otherwise each mean's variance is the task's *pooled* seed variance (`task_noise`:
  every shown setting of the same model on the same data at this scale that ran more than one
  seed, weighted by its degrees of freedom) divided by its number of seeds. With one seed and no
  replicated setting of the task, there is no seed spread to go on and the comparison is not
  testable.
- **the evaluation set**: a finite test set samples the accuracy it measures; its binomial error
  sqrt(p (1 - p) / n) is added for each side in quadrature. Both sides are scored on the same
  examples, so treating them as independent overstates this part (per-example predictions are
  not recorded): the interval errs wide.

The interval is mean difference ± t(0.975, df) × standard error. The seed part is estimated
(its df: seeds − 1, or the pooled df); the binomial part is known given p, so the df of their sum
are Welch-Satterthwaite's: df (var_seed + var_test)² / var_seed².
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional

import pandas as pd
from scipy import stats as scipy_stats

from analysis import select

LEVEL = 0.95
METHOD = ("analytic: mean difference ± t(0.975, df) × standard error. The seed part is paired "
          "over common seeds when there are at least 3, else each mean carries the task's pooled "
          "seed variance (each shown setting of the same model and data that ran several seeds) "
          "over its number of seeds; the test set's binomial error sqrt(p(1-p)/n) is added in "
          "quadrature for each side, as if independent (both sides use the same examples, so "
          "the interval errs wide); df by Welch-Satterthwaite, the binomial part counting as "
          "known.")
MIN_PAIRED = 3  # with 2 common seeds a paired difference has 1 degree of freedom: pooled wins


@dataclasses.dataclass
class Noise:
  """The pooled spread between seeds of one task at one scale."""
  std: float
  df: int
  settings: int
  source: str  # which experiments it was pooled from

  def __str__(self) -> str:
    return (f"seed std {self.std:.4f} pooled over {self.settings} replicated settings of "
            f"{self.source} (df {self.df})")


@dataclasses.dataclass
class Interval:
  diff: float
  lo: float
  hi: float
  se: float
  df: float
  how: str

  def __str__(self) -> str:
    return f"{self.diff:+.4f} [{self.lo:+.4f}, {self.hi:+.4f}]"


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
  ss, df, settings, sources, seen = 0.0, 0, 0, set(), set()
  for _, group in runs.groupby(keys):
    best = select.choose(group, select.SETTINGS, metric).best
    # The same config and seeds under two experiments (Figure 3's L2 is Table 3's LAMB) is one
    # measurement of the spread, not two.
    same = tuple(sorted(best.values.items(), key=str)) if best is not None else None
    if best is not None and best.seeds >= 2 and same not in seen:
      seen.add(same)
      ss += best.std ** 2 * (best.seeds - 1)
      df += best.seeds - 1
      settings += 1
      sources.add(str(group.experiment.iloc[0]))
  if not df:
    return None
  return Noise(math.sqrt(ss / df), df, settings, ", ".join(sorted(sources)))


def eval_variance(s: select.Setting, accuracy: bool) -> float:
  n = s.eval_examples
  if not accuracy or not n or not s.values or not 0 <= s.mean <= 1:
    return 0.0
  return s.mean * (1 - s.mean) / n


def difference(a: select.Setting, b: select.Setting, noise: Optional[Noise], *,
               accuracy: bool = True) -> Optional[Interval]:
  """a − b with its interval; None when there is neither a pairing nor a pooled seed spread."""
  if not a.values or not b.values:
    return None
  common = sorted(set(a.values) & set(b.values), key=str)
  if len(common) >= MIN_PAIRED:
    d = [a.values[k] - b.values[k] for k in common]
    diff = sum(d) / len(d)  # centred on the seeds its spread comes from
    var = sum((x - diff) ** 2 for x in d) / (len(d) - 1) / len(d)
    df, how = len(d) - 1, f"paired over {len(d)} seeds"
    left_out = (len(a.values) - len(d)) + (len(b.values) - len(d))
    if left_out:
      how += f" ({left_out} unpaired run(s) left out)"
  elif noise is not None:
    diff = a.mean - b.mean
    var = noise.std ** 2 * (1 / a.seeds + 1 / b.seeds)
    df, how = noise.df, f"{a.seeds} vs {b.seeds} seed(s); {noise}"
  else:
    return None
  eval_var = eval_variance(a, accuracy) + eval_variance(b, accuracy)
  if eval_var:
    how += (f"; + test-set sampling error ({a.eval_examples:d} / {b.eval_examples:d} examples, "
            "binomial, counted as independent)")
  se = math.sqrt(var + eval_var)
  # Welch-Satterthwaite: only the seed part is estimated, so the sum has more df than it.
  df = df * (var + eval_var) ** 2 / var ** 2 if var > 0 else math.inf
  half = scipy_stats.t.ppf(0.5 + LEVEL / 2, max(df, 1)) * se
  return Interval(diff, diff - half, diff + half, se, df, how)
