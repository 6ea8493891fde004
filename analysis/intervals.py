"""The one statistical engine for every comparison the report makes: the interval of a − b.

Every verdict on a claim of the paper (`analysis.verdicts`: better / no worse / same, on a 95%
interval) and the decidability pass that asks whether a claim's margin could ever be resolved by
this evaluation set rest on `difference`, `reachable_halfwidth` and `seeds_needed`.

An arm is one optimizer setting run on several seeds, each run scored on an evaluation set. The
quantity an interval covers is the population difference: the expected metric of a over the
distribution of seeds AND of evaluation sets, minus b's. Two sources of noise separate a measured
difference from it:
- **seeds**: another seed gives another model. The spread between seeds is estimated per arm
  (never pooled across settings whose spreads may differ tenfold), or seed by seed over at least
  MIN_PAIRED common seeds (seed s of both arms shares initialisation and data order here).
- **the evaluation set**: a finite sample of images, questions or masked tokens.

With per-unit records (each unit's score on each seed) the two are separated by a two-way
random-effects analysis of the seeds x units table: Var(grand mean) = sigma_seed^2/S +
sigma_unit^2/U + sigma_resid^2/(S U). The spread of the per-seed metric over seeds already holds
the residual term (a seed gets other units right), so the evaluation-set part is the variance of
the units' seed-averaged scores over U minus the residual mean square over S U (counted once, not
twice). When both arms scored the same units (same `eval_set`), that part is taken on the
difference of the arms' unit scores: difficulty both arms share cancels. Masked tokens sit in
sequences and are not independent: the unit part is then taken over sequences, on the linearised
totals of the token-weighted mean (a ratio estimator). Degrees of freedom: Welch-Satterthwaite
within the seed part (two arms' spreads) and within the evaluation-set part; across the two the
seed part's few df count by its share of the variance, not its squared share (`_combine` says
why: with 3 seeds Welch-Satterthwaite's plug-in undercovers).

Without records (runs older than them) the fallback keeps the seed part as above and adds a
binomial evaluation-set term sqrt(p (1 - p) / n) per arm on the metric's real denominator n,
counted as if the arms' test-set errors were independent: wide (conservative) when they share
units, because shared difficulty cancels in a difference. For clustered units it uses the
effective n of fully correlated clusters (sum n_c)^2 / sum n_c^2, again an upper bound.

tests/test_intervals_coverage.py validates the method by simulation: synthetic arms with a known
population difference (probit model: seed effects, shared and arm-specific unit difficulty,
sequence effects for tokens, Bernoulli outcomes), 3, 5 and 10 seeds, 1,000-4,000 units (2,000
masked tokens in 100 sequences), 6,000 replications per cell with 3 seeds and 2,000 with 5 and
10. Each regime (seed-dominated, example-dominated, balanced, tenfold unequal seed variances,
clustered tokens, different evaluation sets) must cover 93-97%, and the fallback, run on the same
draws without their records, at least 93% (it is wide by design).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence

import numpy as np
from scipy import stats as scipy_stats

LEVEL = 0.95
MIN_PAIRED = 3  # two common seeds give a paired difference 1 df: per-arm spreads do better
POOLING_ALPHA = 0.10  # homogeneity: a pre-test guarding a pooled variance errs towards not pooling
RECORD_TOLERANCE = 1e-4  # records vs the summary's number (float32 accumulation on device)

PAIRED = "per-example, paired on units"
UNPAIRED = "per-example, unpaired"
FALLBACK = "fallback: binomial, independent"
SEEDS_ONLY = "fallback: seeds only"


@dataclasses.dataclass(frozen=True)
class ArmEvidence:
  """What one arm brings to a comparison."""
  values: dict                   # seed -> the arm's metric on that seed (the summary's number)
  records: Optional[dict] = None  # seed -> 1-D per-unit scores (0/1 or F1); None: none recorded
  clusters: Optional[np.ndarray] = None  # per-unit cluster id, same for every seed (None: none)
  eval_set: Optional[str] = None  # fingerprint of the units scored: arms pair on units when equal
  units: Optional[int] = None     # the metric's denominator
  unit: str = "examples"


@dataclasses.dataclass(frozen=True)
class Interval:
  diff: float
  lo: float
  hi: float
  se: float
  df: float
  method: str
  seed_part: float     # variance from seeds
  example_part: float  # variance from the evaluation set
  how: str

  def halfwidth(self) -> float:
    return (self.hi - self.lo) / 2

  def __str__(self) -> str:
    return f"{self.diff:+.4f} [{self.lo:+.4f}, {self.hi:+.4f}]"


# ---------------------------------------------------------------------------------------------
# Vectorised core: every array may carry leading axes (the simulation's replications).


@dataclasses.dataclass
class _Parts:
  """A difference and its variance parts before they are combined into an interval.

  seed: [(variance, df)] of independent seed estimates; groups: lists of [(variance, df)] that sum
  to one evaluation-set part each (a unit part less its residual, so a sum can fall below 0 by
  chance: it is then taken as 0 and its terms leave the df)."""
  diff: np.ndarray
  seed: list
  groups: list


def _stats(totals: np.ndarray, sizes: np.ndarray):
  """Per-seed metrics, per-cluster linearised effects and the residual mean square of one
  seeds x clusters table of score totals.

  The metric of seed s is sum_c Y_sc / N. Its linearisation on cluster c is
  z_sc = C (Y_sc - m_s n_c) / N, whose mean over clusters is 0 for every seed: the column means of
  z are the clusters' effects on the ratio (their variance over C is the ratio estimator's), and
  z less its column means is the seed x cluster residual. With one unit per cluster (n_c = 1)
  this is the ordinary two-way analysis of variance."""
  s, c = totals.shape[-2:]
  n_total = np.asarray(sizes.sum(-1), dtype=np.float64)
  m = totals.sum(-1) / n_total[..., None]
  if sizes.ndim == 1 and np.all(sizes == 1):  # independent units: no size to weight by
    z = totals - m[..., :, None]
  else:
    z = totals - m[..., :, None] * sizes[..., None, :]
  scale = c / n_total
  col = z.mean(-2) * scale[..., None]
  if s > 1:
    ss = (np.einsum("...sc,...sc->...", z, z) * scale ** 2
          - s * np.einsum("...c,...c->...", col, col))
    ms_resid = np.maximum(ss, 0.0) / ((s - 1) * (c - 1))
  else:
    ms_resid = np.full(m.shape[:-1], np.nan)
  return m, col, ms_resid


def _var(x: np.ndarray) -> np.ndarray:
  return x.var(-1, ddof=1)


def _seed_terms(ma, mb, pooled):
  """Per-arm seed variances of the means (own spread from 2 seeds on; one seed borrows
  `pooled`, a variance of the per-seed metric with its df; a shared pooled estimate is one term)."""
  terms, borrowed = [], 0.0
  for m in (ma, mb):
    k = m.shape[-1]
    if k >= 2:
      terms.append((_var(m) / k, k - 1))
    else:
      borrowed += 1.0 / k
  if borrowed:
    if pooled is None:
      return None
    terms.append((np.full(ma.shape[:-1], pooled[0] * borrowed), float(pooled[1])))
  return terms


def _unit_group(col: np.ndarray, residuals: Sequence[tuple]):
  c = col.shape[-1]
  group = [(_var(col) / c, c - 1)]
  for ms, seeds in residuals:  # ms / (S C): the residual that the seed part already counts
    if seeds >= 2:
      group.append((-ms / (seeds * c), (seeds - 1) * (c - 1)))
  return group


def _records_parts(ta, sa, tb, sb, *, pair_seeds: bool, pair_units: bool,
                   pooled=None) -> Optional[_Parts]:
  """Parts from per-unit records: ta, tb (..., seeds, clusters) score totals, sa, sb (clusters,)
  units per cluster. With pair_seeds the seed axes are aligned (common seeds, same order); with
  pair_units the clusters are the same units in the same order."""
  if pair_seeds and pair_units:
    md, cold, msd = _stats(ta - tb, sa)
    k = md.shape[-1]
    return _Parts(md.mean(-1), [(_var(md) / k, k - 1)], [_unit_group(cold, [(msd, k)])])
  ma, cola, msa = _stats(ta, sa)
  mb, colb, msb = _stats(tb, sb)
  if pair_seeds:
    d = ma - mb
    k = d.shape[-1]
    seed = [(_var(d) / k, k - 1)]
    diff = d.mean(-1)
  else:
    seed = _seed_terms(ma, mb, pooled)
    diff = ma.mean(-1) - mb.mean(-1)
  if seed is None:
    return None
  sa_, sb_ = ma.shape[-1], mb.shape[-1]
  if pair_units:
    groups = [_unit_group(cola - colb, [(msa, sa_), (msb, sb_)])]
  else:
    groups = [_unit_group(cola, [(msa, sa_)]), _unit_group(colb, [(msb, sb_)])]
  return _Parts(diff, seed, groups)


def _values_parts(va, vb, na, nb, *, pair_seeds: bool, pooled=None) -> Optional[_Parts]:
  """Parts from per-seed values only: va, vb (..., seeds); na, nb the effective numbers of
  independent units (None: no evaluation-set term). The binomial term is a known bound
  (infinite df)."""
  if pair_seeds:
    d = va - vb
    k = d.shape[-1]
    diff, seed = d.mean(-1), [(_var(d) / k, k - 1)]
  else:
    diff, seed = va.mean(-1) - vb.mean(-1), _seed_terms(va, vb, pooled)
  if seed is None:
    return None
  groups = []
  for v, n in ((va, na), (vb, nb)):
    p = v.mean(-1)
    if n is not None:
      groups.append([(np.clip(p * (1 - p), 0, None) / n, math.inf)])
  return _Parts(diff, seed, groups)


def _combine(parts: _Parts, level: float = LEVEL) -> dict:
  """Seed part, evaluation-set part, their sum and df, and the interval.

  Degrees of freedom: the seed terms combine by Welch-Satterthwaite (Welch's test), and so do
  the terms of the evaluation-set part. Across the two parts, 1/df = w_seed / df_seed +
  w_example^2 / df_example, w being each part's share of the variance: Welch-Satterthwaite would
  square w_seed too, and then a seed part that chance made small (2 df with 3 seeds) also raises
  the df; that covered 92-94% with 3 seeds in the simulation. Weighing it by its share covers
  94-97% there and is exact when either part is alone. The evaluation-set part keeps the
  squared share: its mean squares have hundreds of df, and when it is a near-cancelling
  difference of two (little unit effect of the difference) its own df is small but so is its
  share."""
  seed_var = np.asarray(sum((v for v, _ in parts.seed), 0.0), dtype=np.float64)
  seed_den = np.asarray(sum((v ** 2 / df for v, df in parts.seed), 0.0), dtype=np.float64)
  example = np.zeros(np.shape(parts.diff))
  example_den = np.zeros(np.shape(parts.diff))
  for group in parts.groups:
    g = sum(v for v, _ in group)
    kept = g > 0
    example = example + np.where(kept, g, 0.0)
    example_den = example_den + np.where(kept, sum(v ** 2 / df for v, df in group), 0.0)
  var = seed_var + example
  with np.errstate(divide="ignore", invalid="ignore"):
    # w_seed / df_seed = seed_den / (seed_var var); w_example^2 / df_example = example_den / var^2
    inverse = (np.where(seed_var > 0, seed_den / (seed_var * var), 0.0)
               + np.where(example > 0, example_den / var ** 2, 0.0))
    df = np.where(inverse > 0, 1 / inverse, np.inf)
  se = np.sqrt(var)
  half = scipy_stats.t.ppf(0.5 + level / 2, np.maximum(df, 1.0)) * se
  return dict(diff=parts.diff, lo=parts.diff - half, hi=parts.diff + half, se=se, df=df,
              seed_part=seed_var, example_part=example)


# ---------------------------------------------------------------------------------------------
# From ArmEvidence to the core.


def _table(arm: ArmEvidence, seeds: Sequence) -> tuple:
  """(seeds, clusters) score totals, units per cluster, and the number of clusters."""
  rows = [np.asarray(arm.records[s], dtype=np.float64) for s in seeds]
  lengths = {len(r) for r in rows}
  if len(lengths) != 1:
    raise ValueError(f"records of one arm differ in length across seeds: {sorted(lengths)}")
  u = lengths.pop()
  if arm.units is not None and arm.units != u:
    raise ValueError(f"{u} records per seed but the metric counts {arm.units} {arm.unit}")
  for s, r in zip(seeds, rows):
    if abs(r.mean() - arm.values[s]) > RECORD_TOLERANCE:
      raise ValueError(f"seed {s}: the records give {r.mean():.6f}, the summary "
                       f"{arm.values[s]:.6f}")
  y = np.stack(rows)
  if arm.clusters is None:
    return y, np.ones(u), u
  ids = np.asarray(arm.clusters)
  if len(ids) != u:
    raise ValueError(f"{len(ids)} cluster ids for {u} {arm.unit}")
  _, index = np.unique(ids, return_inverse=True)
  sizes = np.bincount(index).astype(np.float64)
  totals = np.stack([np.bincount(index, weights=r, minlength=len(sizes)) for r in y])
  return totals, sizes, len(sizes)


def _has_records(arm: ArmEvidence, seeds) -> bool:
  return arm.records is not None and all(s in arm.records for s in seeds)


def _same_units(a: ArmEvidence, b: ArmEvidence) -> bool:
  if a.eval_set is None or a.eval_set != b.eval_set:
    return False
  if (a.clusters is None) != (b.clusters is None) or (
      a.clusters is not None and not np.array_equal(a.clusters, b.clusters)):
    raise ValueError(f"arms share the evaluation set {a.eval_set!r} but not its clusters")
  return True


def _effective_units(arm: ArmEvidence) -> Optional[float]:
  """The binomial term's n: the denominator, or, for clusters, (sum n_c)^2 / sum n_c^2 (every
  unit of a cluster alike: the widest the clustering can make it)."""
  if arm.clusters is not None:
    _, sizes = np.unique(np.asarray(arm.clusters), return_counts=True)
    return float(sizes.sum()) ** 2 / float((sizes.astype(np.float64) ** 2).sum())
  return float(arm.units) if arm.units else None


def _in_unit_range(arm: ArmEvidence, seeds) -> bool:
  return all(0.0 <= arm.values[s] <= 1.0 for s in seeds)


@dataclasses.dataclass
class _Plan:
  parts: Optional[_Parts]
  method: str
  paired_seeds: list       # common seeds when paired over seeds, else []
  seeds: tuple             # seeds used per arm
  notes: list


def _plan(a: ArmEvidence, b: ArmEvidence, pooled, pair_seeds: bool) -> _Plan:
  common = sorted(set(a.values) & set(b.values), key=str)
  paired = pair_seeds and len(common) >= MIN_PAIRED
  seeds_a = common if paired else sorted(a.values, key=str)
  seeds_b = common if paired else sorted(b.values, key=str)
  notes = []
  if paired:
    notes.append(f"paired over {len(common)} common seeds")
    left_out = len(a.values) + len(b.values) - 2 * len(common)
    if left_out:
      notes.append(f"{left_out} unpaired run(s) left out")
  else:
    notes.append(f"{len(seeds_a)} vs {len(seeds_b)} seeds, unpaired, each arm its own seed "
                 "variance")
    for label, seeds in (("a", seeds_a), ("b", seeds_b)):
      if len(seeds) < 2:
        notes.append(f"{label} has 1 seed: pooled seed variance "
                     + (f"{pooled[0]:.3g} (df {pooled[1]:g})" if pooled else "missing"))
  if _has_records(a, seeds_a) and _has_records(b, seeds_b):
    ta, sa, ca = _table(a, seeds_a)
    tb, sb, cb = _table(b, seeds_b)
    same = _same_units(a, b)
    if same and ta.shape[-1] != tb.shape[-1]:
      raise ValueError(f"arms share the evaluation set {a.eval_set!r} but not its size")
    parts = _records_parts(ta, sa, tb, sb, pair_seeds=paired, pair_units=same, pooled=pooled)
    n_units = int(sa.sum()), int(sb.sum())
    where = (f"paired on {n_units[0]:,} {a.unit}" if same else
             f"unpaired units ({n_units[0]:,} / {n_units[1]:,} {a.unit}, different "
             "evaluation sets)")
    if a.clusters is not None or b.clusters is not None:
      where += (f" in {ca:,}" + ("" if same else f" / {cb:,}") + " clusters (unit part on "
                "cluster totals, ratio estimator)")
    notes.append(where)
    if min(len(seeds_a), len(seeds_b)) < 2 and not paired:
      notes.append("one-seed arm: its residual stays in the unit part (wide)")
    return _Plan(parts, PAIRED if same else UNPAIRED, common if paired else [],
                 (tuple(seeds_a), tuple(seeds_b)), notes)
  missing = [label for label, arm, seeds in (("a", a, seeds_a), ("b", b, seeds_b))
             if not _has_records(arm, seeds)]
  notes.append(f"no per-unit records for {' and '.join(missing)}")
  va = np.array([a.values[s] for s in seeds_a])
  vb = np.array([b.values[s] for s in seeds_b])
  na = _effective_units(a) if _in_unit_range(a, seeds_a) else None
  nb = _effective_units(b) if _in_unit_range(b, seeds_b) else None
  if na and nb:
    method = FALLBACK
    notes.append(f"binomial test-set term on n = {na:,.0f} / {nb:,.0f} {a.unit}, arms' "
                 "test-set errors counted as independent (wide when they share units)")
    if a.clusters is not None or b.clusters is not None:
      notes.append("clustered: n is the effective number of fully correlated clusters")
  else:
    method, na, nb = SEEDS_ONLY, None, None
    notes.append("no evaluation-set term (denominator unknown or metric not a proportion): "
                 "narrow by the test-set error")
  parts = _values_parts(va, vb, na, nb, pair_seeds=paired, pooled=pooled)
  return _Plan(parts, method, common if paired else [], (tuple(seeds_a), tuple(seeds_b)), notes)


def difference(a: ArmEvidence, b: ArmEvidence, *, level: float = LEVEL,
               pooled_seed_var: Optional[tuple] = None,
               pair_seeds: bool = True) -> Optional[Interval]:
  """a − b with its interval; None when an arm has no value, or one seed and no
  `pooled_seed_var` (the variance between seeds of the per-seed metric, and its df).

  Seeds are paired when both arms ran at least MIN_PAIRED common seeds (and `pair_seeds`);
  otherwise each arm's own seed variance counts (Welch), a one-seed arm the pooled one. Units
  are paired when both arms carry records of the same `eval_set`."""
  if not a.values or not b.values:
    return None
  plan = _plan(a, b, pooled_seed_var, pair_seeds)
  if plan.parts is None:
    return None
  r = {k: float(v) for k, v in _combine(plan.parts, level).items()}
  # The summary's numbers, over the seeds the spread comes from (records agree to
  # RECORD_TOLERANCE).
  diff = float(np.mean([a.values[s] for s in plan.seeds[0]])
               - np.mean([b.values[s] for s in plan.seeds[1]]))
  shift = diff - r["diff"]
  total = r["seed_part"] + r["example_part"]
  share = r["example_part"] / total if total > 0 else 0.0
  how = "; ".join(plan.notes + [
      f"evaluation set {share:.0%} of the variance",
      f"df {r['df']:.1f} (Welch-Satterthwaite within seeds and within the evaluation set, the "
      "seed part weighed by its share)"])
  return Interval(float(diff), r["lo"] + shift, r["hi"] + shift, r["se"], r["df"], plan.method,
                  r["seed_part"], r["example_part"], f"{plan.method}: {how}")


def _normal(level: float) -> float:
  return float(scipy_stats.norm.ppf(0.5 + level / 2))


def reachable_halfwidth(a: ArmEvidence, b: ArmEvidence, *, level: float = LEVEL,
                        pooled_seed_var: Optional[tuple] = None) -> float:
  """The narrowest half-width this evaluation set allows: the evaluation-set part alone, as
  infinitely many seeds would leave it (normal quantile). A claim whose margin is below it cannot
  be decided by more seeds. Without records it is the fallback's binomial bound, and with a
  one-seed arm the residual stays in the unit part: both err wide. NaN when the evaluation-set
  part is unknown (no records and no denominator, or a metric that is not a proportion)."""
  # The seed part plays no role here: a stand-in pooled variance lets one-seed arms through.
  plan = _plan(a, b, pooled_seed_var or (0.0, 1.0), pair_seeds=True)
  if plan.method == SEEDS_ONLY:
    return math.nan
  example = float(_combine(plan.parts, level)["example_part"])
  return _normal(level) * math.sqrt(example)


def seeds_needed(a: ArmEvidence, b: ArmEvidence, margin: float, *, level: float = LEVEL,
                 pooled_seed_var: Optional[tuple] = None, limit: int = 100_000) -> Optional[int]:
  """The seeds per arm that would bring the half-width below `margin`, the seed and
  evaluation-set variances held at today's estimates; None when no number of seeds can (the
  evaluation-set part alone is as wide), or when no seed spread is known (one seed each and no
  `pooled_seed_var`: `difference` gives no interval either)."""
  plan = _plan(a, b, pooled_seed_var, pair_seeds=True)
  if plan.parts is None:
    return None
  parts = plan.parts
  example = float(_combine(_Parts(parts.diff, [], parts.groups), level)["example_part"])
  if _normal(level) * math.sqrt(example) >= margin:
    return None
  # Per-seed variances: the seed part times the seeds behind it, arm by arm (or of the paired
  # difference); a one-seed arm's pooled variance counts as its per-seed variance.
  used = [len(s) for s in plan.seeds]
  if plan.paired_seeds:
    per_seed = [float(parts.seed[0][0]) * len(plan.paired_seeds)]
  else:
    per_seed = []
    for k, arm in zip(used, (a, b)):
      if k >= 2:
        per_seed.append(float(np.var([arm.values[s] for s in sorted(arm.values, key=str)],
                                     ddof=1)))
      else:
        per_seed.append(float(pooled_seed_var[0]))

  def halfwidth(k: int) -> float:
    seed = [(v / k, k - 1) for v in per_seed]
    return float(_combine(_Parts(np.float64(0), seed, parts.groups), level)["hi"])

  low = MIN_PAIRED if plan.paired_seeds else 2
  if halfwidth(low) < margin:
    return low
  high = low
  while halfwidth(high) >= margin:
    if high >= limit:
      return None
    high = min(2 * high, limit)
  while high - low > 1:  # halfwidth(low) >= margin > halfwidth(high)
    mid = (low + high) // 2
    low, high = (mid, high) if halfwidth(mid) >= margin else (low, mid)
  return high


def homogeneity(variances_and_dfs: Sequence[tuple]) -> tuple:
  """Bartlett's test that settings share one seed variance: (p-value, pooling allowed).

  Bartlett's rather than Levene's: callers hold each setting's variance and df (a std and a seed
  count), which is all Bartlett's statistic needs, while Levene-type tests need the per-seed
  values; and with 3 seeds a Brown-Forsythe deviation from the median is 0 for one seed in three,
  which leaves it almost no power. Bartlett's sensitivity to non-normal data matters little here:
  each per-seed metric is a mean over thousands of units. Pooling is allowed when p >=
  POOLING_ALPHA (0.10: a pre-test that guards a pooled variance should rather not pool). With 3
  seeds a setting has 2 df, and even a 14x ratio between two such settings goes undetected
  (p ~ 0.14): a test that cannot tell is no licence to pool, which is why `difference` never
  pools an arm that has its own spread."""
  pairs = [(float(v), float(df)) for v, df in variances_and_dfs if df > 0]
  if len(pairs) < 2:
    return 1.0, True
  if any(v <= 0 for v, _ in pairs):
    if all(v <= 0 for v, _ in pairs):
      return 1.0, True
    return 0.0, False  # a zero spread beside a positive one: no common variance
  v = np.array([p[0] for p in pairs])
  df = np.array([p[1] for p in pairs])
  total = df.sum()
  pooled = (df * v).sum() / total
  stat = total * math.log(pooled) - (df * np.log(v)).sum()
  correction = 1 + ((1 / df).sum() - 1 / total) / (3 * (len(pairs) - 1))
  p = float(scipy_stats.chi2.sf(stat / correction, len(pairs) - 1))
  return p, p >= POOLING_ALPHA
