"""The one data-parallel layout every run uses, on one CPU or a pod.

Parameters and optimizer state are replicated; the global batch is split along a 1-D `data`
mesh axis over all devices of all processes. Each process feeds only its own share of the
global batch, and `jax.make_array_from_process_local_data` assembles the global array.
"""
from __future__ import annotations

from typing import Optional

import jax
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
