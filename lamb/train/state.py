"""The training state: everything a checkpoint must hold to resume a run bit for bit, and where
each of its arrays lives on the data-parallel mesh (lamb.train.mesh)."""
from __future__ import annotations

from typing import Any

import flax.struct
import jax
import optax

from lamb.train import mesh as mesh_lib


@flax.struct.dataclass
class TrainState:
  step: jax.Array  # optimizer steps taken (one per global batch)
  params: Any  # float32 always; the compute dtype only affects activations
  opt_state: optax.OptState
  model_state: Any  # non-trained variables, e.g. batch-norm statistics ({} for LeNet)
  rng: jax.Array  # base key; each step folds its step number in


def shardings(state: TrainState, mesh, sharding: str = "replicated") -> TrainState:
  """A NamedSharding per array of `state` (arrays or ShapeDtypeStructs): the parameters and
  the optimizer state replicated or split by FSDP (`sharding`, mesh_lib.array_shardings); the
  step, the model state (small: batch-norm statistics) and the key always replicated."""
  replicated = mesh_lib.replicated(mesh)
  return TrainState(step=replicated,
                    params=mesh_lib.array_shardings(state.params, mesh, sharding),
                    opt_state=mesh_lib.array_shardings(state.opt_state, mesh, sharding),
                    model_state=jax.tree.map(lambda _: replicated, state.model_state),
                    rng=replicated)


def abstract(shapes: TrainState, mesh, sharding: str = "replicated") -> TrainState:
  """`shapes` (jax.eval_shape of an init) as ShapeDtypeStructs placed as `shardings` places
  them: the state argument of a compile-only lowering (a TPU target, the memory planner)."""
  return jax.tree.map(lambda s, where: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=where),
                      shapes, shardings(shapes, mesh, sharding))
