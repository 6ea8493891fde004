"""What a run trains: data, model, loss and evaluation metrics, chosen by config.

A task hands the generic loop a Flax model's three pure functions (`init`, `loss_fn` and
`eval_fn`, the last returning masked sums so padded eval batches count every example exactly
once) and two batch sources: `train_batches(batch_size, seed, start_step, process_index,
process_count)`, endless and a pure function of (seed, step), and `eval_batches(batch_size,
process_index, process_count)`, the evaluation split once with a "mask". Small data sets are
held whole in host memory (loaded once per process and shared by the runs of a sweep);
ImageNet and CIFAR-10 at paper scale stream from TFDS. BERT pre-training and SQuAD live in
their own modules (bert_tasks, squad_task) and are registered here.
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
from lamb.data import fashion_mnist, image_pipelines, mnist
from lamb.models.davidnet import DavidNet
from lamb.models.lenet import LeNet5
from lamb.models.resnet import ResNet

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
class Task:
  train_arrays: dict  # whole splits in memory ({} for streamed data)
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
  # Batch sources; None means batching `train_arrays` / `eval_arrays` (lamb.data.batches).
  train_source: Optional[Callable] = None
  eval_source: Optional[Callable] = None
  # params -> params: pre-trained weights put into the freshly initialised ones (fine-tuning
  # from a checkpoint); applied once before the first step, never on resume.
  warm_start: Optional[Callable] = None

  def train_batches(self, batch_size: int, *, seed: int, start_step: int = 0,
                    process_index: int = 0, process_count: int = 1):
    """This process's share of every global training batch from `start_step` on."""
    if self.train_source is not None:
      return self.train_source(batch_size, seed=seed, start_step=start_step,
                               process_index=process_index, process_count=process_count)
    return batches_lib.train_batches(self.train_arrays, batch_size, seed=seed,
                                     start_step=start_step, process_index=process_index,
                                     process_count=process_count)

  def eval_batches(self, batch_size: int, *, process_index: int = 0, process_count: int = 1):
    """The evaluation split once, padded, with a boolean "mask" of the real examples."""
    if self.eval_source is not None:
      return self.eval_source(batch_size, process_index=process_index,
                              process_count=process_count)
    return batches_lib.eval_batches(self.eval_arrays, batch_size, process_index=process_index,
                                    process_count=process_count)


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


def _stream_sources(pipeline: Callable, eval_split: str, stream_kwargs: dict) -> tuple:
  """(train_source, eval_source) reading a TFDS pipeline; batch sizes are per process there."""
  def train_source(batch_size, *, seed, start_step=0, process_index=0, process_count=1):
    return pipeline("train", batch_size=batch_size // process_count, seed=seed, train=True,
                    start_step=start_step, process_index=process_index,
                    process_count=process_count, **stream_kwargs)

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
    evals = _subset(*source.load(data.eval_split, source=data.source, data_dir=data_dir,
                                 **shape_kwargs), data.get("eval_examples"))
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


