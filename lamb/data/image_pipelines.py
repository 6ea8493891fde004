"""Input pipelines of the paper's image experiments, and their NumPy twins for the CPU scale.

Paper scale (TFDS, grain): :func:`cifar10` for DavidNet (Table 6) and :func:`imagenet2012`
for ResNet-50 (Tables 3-5) read a TensorFlow Datasets folder prepared beforehand in TFDS's
random-access ArrayRecord format (``tfds build cifar10 --data_dir=DIR
--file_format=array_record``; ImageNet needs the two ILSVRC2012 tars, see :func:`imagenet2012`)
through ``tfds.data_source`` and grain: nothing is downloaded, and an unprepared folder (or one
in TFRecord format) raises :class:`DatasetNotFoundError` with the ``tfds build`` command to run.

* cifar10, as Page's DAWNBench DavidNet: per-channel mean/std normalisation with the training
  set's statistics, then (training) 4-pixel reflect padding, a random 32x32 crop, a random
  horizontal flip and an 8x8 Cutout (DeVries and Taylor 2017) that lies wholly inside the image
  and is filled with 0, i.e. the mean colour after normalisation. Evaluation: normalisation
  only. (The TensorFlow port the paper cites, fenwickslab/dl_tutorials tutorial3, crops and
  flips but has no Cutout; ``cutout_size=0`` reproduces it.)
* imagenet2012, as the ResNet-50 references (TF official / MLPerf / torchvision): training
  takes an Inception-style random crop (``stateless_sample_distorted_bounding_box`` over the
  whole image, area 8%-100%, aspect ratio 3/4-4/3, at least 10% of the image, 10 attempts),
  decoded straight from the JPEG, resized to 224x224 (bilinear) and flipped at random;
  evaluation resizes the shorter side to 256 and takes the central 224x224. Both normalise with
  the usual ImageNet mean/std (of 0-255 pixels).

Both yield NumPy batches ``{"image": float32 [B, S, S, 3], "label": int32 [B]}`` (``dtype``
chooses the image dtype, e.g. bfloat16); ``batch_size`` is the per-process batch. Training
streams are endless, and each batch is a pure function of ``(seed, step)`` (see ``_stream``):
the split reshuffled every epoch by grain's index shuffle, each example's random crop/flip
from a stateless key of ``seed`` and its position in the global stream, and process ``p`` of
``P`` reading its rows of each global batch. ``start_step`` starts the exact stream of an
uninterrupted run at that step without reading anything before it, and the global batches do
not depend on the number of processes. Evaluation streams go once through the split (or its
slice, e.g. ``validation[:10000]``) in order, process ``p`` a contiguous share, and pad the last
batch with zeros, marked by a boolean ``"mask"`` (what the training loop's eval_fn expects),
each row's position in the split (slice) in ``"index"``;
every process yields as many batches as the largest share needs, all-masked ones ending a
shorter share, so multi-host evaluation steps stay in lockstep. Decoding and augmentation are
TensorFlow ops (:class:`Cifar10Maps`, :class:`ImageNetMaps`), run READ_THREADS examples at a time
on whole batches made a fixed number ahead (lamb.data.streams), in the training process or, with
``workers`` > 0, in that many worker processes: the same batches either way.

CPU scale (NumPy): :func:`random_crop`, :func:`random_flip`, :func:`cutout` and :func:`augment`
apply the same training augmentation to an in-memory batch (such as Fashion-MNIST padded to
32x32x3, lamb.data.fashion_mnist) as a pure function of ``(seed, step)``: the draws for row
``r`` of a global batch do not depend on how the batch is split over processes (pass the
share's first global row as ``row_offset``), so the concatenated shares equal the whole.
"""
from __future__ import annotations

import math
import os
import threading
from typing import Iterator

import numpy as np

from lamb.data import splits, streams
from lamb.data.errors import DatasetNotFoundError

# Per-channel statistics of 0-255 pixels: CIFAR-10's training set (as in Page's code) and the
# usual ImageNet ones (torchvision's 0.485/0.456/0.406 and 0.229/0.224/0.225, times 255).
CIFAR10_MEAN = (125.31, 122.95, 113.87)
CIFAR10_STD = (62.99, 62.09, 66.70)
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)

