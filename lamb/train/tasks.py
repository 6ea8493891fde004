"""What a run trains: data, model, loss and evaluation metrics, chosen by config.

A task hands the generic loop host arrays (the whole split, loaded once per process), a
Flax model, and three pure functions: `init`, `loss_fn` and `eval_fn` (masked sums, so padded
eval batches count every example exactly once).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lamb.data import mnist
from lamb.models.lenet import LeNet5

DATASETS = {"mnist": mnist}
MODELS = {"lenet5": LeNet5}


@dataclasses.dataclass
class Task:
  train_arrays: dict
  eval_arrays: dict
  init: Callable  # rng -> (params, model_state)
  loss_fn: Callable  # (params, model_state, batch, rng, train) -> (loss, (metrics, model_state))
  eval_fn: Callable  # (params, model_state, batch) -> dict of sums
  finalize_eval: Callable  # dict of sums -> dict of metrics
  description: str
  eval_split: str
  # Evaluation metrics for the summary's "best", each with max or min; the first is the one
  # the paper reports for the task.
  better: dict = dataclasses.field(default_factory=lambda: {"accuracy": max, "loss": min})
  # One training example's shape and dtype per key, and the training-set size: what the cost
  # model needs, known without loading the data (`build(..., load_data=False)`).
  example: dict = dataclasses.field(default_factory=dict)
  num_train_examples: int = 0


def _subset(images, labels, n):
  if not n or n >= len(labels):  # 0 or None: the whole split
    return images, labels
  return images[:n], labels[:n]


def _size(split_size: int, subset) -> int:
  return min(split_size, subset) if subset else split_size


def image_classification(config, data_dir=None, load_data: bool = True) -> Task:
  data = config.data
  if data.name not in DATASETS:
    raise ValueError(f"unknown data set {data.name!r}; known: {sorted(DATASETS)}")
  if config.model.name not in MODELS:
    raise ValueError(f"unknown model {config.model.name!r}; known: {sorted(MODELS)}")
  source = DATASETS[data.name]
  if load_data:
    train_x, train_y = _subset(*source.load("train", source=data.source, data_dir=data_dir),
                               data.get("train_examples"))
    eval_x, eval_y = _subset(*source.load(data.eval_split, source=data.source,
                                          data_dir=data_dir), data.get("eval_examples"))
  else:  # shapes only (the cost model); nothing is read
    train_x = np.zeros((0,) + tuple(source.IMAGE_SHAPE), np.uint8)
    train_y = eval_y = np.zeros((0,), np.int32)
    eval_x = train_x
  num_train = len(train_y) if load_data else _size(source.SPLITS["train"],
                                                   data.get("train_examples"))
  model_kwargs = {k: v for k, v in config.model.items() if k != "name"}
  model = MODELS[config.model.name](dtype=jnp.dtype(config.compute_dtype), **model_kwargs)

  def init(rng):
    variables = model.init(rng, jnp.zeros((1,) + train_x.shape[1:], jnp.float32))
    params = variables.pop("params")
    return params, dict(variables)

  def logits_of(params, model_state, images):
    return model.apply({"params": params, **model_state}, source.preprocess(images))

  def loss_fn(params, model_state, batch, rng, train):
    del rng, train  # LeNet has neither dropout nor batch norm
    logits = logits_of(params, model_state, batch["image"])
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()
    accuracy = jnp.mean(jnp.argmax(logits, -1) == batch["label"])
    return loss, ({"accuracy": accuracy}, model_state)

  def eval_fn(params, model_state, batch):
    logits = logits_of(params, model_state, batch["image"])
    mask = batch["mask"].astype(jnp.float32)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"])
    top5 = jnp.any(jax.lax.top_k(logits, 5)[1] == batch["label"][:, None], axis=-1)
    return {"correct": jnp.sum(mask * (jnp.argmax(logits, -1) == batch["label"])),
            "correct_top5": jnp.sum(mask * top5), "loss": jnp.sum(mask * losses),
            "count": jnp.sum(mask)}

  def finalize_eval(sums):
    n = max(float(sums["count"]), 1.0)
    return {"accuracy": float(sums["correct"]) / n, "top5_accuracy": float(sums["correct_top5"]) / n,
            "loss": float(sums["loss"]) / n, "examples": int(sums["count"])}

  return Task({"image": np.asarray(train_x), "label": np.asarray(train_y)},
              {"image": np.asarray(eval_x), "label": np.asarray(eval_y)},
              init, loss_fn, eval_fn, finalize_eval, source.describe(data.source), data.eval_split,
              better={"accuracy": max, "top5_accuracy": max, "loss": min},
              example={"image": jax.ShapeDtypeStruct(train_x.shape[1:], np.uint8),
                       "label": jax.ShapeDtypeStruct((), np.int32)},
              num_train_examples=num_train)


TASKS = {"image_classification": image_classification}


def build(config, data_dir=None, load_data: bool = True) -> Task:
  """The task of `config`; with load_data=False its functions and shapes without its data."""
  if config.task not in TASKS:
    raise ValueError(f"unknown task {config.task!r}; known: {sorted(TASKS)}")
  return TASKS[config.task](config, data_dir, load_data)
