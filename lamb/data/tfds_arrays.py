"""A whole split of a small prepared TFDS image data set as numpy arrays (MNIST, Fashion-MNIST).

Nothing is downloaded: `as_dataset` only reads, and raises when the folder holds no prepared
copy (the prepared-ness check lives there rather than before it, so tfds.testing.mock_data
works). The split is read in fixed-size batches and concatenated rather than with
batch_size=-1, which pads to sys.maxsize rows (and aborts the process) when the split sizes
are unknown, as under mock_data.
"""
from __future__ import annotations

import os

import numpy as np

from lamb.data.errors import DatasetNotFoundError

READ_BATCH = 10_000


def load_split(tfds_name: str, title: str, split: str, data_dir, hint: str
               ) -> tuple[np.ndarray, np.ndarray]:
  """(images uint8 [N, H, W, C], labels int32 [N]); DatasetNotFoundError ending in `hint`."""
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel  (slow import)

  if data_dir is not None:
    data_dir = os.fspath(data_dir)
  builder = tfds.builder(tfds_name, data_dir=data_dir)
  try:
    ds = builder.as_dataset(split=split, batch_size=READ_BATCH, as_supervised=False)
  except Exception as e:  # pylint: disable=broad-except
    if builder.is_prepared():
      raise
    raise DatasetNotFoundError(f"{title} (source 'tfds') is not prepared in "
                               f"{builder.data_dir}; {hint}.") from e
  chunks = list(tfds.as_numpy(ds))
  if not chunks:
    raise DatasetNotFoundError(f"{title} (source 'tfds') split {split!r} in {builder.data_dir} "
                               f"is empty; {hint}.")
  images = np.concatenate([c["image"] for c in chunks]).astype(np.uint8, copy=False)
  labels = np.concatenate([c["label"] for c in chunks]).astype(np.int32)
  return images, labels
