"""A data-parallel cost model of a training run on an accelerator slice.

    step time  = compute + all-reduce
    compute    = FLOPs per chip per step / (peak FLOP/s x utilisation)
    all-reduce = 2 (n - 1) / n x gradient bytes / link bandwidth + 2 (n - 1) x hop latency

The compute term takes the FLOPs that XLA counts in the model's forward and backward pass (per
example) times the per-chip batch, plus the optimizer update, which every replica runs on the
whole model. The all-reduce term is a bandwidth-optimal ring over n chips (Patarasuk and Yuan
2009): each chip sends and receives 2 (n - 1) / n of the gradient, in 2 (n - 1) hops. Nothing
overlaps: real systems hide part of the all-reduce behind the backward pass, and a 2-D torus
all-reduce has fewer hops than a ring, so both terms err on the slow side; the utilisation is an
assumption, printed with every estimate.

Measured pods lose more than that model says (Figure 8: 76.8% from 16 to 1024 TPUv3 chips, where
it predicts 98%). A `Calibration` adds what it leaves out, fitted on measured runs:

    step time += fixed + per_hop x 4 (sqrt(n) - 1)

`fixed` is what every step pays whatever the slice (input pipeline, host, launch, and whatever
the compute term's assumed utilisation misses); the second term grows with the hops of a 2-D
torus all-reduce (two rings of sqrt(n) chips per dimension, each there and back), and stands for
everything that grows with the slice's diameter (synchronisation, stragglers, the torus's
real all-reduce). `per_hop` is an effective figure, not a link's latency.
`experiments/calibrate_cost_model.py` fits both on some rows of Table 1 and reports the error
on the others.
"""
from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class Accelerator:
  name: str
  peak_flops: float  # per chip, dense bfloat16 matmul, FLOP/s
  link_bandwidth: float  # bytes/s a chip sends (and receives) on the ring
  hop_latency: float  # seconds per ring hop
  source: str  # where the figures come from


ACCELERATORS = {
    "tpu_v3": Accelerator(
        "TPU v3", peak_flops=123e12, link_bandwidth=656e9 / 8, hop_latency=1e-6,
        source="Cloud TPU v3: 123 bf16 TFLOP/s per chip; one 656 Gbit/s ICI link per chip "
               "(Jouppi et al. 2020); 1 us per hop assumed"),
    "a100": Accelerator(
        "NVIDIA A100 SXM", peak_flops=312e12, link_bandwidth=300e9, hop_latency=2e-6,
        source="A100 datasheet: 312 dense bf16 TFLOP/s; NVLink 600 GB/s bidirectional, "
               "300 GB/s each way; 2 us per hop assumed"),
    "h100": Accelerator(
        "NVIDIA H100 SXM", peak_flops=989e12, link_bandwidth=450e9, hop_latency=2e-6,
        source="H100 datasheet: 989 dense bf16 TFLOP/s; NVLink 900 GB/s bidirectional, "
               "450 GB/s each way; 2 us per hop assumed"),
}
DEFAULT_UTILISATION = 0.4


@dataclasses.dataclass(frozen=True)
class Slice:
  accelerator: Accelerator
  chips: int
  utilisation: float = DEFAULT_UTILISATION

  def __post_init__(self):
    if self.chips < 1:
      raise ValueError(f"a slice needs at least one chip, got {self.chips}")
    if not 0 < self.utilisation <= 1:
      raise ValueError(f"utilisation must be in (0, 1], got {self.utilisation}")


def slice_from(name: str, chips: int, utilisation: float = DEFAULT_UTILISATION) -> Slice:
  if name not in ACCELERATORS:
    raise ValueError(f"unknown accelerator {name!r}; known: {', '.join(sorted(ACCELERATORS))}")
  return Slice(ACCELERATORS[name], int(chips), float(utilisation))


@dataclasses.dataclass(frozen=True)
class Calibration:
  """Per-step time the ring model leaves out, fitted on measured runs (module docstring)."""
  fixed_s: float
  per_hop_s: float
  source: str

  def overhead_seconds(self, chips: int) -> float:
    return self.fixed_s + self.per_hop_s * torus_hops(chips)


