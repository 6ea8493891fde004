"""Fashion-MNIST (Xiao, Rasul and Vollgraf 2017): real images for the CPU-scale image experiments.

The paper's image experiments (DavidNet on CIFAR-10, Table 6; ResNet-50 on ImageNet, Tables
3-5) need data sets that cannot be fetched here. Fashion-MNIST is the stand-in, from the Debian
archive (which is reachable here): real photographs (of clothing), 10 balanced classes, and hard
enough that the optimizers differ, yet small enough to train a narrow DavidNet/ResNet on a CPU.
It is not CIFAR-10 or ImageNet; the configs that use it say so in their ``shrink_note``.

Two sources give the same arrays (images uint8 [N, 28, 28, 1], labels int32 [N]; 60,000 train
and 10,000 test examples, 6,000 and 1,000 per class, in the original file order):

* ``source="debian"`` (default, offline once installed): the Debian package
  ``dataset-fashion-mnist`` (bookworm, version 0.0~git20200523.55506a9-1, 31 MB) holds the four
  original IDX files of zalandoresearch/fashion-mnist: ``train-images-idx3-ubyte.gz``,
  ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``.
  The data installs itself: when no folder holds the four files, :func:`load` runs
  :func:`fetch` once, which needs no root::

      apt-get download dataset-fashion-mnist       # in a temporary folder
      dpkg-deb -x dataset-fashion-mnist_*.deb DIR  # -> DIR/usr/share/datasets/fashion-mnist

  with DIR = ``DEFAULT_CACHE_DIR`` (``$XDG_CACHE_HOME/lamb/fashion-mnist``, by default
  ``~/.cache/lamb/fashion-mnist``, next to the Jane Austen novels' cache). The folders searched,
  first match wins, are `data_dir`, ``$LAMB_FASHION_MNIST_DIR`` (either: any folder holding the
  four files), the system-wide install ``/usr/share/datasets/fashion-mnist/`` (``apt-get install
  dataset-fashion-mnist``) and that cache. There is no automatic fetch when `data_dir` is given
  (a folder named explicitly but incomplete is an error, not a reason to download elsewhere) or
  when the environment variable ``LAMB_NO_FETCH`` is set to anything but ``0``. IDX is parsed
  with numpy and gzip (magic number, dimensions and payload size are checked), so nothing
  beyond numpy is needed.
* ``source="tfds"``: a TensorFlow Datasets ``fashion_mnist`` prepared beforehand in
  ``data_dir`` (``tfds build fashion_mnist --data_dir=DIR``). Nothing is ever downloaded: an
  unprepared ``data_dir`` raises :class:`DatasetNotFoundError`.

To stand in for CIFAR-10 (32x32 RGB, DavidNet) or for ImageNet (with a narrow ResNet), ``load``
takes ``image_size`` (zero-pad the 28x28 images, centred, to that size, e.g. 32: two black
pixels on each side, the LeNet-5 convention; the pixels themselves are never resampled) and
``channels`` (3: the grey channel repeated, so an RGB network runs unchanged). The helpers
:func:`pad_to` and :func:`to_rgb` do the same on any array.

Normalisation is not part of the model: :func:`preprocess` maps uint8 pixels to float32 with the
mean and standard deviation of the training pixels (0.28604, 0.35302; every channel gets the
same, since the RGB copies are grey).
"""
from __future__ import annotations

import functools
import gzip
import os
import sys
from pathlib import Path

import numpy as np

from lamb.data import debian, tfds_arrays
from lamb.data.errors import DatasetNotFoundError

SPLITS = {"train": 60_000, "test": 10_000}
SOURCES = ("debian", "tfds")
IMAGE_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot")
# Of the 60,000 x 784 training pixels / 255 (tests/test_data_image.py recomputes them).
MEAN = 0.28604
STD = 0.35302

DEBIAN_PACKAGE = "dataset-fashion-mnist"
_DEBIAN_SUBDIR = ("usr", "share", "datasets", "fashion-mnist")
DEBIAN_DIR = Path("/", *_DEBIAN_SUBDIR)
ENV_DIR = "LAMB_FASHION_MNIST_DIR"
# One cache root for every data set that fetches itself ($XDG_CACHE_HOME/lamb).
DEFAULT_CACHE_DIR = debian.CACHE_ROOT / "fashion-mnist"
NO_FETCH_ENV = debian.NO_FETCH_ENV
FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
ALL_FILES = tuple(f for pair in FILES.values() for f in pair)
_IDX_MAGIC = {"images": (0x08, 3), "labels": (0x08, 1)}  # (uint8 type code, number of dims)


