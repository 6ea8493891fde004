"""Compiled programs shared by the runs of a sweep.

The appendix grids (Tables 6, 9-25) are hundreds of runs that differ only in numbers: learning
rate, weight decay, seed. Here those numbers are arguments of the jitted functions, never
constants baked into them: a run's optimizer section is split (`lamb.optim.factory.split`) into
its structure, which keys the cache below, and its hyperparameters, which every step receives as
float32 scalars. Runs with the same task, optimizer structure, mesh, micro-batching and
parallelism (lamb.train.mesh.Parallelism: gradient reduction, FSDP) then share one compiled init,
train step and eval step, whatever their numbers and seeds.

JAX's persistent compilation cache (`enable_persistent_cache`) extends the sharing across
processes: a second invocation loads what the first compiled from disk.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np

from lamb import optim
from lamb.train import mesh as mesh_lib
from lamb.train import state as state_lib
from lamb.train import step as step_lib
from lamb.train.state import TrainState

CACHE_ENV = "LAMB_COMPILATION_CACHE"
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "lamb" / "jax_compilation"

_events = {"compiled_or_loaded": 0, "loaded": 0}


def _on_duration(event: str, duration: float, **kwargs) -> None:
  del duration, kwargs
  if event == "/jax/core/compile/backend_compile_duration":  # also timed for cache hits
    _events["compiled_or_loaded"] += 1


def _on_event(event: str, **kwargs) -> None:
  del kwargs
  if event == "/jax/compilation_cache/cache_hits":
    _events["loaded"] += 1


jax.monitoring.register_event_duration_secs_listener(_on_duration)
jax.monitoring.register_event_listener(_on_event)


def compilations() -> int:
  """How many XLA compilations this process has run so far (loads from the persistent cache
  are not compilations)."""
  return _events["compiled_or_loaded"] - _events["loaded"]


def enable_persistent_cache(cache_dir: Optional[str] = None) -> Optional[Path]:
  """Turns on JAX's on-disk compilation cache in `cache_dir` (else $LAMB_COMPILATION_CACHE,
  else ~/.cache/lamb/jax_compilation); "" turns it off. Every program is cached, however fast
  it compiled, so a rerun compiles nothing it compiled before. Returns the folder used."""
  if cache_dir is None:
    cache_dir = os.environ.get(CACHE_ENV, str(DEFAULT_CACHE_DIR))
  if not cache_dir:
    return None
  path = Path(cache_dir).expanduser()
  path.mkdir(parents=True, exist_ok=True)
  jax.config.update("jax_compilation_cache_dir", str(path))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
  return path


def hyperparameters(numbers: Mapping[str, float], mesh) -> dict:
  """The numbers of a run as replicated float32 scalars: always the same type, so that no
  run's values ever select a different compiled program."""
  return jax.device_put({k: np.float32(v) for k, v in numbers.items()},
                        mesh_lib.replicated(mesh))


@dataclasses.dataclass(frozen=True)
class Programs:
  """The jitted functions of one (task, optimizer structure, mesh, micro-batching,
  parallelism)."""
  structure: dict
  init: Callable  # (seed: int32 scalar, hyperparameters) -> TrainState
  train_step: Callable  # (state, batch, hyperparameters) -> (state, metrics)
  eval_step: Callable  # (state, batch) -> (dict of sums, dict of per-row outputs)
  noise_step: Optional[Callable] = None  # (state, batch) -> gradient norms (noise_scale)
  parallelism: mesh_lib.Parallelism = mesh_lib.Parallelism()

  def optimizer(self, numbers: Mapping[str, Any]):
    return optim.create(self.structure, numbers)

  def place(self, tree, like):
    """`tree` (e.g. pre-trained parameters from the host) laid out as `like` (the state's
    arrays it replaces): replicated, or split as FSDP splits them."""
    return jax.device_put(tree, jax.tree.map(lambda a: a.sharding, like))


_PROGRAMS: dict = {}


def _key(task, structure, mesh, microbatches, noise_parts, parallelism) -> tuple:
  devices = tuple(int(d.id) for d in mesh.devices.flat)
  return (id(task), json.dumps(structure, sort_keys=True, default=str), devices,
          mesh.axis_names, int(microbatches), int(noise_parts), parallelism)


def get(task, structure: dict, mesh, microbatches: int = 1, noise_parts: int = 0,
        parallelism: Optional[mesh_lib.Parallelism] = None) -> Programs:
  """The shared programs for these runs, built (not yet compiled) on first use; `noise_parts`
  > 0 adds the gradient-noise measurement over that many slices of a batch. `parallelism`
  (mesh_lib.parallelism(config); default: GSPMD's reduction, replicated state) says how the
  train step reduces gradients and where the state lives: under FSDP `init` returns it split."""
  parallelism = parallelism or mesh_lib.Parallelism()
  key = _key(task, structure, mesh, microbatches, noise_parts, parallelism)
  if key in _PROGRAMS:
    return _PROGRAMS[key][1]
  replicated = mesh_lib.replicated(mesh)
  sharding = parallelism.sharding

  def init(seed, numbers):
    key = jax.random.PRNGKey(seed)
    params, model_state = task.init(key)
    opt_state = optim.create(structure, numbers).init(params)
    return TrainState(step=jnp.zeros([], jnp.int32), params=params, opt_state=opt_state,
                      model_state=model_state, rng=jax.random.fold_in(key, 1))

  def split_init(seed, numbers):  # FSDP: each array made where it lives
    state = init(seed, numbers)
    return jax.lax.with_sharding_constraint(state, state_lib.shardings(state, mesh, sharding))

  programs = Programs(
      structure=structure,
      init=(jax.jit(init, out_shardings=replicated) if sharding == "replicated"
            else jax.jit(split_init)),
      train_step=step_lib.make_train_step(
          task.loss_fn, lambda numbers: optim.create(structure, numbers), mesh, microbatches,
          learning_rate_fn=lambda numbers: optim.learning_rate(structure, numbers),
          **parallelism.step_options()),
      eval_step=step_lib.make_eval_step(task.eval_fn, mesh, sharding),
      noise_step=(step_lib.make_noise_step(task.loss_fn, mesh, noise_parts, sharding)
                  if noise_parts else None),
      parallelism=parallelism)
  # The task is kept alive with its programs, so its id() is never reused by another task.
  _PROGRAMS[key] = (task, programs)
  return programs


def clear() -> None:
  """Forgets every shared program (tests use it to compile a run alone)."""
  _PROGRAMS.clear()
