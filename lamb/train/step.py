"""Jit-compiled train and eval steps over the data-parallel mesh.

The train step averages the gradient over `microbatches` equal slices of the global batch
(gradient accumulation: the optimizer sees one step per global batch, so 32K/64K batches fit
on small slices). How the per-device gradients meet is a `mesh_lib.Parallelism`:

  * gradient_reduction "auto" (every committed run): the batch is sharded on `data` while the
    parameters are replicated, and XLA (GSPMD) inserts the all-reduces where it likes; with
    micro-batches it may keep some inside the accumulation loop (the tied embedding's, once per
    micro-batch) and on TPU it may reduce in bfloat16.
  * "explicit": the loss, gradient and accumulation run per device (`jax.shard_map` over
    `data`), with no collective; ONE reduction per step follows the loop (psum, or psum_scatter
    under FSDP) in the stated dtype, then the optimizer update. Each device draws its own
    dropout, and the model state (batch-norm statistics) and the metrics are averaged over
    the devices.

The loss is a mean over the rows it is given, and every device holds as many rows, so the mean
of the devices' losses is the loss of the whole (micro-)batch. A loss whose denominator depends
on the data (BERT's masked-LM loss, a mean over the masked tokens) is a mean of per-device means
under "explicit" unless its loss_fn takes `axis_name` and averages that denominator over it
(then the mean of the devices' values is the global loss again, as tests/test_sharding.py shows).

Under sharding "fsdp" the parameters and optimizer state are split over `data`
(mesh_lib.fsdp_spec); the optimizer update runs on the shards under GSPMD, whose norms of a
split array are still norms of the whole array (one scalar all-reduce each), so LAMB's and
LARS's trust ratios are unchanged.
"""
from __future__ import annotations

import inspect
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import optax
from jax.sharding import NamedSharding, PartitionSpec as P

from lamb.train import mesh as mesh_lib
from lamb.train import state as state_lib
from lamb.train.state import TrainState

# loss_fn(params, model_state, batch, rng, train) -> (loss, (metrics, new_model_state))
LossFn = Callable


def _interleave(x, k: int):
  """[B, ...] -> [k, B/k, ...], slice j = rows j, j+k, j+2k, ..."""
  return x.reshape((x.shape[0] // k, k) + x.shape[1:]).swapaxes(0, 1)


def _split_microbatches(batch, k: int, mesh):
  """[B, ...] -> [k, B/k, ...] with micro-batch j = rows j, j+k, j+2k, ... so that every
  device keeps an equal share of every micro-batch (no resharding)."""
  def split(x):
    x = _interleave(x, k)
    return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, P(None, mesh_lib.DATA)))
  return jax.tree.map(split, batch)


def _accumulate(grad_fn, params, model_state, batch, rng, microbatches: int, split: Callable):
  """(mean gradient, mean metrics with "loss", model state) over the `split(batch)` slices,
  one slice at a time; slice i draws its randomness from fold_in(rng, i)."""
  def accumulate(carry, xs):
    grads_sum, metrics_sum, model_state = carry
    mb, i = xs
    (loss, (metrics, model_state)), grads = grad_fn(
        params, model_state, mb, jax.random.fold_in(rng, i), True)
    metrics = dict(metrics, loss=loss)
    add = lambda a, b: jax.tree.map(jnp.add, a, b)
    return (add(grads_sum, grads), add(metrics_sum, metrics), model_state), None

  zeros = jax.tree.map(jnp.zeros_like, params)
  mbs = split(batch)
  mb0 = jax.tree.map(lambda x: x[0], mbs)
  metrics_shape = jax.eval_shape(
      lambda: dict(grad_fn(params, model_state, mb0, rng, True)[0][1][0],
                   loss=jnp.zeros([])))
  metrics0 = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), metrics_shape)
  (grads, metrics, model_state), _ = jax.lax.scan(
      accumulate, (zeros, metrics0, model_state), (mbs, jnp.arange(microbatches)))
  grads = jax.tree.map(lambda g: g / microbatches, grads)
  metrics = jax.tree.map(lambda m: m / microbatches, metrics)
  return grads, metrics, model_state


