"""A data-parallel cost model of a training run on an accelerator slice (`run.py --estimate`).

    step time  = compute + all-reduce [+ a Calibration's overhead]
    compute    = FLOPs per chip per step / (peak FLOP/s x utilisation)

The compute term takes the FLOPs that XLA counts in the model's forward and backward pass (per
example) times the per-chip batch, plus the optimizer update, which every replica runs on the
whole model. Nothing overlaps: real systems hide part of the all-reduce behind the backward
pass, so the model errs on the slow side; the utilisation is an assumption
(`DEFAULT_UTILISATION`), printed with every estimate.

All-reduce. On one fabric (a TPU pod's ICI, or the GPUs of one NVLink node) it is a
bandwidth-optimal ring over n chips (Patarasuk and Yuan 2009): each chip sends and receives
2 (n - 1) / n of the B gradient bytes, in 2 (n - 1) hops of latency a:

    ring(B, n, bw, a) = 2 (n - 1) / n x B / bw + 2 (n - 1) x a

A GPU cluster joins nodes of g GPUs (NVLink inside, bandwidth bw_in, hop latency a_in) by a
far slower network (InfiniBand or Ethernet, bw_out per GPU, one NIC each, hop latency a_out).
Over n = g x m GPUs the all-reduce is hierarchical: a reduce-scatter inside each node leaves
every GPU 1/g of the summed gradient; the g GPUs of a node then all-reduce their shard across
the m nodes at once, each on its own NIC (a rail-optimised fabric); an all-gather inside the
node gives every GPU the whole sum:

    reduce-scatter + all-gather inside = 2 (g - 1) / g x B / bw_in + 2 (g - 1) x a_in
    all-reduce across nodes            = ring(B / g, m, bw_out, a_out)

With m = 1 it is the one-node ring. Across nodes each GPU moves 2 (m - 1) / m x B / g bytes,
not 2 B: the inter-node term shrinks with g, which is why nodes of 8 scale where a flat ring
over the slowest link would not.

Measured pods lose more than that (Figure 8: 76.8% from 16 to 1024 TPUv3 chips, where the ring
predicts 98%). A `Calibration` adds what it leaves out, fitted on measured runs:

    step time += fixed + per_hop x 4 (sqrt(n) - 1)

`fixed` is what every step pays whatever the slice (input pipeline, host, launch, and whatever
the assumed utilisation misses); the second term grows with the hops of a 2-D torus all-reduce
(two rings of sqrt(n) chips per dimension, each there and back) and stands for everything that
grows with the slice's diameter (synchronisation, stragglers, the torus's real all-reduce).
`per_hop` is an effective figure, not a link's latency. `fixed` and the utilisation cannot be
told apart on runs of one per-chip batch (both add a constant to every step);
`experiments/calibrate_cost_model.py` shows that, and validates the fit leave-one-out on
Table 1 (benchmarks/COST_MODEL.md).

Bounds the estimate reports besides the time: `memory_bound` (does a device's footprint fit its
HBM) and `input_bound` (do the hosts' input pipelines deliver a batch within the step).
"""
from __future__ import annotations

import dataclasses
import math

GIB = 2**30


@dataclasses.dataclass(frozen=True)
class Accelerator:
  """One kind of chip and the network that joins them; `link_*` is the chip's fast fabric
  (TPU ICI, NVLink), `node_*` the network between nodes where there is one (GPU clusters)."""
  name: str
  peak_flops: float  # per chip, dense bfloat16 matmul, FLOP/s
  link_bandwidth: float  # bytes/s a chip sends (and receives) on the ring of its fast fabric
  hop_latency: float  # seconds per ring hop on the fast fabric
  source: str  # where the figures come from
  hbm_bytes: float | None = None  # per chip
  devices_per_chip: int = 1  # JAX devices a chip shows (TPU v3: its two TensorCores)
  chips_per_node: int = 1  # chips one host drives; a GPU node's NVLink domain
  node_bandwidth: float | None = None  # bytes/s a chip sends across nodes; None: one fabric
  node_hop_latency: float = 0.0  # seconds per ring hop across nodes


