"""Jit-compiled train and eval steps over the data-parallel mesh.

The train step averages the gradient over `microbatches` equal slices of the global batch
(gradient accumulation: the optimizer sees one step per global batch, so 32K/64K batches fit
on small slices); XLA inserts the all-reduce because the batch is sharded on `data` while the
parameters are replicated.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax
from jax.sharding import NamedSharding, PartitionSpec as P

from lamb.train import mesh as mesh_lib
from lamb.train.state import TrainState

# loss_fn(params, model_state, batch, rng, train) -> (loss, (metrics, new_model_state))
LossFn = Callable


def _split_microbatches(batch, k: int, mesh):
  """[B, ...] -> [k, B/k, ...] with micro-batch j = rows j, j+k, j+2k, ... so that every
  device keeps an equal share of every micro-batch (no resharding)."""
  def split(x):
    x = x.reshape((x.shape[0] // k, k) + x.shape[1:]).swapaxes(0, 1)
    return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, P(None, mesh_lib.DATA)))
  return jax.tree.map(split, batch)


def make_train_step(loss_fn: LossFn, optimizer: Callable, mesh, microbatches: int = 1,
                    learning_rate_fn: Callable = None):
  """train_step(state, batch, hyperparameters) -> (state, metrics), jitted.

  `optimizer(hyperparameters)` builds the optax transformation inside the step, so that the
  hyperparameters (a dict of scalars) are traced arguments: one compiled step serves every run
  that differs only in them. `learning_rate_fn(hyperparameters)` is the optimizer's schedule,
  reported in the step's metrics. An `optax.GradientTransformation` is also accepted as
  `optimizer`, with `learning_rate_fn` then a plain schedule of the step (its hyperparameters
  are constants of the program).
  """
  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
  if isinstance(optimizer, optax.GradientTransformation):  # fixed hyperparameters
    tx, schedule = optimizer, learning_rate_fn
    optimizer = lambda hyperparameters: tx
    learning_rate_fn = None if schedule is None else (lambda hyperparameters: schedule)

  def train_step(state: TrainState, batch, hyperparameters):
    tx = optimizer(hyperparameters)
    rng = jax.random.fold_in(state.rng, state.step)
    if microbatches == 1:
      (loss, (metrics, model_state)), grads = grad_fn(state.params, state.model_state, batch, rng,
                                                      True)
    else:
      def accumulate(carry, xs):
        grads_sum, metrics_sum, model_state = carry
        mb, i = xs
        (loss, (metrics, model_state)), grads = grad_fn(
            state.params, model_state, mb, jax.random.fold_in(rng, i), True)
        metrics = dict(metrics, loss=loss)
        add = lambda a, b: jax.tree.map(jnp.add, a, b)
        return (add(grads_sum, grads), add(metrics_sum, metrics), model_state), None

      zeros = jax.tree.map(jnp.zeros_like, state.params)
      mbs = _split_microbatches(batch, microbatches, mesh)
      mb0 = jax.tree.map(lambda x: x[0], mbs)
      metrics_shape = jax.eval_shape(
          lambda: dict(grad_fn(state.params, state.model_state, mb0, rng, True)[0][1][0],
                       loss=jnp.zeros([])))
      metrics0 = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), metrics_shape)
      (grads, metrics, model_state), _ = jax.lax.scan(
          accumulate, (zeros, metrics0, state.model_state),
          (mbs, jnp.arange(microbatches)))
      grads = jax.tree.map(lambda g: g / microbatches, grads)
      metrics = jax.tree.map(lambda m: m / microbatches, metrics)
      loss = metrics.pop("loss")
    if learning_rate_fn is not None:  # the rate this update uses (optax counts from 0)
      metrics = dict(metrics, learning_rate=learning_rate_fn(hyperparameters)(state.step))
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                              model_state=model_state)
    return new_state, dict(metrics, loss=loss)

  replicated = mesh_lib.replicated(mesh)
  return jax.jit(train_step,
                 in_shardings=(replicated, mesh_lib.batch_sharding(mesh), replicated),
                 out_shardings=(replicated, replicated), donate_argnums=(0,))


def make_noise_step(loss_fn: LossFn, mesh, parts: int):
  """noise_step(state, batch) -> {g_small_sq, g_big_sq}, jitted: the data gradient of `parts`
  equal slices of the global batch, one slice at a time (so no more memory than a micro-batch
  of that size), their mean squared norm and the squared norm of their mean. The inputs of
  `lamb.train.noise_scale`; the state is read, not changed."""
  grad_fn = jax.grad(lambda params, model_state, batch, rng:
                     loss_fn(params, model_state, batch, rng, True)[0])

  def noise_step(state: TrainState, batch):
    rng = jax.random.fold_in(state.rng, state.step)

    def one(carry, xs):
      total, squares = carry
      part, i = xs
      grads = grad_fn(state.params, state.model_state, part, jax.random.fold_in(rng, i))
      return (jax.tree.map(jnp.add, total, grads), squares + optax.global_norm(grads) ** 2), None

    zeros = jax.tree.map(jnp.zeros_like, state.params)
    (total, squares), _ = jax.lax.scan(
        one, (zeros, jnp.zeros([], jnp.float32)),
        (_split_microbatches(batch, parts, mesh), jnp.arange(parts)))
    mean = jax.tree.map(lambda t: t / parts, total)
    return {"g_small_sq": squares / parts, "g_big_sq": optax.global_norm(mean) ** 2}

  replicated = mesh_lib.replicated(mesh)
  return jax.jit(noise_step, in_shardings=(replicated, mesh_lib.batch_sharding(mesh)),
                 out_shardings=replicated)


def make_eval_step(eval_fn: Callable, mesh):
  """eval_fn(params, model_state, batch) -> (dict of per-batch SUMS (masked), summed on host;
  dict of per-row outputs). Both come out replicated: every process holds every row of the
  global batch, in global order, for the final evaluation's per-example records."""
  def eval_step(state: TrainState, batch):
    return eval_fn(state.params, state.model_state, batch)
  replicated = mesh_lib.replicated(mesh)
  return jax.jit(eval_step, in_shardings=(replicated, mesh_lib.batch_sharding(mesh)),
                 out_shardings=replicated)
