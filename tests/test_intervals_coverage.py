"""analysis.intervals: hand-computed cases, and the coverage of its 95% interval by simulation.

The simulation draws arms with a known population difference (probit model; see `Regime`), runs
the engine's vectorised core on every replication, and counts how often the interval holds the
truth. `coverage_table()` returns the table the test prints.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import time

import numpy as np
import pytest
from scipy import stats as scipy_stats

from analysis import intervals as iv

SEED_COUNTS = (3, 5, 10)
# Replications per seed count. Monte-Carlo sd of a 95% coverage: 0.28% at 6000, 0.49% at 2000.
# Three seeds leave 2 df to the seed part, where any analytic interval is furthest from 95%
# (94.3-96.4% here): more replications keep the check from failing on Monte-Carlo noise.
REPS = {3: 6000, 5: 2000, 10: 2000}
CHUNK = 2_500_000    # (replication, seed, unit) cells drawn at once
BOUNDS = (0.93, 0.97)
POOLING = iv.POOLING_ALPHA


@dataclasses.dataclass(frozen=True)
class Regime:
  """Latent score of arm k, seed s, unit u in cluster c: mu_k + seed_k[s] + shared[u] + own_k[u]
  + cluster_shared[c] + cluster_own_k[c] + eps; correct when above 0 (eps standard normal, a
  share eps_corr of its variance common to seed s of both arms).
  Truth: theta_k = Phi(mu_k / sqrt(1 + sum of the variances)), the metric's expectation over
  seeds and evaluation sets."""
  name: str
  mu: tuple = (1.05, 1.0)
  seed_sd: tuple = (0.05, 0.05)
  seed_corr: float = 0.3      # seed s of both arms shares initialisation and data order
  shared_seeds: bool = True   # False: disjoint seed ids (each arm its own variance, Welch)
  unit_shared: float = 1.0    # difficulty both arms see
  unit_own: float = 0.3       # difficulty particular to each arm
  eps_corr: float = 0.0       # seed s of both arms getting the same units right
  units: int = 1000           # tokens when clustered
  same_units: bool = True     # False: each arm its own evaluation set
  clusters: int = 0           # sequences (0: independent units)
  cluster_shared: float = 0.0
  cluster_own: float = 0.0

  def truth(self) -> float:
    theta = [scipy_stats.norm.cdf(m / math.sqrt(1 + sd ** 2 + self.unit_shared ** 2
                                                + self.unit_own ** 2 + self.cluster_shared ** 2
                                                + self.cluster_own ** 2))
             for m, sd in zip(self.mu, self.seed_sd)]
    return float(theta[0] - theta[1])


REGIMES = (
    Regime("seed-dominated", seed_sd=(0.12, 0.12), unit_own=0.15),
    Regime("example-dominated", seed_sd=(0.005, 0.005), unit_own=0.8),
    Regime("balanced", seed_sd=(0.04, 0.04), unit_own=0.4, eps_corr=0.3),
    Regime("unequal seed var (10x)", seed_sd=(0.04 * math.sqrt(10), 0.04), unit_own=0.4,
           shared_seeds=False),
    Regime("clustered tokens", mu=(0.05, 0.0), seed_sd=(0.03, 0.03), unit_shared=0.5,
           unit_own=0.3, units=2000, clusters=100, cluster_shared=1.0, cluster_own=0.5),
    Regime("unpaired (other eval set)", seed_sd=(0.04, 0.04), unit_own=0.4, same_units=False),
    Regime("4,000 units", seed_sd=(0.02, 0.02), unit_own=0.5, units=4_000),
)


# The simulation spends its time drawing; both kinds of draw go through tables.
# Outcomes: P(correct) = Phi(latent) on a latent grid of step 1/256 (at cell midpoints, in units
# of 1/65536), compared with a uniform 16-bit integer. Rounding a latent to the grid moves P by
# under 1e-3, by as much up as down: the expected metric, the truth, does not move.
# Normal effects: the quantiles of 65536 equiprobable cells, rescaled to unit variance (tails
# stop at 4.4 sd, which moves an expected accuracy by ~1e-5).
_STEP, _LOW, _GRID = 1 / 256, -16.0, 8192
_MARGIN = 2048  # grid cells kept free on both sides for the seed and shared-noise offsets
_PHI16 = np.minimum(np.round(
    scipy_stats.norm.cdf(_LOW + _STEP * (np.arange(_GRID) + 0.5)) * 65536), 65535).astype(
        np.uint16)
_NORMAL = scipy_stats.norm.ppf((np.arange(65536) + 0.5) / 65536)
_NORMAL = (_NORMAL / _NORMAL.std()).astype(np.float32)


def _normal(rng, shape) -> np.ndarray:
  return _NORMAL[rng.integers(0, 65536, shape, dtype=np.uint16)]


def _grid(latent: np.ndarray, *, offset: bool = False) -> np.ndarray:
  """Latents as grid indices (offsets for seed and noise terms, which add to a unit's index)."""
  if offset:
    return np.rint(np.asarray(latent) * (1 / _STEP)).astype(np.int16)
  index = np.floor((np.asarray(latent) - _LOW) * (1 / _STEP)).astype(np.int32)
  return np.clip(index, _MARGIN, _GRID - 1 - _MARGIN).astype(np.int16)


def _bernoulli(unit_index: np.ndarray, seed_offset: np.ndarray, rng,
               noise_offset: np.ndarray | None = None) -> np.ndarray:
  """0/1 outcomes (reps, seeds, units) as int8, P(1) = Phi at grid cell unit_index[u] +
  seed_offset[s] (+ noise_offset[s, u])."""
  index = unit_index[:, None, :] + seed_offset[:, :, None]
  if noise_offset is not None:
    index += noise_offset
  threshold = _PHI16[index]
  return (rng.integers(0, 65536, index.shape, dtype=np.uint16) < threshold).view(np.int8)


def _draw(regime: Regime, seeds: int, reps: int, rng: np.random.Generator) -> dict:
  """One chunk of replications: per arm the (reps, seeds, clusters) score totals, the units per
  cluster (reps, clusters), and for clustered regimes the token records (reps, seeds, tokens,
  sorted by sequence) with their sequence ids (reps, tokens)."""
  r, s, u = reps, seeds, regime.units
  z1 = rng.standard_normal((r, s))
  z2 = rng.standard_normal((r, s))
  rho = regime.seed_corr if regime.shared_seeds else 0.0
  alpha = (regime.seed_sd[0] * z1, regime.seed_sd[1] * (rho * z1 + math.sqrt(1 - rho ** 2) * z2))
  shared = regime.unit_shared * _normal(rng, (r, u))
  shared_b = shared if regime.same_units else regime.unit_shared * _normal(rng, (r, u))
  out = {}
  if regime.clusters:
    c = regime.clusters
    # Tokens fall into sequences at random: lengths vary (multinomial, mean units / c).
    sizes = rng.multinomial(u, np.full(c, 1 / c), size=r)
    assert sizes.all(), "an empty sequence"  # mean length 20: chance ~1e-7 per draw
    cluster_ids = np.tile(np.arange(c), r)
    out["ids"] = np.repeat(cluster_ids, sizes.ravel()).reshape(r, u)
    starts = np.concatenate([[0], np.cumsum(sizes.ravel())[:-1]])
    common = regime.cluster_shared * rng.standard_normal((r, c))
    for k, key in enumerate(("a", "b")):
      effect = common + regime.cluster_own * rng.standard_normal((r, c))
      per_token = np.repeat(effect.ravel(), sizes.ravel()).reshape(r, u)
      if k == 0:
        shared_a_tokens = shared + per_token
      else:
        shared_b = shared_b + per_token
    shared = shared_a_tokens
    out["sizes"] = sizes.astype(np.float64)
  else:
    out["sizes"] = np.ones(u)
  # eps_corr: a seed x unit noise both arms share (seed s of both gets the same units right), of
  # variance eps_corr; the rest of the unit-variance noise is each arm's own. Scaled by 1 / sd of
  # the own noise, the latent compares with standard normal noise.
  scale = 1 / math.sqrt(1 - regime.eps_corr)
  noise = (_grid(math.sqrt(regime.eps_corr) * scale * _normal(rng, (r, s, u)), offset=True)
           if regime.eps_corr else None)
  for k, (base, mu, a) in enumerate(((shared, regime.mu[0], alpha[0]),
                                     (shared_b, regime.mu[1], alpha[1]))):
    level = mu + base + regime.unit_own * _normal(rng, (r, u))
    correct = _bernoulli(_grid(level * scale), _grid(a * scale, offset=True), rng, noise)
    if regime.clusters:
      # tokens are sorted by sequence: a sequence's total is a sum over a contiguous stretch
      by_seed = correct.astype(np.int16).transpose(1, 0, 2).reshape(s, r * u)
      totals = np.add.reduceat(by_seed, starts, axis=1).reshape(s, r, c).transpose(1, 0, 2)
      out["ab"[k] + " tokens"] = correct
    else:
      totals = correct
    out["ab"[k]] = totals
  return out


def _covered(res: dict, truth: float) -> np.ndarray:
  return (res["lo"] <= truth) & (truth <= res["hi"])


def _naive(va, vb, n) -> dict:
  """Binomial test-set term on n independent units per side, seeds paired: the reference rows."""
  return iv._combine(iv._values_parts(va, vb, n, n, pair_seeds=True))


def _run(regime: Regime, seeds: int, rng) -> dict:
  """Coverage counts per method on REPS replications of `regime` with `seeds` seeds per arm."""
  truth = regime.truth()
  hits, share = {}, []
  paired = regime.shared_seeds  # as `difference` decides: >= MIN_PAIRED common seeds
  chunk = max(1, CHUNK // (seeds * regime.units))
  reps = REPS[seeds]
  for start in range(0, reps, chunk):
    d = _draw(regime, seeds, min(chunk, reps - start), rng)
    ta, tb, sizes = d["a"], d["b"], d["sizes"]
    res = iv._combine(iv._records_parts(ta, sizes, tb, sizes, pair_seeds=paired,
                                        pair_units=regime.same_units))
    found = {"engine": res}
    n = sizes.sum(-1)
    va, vb = ta.sum(-1) / np.atleast_1d(n)[..., None], tb.sum(-1) / np.atleast_1d(n)[..., None]
    if regime.clusters:
      eff = n ** 2 / (sizes ** 2).sum(-1)  # fully correlated sequences: what the fallback assumes
    else:
      eff = float(regime.units)
    found["fallback"] = iv._combine(iv._values_parts(va, vb, eff, eff, pair_seeds=paired))
    if regime.clusters:
      ones = np.ones(regime.units)  # the same draws, tokens as independent units
      found["engine, clusters ignored"] = iv._combine(iv._records_parts(
          d["a tokens"], ones, d["b tokens"], ones,
          pair_seeds=paired, pair_units=True))
      found["naive binomial, n = tokens"] = _naive(va, vb, float(regime.units))
      found["naive binomial, n = sequences"] = _naive(va, vb, float(regime.clusters))
    for name, r in found.items():
      hits[name] = hits.get(name, 0) + int(_covered(r, truth).sum())
    share.append(res["example_part"] / (res["seed_part"] + res["example_part"]))
  return {"coverage": {k: v / reps for k, v in hits.items()},
          "example share": float(np.mean(np.concatenate(share)))}


@functools.lru_cache(maxsize=1)
def _simulate() -> tuple:
  rng = np.random.default_rng(20240611)
  rows = []
  began = time.perf_counter()
  for regime in REGIMES:
    for seeds in SEED_COUNTS:
      rows.append((regime, seeds, _run(regime, seeds, rng)))
  return rows, time.perf_counter() - began


REFERENCE = ("engine, clusters ignored", "naive binomial, n = tokens",
             "naive binomial, n = sequences")


def coverage_table() -> str:
  """The coverage of the 95% interval per regime and seed count (REPS replications each)."""
  rows, seconds = _simulate()
  lines = [f"coverage of the 95% interval; replications per cell: "
           + ", ".join(f"{REPS[s]} with {s} seeds" for s in SEED_COUNTS)
           + f" (Monte-Carlo sd 0.3% / 0.5%); {seconds:.1f} s",
           f"{'regime':28s} {'method':42s} " + " ".join(f"{s:>3d} seeds" for s in SEED_COUNTS)
           + "  eval-set share (3/5/10)"]
  by_regime = {}
  for regime, seeds, result in rows:
    by_regime.setdefault(regime.name, {})[seeds] = result
  for name, cells in by_regime.items():
    methods = list(cells[SEED_COUNTS[0]]["coverage"])
    for method in methods:
      label = method + (" (reference)" if method in REFERENCE else "")
      line = f"{name:28s} {label:42s} " + " ".join(
          f"{cells[s]['coverage'][method]:9.1%}" for s in SEED_COUNTS)
      if method == "engine":
        line += "  " + "/".join(f"{cells[s]['example share']:.0%}" for s in SEED_COUNTS)
      lines.append(line)
  return "\n".join(lines)


def test_coverage_of_the_interval_by_simulation():
  print("\n" + coverage_table())
  rows, _ = _simulate()
  failures = []
  for regime, seeds, result in rows:
    cov = result["coverage"]
    if not BOUNDS[0] <= cov["engine"] <= BOUNDS[1]:
      failures.append(f"{regime.name}, {seeds} seeds: engine {cov['engine']:.1%}")
    # The fallback counts the arms' test-set errors as independent (and clusters as fully
    # correlated): conservative by design, so only its lower bound is asserted.
    if cov["fallback"] < BOUNDS[0]:
      failures.append(f"{regime.name}, {seeds} seeds: fallback {cov['fallback']:.1%}")
  assert not failures, failures


# ---------------------------------------------------------------------------------------------
# Hand-computed and property tests.

B = {1: [0.7, 0.5, 0.1, 0.5], 2: [0.7, 0.5, 0.1, 0.3], 3: [0.7, 0.5, 0.1, 0.7]}
D = {1: [0.2, 0.0, 0.1, 0.3], 2: [0.3, 0.1, 0.0, 0.4], 3: [0.1, -0.1, 0.2, 0.2]}


def _arm(records: dict, *, eval_set="set", clusters=None, unit="questions", with_records=True,
         units=None) -> iv.ArmEvidence:
  recs = {s: np.asarray(r, dtype=float) for s, r in records.items()}
  return iv.ArmEvidence(values={s: float(r.mean()) for s, r in recs.items()},
                        records=recs if with_records else None, clusters=clusters,
                        eval_set=eval_set, units=units, unit=unit)


def test_hand_computed_tiny_example():
  # d = a - b over 3 seeds x 4 units (F1 scores). Seed means of d .15 .20 .10: variance .0025,
  # seed part .0025/3. Unit means .2 .0 .1 .3: variance .05/3, unit term .05/3/4. Residual
  # d - m_s - u_u + .15: row 1 zeros, rows 2 and 3 +-(.05 .05 -.15 .05): SS .06 over 2 x 3 df,
  # MS .01, counted in the seed part as .01/12 and taken off the unit term once.
  a = _arm({s: np.add(B[s], D[s]) for s in B})
  b = _arm(B)
  got = iv.difference(a, b)
  seed, unit, resid = 0.0025 / 3, 0.05 / 3 / 4, 0.01 / 12
  var = seed + unit - resid
  # df: 1/df = w_seed / 2 + w_example^2 / df_example, df_example Welch-Satterthwaite's from the
  # unit term (3 df) less the residual (6 df).
  example_df = (unit - resid) ** 2 / (unit ** 2 / 3 + resid ** 2 / 6)
  df = 1 / ((seed / var) / 2 + ((unit - resid) / var) ** 2 / example_df)
  half = scipy_stats.t.ppf(0.975, df) * math.sqrt(var)
  assert got.method == iv.PAIRED
  assert got.diff == pytest.approx(0.15)
  assert got.seed_part == pytest.approx(seed)
  assert got.example_part == pytest.approx(unit - resid)
  assert got.df == pytest.approx(2.2727, abs=1e-4)
  assert got.df == pytest.approx(df)
  assert (got.lo, got.hi) == pytest.approx((0.15 - half, 0.15 + half))
  assert got.halfwidth() == pytest.approx(half)
  assert str(got) == f"{0.15:+.4f} [{0.15 - half:+.4f}, {0.15 + half:+.4f}]"
  assert "paired over 3 common seeds" in got.how and "df 2.3" in got.how


def _one(regime: Regime, seeds: int, seed: int = 1, d=None, i: int = 0):
  """Replication i of a draw as per-seed records (tokens when clustered) and cluster ids."""
  d = d or _draw(regime, seeds, 1, np.random.default_rng(seed))
  key = " tokens" if regime.clusters else ""  # the records of tokens, not sequence totals
  arms = [{s: d[k + key][i, s].astype(np.float64) for s in range(seeds)} for k in "ab"]
  return arms, (d["ids"][i] if regime.clusters else None)


def test_pairing_on_units_narrows_the_interval():
  (ra, rb), _ = _one(dataclasses.replace(REGIMES[2], seed_sd=(0.01, 0.01), unit_own=0.3), 5)
  paired = iv.difference(_arm(ra, unit="images"), _arm(rb, unit="images"))
  unpaired = iv.difference(_arm(ra, unit="images"), _arm(rb, eval_set="other", unit="images"))
  print(f"\nshared difficulty, 5 seeds x 1000 images: paired on units {paired} "
        f"(half-width {paired.halfwidth():.4f}), unpaired {unpaired} "
        f"(half-width {unpaired.halfwidth():.4f})")
  assert paired.method == iv.PAIRED and unpaired.method == iv.UNPAIRED
  assert paired.diff == pytest.approx(unpaired.diff)
  # The seed part (which carries each seed's own luck on 1000 images) is the same; the
  # difficulty both arms share leaves the unpaired one's evaluation-set part only.
  assert paired.se < 0.7 * unpaired.se
  assert paired.halfwidth() < unpaired.halfwidth()
  assert paired.example_part < 0.3 * unpaired.example_part


def test_clustering_widens_the_interval():
  (ra, rb), clusters = _one(REGIMES[4], 5)
  kw = dict(unit="masked tokens")
  clustered = iv.difference(_arm(ra, clusters=clusters, **kw), _arm(rb, clusters=clusters, **kw))
  flat = iv.difference(_arm(ra, **kw), _arm(rb, **kw))
  print(f"\nmasked tokens in 100 sequences, 5 seeds: clustered {clustered} "
        f"(half-width {clustered.halfwidth():.4f}), tokens as independent {flat} "
        f"(half-width {flat.halfwidth():.4f})")
  assert clustered.diff == pytest.approx(flat.diff)
  assert clustered.example_part > 2 * flat.example_part
  assert clustered.halfwidth() > 1.3 * flat.halfwidth()
  assert "clusters" in clustered.how


def test_the_engine_is_the_vectorised_core():
  regime = REGIMES[4]
  d = _draw(regime, 5, 3, np.random.default_rng(7))
  batch = iv._combine(iv._records_parts(d["a"], d["sizes"], d["b"], d["sizes"], pair_seeds=True,
                                        pair_units=True))
  for i in range(3):
    (ra, rb), clusters = _one(regime, 5, d=d, i=i)
    one = iv.difference(_arm(ra, clusters=clusters), _arm(rb, clusters=clusters))
    assert (one.lo, one.hi, one.df) == pytest.approx(
        (batch["lo"][i], batch["hi"][i], batch["df"][i]))


@pytest.mark.parametrize("regime", REGIMES[:6], ids=lambda r: r.name)
def test_reachable_halfwidth_is_below_the_interval(regime):
  (ra, rb), clusters = _one(regime, 3, seed=3)
  b_set = "set" if regime.same_units else "other"
  a, b = _arm(ra, clusters=clusters), _arm(rb, clusters=clusters, eval_set=b_set)
  got = iv.difference(a, b)
  reach = iv.reachable_halfwidth(a, b)
  assert 0 <= reach <= got.halfwidth()  # 0: the unit part of the difference fell below noise
  assert reach == pytest.approx(1.959964 * math.sqrt(got.example_part), rel=1e-5)
  fa, fb = _arm(ra, with_records=False, units=len(ra[0])), _arm(rb, with_records=False,
                                                                units=len(rb[0]))
  fallback = iv.difference(fa, fb)
  assert fallback.method == iv.FALLBACK
  assert iv.reachable_halfwidth(fa, fb) <= fallback.halfwidth()


def test_seeds_needed():
  (ra, rb), _ = _one(REGIMES[2], 5)
  a, b = _arm(ra), _arm(rb)
  got = iv.difference(a, b)
  reach = iv.reachable_halfwidth(a, b)
  assert iv.seeds_needed(a, b, 0.9 * reach) is None  # the evaluation set alone is wider
  margin = 0.5 * (reach + got.halfwidth())
  k = iv.seeds_needed(a, b, margin)
  assert k is not None and k > 5
  assert iv.seeds_needed(a, b, 3 * got.halfwidth()) == iv.MIN_PAIRED
  # More seeds never need more: a wider margin needs no more seeds.
  assert iv.seeds_needed(a, b, 1.2 * margin) <= k


def test_one_seed_arm_needs_a_pooled_variance():
  (ra, rb), _ = _one(REGIMES[2], 3)
  a, b = _arm({0: ra[0]}), _arm(rb)
  assert iv.difference(a, b) is None
  got = iv.difference(a, b, pooled_seed_var=(1e-5, 12))
  assert got is not None and "pooled seed variance" in got.how
  assert got.method == iv.PAIRED


def test_fallback_uses_the_denominator_and_says_so():
  values_a, values_b = {1: 0.80, 2: 0.82, 3: 0.81}, {1: 0.78, 2: 0.79, 3: 0.80}
  a = iv.ArmEvidence(values_a, None, None, None, 10_000, "images")
  b = iv.ArmEvidence(values_b, None, None, None, 10_000, "images")
  got = iv.difference(a, b)
  d = np.subtract(list(values_a.values()), list(values_b.values()))
  binom = (0.81 * 0.19 + 0.79 * 0.21) / 10_000
  assert got.method == iv.FALLBACK and "independent" in got.how
  assert got.seed_part == pytest.approx(d.var(ddof=1) / 3)
  assert got.example_part == pytest.approx(binom)
  assert got.df == pytest.approx(2 * (got.seed_part + binom) / got.seed_part)
  none = iv.difference(dataclasses.replace(a, units=None), dataclasses.replace(b, units=None))
  assert none.method == iv.SEEDS_ONLY and none.example_part == 0
  assert math.isnan(iv.reachable_halfwidth(dataclasses.replace(a, units=None), b))


def test_records_must_match_the_summary():
  a = _arm(B)
  broken = dataclasses.replace(a, values={**a.values, 1: a.values[1] + 0.01})
  with pytest.raises(ValueError, match="seed 1"):
    iv.difference(broken, _arm(B))


def test_homogeneity():
  # 14x between settings of 10 seeds each: rejected; of 3 seeds each: a 2-df test cannot tell.
  p, allowed = iv.homogeneity([(14e-4, 9), (1e-4, 9)])
  assert p < 0.01 and not allowed
  p, allowed = iv.homogeneity([(14e-4, 4), (1e-4, 4)])  # 5 seeds each
  assert p < POOLING and not allowed
  p, allowed = iv.homogeneity([(1e-4, 2), (1.1e-4, 2), (0.9e-4, 4), (1e-4, 9)])
  assert p > 0.5 and allowed
  # With 3 seeds a setting has 2 df: 14x is undetectable, even over many settings (which is why
  # `difference` never pools an arm that has its own spread).
  assert iv.homogeneity([(14e-4, 2), (1e-4, 2)])[0] > 0.1
  assert iv.homogeneity([(14e-4, 2)] * 5 + [(1e-4, 2)] * 5)[0] > 0.1
  # Bartlett's statistic against scipy's on raw samples
  rng = np.random.default_rng(0)
  samples = [rng.normal(0, sd, n) for sd, n in ((1, 5), (2, 7), (1.5, 4))]
  expect = scipy_stats.bartlett(*samples).pvalue
  assert iv.homogeneity([(x.var(ddof=1), len(x) - 1) for x in samples])[0] == pytest.approx(expect)
