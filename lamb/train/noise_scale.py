"""The gradient noise scale B_simple = tr(Σ) / |G|² (McCandlish et al. 2018, "An Empirical Model of
Large-Batch Training", Appendix A.1): the batch size beyond which a larger batch buys little.

A measurement (`lamb.train.step.make_noise_step`) splits one global batch of B examples into k
equal slices of b = B/k, and returns the mean squared norm of the k slice gradients, |G_b|², and
the squared norm of their mean, |G_B|². Since E|G_n|² = |G|² + tr(Σ)/n for a batch of n,

    |G|²  ≈ (B |G_B|² − b |G_b|²) / (B − b)
    tr(Σ) ≈ (|G_b|² − |G_B|²) / (1/b − 1/B)

are unbiased, but each is noisy; the paper averages both over many steps before dividing
(`b_simple`). Pure Python: the analysis reads it without jax.
"""
from __future__ import annotations

import math
from typing import Iterable, Optional

SPLIT = "noise"  # the records' `split` in metrics.jsonl


def estimates(g_small_sq: float, g_big_sq: float, b_small: float, b_big: float) -> tuple:
  """(|G|², tr(Σ)) from one measurement (see the module docstring)."""
  if not 0 < b_small < b_big:
    raise ValueError(f"need 0 < b_small < b_big, got {b_small}, {b_big}")
  g_sq = (b_big * g_big_sq - b_small * g_small_sq) / (b_big - b_small)
  trace = (g_small_sq - g_big_sq) / (1 / b_small - 1 / b_big)
  return g_sq, trace


def record(step: int, g_small_sq: float, g_big_sq: float, b_small: int, b_big: int,
           **tags) -> dict:
  """The metrics.jsonl line of one measurement, its per-step estimates included."""
  g_sq, trace = estimates(g_small_sq, g_big_sq, b_small, b_big)
  return {"step": step, "split": SPLIT, **tags, "b_small": b_small, "b_big": b_big,
          "g_small_sq": g_small_sq, "g_big_sq": g_big_sq, "g_sq": g_sq, "trace": trace}


def b_simple(records: Iterable[dict]) -> Optional[float]:
  """tr(Σ) / |G|² from the means of both over `records` (None when |G|² is not positive: the
  gradient signal is lost in the noise of the measurements)."""
  records = [r for r in records if math.isfinite(r.get("g_sq", math.nan))
             and math.isfinite(r.get("trace", math.nan))]
  if not records:
    return None
  g_sq = sum(r["g_sq"] for r in records) / len(records)
  trace = sum(r["trace"] for r in records) / len(records)
  return trace / g_sq if g_sq > 0 else None


def interval(records: Iterable[dict], z: float = 1.96) -> Optional[tuple]:
  """(B_simple, low, high): the ratio of means with a delta-method interval over the records
  (each measurement one draw). None when there are fewer than 3 records, when the mean |G|²
  is within 2 standard errors of zero (the gradient signal is lost in the measurement noise) or
  when the mean tr(Σ) is not positive."""
  records = [r for r in records if math.isfinite(r.get("g_sq", math.nan))
             and math.isfinite(r.get("trace", math.nan))]
  n = len(records)
  if n < 3:
    return None
  g = [r["g_sq"] for r in records]
  t = [r["trace"] for r in records]
  mg, mt = sum(g) / n, sum(t) / n
  var = lambda xs, m: sum((x - m) ** 2 for x in xs) / (n - 1)
  cov = sum((a - mg) * (b - mt) for a, b in zip(g, t)) / (n - 1)
  if mg <= 2 * math.sqrt(var(g, mg) / n):
    return None
  ratio = mt / mg
  if ratio <= 0:  # a negative trace estimate: the noise term is lost in the measurements
    return None
  se = math.sqrt(max(0.0, var(t, mt) - 2 * ratio * cov + ratio ** 2 * var(g, mg)) / n) / mg
  return ratio, ratio - z * se, ratio + z * se


def halves(records: Iterable[dict], total_steps: int) -> tuple:
  """(the records of the first half of training, those of the second half)."""
  records = list(records)
  half = total_steps / 2
  return ([r for r in records if r["step"] <= half], [r for r in records if r["step"] > half])


def early_and_late(records: Iterable[dict], total_steps: int) -> tuple:
  """(B_simple over the first half of training, over the second half)."""
  early, late = halves(records, total_steps)
  return b_simple(early), b_simple(late)
