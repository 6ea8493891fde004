"""From a chosen setting's runs to the evidence one comparison needs, and its interval.

A setting (`analysis.select.Setting`) is an arm: its metric per seed and, where the runs wrote
them, the per-example records of their final evaluation (`eval_examples.npz`: per image, per
masked token with its sequence, per SQuAD question). This module reads those records once per
run and hands both to the one statistical engine (`analysis.intervals`), which pairs the arms on
the examples they share, clusters BERT's tokens by sequence and counts each arm's own seed
spread. Runs that predate the records fall back to the seed spread plus a binomial term whose n
is the metric's recorded denominator (`final.eval_units`), or, for runs that did not record it,
the evaluated examples; the interval's `method` says which was used.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from analysis import intervals, runs, select, stats
from lamb.train import results as result_files  # file formats only: no jax

RECORDS = result_files.EVAL_EXAMPLES
_CACHE: dict = {}  # path -> (mtime_ns, size, records or None)


def _read(path: Path) -> Optional[dict]:
  """The run's per-example records, None when it has none or they cannot be read (the loader
  names unreadable and disagreeing records; a comparison then falls back)."""
  try:
    st = path.stat()
  except OSError:
    return None
  cached = _CACHE.get(path)
  if cached and cached[:2] == (st.st_mtime_ns, st.st_size):
    return cached[2]
  try:
    data = result_files.read_eval_examples(path)
  except result_files.UnreadableError:  # named by the loader; here it is only absent evidence
    data = None
  _CACHE[path] = (st.st_mtime_ns, st.st_size, data)
  return data


def _scores(data: dict) -> np.ndarray:
  key = "score" if "score" in data else "correct"
  return np.asarray(data[key], dtype=np.float64)


def _units(frame: pd.DataFrame) -> tuple:
  """(the binomial n, its unit) of an arm's runs: the smallest over them (`runs.binomial_units`)."""
  found = [runs.binomial_units(row) for _, row in frame.iterrows()]
  found = [(int(n), unit) for n, unit in found
           if isinstance(n, (int, float)) and not isinstance(n, bool) and n == n and n > 0]
  return min(found) if found else (None, "examples")


def _proportion(metric: str) -> bool:
  """A metric that is a share of units right (a binomial term applies without records)."""
  return metric.endswith("accuracy")


def chance_units(setting: select.Setting) -> Optional[int]:
  """The n of the binomial error with which a setting's score is told from chance."""
  return _units(setting.runs)[0]


def arm(setting: select.Setting, metric: str = "final.accuracy") -> intervals.ArmEvidence:
  """The evidence of one arm: its metric per seed and, when every seed has records OF THAT
  METRIC and they scored the same units, its per-example records. Without records, a metric
  that is not a proportion (a loss, an F1 in percent) has no binomial term: `units` is None."""
  records, clusters, eval_set = {}, None, None
  by_seed = {}
  for _, row in setting.runs.iterrows():
    seed = select.seed_of(row)
    if seed in setting.values:
      by_seed[seed] = row
  name = metric.split(".", 1)[-1]
  for seed, row in by_seed.items():
    data = _read(Path(row["path"]) / RECORDS)
    # Records average to one metric (masked-LM accuracy, top-1): another metric of the same
    # runs (top-5, SQuAD F1 joined onto a pre-training) has none.
    if data is None or str(data.get("metric", "")) != name:
      records = None
      break
    fingerprint = str(data.get("eval_set", ""))
    if eval_set is not None and fingerprint != eval_set:
      records = None  # seeds scored different units: no unit-level pairing within the arm
      break
    eval_set = fingerprint
    records[seed] = _scores(data)
    if "cluster" in data:
      clusters = np.asarray(data["cluster"])
  if not records:
    records, clusters, eval_set = None, None, None
  units, unit = _units(setting.runs)
  if records is not None:
    units = len(next(iter(records.values())))
  elif not _proportion(metric):
    units = None
  return intervals.ArmEvidence(values=dict(setting.values), records=records, clusters=clusters,
                               eval_set=eval_set, units=units, unit=unit)