def _takes_axis_name(loss_fn) -> bool:
  try:
    return "axis_name" in inspect.signature(loss_fn).parameters
  except (TypeError, ValueError):
    return False


def _gathered(params, specs):
  """FSDP: every split parameter whole again on every device (one all-gather each)."""
  def gather(p, spec):
    dim = mesh_lib.sharded_dim(spec)
    return p if dim is None else jax.lax.all_gather(p, mesh_lib.DATA, axis=dim, tiled=True)
  return jax.tree.map(gather, params, specs)


def _reduced(grads, specs, dtype, devices: int):
  """The one reduction of the step: each device's gradient summed over `data` in `dtype`
  (scattered back to the FSDP shards where `specs` split the parameter), then averaged."""
  def reduce(g, spec):
    dim, x = mesh_lib.sharded_dim(spec), g.astype(dtype)
    if dim is None:
      x = jax.lax.psum(x, mesh_lib.DATA)
    else:
      x = jax.lax.psum_scatter(x, mesh_lib.DATA, scatter_dimension=dim, tiled=True)
    return x.astype(g.dtype) / devices
  return jax.tree.map(reduce, grads, specs)


def _device_mean(x):
  """Batch-norm statistics (and any float model state) averaged over the devices: each device
  updated its running averages with its own rows; the update is affine in the batch statistics,
  so the mean of the devices' results is the update with the mean of their statistics."""
  return jax.lax.pmean(x, mesh_lib.DATA) if jnp.issubdtype(x.dtype, jnp.inexact) else x


def _explicit_gradients(loss_fn: LossFn, mesh, microbatches: int, reduction_dtype: str,
                        param_specs):
  """(params, model_state, batch, rng) -> (grads, metrics with "loss", model_state): the
  device-local part of the step as a shard_map over `data`, its collectives the parameters'
  all-gathers before the loop (FSDP) and the one gradient reduction after it."""
  devices = mesh.shape[mesh_lib.DATA]
  if _takes_axis_name(loss_fn):  # the loss averages its data-dependent denominators itself
    loss_fn = lambda *args, fn=loss_fn: fn(*args, axis_name=mesh_lib.DATA)
  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

  def local(params, model_state, batch, rng):
    params = _gathered(params, param_specs)
    rng = jax.random.fold_in(rng, jax.lax.axis_index(mesh_lib.DATA))  # each device its dropout
    if microbatches == 1:
      (loss, (metrics, model_state)), grads = grad_fn(params, model_state, batch, rng, True)
      metrics = dict(metrics, loss=loss)
    else:  # this device's rows of micro-batch j are rows j, j+k, ... of its share, as in "auto"
      grads, metrics, model_state = _accumulate(
          grad_fn, params, model_state, batch, rng, microbatches,
          lambda b: jax.tree.map(lambda x: _interleave(x, microbatches), b))
    grads = _reduced(grads, param_specs, jnp.dtype(reduction_dtype), devices)
    metrics = jax.lax.pmean(metrics, mesh_lib.DATA)
    return grads, metrics, jax.tree.map(_device_mean, model_state)

  # check_vma=False: inside, the gradient of the replicated parameters is each device's own (the
  # varying-axes check would psum it inside the loop, the very reduction this path moves out).
  return jax.shard_map(local, mesh=mesh, in_specs=(param_specs, P(), P(mesh_lib.DATA), P()),
                       out_specs=(param_specs, P(), P()), check_vma=False)