DATASETS = {
    # name: (TFDS name, train split, eval split, number of classes)
    "cifar10": ("cifar10", "train", "test", 10),
    "imagenet2012": ("imagenet2012", "train", "validation", 1000),
}
CIFAR10_CUTOUT = 8
# TFDS's random-access format, read through grain: what exact resume without re-reading needs.
FILE_FORMAT = "array_record"
CIFAR10_PADDING = 4
IMAGENET_TRAIN_SIZE = 224
IMAGENET_RESIZE = 256
# Inception-style crop, as TF official ResNet / MLPerf.
CROP_AREA_RANGE = (0.08, 1.0)
CROP_ASPECT_RANGE = (3.0 / 4.0, 4.0 / 3.0)
CROP_MIN_OBJECT_COVERED = 0.1
CROP_MAX_ATTEMPTS = 10


# ---------------------------------------------------------------------------------------------
# NumPy augmentation (CPU scale, in-memory data)

_SALT = {"crop_y": 1, "crop_x": 2, "flip": 3, "cutout_y": 4, "cutout_x": 5}


def _draws(seed: int, step: int, what: str, high: int, n: int, row_offset: int) -> np.ndarray:
  """Integers in [0, high) for rows row_offset .. row_offset+n-1 of step `step`'s global batch.

  One generator per (seed, step, kind of draw); rows are drawn in order, so a row's value does
  not depend on `n` or on which share of the batch asks for it.
  """
  if seed < 0 or step < 0 or row_offset < 0:
    raise ValueError(f"seed, step and row_offset must be non-negative, got {seed}, {step}, "
                     f"{row_offset}")
  rng = np.random.default_rng([int(seed), int(step), _SALT[what]])
  return rng.integers(0, high, size=row_offset + n, dtype=np.int64)[row_offset:]


def _check_batch(images: np.ndarray) -> None:
  if images.ndim != 4:
    raise ValueError(f"expected images [B, H, W, C], got shape {images.shape}")


def random_crop(images: np.ndarray, padding: int = CIFAR10_PADDING, *, seed: int, step: int,
                row_offset: int = 0, mode: str = "reflect") -> np.ndarray:
  """Pads [B, H, W, C] by `padding` on each side (np.pad `mode`) and crops H x W at random."""
  _check_batch(images)
  if padding <= 0:
    return images
  b, h, w, _ = images.shape
  padded = np.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)), mode=mode)
  ys = _draws(seed, step, "crop_y", 2 * padding + 1, b, row_offset)
  xs = _draws(seed, step, "crop_x", 2 * padding + 1, b, row_offset)
  rows = ys[:, None] + np.arange(h)
  cols = xs[:, None] + np.arange(w)
  return padded[np.arange(b)[:, None, None], rows[:, :, None], cols[:, None, :]]


def random_flip(images: np.ndarray, *, seed: int, step: int, row_offset: int = 0) -> np.ndarray:
  """Mirrors each image left-right with probability 1/2."""
  _check_batch(images)
  flip = _draws(seed, step, "flip", 2, len(images), row_offset).astype(bool)
  return np.where(flip[:, None, None, None], images[:, :, ::-1], images)


def cutout(images: np.ndarray, size: int = CIFAR10_CUTOUT, *, seed: int, step: int,
           row_offset: int = 0, fill=0) -> np.ndarray:
  """Sets a random size x size square, wholly inside each image, to `fill` (Page's Cutout).

  Page cuts normalised images, so 0 is the mean colour; on uint8 images pass the mean pixel
  (e.g. ``round(255 * fashion_mnist.MEAN)``) as `fill` for the same effect.
  """
  _check_batch(images)
  if size <= 0:
    return images
  b, h, w, _ = images.shape
  if size > min(h, w):
    raise ValueError(f"cutout size {size} exceeds the {h}x{w} images")
  y0 = _draws(seed, step, "cutout_y", h - size + 1, b, row_offset)
  x0 = _draws(seed, step, "cutout_x", w - size + 1, b, row_offset)
  ys, xs = np.arange(h), np.arange(w)
  inside = (((ys >= y0[:, None]) & (ys < y0[:, None] + size))[:, :, None]
            & ((xs >= x0[:, None]) & (xs < x0[:, None] + size))[:, None, :])
  return np.where(inside[..., None], np.asarray(fill, images.dtype), images)


