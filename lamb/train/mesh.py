"""The one data-parallel layout every run uses, on one CPU or a pod.

Parameters and optimizer state are replicated; the global batch is split along a 1-D `data`
mesh axis over all devices of all processes. Each process feeds only its own share of the
global batch, and `jax.make_array_from_process_local_data` assembles the global array.
"""
from __future__ import annotations

import logging
import os
from typing import Optional

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA = "data"


def cluster_environment(environ=None) -> Optional[str]:
  """The multi-process launcher this process runs under, when jax can read the job from it
  (`jax.distributed.initialize()` without arguments): a SLURM job step of several tasks, an
  Open MPI job of several ranks, or a multi-host Cloud TPU slice. None for one process."""
  env = os.environ if environ is None else environ
  if "SLURM_JOB_ID" in env and int(env.get("SLURM_NTASKS", env.get("SLURM_NPROCS", "1"))) > 1:
    return "SLURM"
  if int(env.get("OMPI_COMM_WORLD_SIZE", "1")) > 1:
    return "Open MPI"
  if "," in env.get("TPU_WORKER_HOSTNAMES", ""):
    return "a multi-host TPU slice"
  return None


def initialize_distributed(coordinator_address: Optional[str], num_processes: Optional[int],
                           process_id: Optional[int], cpu_collectives: str = "gloo") -> None:
  """Join a multi-process job: the one the flags name, or the one the launcher's environment
  describes (TPU pods, SLURM, Open MPI), which jax reads itself. One process otherwise."""
  if not coordinator_address:
    launcher = cluster_environment()
    if launcher:
      logging.info("multi-process job from the %s environment (jax.distributed auto-detection)",
                   launcher)
      jax.distributed.initialize()
    return
  # Only the CPU backend reads this; it lets processes on one machine all-reduce over gloo.
  jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=num_processes, process_id=process_id)


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