ACCELERATORS = {
    "tpu_v3": Accelerator(
        "TPU v3", peak_flops=123e12, link_bandwidth=656e9 / 8, hop_latency=1e-6,
        hbm_bytes=32 * GIB, devices_per_chip=2, chips_per_node=4,
        source="Cloud TPU v3: 123 bf16 TFLOP/s and 32 GiB HBM per chip (two TensorCores of "
               "16 GiB, each a JAX device), 4 chips a host; one 656 Gbit/s ICI link per chip "
               "(Jouppi et al. 2020), hosts' chips joined by ICI; 1 us per hop assumed"),
    "a100": Accelerator(
        "NVIDIA A100 SXM", peak_flops=312e12, link_bandwidth=300e9, hop_latency=2e-6,
        hbm_bytes=80 * GIB, chips_per_node=8, node_bandwidth=200e9 / 8,
        node_hop_latency=5e-6,
        source="A100 datasheet: 312 dense bf16 TFLOP/s, 80 GB HBM2e (SXM 80GB, 80 GiB); "
               "NVLink 600 GB/s bidirectional, 300 GB/s each way; DGX A100 datasheet: 8 GPUs "
               "a node, 8x ConnectX-6 200 Gb/s HDR InfiniBand (one per GPU, 25 GB/s each way); "
               "2 us per NVLink hop and 5 us per InfiniBand hop assumed"),
    "h100": Accelerator(
        "NVIDIA H100 SXM", peak_flops=989e12, link_bandwidth=450e9, hop_latency=2e-6,
        hbm_bytes=80 * GIB, chips_per_node=8, node_bandwidth=400e9 / 8,
        node_hop_latency=5e-6,
        source="H100 datasheet: 989 dense bf16 TFLOP/s, 80 GB HBM3 (SXM, 80 GiB); "
               "NVLink 900 GB/s bidirectional, 450 GB/s each way; DGX H100 datasheet: 8 GPUs "
               "a node, 8x ConnectX-7 400 Gb/s NDR InfiniBand (one per GPU, 50 GB/s each way); "
               "2 us per NVLink hop and 5 us per InfiniBand hop assumed"),
}
DEFAULT_UTILISATION = 0.4


@dataclasses.dataclass(frozen=True)
class Slice:
  """`chips` of one accelerator; on a cluster of nodes (GPUs), whole nodes only."""
  accelerator: Accelerator
  chips: int
  utilisation: float = DEFAULT_UTILISATION

  def __post_init__(self):
    if self.chips < 1:
      raise ValueError(f"a slice needs at least one chip, got {self.chips}")
    if not 0 < self.utilisation <= 1:
      raise ValueError(f"utilisation must be in (0, 1], got {self.utilisation}")
    g = self.accelerator.chips_per_node
    if self.hierarchical and self.chips > g and self.chips % g:
      raise ValueError(
          f"{self.chips} x {self.accelerator.name} is not a whole number of {g}-chip nodes; "
          f"use a multiple of {g} (e.g. {g * math.ceil(self.chips / g)}) or at most {g}")

  @property
  def hierarchical(self) -> bool:
    """Whether nodes are joined by a slower network than the chips' own links."""
    return self.accelerator.node_bandwidth is not None

  @property
  def chips_per_node(self) -> int:
    return min(self.chips, self.accelerator.chips_per_node)

  @property
  def nodes(self) -> int:
    """Hosts (GPU nodes, TPU hosts) of the slice: each runs one input pipeline."""
    return math.ceil(self.chips / self.accelerator.chips_per_node)


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


# `experiments/calibrate_cost_model.py`'s fit on the eight rows of Table 1 that share one shape
# (32 sequences a chip, 9:1 steps at 128:512 tokens), for BERT-Large on TPU v3 at the assumed
# 40%. Leave-one-out errors and the one test outside that shape: benchmarks/COST_MODEL.md.
TPU_V3_BERT = Calibration(
    fixed_s=0.05127, per_hop_s=0.000899,
    source="fitted on Table 1's eight rows of 32 sequences a chip (BERT-Large, TPU v3 at "
           "40% of peak, assumed; benchmarks/COST_MODEL.md)")


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


def ring_allreduce_seconds(gradient_bytes: float, chips: int, bandwidth: float,
                           hop_latency: float) -> float:
  """A bandwidth-optimal ring all-reduce of `gradient_bytes` over `chips` (module docstring)."""
  if chips == 1:
    return 0.0
  return 2 * (chips - 1) / chips * gradient_bytes / bandwidth + 2 * (chips - 1) * hop_latency


