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

from analysis import intervals, select, stats
from lamb.train import results as result_files  # file formats only: no jax

RECORDS = "eval_examples.npz"
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
  reader = getattr(result_files, "read_eval_examples", None)
  try:
    if reader is not None:
      data = dict(reader(path))
    else:
      with np.load(path, allow_pickle=False) as f:
        data = {k: f[k] for k in f.files}
  except Exception:  # a damaged file is named by the loader; here it is only absent evidence
    data = None
  _CACHE[path] = (st.st_mtime_ns, st.st_size, data)
  return data


def _scores(data: dict) -> np.ndarray:
  key = "score" if "score" in data else "correct"
  return np.asarray(data[key], dtype=np.float64)


def _units(runs: pd.DataFrame) -> tuple:
  """(the metric's denominator, its unit, whether it is the recorded one) of the runs."""
  recorded = pd.to_numeric(runs.get("final.eval_units"), errors="coerce").dropna() \
      if "final.eval_units" in runs else pd.Series(dtype=float)
  unit = runs.get("final.eval_unit")
  unit = str(unit.dropna().iloc[0]) if unit is not None and unit.notna().any() else "units"
  if len(recorded) and unit != "masked tokens":
    return int(recorded.min()), unit, True
  # Without their records, masked tokens count by sequence: tokens of one sequence are not
  # independent, and a binomial on the token count would understate the error.
  examples = pd.to_numeric(runs.get("eval_examples"), errors="coerce").dropna() \
      if "eval_examples" in runs else pd.Series(dtype=float)
  is_bert = "config.model.name" in runs and (runs["config.model.name"] == "bert").any()
  unit = "sequences" if is_bert else "examples"
  return (int(examples.min()) if len(examples) else None), unit, False


def arm(setting: select.Setting, proportion: bool = True) -> intervals.ArmEvidence:
  """The evidence of one arm: its metric per seed and, when every seed has them and they
  scored the same units, its per-example records. Without records, a metric that is not a
  proportion (a loss) has no binomial test-set term: `units` is then None."""
  records, clusters, eval_set = {}, None, None
  runs = setting.runs
  by_seed = {}
  for _, row in runs.iterrows():
    seed = select.seed_of(row)
    if seed in setting.values:
      by_seed[seed] = row
  for seed, row in by_seed.items():
    data = _read(Path(row["path"]) / RECORDS)
    if data is None:
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
  units, unit, _ = _units(runs)
  if records is not None:
    units = len(next(iter(records.values())))
  elif not proportion:
    units = None
  return intervals.ArmEvidence(values=dict(setting.values), records=records, clusters=clusters,
                               eval_set=eval_set, units=units, unit=unit)


def pooled(noise: Optional[stats.Noise]) -> Optional[tuple]:
  """The task's pooled seed variance for an arm of one seed, where the task's settings share
  one spread (Bartlett's test); None otherwise."""
  return (noise.std ** 2, noise.df) if noise is not None and noise.homogeneous else None


def difference(a: select.Setting, b: select.Setting, noise: Optional[stats.Noise], *,
               level: float, proportion: bool = True) -> Optional[intervals.Interval]:
  """a − b with its interval from the engine; None when neither side's seed spread is known."""
  if not a.values or not b.values:
    return None
  ea, eb = arm(a, proportion), arm(b, proportion)
  try:
    return intervals.difference(ea, eb, level=level, pooled_seed_var=pooled(noise))
  except ValueError as e:  # records that disagree with their summaries: the join names them
    iv = intervals.difference(_without_records(ea), _without_records(eb), level=level,
                              pooled_seed_var=pooled(noise))
    if iv is not None:
      iv = dataclasses.replace(iv, how=f"{iv.how}; records set aside: {e}")
    return iv


def _without_records(arm_: intervals.ArmEvidence) -> intervals.ArmEvidence:
  return dataclasses.replace(arm_, records=None, clusters=None, eval_set=None)


def reachable(a: select.Setting, b: select.Setting, *, level: float,
              proportion: bool = True, noise: Optional[stats.Noise] = None) -> float:
  """The narrowest half-width this evaluation could give with unlimited seeds."""
  return intervals.reachable_halfwidth(arm(a, proportion), arm(b, proportion), level=level,
                                       pooled_seed_var=pooled(noise))


def what_would_decide(a: select.Setting, b: select.Setting, margin: float, *,
                      level: float, proportion: bool = True,
                      noise: Optional[stats.Noise] = None) -> str:
  """One line: the seeds, or the evaluation units, a comparison against `margin` needs."""
  ea, eb = arm(a, proportion), arm(b, proportion)
  if ea.records is None or eb.records is None:
    # The fallback counts both arms' test-set errors as independent (and BERT's tokens by
    # sequence where the count was not recorded): records can narrow it before any new seed.
    first = ("per-example records (a rerun of these arms with the current code) would pair "
             "the arms on their shared examples first; then ")
  else:
    first = ""
  return first + _seeds_or_units(ea, eb, margin, level, pooled(noise))


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
