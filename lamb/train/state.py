"""The training state: everything a checkpoint must hold to resume a run bit for bit."""
from __future__ import annotations

from typing import Any

import flax.struct
import jax
import optax


@flax.struct.dataclass
class TrainState:
  step: jax.Array  # optimizer steps taken (one per global batch)
  params: Any  # float32 always; the compute dtype only affects activations
  opt_state: optax.OptState
  model_state: Any  # non-trained variables, e.g. batch-norm statistics ({} for LeNet)
  rng: jax.Array  # base key; each step folds its step number in