def allreduce_parts(gradient_bytes: float, hardware: Slice) -> tuple[float, float]:
  """(seconds on the chips' fast fabric, seconds on the network between nodes) of one
  all-reduce: reduce-scatter and all-gather inside each node, a ring across nodes; one ring
  and no network time where the slice is one fabric (a TPU pod) or one node."""
  a = hardware.accelerator
  if not hardware.hierarchical or hardware.nodes == 1:
    return ring_allreduce_seconds(gradient_bytes, hardware.chips, a.link_bandwidth,
                                  a.hop_latency), 0.0
  g = hardware.chips_per_node
  # A reduce-scatter and an all-gather are each half a ring all-reduce.
  inside = ring_allreduce_seconds(gradient_bytes, g, a.link_bandwidth, a.hop_latency)
  across = ring_allreduce_seconds(gradient_bytes / g, hardware.nodes, a.node_bandwidth,
                                  a.node_hop_latency)
  return inside, across


def allreduce_seconds(gradient_bytes: float, hardware: Slice) -> float:
  return sum(allreduce_parts(gradient_bytes, hardware))


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


def _gib(x: float) -> str:
  return f"{x / GIB:.3g} GiB"


@dataclasses.dataclass(frozen=True)
class MemoryBound:
  """A device's footprint against the HBM it may use."""
  needed_bytes: float
  available_bytes: float

  @property
  def fits(self) -> bool:
    return self.needed_bytes <= self.available_bytes

  @property
  def used(self) -> float:
    return self.needed_bytes / self.available_bytes

  def describe(self) -> str:
    verdict = "fits" if self.fits else "does not fit"
    return (f"{_gib(self.needed_bytes)} of {_gib(self.available_bytes)} per device "
            f"({self.used:.0%}): {verdict}")


def memory_bound(bytes_per_device: float, accelerator: Accelerator,
                 usable_fraction: float = 1.0) -> MemoryBound:
  """Whether `bytes_per_device` (e.g. XLA's memory analysis of the compiled step: arguments,
  outputs and temporaries of one device) fit in a device's share of the chip's HBM.
  `usable_fraction` is what the runtime lets a program have (JAX on a GPU preallocates 75% of
  it unless XLA_PYTHON_CLIENT_MEM_FRACTION says otherwise)."""
  if accelerator.hbm_bytes is None:
    raise ValueError(f"{accelerator.name} has no HBM figure; give its Accelerator hbm_bytes")
  if bytes_per_device < 0:
    raise ValueError(f"bytes per device must be >= 0, got {bytes_per_device}")
  if not 0 < usable_fraction <= 1:
    raise ValueError(f"usable_fraction must be in (0, 1], got {usable_fraction}")
  per_device = accelerator.hbm_bytes / accelerator.devices_per_chip
  return MemoryBound(float(bytes_per_device), per_device * usable_fraction)


@dataclasses.dataclass(frozen=True)
class InputBound:
  """A step's device time against the time its hosts take to deliver the global batch; with
  the input prefetched while the devices work, the step takes the longer of the two."""
  device_s: float  # compute + communication (+ a calibration's overhead)
  input_s: float

  @property
  def step_s(self) -> float:
    return max(self.device_s, self.input_s)

  @property
  def input_bound(self) -> bool:
    return self.input_s > self.device_s

  def describe(self) -> str:
    verdict = "input-bound" if self.input_bound else "not input-bound"
    return (f"input {self.input_s * 1e3:.3g} ms a step against {self.device_s * 1e3:.3g} ms "
            f"on the devices: {verdict}")


def input_bound(device_step_s: float, batch_size: int, examples_per_s_per_host: float,
                hosts: int) -> InputBound:
  """Whether `hosts` input pipelines, each delivering `examples_per_s_per_host` (measured on
  one host), keep up with a step of `batch_size` examples that takes `device_step_s` on the
  devices (`Slice.nodes` hosts a slice)."""
  if examples_per_s_per_host <= 0:
    raise ValueError(f"examples/s per host must be > 0, got {examples_per_s_per_host}")
  if hosts < 1 or batch_size < 1:
    raise ValueError(f"need at least one host and one example, got {hosts} and {batch_size}")
  return InputBound(float(device_step_s), batch_size / (hosts * examples_per_s_per_host))
