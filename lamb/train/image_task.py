"""Image classification as a task of the generic loop: Tables 3, 5-7, 9-25 and the figures.

One builder, `image_classification`, pairs a data set with a Flax model (LeNet-5, DavidNet,
ResNet) under softmax cross-entropy, optionally label-smoothed, and scores top-1 and top-5
accuracy and loss as masked sums; the final evaluation also keeps each image's top-1 hit and
loss (results.write_eval_examples: the per-image evidence of the comparisons' intervals).
Small data sets (MNIST, Fashion-MNIST: the cpu scale's real data) are held whole in host memory,
loaded once per process and shared by the runs of a sweep, with DavidNet's crop/flip/cutout
applied per batch as a pure function of (seed, step); CIFAR-10 and ImageNet at paper scale
stream from TFDS through lamb.data.image_pipelines.
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lamb.data import batches as batches_lib
from lamb.data import fashion_mnist, image_pipelines, mnist, splits
from lamb.models.davidnet import DavidNet
from lamb.models.lenet import LeNet5
from lamb.models.resnet import ResNet
from lamb.train.task import EvalRecords, Task, real_rows

# Whole splits in host memory (the cpu scale's real data) ...
IN_MEMORY = {"mnist": mnist, "fashion_mnist": fashion_mnist}
# ... and the paper's TFDS streams: name -> (pipeline, train examples, eval examples, image).
STREAMS = {
    "cifar10": (image_pipelines.cifar10, 50_000, 10_000, (32, 32, 3)),
    "imagenet2012": (image_pipelines.imagenet2012, 1_281_167, 50_000, (224, 224, 3)),
}
DATASETS = {**IN_MEMORY, **STREAMS}
MODELS = {"lenet5": LeNet5, "davidnet": DavidNet, "resnet": ResNet}


@dataclasses.dataclass
class _ImageData:
  """A data set as the task needs it, in memory or streamed."""
  train_arrays: dict
  eval_arrays: dict
  image_shape: tuple
  num_train: int
  description: str
  preprocess: Callable  # uint8 images -> model inputs
  example_dtype: type
  train_source: Optional[Callable] = None
  eval_source: Optional[Callable] = None


def _subset(images, labels, n):
  if not n or n >= len(labels):  # 0 or None: the whole split
    return images, labels
  return images[:n], labels[:n]


def _size(split_size: int, subset) -> int:
  return min(split_size, subset) if subset else split_size


def _takes_train(model) -> bool:
  return "train" in inspect.signature(type(model).__call__).parameters


def _augmented(batches, augment: dict, batch_size: int, seed: int, start_step: int,
               process_index: int, process_count: int):
  """DavidNet's crop/flip/cutout on in-memory uint8 batches, a pure function of (seed, step)."""
  row_offset = process_index * (batch_size // process_count)
  for step, batch in enumerate(batches, start=start_step):
    yield dict(batch, image=image_pipelines.augment(batch["image"], seed=seed, step=step,
                                                    row_offset=row_offset, **augment))


def _augmented_source(train_arrays: dict, augment: dict) -> Callable:
  def train_source(batch_size, *, seed, start_step=0, process_index=0, process_count=1):
    plain = batches_lib.train_batches(train_arrays, batch_size, seed=seed, start_step=start_step,
                                      process_index=process_index, process_count=process_count)
    return _augmented(plain, augment, batch_size, seed, start_step, process_index, process_count)
  return train_source


def _stream_sources(pipeline: Callable, eval_split: str, stream_kwargs: dict,
                    workers: int = 0) -> tuple:
  """(train_source, eval_source) reading a TFDS pipeline; batch sizes are per process there.
  `workers` input processes make the training batches (the same batches with any number);
  evaluation reads in this process (it is opened once at load to check the data exist)."""
  def train_source(batch_size, *, seed, start_step=0, process_index=0, process_count=1):
    return pipeline("train", batch_size=batch_size // process_count, seed=seed, train=True,
                    start_step=start_step, process_index=process_index,
                    process_count=process_count, workers=workers, **stream_kwargs)

  def eval_source(batch_size, *, process_index=0, process_count=1):
    return pipeline(eval_split, batch_size=batch_size // process_count, train=False,
                    process_index=process_index, process_count=process_count, **stream_kwargs)
  return train_source, eval_source


def _in_memory(config, data_dir, load_data):
  """(train arrays, eval arrays, example image shape, train size, description, preprocess)."""
  data = config.data
  source = IN_MEMORY[data.name]
  shape_kwargs = {k: data[k] for k in ("image_size", "channels") if data.get(k)}
  if load_data:
    train = _subset(*source.load("train", source=data.source, data_dir=data_dir, **shape_kwargs),
                    data.get("train_examples"))
    eval_split, part = splits.split_and_slice(data.eval_split)
    images, labels = source.load(eval_split, source=data.source, data_dir=data_dir,
                                 **shape_kwargs)
    if not len(labels[part]):
      raise ValueError(f"data.eval_split={data.eval_split!r} selects no example of the "
                       f"{len(labels)} of {eval_split!r}")
    evals = _subset(images[part], labels[part], data.get("eval_examples"))
    image_shape, num_train = train[0].shape[1:], len(train[1])
  else:  # shapes only (the cost model); nothing is read
    size = shape_kwargs.get("image_size", source.IMAGE_SHAPE[0])
    image_shape = (size, size, shape_kwargs.get("channels", source.IMAGE_SHAPE[-1]))
    empty = (np.zeros((0,) + image_shape, np.uint8), np.zeros((0,), np.int32))
    train = evals = empty
    num_train = _size(source.SPLITS["train"], data.get("train_examples"))
  describe = source.describe(data.source)
  return ({"image": np.asarray(train[0]), "label": np.asarray(train[1])},
          {"image": np.asarray(evals[0]), "label": np.asarray(evals[1])},
          tuple(image_shape), num_train, describe, source.preprocess)


def _in_memory_data(config, data_dir, load_data: bool, augment: dict) -> _ImageData:
  train_arrays, eval_arrays, image_shape, num_train, description, preprocess = _in_memory(
      config, data_dir, load_data)
  train_source = _augmented_source(train_arrays, augment) if augment else None
  return _ImageData(train_arrays, eval_arrays, image_shape, num_train, description, preprocess,
                    np.uint8, train_source=train_source)


def _streamed_data(config, data_dir, load_data: bool, augment: dict) -> _ImageData:
  data = config.data
  pipeline, num_train, _, image_shape = STREAMS[data.name]
  description = (f"{data.name} from TensorFlow Datasets in data_dir (prepared beforehand; "
                 "never downloaded)")
  stream_kwargs = dict(data_dir=data_dir, dtype=config.get("input_dtype", "float32"), **augment)
  train_source, eval_source = _stream_sources(pipeline, data.eval_split, stream_kwargs,
                                              int(config.get("input_workers") or 0))
  if load_data:  # fail now, with the one-line "not prepared" error, not mid-sweep
    next(iter(eval_source(1)))
  return _ImageData({}, {}, image_shape, _size(num_train, data.get("train_examples")),
                    description, lambda images: images,  # the pipelines normalise
                    np.float32, train_source=train_source, eval_source=eval_source)


def _init_fn(model, takes_train: bool, image_shape: tuple) -> Callable:
  def init(rng):
    x = jnp.zeros((1,) + tuple(image_shape), jnp.float32)
    variables = model.init(rng, x, train=False) if takes_train else model.init(rng, x)
    params = variables.pop("params")
    return params, dict(variables)
  return init


def _logits_fn(model, takes_train: bool, preprocess: Callable) -> Callable:
  def logits_of(params, model_state, images, train):
    x = preprocess(images) if images.dtype == jnp.uint8 else images
    variables = {"params": params, **model_state}
    if not takes_train:
      return model.apply(variables, x), model_state
    if train and model_state:  # batch norm: batch statistics, running averages updated
      logits, updates = model.apply(variables, x, train=True, mutable=list(model_state))
      return logits, {**model_state, **updates}
    return model.apply(variables, x, train=train), model_state
  return logits_of


def _loss_fn(logits_of: Callable, label_smoothing: float) -> Callable:
  def loss_fn(params, model_state, batch, rng, train):
    del rng  # no dropout in these models
    logits, model_state = logits_of(params, model_state, batch["image"], train)
    labels = batch["label"]
    if label_smoothing:
      targets = optax.smooth_labels(jax.nn.one_hot(labels, logits.shape[-1]), label_smoothing)
      loss = optax.softmax_cross_entropy(logits, targets).mean()
    else:
      loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    accuracy = jnp.mean(jnp.argmax(logits, -1) == labels)
    return loss, ({"accuracy": accuracy}, model_state)
  return loss_fn


def _eval_fn(logits_of: Callable) -> Callable:
  def eval_fn(params, model_state, batch):
    logits, _ = logits_of(params, model_state, batch["image"], False)
    mask = batch["mask"].astype(jnp.float32)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"])
    top5 = jnp.any(jax.lax.top_k(logits, min(5, logits.shape[-1]))[1]
                   == batch["label"][:, None], axis=-1)
    correct = jnp.argmax(logits, -1) == batch["label"]
    sums = {"correct": jnp.sum(mask * correct), "correct_top5": jnp.sum(mask * top5),
            "loss": jnp.sum(mask * losses), "count": jnp.sum(mask)}
    rows = {"correct": correct, "loss": losses, "label": batch["label"],
            "index": batch["index"], "mask": batch["mask"]}
    return sums, rows
  return eval_fn


def _eval_records(rows: dict, sums: dict) -> EvalRecords:
  """One record per evaluated image: top-1 right or not, and its cross-entropy."""
  del sums
  rows = real_rows(rows)
  return EvalRecords("images", "accuracy",
                     {"index": rows["index"], "correct": rows["correct"], "loss": rows["loss"]},
                     identity={"index": rows["index"], "label": rows["label"]})


def _finalize_eval(sums):
  n = max(float(sums["count"]), 1.0)
  return {"accuracy": float(sums["correct"]) / n, "top5_accuracy": float(sums["correct_top5"]) / n,
          "loss": float(sums["loss"]) / n, "examples": int(sums["count"])}


def image_classification(config, data_dir=None, load_data: bool = True) -> Task:
  data = config.data
  if data.name not in DATASETS:
    raise ValueError(f"unknown data set {data.name!r}; known: {sorted(DATASETS)}")
  if config.model.name not in MODELS:
    raise ValueError(f"unknown model {config.model.name!r}; known: {sorted(MODELS)}")
  augment = dict(data.get("augment") or {})
  loader = _in_memory_data if data.name in IN_MEMORY else _streamed_data
  images = loader(config, data_dir, load_data, augment)

  model_kwargs = {k: v for k, v in config.model.items() if k != "name"}
  model = MODELS[config.model.name](dtype=jnp.dtype(config.compute_dtype), **model_kwargs)
  takes_train = _takes_train(model)
  logits_of = _logits_fn(model, takes_train, images.preprocess)
  label_smoothing = float(config.get("label_smoothing", 0.0))

  return Task(images.train_arrays, images.eval_arrays,
              _init_fn(model, takes_train, images.image_shape),
              _loss_fn(logits_of, label_smoothing), _eval_fn(logits_of), _finalize_eval,
              images.description, data.eval_split,
              better={"accuracy": max, "top5_accuracy": max, "loss": min},
              example={"image": jax.ShapeDtypeStruct(tuple(images.image_shape),
                                                     images.example_dtype),
                       "label": jax.ShapeDtypeStruct((), np.int32)},
              num_train_examples=images.num_train, train_source=images.train_source,
              eval_source=images.eval_source, eval_records=_eval_records)
