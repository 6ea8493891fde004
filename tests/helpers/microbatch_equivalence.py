"""Gradient accumulation against one big batch, through `lamb.train.step.make_train_step`.

`trajectories(optimizer, microbatches)` trains a tiny MLP for a few steps on fixed random data
over the mesh of all local devices and returns the loss and the parameters after every step.
Run as a script (e.g. under XLA_FLAGS=--xla_force_host_platform_device_count=4) it prints, as
one JSON line, the largest relative differences between microbatches=1 and each of 2 and 4
(`max_relative_differences`).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from lamb import optim  # noqa: E402
from lamb.train import mesh as mesh_lib, step as step_lib  # noqa: E402
from lamb.train.state import TrainState  # noqa: E402

BATCH, FEATURES, HIDDEN, CLASSES, STEPS = 64, 8, 16, 4, 4


def _params():
  rng = np.random.default_rng(0)
  return {"dense1": {"kernel": rng.normal(size=(FEATURES, HIDDEN)).astype(np.float32) / 3,
                     "bias": np.zeros(HIDDEN, np.float32)},
          "dense2": {"kernel": rng.normal(size=(HIDDEN, CLASSES)).astype(np.float32) / 4,
                     "bias": np.zeros(CLASSES, np.float32)}}


def _batches():
  rng = np.random.default_rng(1)
  return [{"x": rng.normal(size=(BATCH, FEATURES)).astype(np.float32),
           "y": rng.integers(0, CLASSES, size=(BATCH,)).astype(np.int32)} for _ in range(STEPS)]


def loss_fn(params, model_state, batch, rng, train):
  del rng, train
  h = jnp.tanh(batch["x"] @ params["dense1"]["kernel"] + params["dense1"]["bias"])
  logits = h @ params["dense2"]["kernel"] + params["dense2"]["bias"]
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]).mean()
  accuracy = jnp.mean(jnp.argmax(logits, -1) == batch["y"])
  return loss, ({"accuracy": accuracy}, model_state)


OPTIMIZERS = {
    # plain momentum SGD is sensitive to the gradient's scale (a sum instead of a mean shows),
    "momentum": lambda: optim.momentum(0.5, momentum=0.9),
    # LAMB is what the experiments run (with weight decay and trust ratios).
    "lamb": lambda: optim.lamb(0.05, weight_decay=0.01),
}


def trajectories(optimizer: str, microbatches: int):
  """[(loss, accuracy, params)] after each step; params as numpy trees."""
  mesh = mesh_lib.make_mesh()
  tx = OPTIMIZERS[optimizer]()
  params = jax.tree.map(jnp.asarray, _params())
  state = TrainState(step=jnp.zeros([], jnp.int32), params=params, opt_state=tx.init(params),
                     model_state={}, rng=jax.random.PRNGKey(0))
  state = jax.device_put(state, mesh_lib.replicated(mesh))
  train_step = step_lib.make_train_step(loss_fn, tx, mesh, microbatches)
  out = []
  for local in _batches():
    state, metrics = train_step(state, mesh_lib.global_batch(local, mesh), {})
    out.append((float(metrics["loss"]), float(metrics["accuracy"]),
                jax.tree.map(np.asarray, jax.device_get(state.params))))
  return out


def max_relative_differences(a, b) -> dict:
  """Largest differences between trajectories `a` and `b`, over all steps: losses relative to
  `b`'s, parameters as max|a - b| / max|b| per array; plus how far `b` moved from the init."""
  rel = lambda x, y: float(np.max(np.abs(np.asarray(x) - np.asarray(y))) /
                           max(float(np.max(np.abs(np.asarray(y)))), 1e-12))
  init = _params()
  return {"loss": max(rel(x[0], y[0]) for x, y in zip(a, b)),
          "accuracy": max(abs(x[1] - y[1]) for x, y in zip(a, b)),
          "params": max(max(jax.tree.leaves(jax.tree.map(rel, x[2], y[2])))
                        for x, y in zip(a, b)),
          "moved": rel(b[-1][2]["dense1"]["kernel"], init["dense1"]["kernel"])}


def main():
  report = {"devices": jax.device_count()}
  for optimizer in OPTIMIZERS:
    one = trajectories(optimizer, 1)
    for k in (2, 4):
      report[f"{optimizer}/{k}"] = max_relative_differences(trajectories(optimizer, k), one)
  print(json.dumps(report))


if __name__ == "__main__":
  main()