def augment(images: np.ndarray, *, seed: int, step: int, row_offset: int = 0,
            padding: int = CIFAR10_PADDING, flip: bool = True, cutout_size: int = CIFAR10_CUTOUT,
            fill=0, mode: str = "reflect") -> np.ndarray:
  """DavidNet's training augmentation: random crop with padding, flip, cutout (in that order).

  A pure function of (images, seed, step, row_offset); returns a new array of the same shape
  and dtype (uint8 in, uint8 out).
  """
  x = random_crop(images, padding, seed=seed, step=step, row_offset=row_offset, mode=mode)
  if flip:
    x = random_flip(x, seed=seed, step=step, row_offset=row_offset)
  return cutout(x, cutout_size, seed=seed, step=step, row_offset=row_offset, fill=fill)


# ---------------------------------------------------------------------------------------------
# TFDS / tf.data (paper scale; prepared data only)


def cifar10(split: str = "train", *, batch_size: int, seed: int = 0, train: bool | None = None,
            data_dir: str | None = None, start_step: int = 0, process_index: int = 0,
            process_count: int = 1, cutout_size: int = CIFAR10_CUTOUT, dtype="float32",
            workers: int = 0, records=None) -> Iterator[dict]:
  """CIFAR-10 batches for DavidNet (see the module docstring); `train` defaults to split=="train".

  Raises DatasetNotFoundError at once when `data_dir` holds no prepared TFDS cifar10.
  `workers` > 0 makes the batches in that many worker processes (the same batches; each worker
  imports TensorFlow, seconds at start). `records`, a grain MapDataset of {"image": PNG bytes,
  "label"}, is read instead of TFDS's split (`split` then only says training or evaluation).
  """
  return _stream("cifar10", split, Cifar10Maps(seed, dtype, cutout_size), batch_size=batch_size,
                 seed=seed, train=train, data_dir=data_dir, start_step=start_step,
                 process_index=process_index, process_count=process_count, workers=workers,
                 records=records)


def imagenet2012(split: str = "train", *, batch_size: int, seed: int = 0,
                 train: bool | None = None, data_dir: str | None = None, start_step: int = 0,
                 process_index: int = 0, process_count: int = 1,
                 image_size: int = IMAGENET_TRAIN_SIZE, resize_size: int = IMAGENET_RESIZE,
                 dtype="float32", workers: int = 0, records=None) -> Iterator[dict]:
  """ImageNet-1k (ILSVRC2012) batches for ResNet-50; `train` defaults to split=="train".

  TFDS cannot download ImageNet: prepare it elsewhere with ``tfds build imagenet2012
  --data_dir=DIR --manual_dir=TARS --file_format=array_record`` where TARS holds
  ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar, then copy DIR. Raises
  DatasetNotFoundError at once otherwise. `workers` and `records` (JPEG bytes) as for cifar10.
  """
  return _stream("imagenet2012", split, ImageNetMaps(seed, dtype, image_size, resize_size),
                 batch_size=batch_size, seed=seed, train=train, data_dir=data_dir,
                 start_step=start_step, process_index=process_index,
                 process_count=process_count, workers=workers, records=records)