def image_classification(config, data_dir=None, load_data: bool = True) -> Task:
  data = config.data
  if data.name not in DATASETS:
    raise ValueError(f"unknown data set {data.name!r}; known: {sorted(DATASETS)}")
  if config.model.name not in MODELS:
    raise ValueError(f"unknown model {config.model.name!r}; known: {sorted(MODELS)}")
  augment = dict(data.get("augment") or {})
  train_source = eval_source = None
  if data.name in IN_MEMORY:
    train_arrays, eval_arrays, image_shape, num_train, description, preprocess = _in_memory(
        config, data_dir, load_data)
    example_dtype = np.uint8
    if augment:
      train_source = _augmented_source(train_arrays, augment)
  else:
    pipeline, num_train, _, image_shape = STREAMS[data.name]
    num_train = _size(num_train, data.get("train_examples"))
    train_arrays, eval_arrays, example_dtype = {}, {}, np.float32
    preprocess = lambda images: images  # the pipelines normalise
    description = (f"{data.name} from TensorFlow Datasets in data_dir (prepared beforehand; "
                   "never downloaded)")
    stream_kwargs = dict(data_dir=data_dir, dtype=config.get("input_dtype", "float32"),
                         **augment)
    train_source, eval_source = _stream_sources(pipeline, data.eval_split, stream_kwargs)
    if load_data:  # fail now, with the one-line "not prepared" error, not mid-sweep
      next(iter(eval_source(1)))

  model_kwargs = {k: v for k, v in config.model.items() if k != "name"}
  model = MODELS[config.model.name](dtype=jnp.dtype(config.compute_dtype), **model_kwargs)
  takes_train = _takes_train(model)
  label_smoothing = float(config.get("label_smoothing", 0.0))

  def init(rng):
    x = jnp.zeros((1,) + tuple(image_shape), jnp.float32)
    variables = model.init(rng, x, train=False) if takes_train else model.init(rng, x)
    params = variables.pop("params")
    return params, dict(variables)

  def logits_of(params, model_state, images, train):
    x = preprocess(images) if images.dtype == jnp.uint8 else images
    variables = {"params": params, **model_state}
    if not takes_train:
      return model.apply(variables, x), model_state
    if train and model_state:  # batch norm: batch statistics, running averages updated
      logits, updates = model.apply(variables, x, train=True, mutable=list(model_state))
      return logits, {**model_state, **updates}
    return model.apply(variables, x, train=train), model_state

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

  def eval_fn(params, model_state, batch):
    logits, _ = logits_of(params, model_state, batch["image"], False)
    mask = batch["mask"].astype(jnp.float32)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"])
    top5 = jnp.any(jax.lax.top_k(logits, min(5, logits.shape[-1]))[1]
                   == batch["label"][:, None], axis=-1)
    return {"correct": jnp.sum(mask * (jnp.argmax(logits, -1) == batch["label"])),
            "correct_top5": jnp.sum(mask * top5), "loss": jnp.sum(mask * losses),
            "count": jnp.sum(mask)}

  def finalize_eval(sums):
    n = max(float(sums["count"]), 1.0)
    return {"accuracy": float(sums["correct"]) / n, "top5_accuracy": float(sums["correct_top5"]) / n,
            "loss": float(sums["loss"]) / n, "examples": int(sums["count"])}

  return Task(train_arrays, eval_arrays, init, loss_fn, eval_fn, finalize_eval, description,
              data.eval_split, better={"accuracy": max, "top5_accuracy": max, "loss": min},
              example={"image": jax.ShapeDtypeStruct(tuple(image_shape), example_dtype),
                       "label": jax.ShapeDtypeStruct((), np.int32)},
              num_train_examples=num_train, train_source=train_source, eval_source=eval_source)


def bert_pretraining(config, data_dir=None, load_data: bool = True) -> Task:
  """BERT's masked-LM and next-sentence pre-training (lamb.train.bert_tasks)."""
  from lamb.train import bert_tasks  # pylint: disable=import-outside-toplevel  (imports Task)
  return bert_tasks.pretraining_task(config, data_dir, load_data)


def squad(config, data_dir=None, load_data: bool = True) -> Task:
  """SQuAD v1.1 span fine-tuning of a pre-trained BERT (lamb.train.squad_task)."""
  from lamb.train import squad_task  # pylint: disable=import-outside-toplevel  (imports Task)
  return squad_task.squad_task(config, data_dir, load_data)


TASKS = {"image_classification": image_classification, "bert_pretraining": bert_pretraining,
         "squad": squad}


def build(config, data_dir=None, load_data: bool = True) -> Task:
  """The task of `config`; with load_data=False its functions and shapes without its data."""
  if config.task not in TASKS:
    raise ValueError(f"unknown task {config.task!r}; known: {sorted(TASKS)}")
  return TASKS[config.task](config, data_dir, load_data)