# `experiments/calibrate_cost_model.py`'s fit (benchmarks/COST_MODEL.md: held-out rows of Table 1
# within 8%, Figure 8's efficiencies within 5 points). For BERT-Large on TPU v3 at the assumed 40%.
TPU_V3_BERT = Calibration(
    fixed_s=0.0549, per_hop_s=0.000808,
    source="fitted on Table 1's LAMB rows 512, 2K, 8K, 32K (BERT-Large, TPU v3 at 40% of peak; "
           "benchmarks/COST_MODEL.md)")


def torus_hops(chips: int) -> float:
  """Hops of a 2-D torus all-reduce over `chips` (a square of sqrt(chips) a side)."""
  return 4 * (math.sqrt(chips) - 1)


def fit_calibration(rows, source: str) -> Calibration:
  """Least squares of `fixed + per_hop x torus_hops(n)` on rows (chips, unexplained seconds
  per step): what measured steps took beyond the uncalibrated model's prediction."""
  rows = list(rows)
  if len({chips for chips, _ in rows}) < 2:
    raise ValueError("a calibration needs measured runs on at least two slice sizes")
  xs = [torus_hops(chips) for chips, _ in rows]
  ys = [seconds for _, seconds in rows]
  x_mean, y_mean = sum(xs) / len(xs), sum(ys) / len(ys)
  slope = (sum((x - x_mean) * (y - y_mean) for x, y in zip(xs, ys))
           / sum((x - x_mean) ** 2 for x in xs))
  return Calibration(fixed_s=y_mean - slope * x_mean, per_hop_s=slope, source=source)


def allreduce_seconds(gradient_bytes: float, hardware: Slice) -> float:
  n = hardware.chips
  if n == 1:
    return 0.0
  a = hardware.accelerator
  return 2 * (n - 1) / n * gradient_bytes / a.link_bandwidth + 2 * (n - 1) * a.hop_latency


@dataclasses.dataclass(frozen=True)
class Phase:
  """Steps of one shape: a batch size, the FLOPs of one example, the optimizer's FLOPs."""
  name: str
  steps: int
  batch_size: int
  flops_per_example: float  # forward + backward
  optimizer_flops: float  # one update of the whole model


@dataclasses.dataclass(frozen=True)
class PhaseCost:
  phase: Phase
  compute_s: float
  allreduce_s: float
  overhead_s: float = 0.0  # a Calibration's (0 without one)

  @property
  def step_s(self) -> float:
    return self.compute_s + self.allreduce_s + self.overhead_s

  @property
  def total_s(self) -> float:
    return self.step_s * self.phase.steps

  @property
  def total_flops(self) -> float:
    return self.phase.steps * self.phase.batch_size * self.phase.flops_per_example


def phase_cost(phase: Phase, gradient_bytes: float, hardware: Slice,
               calibration: Calibration | None = None) -> PhaseCost:
  per_chip = math.ceil(phase.batch_size / hardware.chips) * phase.flops_per_example
  rate = hardware.accelerator.peak_flops * hardware.utilisation
  overhead = calibration.overhead_seconds(hardware.chips) if calibration else 0.0
  return PhaseCost(phase, (per_chip + phase.optimizer_flops) / rate,
                   allreduce_seconds(gradient_bytes, hardware), overhead)


def at_chips(phase: Phase, chips_from: int, chips_to: int) -> Phase:
  """The same epochs on another slice with the per-chip batch fixed (weak scaling)."""
  ratio = chips_to / chips_from
  return dataclasses.replace(phase, batch_size=max(1, round(phase.batch_size * ratio)),
                             steps=math.ceil(phase.steps / ratio))


def run_seconds(phases, gradient_bytes: float, hardware: Slice,
                calibration: Calibration | None = None) -> float:
  return sum(phase_cost(p, gradient_bytes, hardware, calibration).total_s for p in phases)


def scaling_efficiency(phases, gradient_bytes: float, base: Slice, scaled: Slice,
                       calibration: Calibration | None = None) -> float:
  """Speedup of the whole run from `base` to `scaled` over the chip ratio, the batch growing
  with the chips (the paper's Figure 8: 16 TPUv3 chips at batch 512 against 1024 at 32K)."""
  base_phases = [at_chips(p, scaled.chips, base.chips) for p in phases]
  speedup = run_seconds(base_phases, gradient_bytes, base, calibration) / run_seconds(
      phases, gradient_bytes, scaled, calibration)
  return speedup / (scaled.chips / base.chips)