class _Maps:
  """One pipeline's per-example TensorFlow work (decode, augment, normalise, cast), as methods
  a worker process can receive: the object pickles its parameters, and each process builds its
  own tf.functions on first use."""

  MEAN = STD = (0.0, 0.0, 0.0)  # per-channel statistics of 0-255 pixels
  _BUILT = ("_functions", "_mean", "_std", "_lock")  # made in each process, never pickled

  def __init__(self, seed: int, dtype):
    self.seed, self.dtype = seed, dtype
    self._functions, self._lock = None, threading.Lock()

  def __getstate__(self):
    return {k: v for k, v in self.__dict__.items() if k not in self._BUILT}

  def __setstate__(self, state):
    self.__dict__.update(state)
    self._functions, self._lock = None, threading.Lock()

  def normalise(self, image):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    return (tf.cast(image, tf.float32) - self._mean) / self._std

  def train_map(self, image, key):
    raise NotImplementedError

  def eval_map(self, image):
    raise NotImplementedError

  def _built(self):
    with self._lock:
      if self._functions is None:
        import tensorflow as tf  # pylint: disable=import-outside-toplevel  (slow import)
        tf_dtype = tf.dtypes.as_dtype(self.dtype)
        # Eager constants, captured by the graphs as inputs (constants inside them would let
        # grappler turn "/ std" into "* (1 / std)", one float32 rounding away from the batches
        # this pipeline has always made).
        self._mean, self._std = tf.constant(self.MEAN), tf.constant(self.STD)
        base_key = tf.constant([self.seed, 0], tf.int64)

        encoded, position = tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.int64)

        @tf.function(input_signature=[encoded, position])
        def augment_one(image, position):
          key = tf.random.experimental.stateless_fold_in(base_key, position)
          return tf.cast(self.train_map(image, key), tf_dtype)

        @tf.function(input_signature=[encoded])
        def eval_one(image):
          return tf.cast(self.eval_map(image), tf_dtype)

        # Traced once here, under the lock: the threads' first calls would each trace anew.
        self._functions = (augment_one.get_concrete_function(),
                           eval_one.get_concrete_function())
      return self._functions

  def train_example(self, record, position: int) -> dict:
    """Training example at global stream position `position` (its augmentation's key)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    augment_one, _ = self._built()
    return {"image": augment_one(tf.constant(record["image"]),
                                 tf.constant(position, tf.int64)).numpy(),
            "label": np.int32(record["label"])}

  def eval_example(self, record, row: int) -> dict:  # pylint: disable=unused-argument
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    _, eval_one = self._built()
    return {"image": eval_one(tf.constant(record["image"])).numpy(),
            "label": np.int32(record["label"]), "mask": np.bool_(True)}


class Cifar10Maps(_Maps):
  """DavidNet's CIFAR-10: normalise; (training) reflect-pad, crop, flip, cutout."""
  MEAN, STD = CIFAR10_MEAN, CIFAR10_STD

  def __init__(self, seed: int, dtype, cutout_size: int = CIFAR10_CUTOUT):
    super().__init__(seed, dtype)
    self.cutout_size = cutout_size

  def eval_map(self, image):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    image = tf.io.decode_png(image, channels=3)
    image.set_shape((32, 32, 3))
    return self.normalise(image)

  def train_map(self, image, key):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    crop_key, flip_key, cutout_key = tf.unstack(tf.random.experimental.stateless_split(key, 3))
    image = self.eval_map(image)
    image = tf.pad(image, [[CIFAR10_PADDING] * 2, [CIFAR10_PADDING] * 2, [0, 0]], "REFLECT")
    image = tf.image.stateless_random_crop(image, (32, 32, 3), seed=crop_key)
    image = tf.image.stateless_random_flip_left_right(image, seed=flip_key)
    if self.cutout_size > 0:
      image = _tf_cutout(image, self.cutout_size, cutout_key)
    return image