def pooled(noise: Optional[stats.Noise]) -> Optional[tuple]:
  """The task's pooled seed variance for an arm of one seed, where the task's settings share
  one spread (Bartlett's test); None otherwise."""
  return (noise.std ** 2, noise.df) if noise is not None and noise.homogeneous else None


def _arms(a, b, metric):
  return arm(a, metric), arm(b, metric)


def _without_records(arm_: intervals.ArmEvidence) -> intervals.ArmEvidence:
  return dataclasses.replace(arm_, records=None, clusters=None, eval_set=None)


def _safely(call, ea, eb, **kw):
  """`call` on the arms; records that disagree with their summaries (the join names such runs)
  are set aside rather than stop the report. (result, why they were set aside or '')."""
  try:
    return call(ea, eb, **kw), ""
  except ValueError as e:
    return call(_without_records(ea), _without_records(eb), **kw), str(e)


def both_recorded(a: select.Setting, b: select.Setting, metric: str) -> bool:
  ea, eb = _arms(a, b, metric)
  return ea.records is not None and eb.records is not None


def difference(a: select.Setting, b: select.Setting, noise: Optional[stats.Noise], *,
               level: float, metric: str = "final.accuracy") -> Optional[intervals.Interval]:
  """a − b with its interval from the engine; None when neither side's seed spread is known."""
  if not a.values or not b.values:
    return None
  iv, why = _safely(intervals.difference, *_arms(a, b, metric), level=level,
                    pooled_seed_var=pooled(noise))
  if iv is not None and why:
    iv = dataclasses.replace(iv, how=f"{iv.how}; records set aside: {why}")
  return iv


def reachable(a: select.Setting, b: select.Setting, *, level: float,
              metric: str = "final.accuracy", noise: Optional[stats.Noise] = None) -> float:
  """The narrowest half-width this evaluation could give with unlimited seeds."""
  return _safely(intervals.reachable_halfwidth, *_arms(a, b, metric), level=level,
                 pooled_seed_var=pooled(noise))[0]


def what_would_decide(a: select.Setting, b: select.Setting, margin: float, *,
                      level: float, metric: str = "final.accuracy",
                      noise: Optional[stats.Noise] = None) -> str:
  """One line: what would decide a comparison against `margin`: per-example records first
  where the runs lack them (the fallback's interval is an upper bound, so seeds or examples
  computed from it would mislead), else the seeds per arm or the evaluation units."""
  ea, eb = _arms(a, b, metric)
  if ea.records is None or eb.records is None:
    return ("per-example records (these arms rerun with the current code): the fallback's "
            "interval is an upper bound, and paired records tell whether the seeds or the "
            "evaluation set limit it")
  try:
    return _seeds_or_units(ea, eb, margin, level, pooled(noise))
  except ValueError:
    return "records consistent with their summaries (see the runs named above)"
def _seeds_or_units(ea, eb, margin: float, level: float, pooled_var) -> str:
  if min(len(ea.values), len(eb.values)) < 2 and pooled_var is None:
    return "3 or more seeds per arm, to measure the spread between seeds at all"
  seeds = intervals.seeds_needed(ea, eb, margin, level=level, pooled_seed_var=pooled_var)
  if seeds is not None:
    return f"about {seeds} seeds per arm would bring the half-width below {margin:.4f}"
  reach = intervals.reachable_halfwidth(ea, eb, level=level, pooled_seed_var=pooled_var)
  units = ea.units or eb.units
  if not units or not margin or not math.isfinite(reach):
    return "no number of seeds can: the evaluation set's part alone exceeds the margin"
  # The example part shrinks as 1/sqrt(units): the evaluation size that brings it to half the
  # margin leaves the other half to the seeds.
  need = math.ceil(units * (reach / (margin / 2)) ** 2)
  return (f"no number of seeds can: this evaluation's part alone is ±{reach:.4f} against a "
          f"margin of {margin:.4f}; about {need:,} {ea.unit} (now {units:,}) and enough seeds "
          "would")