def make_train_step(loss_fn: LossFn, optimizer: Callable, mesh, microbatches: int = 1,
                    learning_rate_fn: Callable = None, *, gradient_reduction: str = "auto",
                    reduction_dtype: Optional[str] = None, sharding: str = "replicated"):
  """train_step(state, batch, hyperparameters) -> (state, metrics), jitted.

  `optimizer(hyperparameters)` builds the optax transformation inside the step, so that the
  hyperparameters (a dict of scalars) are traced arguments: one compiled step serves every run
  that differs only in them. `learning_rate_fn(hyperparameters)` is the optimizer's schedule,
  reported in the step's metrics. An `optax.GradientTransformation` is also accepted as
  `optimizer`, with `learning_rate_fn` then a plain schedule of the step (its hyperparameters
  are constants of the program). `gradient_reduction`, `reduction_dtype` and `sharding` are a
  mesh_lib.Parallelism's fields (the defaults: GSPMD's reduction, replicated state); under
  "fsdp" the state goes in and comes out split as state_lib.shardings says.
  """
  layout = mesh_lib.Parallelism(gradient_reduction, reduction_dtype, sharding)
  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
  if isinstance(optimizer, optax.GradientTransformation):  # fixed hyperparameters
    tx, schedule = optimizer, learning_rate_fn
    optimizer = lambda hyperparameters: tx
    learning_rate_fn = None if schedule is None else (lambda hyperparameters: schedule)

  def train_step(state: TrainState, batch, hyperparameters):
    tx = optimizer(hyperparameters)
    if layout.fsdp:
      state = jax.lax.with_sharding_constraint(state, state_lib.shardings(state, mesh, "fsdp"))
    rng = jax.random.fold_in(state.rng, state.step)
    if layout.explicit:
      specs = jax.tree.map(lambda s: s.spec,
                           mesh_lib.array_shardings(state.params, mesh, layout.sharding))
      grads, metrics, model_state = _explicit_gradients(
          loss_fn, mesh, microbatches, layout.reduction_dtype, specs)(
              state.params, state.model_state, batch, rng)
      loss = metrics.pop("loss")
    elif microbatches == 1:
      (loss, (metrics, model_state)), grads = grad_fn(state.params, state.model_state, batch, rng,
                                                      True)
    else:
      grads, metrics, model_state = _accumulate(
          grad_fn, state.params, state.model_state, batch, rng, microbatches,
          lambda b: _split_microbatches(b, microbatches, mesh))
      loss = metrics.pop("loss")
    if learning_rate_fn is not None:  # the rate this update uses (optax counts from 0)
      metrics = dict(metrics, learning_rate=learning_rate_fn(hyperparameters)(state.step))
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                              model_state=model_state)
    if layout.fsdp:
      new_state = jax.lax.with_sharding_constraint(
          new_state, state_lib.shardings(new_state, mesh, "fsdp"))
    return new_state, dict(metrics, loss=loss)

  replicated = mesh_lib.replicated(mesh)
  state_in = _state_sharding(mesh, layout.sharding)
  return jax.jit(train_step,
                 in_shardings=(state_in, mesh_lib.batch_sharding(mesh), replicated),
                 out_shardings=(state_in, replicated), donate_argnums=(0,))


def _state_sharding(mesh, sharding: str):
  """The jit sharding of a state argument or result: replicated, or under FSDP the state's own
  (None: as it arrives, which init and the step's constraints make state_lib.shardings')."""
  return mesh_lib.replicated(mesh) if sharding == "replicated" else None


def make_noise_step(loss_fn: LossFn, mesh, parts: int, sharding: str = "replicated"):
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
  return jax.jit(noise_step, in_shardings=(_state_sharding(mesh, sharding),
                                           mesh_lib.batch_sharding(mesh)),
                 out_shardings=replicated)


def make_eval_step(eval_fn: Callable, mesh, sharding: str = "replicated"):
  """eval_fn(params, model_state, batch) -> (dict of per-batch SUMS (masked), summed on host;
  dict of per-row outputs). Both come out replicated: every process holds every row of the
  global batch, in global order, for the final evaluation's per-example records."""
  def eval_step(state: TrainState, batch):
    return eval_fn(state.params, state.model_state, batch)
  replicated = mesh_lib.replicated(mesh)
  return jax.jit(eval_step, in_shardings=(_state_sharding(mesh, sharding),
                                          mesh_lib.batch_sharding(mesh)),
                 out_shardings=replicated)
