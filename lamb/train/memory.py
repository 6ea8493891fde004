"""Per-device memory of a run's train step on a named target, decided before step 0.

A paper-scale run is planned against a target (`run.py --estimate --target=tpu-v3-1024`): for
each phase, the project's own train step is compiled at the target's per-device batch and its
memory read from XLA's buffer assignment, then the cheapest memory layout that fits is chosen:

    layout     micro-batches (gradient accumulation) x rematerialisation policy (`remat`)
    cost       an assumed step-time factor per layout (LAYOUT_COST, printed with the plan)
    fits       bytes <= the device's memory x (1 - headroom)

TPU targets are compiled for the target chip with the compile-only client of the `libtpu`
wheel (`jax.experimental.topologies`; no TPU needed: the numbers are the TPU compiler's own).
The program is compiled on a small slice of the target's family at the target's per-device
batch: with parameters replicated, a device's memory does not depend on the slice's size
(only the collectives' groups do; under FSDP, `sharding="fsdp"`, the parameters and optimizer
state split over the small slice's devices, so the number is an upper bound for a larger one).
Other targets (GPUs) get the best estimate available here,
the same step compiled for the host CPU, and say that it is one.

BERT's depth is extrapolated: the step is compiled with 2 and 4 encoder layers and the
difference scaled to the model's depth (EXTRAPOLATED_FROM) (every layer holds the same arrays;
compiling 24 layers for a TPU takes minutes on a laptop). Layers are not scanned (`nn.scan`) to
save that compile time, because a scanned model stacks its layers into one tensor and LAMB's
trust ratio is per layer.

Remat is layout, not numerics: a run keeps its identity when it changes
(experiments.sweep.LAYOUT_KEYS), and the trainer allows a change at a phase boundary and records
it. Micro-batches are part of a run's identity (each draws its own dropout masks and divides by
its own masked-token count): the plan decides them before the identity is taken, so the same
--target gives the same runs, and a run trained without micro-batches is another run than one
planned with them (the plan says so). Attention probabilities in bfloat16 save more but change
the numerics, so the plan reports them as an alternative a user opts into
(`--config.model.attention_probs_dtype=bfloat16`), and never applies them.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
from pathlib import Path
from typing import Optional

GIB = 2 ** 30
DEFAULT_HEADROOM = 0.10  # of the device's memory, left for the runtime, fragmentation, input
CACHE_ENV = "LAMB_MEMORY_CACHE"
DEFAULT_CACHE = Path.home() / ".cache" / "lamb" / "memory.json"


@dataclasses.dataclass(frozen=True)
class Family:
  """An accelerator family: memory per chip and where to compile for it."""
  kind: str  # "tpu" or "gpu"
  label: str
  hbm_per_chip: float  # bytes
  topology: Optional[str] = None  # the compile-only slice (TPU)
  cloud_prefix: Optional[str] = None  # Cloud TPU accelerator type: prefix, and the
  cloud_cores_per_chip: int = 0  # TensorCores it counts per chip (0: it counts chips)
  source: str = ""


FAMILIES = {
    "tpu-v2": Family("tpu", "TPU v2", 16 * GIB, "v2:2x2", "v2", 2,
                     "Cloud TPU v2: 16 GiB HBM per chip (2 TensorCores)"),
    "tpu-v3": Family("tpu", "TPU v3", 32 * GIB, "v3:2x2", "v3", 2,
                     "Cloud TPU v3: 32 GiB HBM per chip (2 TensorCores, 16 GiB each)"),
    "tpu-v5e": Family("tpu", "TPU v5e", 16 * GIB, "v5e:2x2", "v5litepod", 0,
                      "Cloud TPU v5e: 16 GiB HBM per chip"),
    "tpu-v5p": Family("tpu", "TPU v5p", 95 * GIB, "v5p:2x2x1", "v5p", 2,
                      "Cloud TPU v5p: 95 GiB HBM per chip (2 TensorCores as one device)"),
    "tpu-v6e": Family("tpu", "TPU v6e", 32 * GIB, "v6e:2x2", "v6e", 0,
                      "Cloud TPU v6e: 32 GiB HBM per chip"),
    "h100-80gb": Family("gpu", "NVIDIA H100 80GB", 80 * GIB,
                        source="H100 SXM datasheet: 80 GB HBM3"),
    "h200-141gb": Family("gpu", "NVIDIA H200", 141e9, source="H200 datasheet: 141 GB HBM3e"),
    "a100-80gb": Family("gpu", "NVIDIA A100 80GB", 80 * GIB, source="A100 datasheet: 80 GB"),
    "a100-40gb": Family("gpu", "NVIDIA A100 40GB", 40 * GIB, source="A100 datasheet: 40 GB"),
}


@dataclasses.dataclass(frozen=True)
class Target:
  name: str
  family: Family
  chips: int
  devices_per_chip: int  # JAX devices (TPU v2/v3: one per TensorCore)

  @property
  def devices(self) -> int:
    return self.chips * self.devices_per_chip

  @property
  def device_memory(self) -> float:
    return self.family.hbm_per_chip / self.devices_per_chip

  def describe(self) -> str:
    text = f"{self.chips:,} x {self.family.label}"
    if self.family.kind == "tpu":
      count = self.chips * (self.family.cloud_cores_per_chip or 1)
      text += (f" ({self.devices:,} devices of {self.device_memory / GIB:.0f} GiB; Cloud TPU "
               f"accelerator type {self.family.cloud_prefix}-{count})")
    else:
      text += f" ({self.device_memory / GIB:.0f} GiB each)"
    return text


# TPU v2/v3 run one JAX device per TensorCore; v5p one per chip (megacore); v5e/v6e have one
# core. (TPU v4 is left out: its compile-only topology here gives two devices per chip where
# a v4 VM runs one, so its per-device memory would be in doubt.)
_DEVICES_PER_CHIP = {"tpu-v2": 2, "tpu-v3": 2, "tpu-v5e": 1, "tpu-v5p": 1, "tpu-v6e": 1}


def parse_target(text: str, chips: Optional[int] = None) -> Target:
  """`tpu-v3-1024` (1,024 chips, the paper's unit), `h100-80gb-32` (32 GPUs) or `h100-80gb`
  with `chips`. ValueError naming the known families otherwise."""
  match = re.fullmatch(r"(.+?)(?:-(\d+))?", (text or "").strip().lower())
  family = match.group(1) if match else ""
  if family not in FAMILIES:
    raise ValueError(f"unknown --target {text!r}; give a family and a chip count, e.g. "
                     f"tpu-v3-1024 or h100-80gb-32; families: {', '.join(FAMILIES)}")
  count = int(match.group(2)) if match.group(2) else chips
  if not count or count < 1:
    raise ValueError(f"--target={text} names no chip count; add it (e.g. {family}-32) or give "
                     "--chips")
  return Target(text, FAMILIES[family], int(count), _DEVICES_PER_CHIP.get(family, 1))


@dataclasses.dataclass(frozen=True)
class Layout:
  microbatches: int
  remat: str

  def describe(self) -> str:
    parts = [f"{self.microbatches} micro-batch{'es' if self.microbatches > 1 else ''}"]
    parts.append("no remat" if self.remat == "none" else f"remat {self.remat}")
    return ", ".join(parts)


# Assumed step time of a layout against (1 micro-batch, no remat): a micro-batch costs a little
# (smaller matmuls, a loop), "minimal" recomputes the attention and elementwise ops (~15%),
# "full" a whole forward pass (~1/3 of a step). Assumptions, printed with the plan.
REMAT_COST = {"none": 1.0, "minimal": 1.15, "full": 1.33}
MICROBATCH_COST = 0.05  # per doubling of the micro-batches
LAYOUT_COST = ("micro-batches +5% per doubling, remat minimal +15%, full +33% (assumed)")


def cost(layout: Layout) -> float:
  return REMAT_COST[layout.remat] * (1 + MICROBATCH_COST * math.log2(layout.microbatches))


def candidates(per_device_batch: int, remat_policies=("none", "minimal", "full"),
               max_microbatches: int = 64, allowed=lambda k: True) -> list:
  """Every layout a phase could use, cheapest first: micro-batch counts that divide the
  per-device batch (and that `allowed` admits), times the remat policies."""
  counts = [k for k in (1, 2, 4, 8, 16, 32, 64)
            if k <= max_microbatches and per_device_batch % k == 0 and allowed(k)]
  layouts = [Layout(k, r) for k in counts for r in remat_policies]
  return sorted(layouts, key=lambda l: (cost(l), l.microbatches))


@dataclasses.dataclass(frozen=True)
class Measurement:
  bytes: float
  method: str  # how the number was obtained


@dataclasses.dataclass(frozen=True)
class PhaseMemory:
  phase: str
  per_device_batch: int
  layout: Optional[Layout]  # the chosen one; None when none fits
  measurement: Optional[Measurement]
  tried: tuple  # ((Layout, Measurement), ...) in the order tried
  alternative: Optional[str] = None  # a cheaper fit that changes the numerics, if any


@dataclasses.dataclass(frozen=True)
class MemoryPlan:
  target: Target
  headroom: float
  phases: tuple

  @property
  def budget(self) -> float:
    return budget(self.target, self.headroom)

  @property
  def fits(self) -> bool:
    return all(p.layout is not None for p in self.phases)

  def lines(self) -> list:
    gpu = (", and jax's GPU allocator takes 75% unless XLA_PYTHON_CLIENT_MEM_FRACTION is set"
           if self.target.family.kind == "gpu" else "")
    out = [f"  memory on {self.target.describe()}: budget {self.budget / GIB:.2f} GiB a device "
           f"({100 * self.headroom:.0f}% headroom{gpu}); layout cost {LAYOUT_COST}"]
    for p in self.phases:
      tried = "; ".join(f"{l.describe()}: {_gib(m.bytes)}" for l, m in p.tried)
      if p.layout is None:
        out.append(f"  {p.phase}: {p.per_device_batch} examples a device: NO layout fits "
                   f"(tried {tried})")
      else:
        out.append(f"  {p.phase}: {p.per_device_batch} examples a device -> {p.layout.describe()}"
                   f", {p.measurement.bytes / GIB:.2f} GiB ({p.measurement.method}); "
                   f"tried {tried}")
      if p.alternative:
        out.append(f"    {p.alternative}")
    return out

  def refusal(self) -> str:
    """The one line a plan that cannot fit exits with."""
    bad = [p for p in self.phases if p.layout is None]
    worst = {p.phase: min(m.bytes for _, m in p.tried) for p in bad if p.tried}
    unsplit = [p.phase for p in bad if not p.tried]
    return (f"no memory layout of phase(s) {', '.join(p.phase for p in bad)} fits "
            f"{self.target.describe()}: "
            + ", ".join([f"{k} needs at least {_gib(v)}" for k, v in worst.items()]
                        + [f"{k} has no micro-batch count that splits its batch" for k in unsplit])
            + f" against a budget of {self.budget / GIB:.2f} GiB; give a larger target or more "
            "chips, or a smaller batch")


def budget(target: Target, headroom: float) -> float:
  """The bytes a device may use: its memory less the headroom, and on a GPU no more than the
  fraction jax's allocator takes (XLA_PYTHON_CLIENT_MEM_FRACTION, 0.75 unless set)."""
  usable = 1 - headroom
  if target.family.kind == "gpu":
    usable = min(usable, float(os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION", 0.75)))
  return target.device_memory * usable


def _gib(value: float) -> str:
  return ("more than the device holds (the compiler refused it)" if math.isinf(value)
          else f"{value / GIB:.2f} GiB")


# ---------------------------------------------------------------------------------------------
# Compiling the step


def _prepare_tpu_client() -> None:
  """The compile-only client must not claim a TPU that training on this host may hold."""
  os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
  os.environ.setdefault("TPU_MIN_LOG_LEVEL", "3")
  os.environ.setdefault("TPU_STDERR_LOG_LEVEL", "3")


def prepare_planning_process() -> None:
  """For a process that only plans (`--estimate`): compile on the host, never claim a device,
  and tell libtpu it is no TPU VM (it would look for one's metadata and print a page of
  warnings). Never in a training process: these variables are what cluster detection reads."""
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  os.environ.setdefault("TPU_SKIP_MDS_QUERY", "1")
  os.environ.setdefault("TPU_ACCELERATOR_TYPE", "v3-8")  # the compile-only topology overrides it
  os.environ.setdefault("TPU_WORKER_HOSTNAMES", "localhost")
  os.environ.setdefault("TPU_WORKER_ID", "0")
  _prepare_tpu_client()


def compile_only_available() -> bool:
  """Whether the `libtpu` wheel (the compile-only TPU client) is installed."""
  import importlib.util  # pylint: disable=import-outside-toplevel
  return importlib.util.find_spec("libtpu") is not None


def _devices(target: Target):
  """(devices to compile for, how the number is obtained)."""
  import jax  # pylint: disable=import-outside-toplevel
  if target.family.kind == "tpu":
    if not compile_only_available():
      raise ValueError(f"--target={target.name} compiles for the TPU with the compile-only "
                       "client of the libtpu wheel, which is not installed; run `pip install "
                       "-e .[tpu-plan]` (or `pip install libtpu`), or plan for a GPU target")
    _prepare_tpu_client()
    from jax.experimental import topologies  # pylint: disable=import-outside-toplevel
    topology = topologies.get_topology_desc(platform="tpu",
                                            topology_name=target.family.topology)
    return list(topology.devices), f"compiled for {target.family.label} (libtpu compile-only)"
  return jax.devices("cpu")[:1], ("estimate: the step compiled for this host's CPU "
                                  "(XLA:CPU buffer assignment, not the GPU's)")


def _step_bytes(phase_config, layout: Layout, per_device_batch: int, devices,
                optimizer: dict, cache: Optional[dict] = None) -> float:
  """The per-device bytes of the compiled train step of `phase_config` under `layout`. The
  cache is keyed by the lowered program and the device kind: the same program compiles to the
  same memory, whatever code produced it."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  from jax.sharding import Mesh, NamedSharding  # pylint: disable=import-outside-toplevel
  from jax.sharding import PartitionSpec as P  # pylint: disable=import-outside-toplevel
  from lamb import optim  # pylint: disable=import-outside-toplevel
  # pylint: disable=import-outside-toplevel
  from lamb.train import mesh as mesh_lib, programs as programs_lib, state as state_lib, tasks

  config = phase_config.copy_and_resolve_references()
  with config.unlocked():
    config.remat = layout.remat
  task = tasks.build(config, load_data=False)
  mesh = Mesh(np.asarray(devices), ("data",))
  structure, numbers = optim.split(optimizer)
  parallelism = mesh_lib.parallelism(config)
  # The trainer's own programs (lamb.train.programs), so the plan measures what will run.
  programs = programs_lib.get(task, structure, mesh, layout.microbatches,
                              parallelism=parallelism)
  train_step = programs.train_step
  shapes = jax.eval_shape(programs.init, jax.ShapeDtypeStruct((), jnp.int32),
                          {k: jax.ShapeDtypeStruct((), jnp.float32) for k in numbers})
  replicated, rows = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
  state = state_lib.abstract(shapes, mesh, parallelism.sharding)
  batch = {k: jax.ShapeDtypeStruct((per_device_batch * len(devices),) + tuple(v.shape),
                                   v.dtype, sharding=rows) for k, v in task.example.items()}
  hyper = {k: jax.ShapeDtypeStruct((), jnp.float32, sharding=replicated) for k in numbers}
  lowered = train_step.lower(state, batch, hyper)
  key = hashlib.sha256((lowered.as_text() + devices[0].device_kind
                        + jax.__version__).encode()).hexdigest()[:32]
  if cache is not None and key in cache:
    return cache[key]
  try:
    stats = lowered.compile().memory_analysis()
  except Exception as e:  # pylint: disable=broad-except  (jax's runtime error type varies)
    # The TPU compiler refuses a program larger than the chip's memory: it does not fit.
    if "RESOURCE_EXHAUSTED" not in str(e):
      raise
    value = math.inf
  else:
    # Donated state aliases its output: count it once.
    value = float(stats.argument_size_in_bytes + stats.output_size_in_bytes
                  - stats.alias_size_in_bytes + stats.temp_size_in_bytes
                  + stats.generated_code_size_in_bytes)
  if cache is not None:
    cache[key] = value
  return value


def _depth_key(config) -> Optional[str]:
  """The config field that sets a model's repeated depth, when its step can be extrapolated."""
  if (config.get("task") in ("bert_pretraining", "squad")
      and (config.get("model") or {}).get("name") == "bert"):
    return "num_hidden_layers"
  return None


def measure(phase_config, layout: Layout, per_device_batch: int, target: Target,
            optimizer: dict, cache: Optional[dict] = None) -> Measurement:
  """The per-device memory of one phase under one layout on `target`."""
  devices, method = _devices(target)
  depth_field = _depth_key(phase_config)
  if depth_field is None:
    value = _step_bytes(phase_config, layout, per_device_batch, devices, optimizer, cache)
  else:
    from lamb.train import bert_tasks  # pylint: disable=import-outside-toplevel
    depth = bert_tasks.bert_config(phase_config.model).num_hidden_layers
    if depth <= EXTRAPOLATED_FROM[-1]:
      return Measurement(_step_bytes(phase_config, layout, per_device_batch, devices, optimizer,
                                     cache), method)
    sizes = []
    for layers in EXTRAPOLATED_FROM:
      shallow = phase_config.copy_and_resolve_references()
      with shallow.unlocked():
        shallow.model.num_hidden_layers = layers
      sizes.append(_step_bytes(shallow, layout, per_device_batch, devices, optimizer, cache))
    (lo, hi), (low, high) = EXTRAPOLATED_FROM, sizes
    value = high + (depth - hi) * (high - low) / (hi - lo)
    method += f"; {depth} layers extrapolated from {lo}- and {hi}-layer compiles"
  return Measurement(value, method)


# Depths compiled to extrapolate a deep encoder. Not 1 and 2: a 1-layer program's temporaries
# are laid out unlike a deeper one's (TPU v3, BERT-Large at length 128: 0.51 GiB of
# temporaries with 1 layer, 0.39 GiB with 2), which made a 1-2 extrapolation of 24 layers
# smaller than the parameters and optimizer state alone.
EXTRAPOLATED_FROM = (2, 4)


class DiskCache(dict):
  """Compiled bytes by program, saved after every compile: a plan stopped halfway keeps what
  it measured ($LAMB_MEMORY_CACHE, default ~/.cache/lamb/memory.json)."""

  def __init__(self, path: Path, values: dict):
    super().__init__(values)
    self.path = path

  def __setitem__(self, key, value):
    super().__setitem__(key, value)
    save_cache(self, self.path)


def load_cache(path: Optional[str] = None) -> dict:
  path = Path(path or os.environ.get(CACHE_ENV) or DEFAULT_CACHE)
  try:
    values = json.loads(path.read_text())
  except (OSError, ValueError):
    values = {}
  return DiskCache(path, values if isinstance(values, dict) else {})


def save_cache(cache: dict, path: Optional[str] = None) -> None:
  path = Path(path or getattr(cache, "path", None) or os.environ.get(CACHE_ENV)
              or DEFAULT_CACHE)
  try:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(dict(cache), sort_keys=True))
    os.replace(tmp, path)
  except OSError:
    pass  # a cache that cannot be written only costs a recompile


# ---------------------------------------------------------------------------------------------
# Planning


def _batch_norm_limits(config, batch_size: int) -> dict:
  """A micro-batch (of the global batch) must hold whole BatchNorm groups
  (`model.bn_group_size`, lamb.train.plan); under whole-batch BatchNorm (group 0) a
  micro-batch would change what is normalised: none then."""
  model = config.get("model") or {}
  from lamb.train.mesh import BATCH_NORM_MODELS  # pylint: disable=import-outside-toplevel
  if model.get("name") not in BATCH_NORM_MODELS:
    return {}
  group = model.get("bn_group_size") or 0
  if not group:
    return {"max_microbatches": 1}
  return {"allowed": lambda k: (batch_size // k) % group == 0}


def plan_phase(name: str, phase_config, batch_size: int, target: Target, optimizer: dict,
               budget: float, fixed: Optional[Layout] = None, cache=None,
               measure_fn=measure) -> PhaseMemory:
  """The cheapest layout of one phase that fits `budget` (or `fixed`, checked)."""
  if batch_size % target.devices:
    raise ValueError(f"phase {name}: batch {batch_size} does not split over the "
                     f"{target.devices} devices of {target.describe()}")
  per_device = batch_size // target.devices
  # Only BERT's encoder layers can be rematerialised (lamb.models.bert.REMAT_POLICIES).
  policies = ("none", "minimal", "full") if _depth_key(phase_config) else ("none",)
  options = [fixed] if fixed is not None else candidates(
      per_device, policies, **_batch_norm_limits(phase_config, batch_size))
  if fixed is not None and per_device % fixed.microbatches:
    raise ValueError(f"phase {name}: {fixed.microbatches} micro-batches do not split the "
                     f"{per_device} examples a device holds on {target.describe()}")
  if len(options) > 1:
    # After the cheapest, the layout that saves the most: when even it does not fit, nothing
    # will, and a refusal costs two compiles, not one per layout.
    leanest = max(options, key=lambda l: (l.microbatches, REMAT_COST[l.remat]))
    options = [options[0], leanest] + [l for l in options[1:] if l != leanest]
  tried, fallback = [], None
  for i, layout in enumerate(options):
    m = measure_fn(phase_config, layout, per_device, target, optimizer, cache)
    tried.append((layout, m))
    if i == 1:  # the leanest: the answer when no cheaper layout fits, or there is none
      if m.bytes > budget:
        break
      fallback = (layout, m)
    elif m.bytes <= budget:
      return _chosen(name, per_device, layout, m, tried, phase_config, target, optimizer,
                     budget, cache, measure_fn)
  if fallback is not None:
    return _chosen(name, per_device, *fallback, tried, phase_config, target, optimizer, budget,
                   cache, measure_fn)
  return PhaseMemory(name, per_device, None, None, tuple(tried))


def _chosen(name, per_device, layout, m, tried, phase_config, target, optimizer, budget, cache,
            measure_fn) -> PhaseMemory:
  return PhaseMemory(name, per_device, layout, m, tuple(tried),
                     _numerics_alternative(phase_config, layout, per_device, target, optimizer,
                                           budget, cache, measure_fn))


def _numerics_alternative(phase_config, chosen: Layout, per_device, target, optimizer, budget,
                          cache, measure_fn) -> Optional[str]:
  """When the chosen layout costs time: whether bfloat16 attention probabilities would fit
  without one (a numerics change the user opts into, never applied here)."""
  if (cost(chosen) <= 1.0 or phase_config.get("compute_dtype") != "bfloat16"
      or _depth_key(phase_config) is None
      or (phase_config.get("model") or {}).get("attention_probs_dtype",
                                               "float32") != "float32"):
    return None
  alt = phase_config.copy_and_resolve_references()
  with alt.unlocked():
    alt.model.attention_probs_dtype = "bfloat16"
  plain = Layout(1, "none")  # one more compile, not one per layout
  m = measure_fn(alt, plain, per_device, target, optimizer, cache)
  if m.bytes <= budget:
    return (f"cheaper with attention probabilities in bfloat16 (changes the numerics, so "
            f"the run's identity): {plain.describe()}, {m.bytes / GIB:.2f} GiB; opt in with "
            "--config.model.attention_probs_dtype=bfloat16")
  return (f"attention probabilities in bfloat16 would not fit without a layout either: "
          f"{plain.describe()}, {m.bytes / GIB:.2f} GiB")


def plan_run(phases, target: Target, optimizer: dict, headroom: float = DEFAULT_HEADROOM,
             fixed=None, cache=None, measure_fn=measure) -> MemoryPlan:
  """The memory plan of a run: `phases` is [(name, phase config, global batch)], `fixed` an
  optional [Layout] per phase the user chose (then only checked)."""
  if not 0 <= headroom < 1:
    raise ValueError(f"memory headroom must be in [0, 1), got {headroom}")
  rows = tuple(plan_phase(name, cfg, batch, target, optimizer, budget(target, headroom),
                          fixed[i] if fixed else None, cache, measure_fn)
               for i, (name, cfg, batch) in enumerate(phases))
  return MemoryPlan(target, headroom, rows)