class ImageNetMaps(_Maps):
  """ResNet-50's ImageNet: (training) Inception crop from the JPEG, resize, flip; (evaluation)
  shorter side to `resize_size`, central crop; both normalised."""
  MEAN, STD = IMAGENET_MEAN, IMAGENET_STD

  def __init__(self, seed: int, dtype, image_size: int = IMAGENET_TRAIN_SIZE,
               resize_size: int = IMAGENET_RESIZE):
    super().__init__(seed, dtype)
    self.image_size, self.resize_size = image_size, resize_size

  def _finish(self, image):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    return self.normalise(tf.reshape(image, (self.image_size, self.image_size, 3)))

  def train_map(self, image, key):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    crop_key, flip_key = tf.unstack(tf.random.experimental.stateless_split(key, 2))
    shape = tf.image.extract_jpeg_shape(image)
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape, tf.constant([0.0, 0.0, 1.0, 1.0], tf.float32, (1, 1, 4)), seed=crop_key,
        min_object_covered=CROP_MIN_OBJECT_COVERED, aspect_ratio_range=CROP_ASPECT_RANGE,
        area_range=CROP_AREA_RANGE, max_attempts=CROP_MAX_ATTEMPTS,
        use_image_if_no_bounding_boxes=True)
    window = tf.stack([begin[0], begin[1], size[0], size[1]])
    decoded = tf.io.decode_and_crop_jpeg(image, window, channels=3)
    decoded = tf.image.resize(decoded, (self.image_size, self.image_size), method="bilinear")
    return self._finish(tf.image.stateless_random_flip_left_right(decoded, seed=flip_key))

  def eval_map(self, image):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    decoded = tf.io.decode_jpeg(image, channels=3)
    hw = tf.cast(tf.shape(decoded)[:2], tf.float32)
    scale = self.resize_size / tf.reduce_min(hw)
    new_hw = tf.cast(tf.round(hw * scale), tf.int32)
    decoded = tf.image.resize(decoded, new_hw, method="bilinear", antialias=True)
    top = (new_hw[0] - self.image_size) // 2
    left = (new_hw[1] - self.image_size) // 2
    return self._finish(decoded[top:top + self.image_size, left:left + self.image_size])