def describe(source: str = "debian", data_dir: str | None = None) -> str:
  """One line of provenance for `source`, for logs and result metadata."""
  if source == "debian":
    try:
      where = f"{find_dir(data_dir)}/"
    except DatasetNotFoundError:
      where = "not found"
    return (f"Fashion-MNIST (Xiao et al. 2017; 60000 train / 10000 test, 28x28 grey, original "
            f"order) from the four IDX files of the Debian package {DEBIAN_PACKAGE} "
            f"(zalandoresearch/fashion-mnist) in {where}, parsed with numpy")
  if source == "tfds":
    return ("Fashion-MNIST (Xiao et al. 2017; 60000 train / 10000 test) from a TensorFlow "
            "Datasets 'fashion_mnist' prepared beforehand in data_dir (tfds build "
            "fashion_mnist); never downloaded here")
  raise ValueError(f"unknown Fashion-MNIST source {source!r}; expected one of {SOURCES}")


def load(split: str, *, source: str = "debian", data_dir: str | None = None,
         image_size: int | None = None,
         channels: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """The whole `split` ("train" or "test") as (images uint8 [N, S, S, C], labels int32 [N]).

  By default S = 28 and C = 1; ``image_size`` zero-pads to S >= 28 (see :func:`pad_to`) and
  ``channels=3`` repeats the grey channel (see :func:`to_rgb`). With source "debian" the arrays
  are cached for the life of the process and returned read-only (copy them before writing in
  place). `data_dir`: for "debian" a folder holding the four .gz files (searched before
  ``$LAMB_FASHION_MNIST_DIR``, the Debian folder and DEFAULT_CACHE_DIR), for "tfds" the TFDS
  data folder. With "debian", no `data_dir` and none of those folders complete, the package is
  fetched first (see :func:`fetch`; not when ``$LAMB_NO_FETCH`` is set). Raises
  DatasetNotFoundError (one line: what is missing, why it was not fetched, how to provide it)
  when the data is not available, ValueError when a file is not a valid IDX file.
  """
  if split not in SPLITS:
    raise ValueError(f"unknown Fashion-MNIST split {split!r}; expected one of {tuple(SPLITS)}")
  if channels not in (None, 1, 3):
    raise ValueError(f"channels must be 1 or 3, got {channels}")
  if image_size is not None and image_size < IMAGE_SHAPE[0]:
    raise ValueError(f"image_size must be at least {IMAGE_SHAPE[0]} (images are padded, never "
                     f"resampled), got {image_size}")
  if source == "debian":
    folder = _find_or_fetch(data_dir)
    return _load_debian_shaped(split, str(folder), image_size or IMAGE_SHAPE[0], channels or 1)
  if source == "tfds":
    images, labels = _load_tfds(split, data_dir)
    _check(images, labels, split, source)
    if image_size:
      images = pad_to(images, image_size)
    if channels == 3:
      images = to_rgb(images)
    return images, labels
  raise ValueError(f"unknown Fashion-MNIST source {source!r}; expected one of {SOURCES}")


def preprocess(images):
  """uint8 pixels -> float32 ``(x / 255 - 0.28604) / 0.35302``; numpy in, numpy out (jax too).

  Rejects non-uint8 input so that images are never normalised twice.
  """
  if images.dtype != np.uint8:
    raise TypeError(f"preprocess expects uint8 images, got {images.dtype}")
  x = images.astype(np.float32) / np.float32(255.0)
  return (x - np.float32(MEAN)) / np.float32(STD)


def pad_to(images: np.ndarray, size: int = 32) -> np.ndarray:
  """Zero-pads images [N, H, W, C], centred (an odd extra pixel goes bottom/right), to size^2."""
  _, h, w, _ = images.shape
  if size < h or size < w:
    raise ValueError(f"cannot pad {h}x{w} images to {size}x{size}")
  top, left = (size - h) // 2, (size - w) // 2
  return np.pad(images, ((0, 0), (top, size - h - top), (left, size - w - left), (0, 0)))


def to_rgb(images: np.ndarray) -> np.ndarray:
  """Grey images [N, H, W, 1] -> [N, H, W, 3] (the channel repeated)."""
  if images.shape[-1] != 1:
    raise ValueError(f"to_rgb expects one channel, got shape {images.shape}")
  return np.repeat(images, 3, axis=-1)


def find_dir(data_dir: str | None = None) -> Path:
  """The first folder with all four files of `data_dir`, $LAMB_FASHION_MNIST_DIR, the Debian
  folder and the fetched copy in DEFAULT_CACHE_DIR; never fetches."""
  candidates = _candidates(data_dir)
  for folder in candidates:
    if _complete(folder):
      return folder
  raise _not_found(candidates)


def fetch(cache_dir=None) -> Path:
  """Downloads and unpacks the Debian package into `cache_dir`; returns the folder of the files.

  Runs ``apt-get download dataset-fashion-mnist`` and ``dpkg-deb -x`` (no root needed, nothing
  installed) and keeps ``usr/share/datasets/fashion-mnist`` of the package under `cache_dir`
  (default DEFAULT_CACHE_DIR). Unpacks into a temporary folder first and moves the result in
  with os.replace, so a concurrent or interrupted fetch never leaves a half-written folder
  behind. Does nothing when the files are already there. Raises DatasetNotFoundError when it
  cannot fetch, or when ``$LAMB_NO_FETCH`` is set (to anything but 0).
  """
  cache_dir = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
  if _complete(cache_dir.joinpath(*_DEBIAN_SUBDIR)):
    return cache_dir.joinpath(*_DEBIAN_SUBDIR)
  try:
    folder = debian.fetch_package(DEBIAN_PACKAGE, _DEBIAN_SUBDIR, cache_dir, _complete)
  except debian.FetchError as e:
    raise _FetchFailed(str(e)) from e
  print(f"fetched Fashion-MNIST (Debian {DEBIAN_PACKAGE}) into {folder}", file=sys.stderr)
  return folder


class _FetchFailed(DatasetNotFoundError):
  """Why :func:`fetch` got nothing (`reason`, for load's message), with how to provide it."""

  def __init__(self, reason: str):
    self.reason = reason
    super().__init__(f"Fashion-MNIST: {reason}; {_hint()}.")


def _candidates(data_dir: str | None) -> list[Path]:
  return ([Path(d) for d in (data_dir, os.environ.get(ENV_DIR)) if d]
          + [DEBIAN_DIR, DEFAULT_CACHE_DIR.joinpath(*_DEBIAN_SUBDIR)])


def _complete(folder: Path) -> bool:
  return all((folder / name).is_file() for name in ALL_FILES)


def _find_or_fetch(data_dir: str | None) -> Path:
  try:
    return find_dir(data_dir)
  except DatasetNotFoundError:
    if data_dir:  # A folder named explicitly but incomplete: a mistake to report, not mask.
      raise _not_found(_candidates(data_dir), "; not fetched, since data_dir was given "
                       f"(without it the package is fetched into {DEFAULT_CACHE_DIR})") from None
  try:
    return fetch()
  except _FetchFailed as e:
    raise _not_found(_candidates(data_dir), f"; {e.reason}") from e


def _not_found(candidates: list[Path], why: str = "") -> DatasetNotFoundError:
  searched = ", ".join(str(c) for c in candidates)
  return DatasetNotFoundError(f"Fashion-MNIST is not available: no folder of {searched} holds "
                              f"all of {', '.join(ALL_FILES)}{why}; {_hint()}.")


def _hint() -> str:
  subdir = "/".join(_DEBIAN_SUBDIR)
  return (f"install it with `apt-get install {DEBIAN_PACKAGE}` (into {DEBIAN_DIR}), or without "
          f"root with `apt-get download {DEBIAN_PACKAGE}` and `dpkg-deb -x {DEBIAN_PACKAGE}_*.deb "
          f"DIR` and pass --data_dir=DIR/{subdir} or set ${ENV_DIR} to that folder (any folder "
          f"with the four files of github.com/zalandoresearch/fashion-mnist will do); or build "
          f"TensorFlow Datasets' copy on a machine with internet with `tfds build fashion_mnist "
          f"--data_dir=TFDS_DIR` and run with --config.data.source=tfds --data_dir=TFDS_DIR")


def read_idx(path, kind: str) -> np.ndarray:
  """A gzipped IDX file of uint8 `kind` ("images": [N, rows, cols], "labels": [N]) as numpy.

  Checks the magic number (two zero bytes, type code 0x08, number of dimensions) and that the
  payload holds exactly the product of the dimensions; raises ValueError otherwise.
  """
  type_code, ndim = _IDX_MAGIC[kind]
  try:
    with gzip.open(path, "rb") as f:
      data = f.read()
  except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
    raise ValueError(f"{path}: not a readable gzip file ({e})") from e
  header = 4 + 4 * ndim
  if len(data) >= 4 and tuple(data[:4]) != (0, 0, type_code, ndim):
    raise ValueError(f"{path}: bad IDX magic number {data[:4].hex()}, expected "
                     f"0000{type_code:02x}{ndim:02x} (uint8 {kind}, {ndim} dims)")
  if len(data) < header:
    raise ValueError(f"{path}: {len(data)} bytes, too short for an IDX {kind} header")
  dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
  size = int(np.prod(dims, dtype=np.int64))
  if len(data) - header != size:
    raise ValueError(f"{path}: {len(data) - header} payload bytes, expected {size} for IDX "
                     f"dimensions {list(dims)}")
  return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


def _check(images: np.ndarray, labels: np.ndarray, split: str, source: str) -> None:
  """Shapes, dtypes and label range; the example count too for the fixed Debian files."""
  n = len(labels)
  if source == "debian" and n != SPLITS[split]:
    raise ValueError(f"Fashion-MNIST {split} from {source}: {n} examples, expected "
                     f"{SPLITS[split]}")
  if images.shape != (n,) + IMAGE_SHAPE or images.dtype != np.uint8:
    raise ValueError(f"Fashion-MNIST {split} from {source}: images "
                     f"{images.dtype}{list(images.shape)}, expected uint8{[n, *IMAGE_SHAPE]}")
  if labels.shape != (n,) or labels.dtype != np.int32:
    raise ValueError(f"Fashion-MNIST {split} from {source}: labels "
                     f"{labels.dtype}{list(labels.shape)}, expected int32[{n}]")
  if n and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
    raise ValueError(f"Fashion-MNIST {split} from {source}: labels outside [0, {NUM_CLASSES})")


# ---------------------------------------------------------------------------------------------
# Debian package (or the same four files in a folder of one's own)


@functools.lru_cache(maxsize=None)
def _load_debian(split: str, folder: str) -> tuple[np.ndarray, np.ndarray]:
  images_file, labels_file = FILES[split]
  images = read_idx(Path(folder) / images_file, "images")
  labels = read_idx(Path(folder) / labels_file, "labels")
  if len(images) != len(labels):
    raise ValueError(f"Fashion-MNIST {split} in {folder}: {len(images)} images but "
                     f"{len(labels)} labels")
  images = np.ascontiguousarray(images.reshape(images.shape + (1,)))
  labels = labels.astype(np.int32)
  _check(images, labels, split, "debian")
  for a in (images, labels):
    a.flags.writeable = False  # Shared by every caller through the cache.
  return images, labels


@functools.lru_cache(maxsize=None)
def _load_debian_shaped(split: str, folder: str, size: int,
                        channels: int) -> tuple[np.ndarray, np.ndarray]:
  images, labels = _load_debian(split, folder)
  if size == IMAGE_SHAPE[0] and channels == 1:
    return images, labels
  images = pad_to(images, size)
  if channels == 3:
    images = to_rgb(images)
  images.flags.writeable = False
  return images, labels


# ---------------------------------------------------------------------------------------------
# TensorFlow Datasets (prepared beforehand; never downloaded)


def _tfds_hint(data_dir: str | None) -> str:
  where = data_dir or "~/tensorflow_datasets"
  return (f"prepare it on a machine with internet with `tfds build fashion_mnist "
          f"--data_dir={where}` and copy that folder here (or use the default "
          f"source='debian', which fetches the Debian package {DEBIAN_PACKAGE} itself)")


def _load_tfds(split: str, data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
  return tfds_arrays.load_split("fashion_mnist", "Fashion-MNIST", split, data_dir,
                                _tfds_hint(data_dir))
