"""The data-parallel layout every run uses, on one CPU or a pod.

The global batch is split along a 1-D `data` mesh axis over all devices of all processes. Each
process feeds only its own share of the global batch, and `jax.make_array_from_process_local_data`
assembles the global array. Parameters and optimizer state are replicated by default; a config
may shard them over the same axis instead (FSDP, for models whose state outgrows a chip at the
paper's scale) and may ask for one explicit gradient reduction per step (`parallelism`: what the
trainer, lamb.train.programs and the memory planner read from a config).
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA = "data"


def make_mesh() -> Mesh:
  return Mesh(np.asarray(jax.devices()), (DATA,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA))


def global_batch(local: dict, mesh: Mesh) -> dict:
  """This process's rows of the global batch -> one global array per key, sharded on `data`."""
  sharding = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in local.items()}


def check_batch_size(global_batch_size: int, microbatches: int = 1) -> None:
  """The global batch must split evenly over processes, devices and micro-batches."""
  devices, processes = jax.device_count(), jax.process_count()
  for what, n in (("devices", devices), ("processes", processes)):
    if global_batch_size % n:
      raise ValueError(f"batch size {global_batch_size} is not divisible by the {n} {what}")
  if global_batch_size % (microbatches * devices):
    raise ValueError(f"batch size {global_batch_size} does not split into {microbatches} "
                     f"micro-batches over {devices} devices")


# --- How a step reduces its gradient and lays out its state (config keys of these names) ------

GRADIENT_REDUCTIONS = ("auto", "explicit")
REDUCTION_DTYPES = ("float32", "bfloat16")
SHARDINGS = ("replicated", "fsdp")
# Models with BatchNorm: under the explicit reduction each device normalises only its own rows.
BATCH_NORM_MODELS = ("resnet", "davidnet")


@dataclasses.dataclass(frozen=True)
class Parallelism:
  """How a train step spreads over the `data` axis; the defaults are what every committed run
  used.

  gradient_reduction: "auto" lets XLA (GSPMD) place the gradient all-reduces where and in the
    dtype it likes (with micro-batches it may keep some inside the accumulation loop);
    "explicit" accumulates each device's own gradient over the micro-batches and reduces it
    once per step, after the loop, in `reduction_dtype` (lamb.train.step).
  reduction_dtype: the dtype of that one reduction, "float32" or "bfloat16" (explicit only).
  sharding: "replicated" parameters and optimizer state, or "fsdp": each of their arrays split
    over `data` on one dimension (`fsdp_spec`), gathered for the forward and backward pass,
    its gradient reduce-scattered.
  """
  gradient_reduction: str = "auto"
  reduction_dtype: Optional[str] = None
  sharding: str = "replicated"

  def __post_init__(self):
    if self.gradient_reduction not in GRADIENT_REDUCTIONS:
      raise ValueError(f"gradient_reduction={self.gradient_reduction!r} is not one of "
                       f"{GRADIENT_REDUCTIONS}")
    if self.sharding not in SHARDINGS:
      raise ValueError(f"sharding={self.sharding!r} is not one of {SHARDINGS}")
    dtype = self.reduction_dtype
    if dtype is not None:
      dtype = jnp.dtype(dtype).name
      if dtype not in REDUCTION_DTYPES:
        raise ValueError(f"gradient_reduction_dtype={self.reduction_dtype!r} is not one of "
                         f"{REDUCTION_DTYPES}")
    if self.gradient_reduction == "auto":
      if dtype not in (None, "float32"):
        raise ValueError(f"gradient_reduction_dtype={dtype!r} needs gradient_reduction="
                         "'explicit' (under 'auto' XLA picks the dtype); set both or neither")
      dtype = None
    object.__setattr__(self, "reduction_dtype", dtype or
                       (None if self.gradient_reduction == "auto" else "float32"))

  @property
  def explicit(self) -> bool:
    return self.gradient_reduction == "explicit"

  @property
  def fsdp(self) -> bool:
    return self.sharding == "fsdp"

  def step_options(self) -> dict:
    """The keyword arguments of lamb.train.step.make_train_step that ask for this layout."""
    return {"gradient_reduction": self.gradient_reduction,
            "reduction_dtype": self.reduction_dtype, "sharding": self.sharding}


def parallelism(config, device_count: Optional[int] = None,
                microbatches: Optional[int] = None) -> Parallelism:
  """A run's Parallelism, from its top-level keys `gradient_reduction`,
  `gradient_reduction_dtype` and `sharding` (absent keys: the defaults). With `device_count`
  the explicit reduction is also refused where it would change what BatchNorm normalises, for
  `microbatches` (default: the config's) micro-batches a step."""
  layout = Parallelism(config.get("gradient_reduction", "auto"),
                       config.get("gradient_reduction_dtype"),
                       config.get("sharding", "replicated"))
  if layout.explicit:
    _check_batch_norm_rows(config, device_count, microbatches)
  return layout


def _check_batch_norm_rows(config, device_count: Optional[int],
                           microbatches: Optional[int]) -> None:
  """Under the explicit reduction each device runs the model on its own rows, so a BatchNorm
  group must lie within one device's share of a micro-batch to mean what it means under
  'auto' (lamb.models.batch_norm); whole-batch BatchNorm (group 0, DavidNet) never does."""
  model = config.get("model") or {}
  if model.get("name") not in BATCH_NORM_MODELS:
    return
  group = model.get("bn_group_size") or 0
  if not group:
    raise ValueError(f"gradient_reduction='explicit' would normalise {model.get('name')}'s "
                     "BatchNorm over each device's rows instead of the whole batch: set "
                     "model.bn_group_size to a divisor of the per-device micro-batch (ResNet), "
                     "or keep gradient_reduction='auto'")
  if device_count:
    microbatches = microbatches or config.get("microbatches", 1) or 1
    rows = config.batch_size // (microbatches * device_count)
    if rows % group:
      raise ValueError(f"model.bn_group_size={group} does not divide the {rows} rows a device "
                       "holds of a micro-batch under gradient_reduction='explicit': pick a "
                       "group size that does, or keep gradient_reduction='auto'")


def fsdp_spec(shape, devices: int) -> P:
  """Where FSDP splits an array of `shape` over `devices`: on its largest dimension that the
  device count divides (the first of equal ones); replicated (P()) when none does (scalars,
  a 101-token vocabulary) or on one device."""
  dims = [d for d, size in enumerate(shape) if size >= devices and size % devices == 0]
  if devices == 1 or not dims:
    return P()
  dim = max(dims, key=lambda d: shape[d])
  return P(*([None] * dim), DATA)


def sharded_dim(spec: P) -> Optional[int]:
  """The dimension a `fsdp_spec` splits over `data`; None for a replicated one."""
  return list(spec).index(DATA) if DATA in tuple(spec) else None


def array_shardings(tree, mesh: Mesh, sharding: str):
  """A NamedSharding per array of `tree` (arrays or ShapeDtypeStructs): all replicated, or
  each on its `fsdp_spec`."""
  if sharding == "replicated":
    return jax.tree.map(lambda _: replicated(mesh), tree)
  devices = mesh.shape[DATA]
  return jax.tree.map(lambda x: NamedSharding(mesh, fsdp_spec(x.shape, devices)), tree)