def _tf_cutout(image, size: int, key):
  """Zeroes a size x size square wholly inside `image` [H, W, C], at a stateless random place."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  h, w = image.shape[0], image.shape[1]
  y_key, x_key = tf.unstack(tf.random.experimental.stateless_split(key, 2))
  y0 = tf.random.stateless_uniform((), seed=y_key, minval=0, maxval=h - size + 1,
                                   dtype=tf.int32)
  x0 = tf.random.stateless_uniform((), seed=x_key, minval=0, maxval=w - size + 1,
                                   dtype=tf.int32)
  ys, xs = tf.range(h), tf.range(w)
  inside_y = (ys >= y0) & (ys < y0 + size)
  inside_x = (xs >= x0) & (xs < x0 + size)
  inside = inside_y[:, None, None] & inside_x[None, :, None]
  return tf.where(inside, tf.zeros_like(image), image)



def _tfds_hint(name: str, data_dir: str | None) -> str:
  where = data_dir or "~/tensorflow_datasets"
  if name == "imagenet2012":
    return (f"prepare it on another machine with `tfds build imagenet2012 --data_dir={where} "
            "--manual_dir=DIR_WITH_ILSVRC2012_img_train.tar_AND_img_val.tar "
            f"--file_format={FILE_FORMAT}` and copy that folder here")
  return (f"prepare it on a machine with internet with `tfds build {name} --data_dir={where} "
          f"--file_format={FILE_FORMAT}` and copy that folder here")


def _source(name: str, split: str, data_dir: str | None):
  """A grain MapDataset over TFDS's random-access data source of `split` (a split name, or a
  slice of example counts like "validation[:10000]"), images left encoded;
  DatasetNotFoundError when `data_dir` does not hold it as ArrayRecord."""
  import grain  # pylint: disable=import-outside-toplevel
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel  (slow import)

  tfds_name, train_split, eval_split, _ = DATASETS[name]
  base, part = splits.split_and_slice(split)
  if base not in (train_split, eval_split):
    raise ValueError(f"unknown {name} split {split!r}; expected {train_split!r} or "
                     f"{eval_split!r} (or a slice of one, like '{eval_split}[:10000]')")
  data_dir = os.fspath(data_dir) if data_dir is not None else None
  try:
    source = tfds.data_source(tfds_name, split=base, data_dir=data_dir, download=False,
                              decoders={"image": tfds.decode.SkipDecoding()})
    return grain.MapDataset.source(source)[part]
  except Exception as e:  # pylint: disable=broad-except
    builder = tfds.builder(tfds_name, data_dir=data_dir)
    where = builder.data_dir
    if not builder.is_prepared():
      raise DatasetNotFoundError(f"{name} (TFDS '{tfds_name}') is not prepared in {where}; "
                                 f"{_tfds_hint(tfds_name, data_dir)}.") from e
    if FILE_FORMAT not in str(builder.info.file_format):
      raise DatasetNotFoundError(
          f"{name} in {where} is prepared as {builder.info.file_format}, which cannot be read "
          f"at random (exact resume needs it); {_tfds_hint(tfds_name, data_dir)}.") from e
    raise



def _stream(name: str, split: str, maps: _Maps, *, batch_size: int, seed: int,
            train: bool | None, data_dir: str | None, start_step: int, process_index: int,
            process_count: int, workers: int, records) -> Iterator[dict]:
  """The grain pipeline shared by cifar10 and imagenet2012, as an iterator of numpy batches.

  Training: the global stream is the split reshuffled each epoch (grain's index shuffle, seeded
  by `seed` and the epoch) and repeated; global batch s holds its positions [s B, (s+1) B),
  B = batch_size x process_count, and process p reads rows [p b, (p+1) b) of each. Example g of
  the global stream is augmented with the stateless key fold_in((seed, 0), g). Every batch is
  thus a pure function of (seed, step): `start_step` starts there without reading what came
  before, and the global batch is the same whatever the number of processes or `workers`.
  Evaluation: the split in order, process p a contiguous share, the last batch zero-padded and
  marked by "mask", each row's position in the split in "index".
  Batches are made whole, a fixed number ahead, their examples decoded by a fixed number of
  threads (lamb.data.streams): host memory does not grow with the batch beyond the batches.
  """
  streams.check_stream_args(batch_size, seed, start_step, process_index, process_count, workers)
  _, train_split, _, _ = DATASETS[name]
  train = (splits.split_and_slice(split)[0] == train_split) if train is None else train
  if not train and start_step:
    raise ValueError("start_step only applies to training streams")
  records = _source(name, split, data_dir) if records is None else records
  if len(records) < process_count:
    raise ValueError(f"{name} split {split!r} holds {len(records)} examples, fewer than the "
                     f"{process_count} processes")
  if train:
    make_batch = streams.ExampleBatches(
        records, maps.train_example, batch_size, order=streams.epoch_order(len(records), seed),
        process_index=process_index, process_count=process_count)
    return streams.batches(make_batch, start_step, workers=workers)

  n = len(records)
  first = process_index * n // process_count
  share = records[first:(process_index + 1) * n // process_count]
  make_batch = streams.ExampleBatches(share, maps.eval_example, batch_size)
  batches = streams.batches(make_batch, 0, math.ceil(len(share) / batch_size), workers=workers)
  # Every process yields as many batches as the largest share needs (all-masked ones at the
  # end of a shorter share), so that multi-host evaluation steps stay in lockstep.
  largest_share = math.ceil(n / process_count)
  return _padded(_indexed(batches, first), batch_size, math.ceil(largest_share / batch_size))


def _indexed(batches, first: int) -> Iterator[dict]:
  """Eval `batches` of a share that starts at example `first`, each with its rows' "index";
  closes `batches` when done (its worker processes, if any, end then)."""
  try:
    for batch in batches:
      rows = len(batch["label"])
      yield dict(batch, index=np.arange(first, first + rows, dtype=np.int32))
      first += rows
  finally:
    batches.close()


def _padded(batches, batch_size: int, count: int) -> Iterator[dict]:
  """`batches` with the last one zero-padded to `batch_size` rows, then all-masked batches up
  to `count` in all."""
  last = None
  try:
    for last in batches:
      count -= 1
      yield _pad_batch(last, batch_size)
  finally:
    batches.close()
  for _ in range(count):
    yield {k: np.zeros((batch_size,) + v.shape[1:], v.dtype) for k, v in last.items()}


def _pad_batch(batch: dict, batch_size: int) -> dict:
  """Zero-pads a (last, short) eval batch to `batch_size` rows; "mask" marks the real ones."""
  missing = batch_size - len(batch["label"])
  if not missing:
    return batch
  return {k: np.concatenate([v, np.zeros((missing,) + v.shape[1:], v.dtype)])
          for k, v in batch.items()}
