"""Split names with TFDS's slice syntax for the in-memory data sets ("test[1000:]").

Pure Python (no jax, no TensorFlow), so that a config's split is checked before any run starts.
"""
from __future__ import annotations

import re

_SLICE = re.compile(r"^(\w+)\[(\d*):(\d*)\]$")


def split_and_slice(split: str) -> tuple[str, slice]:
  """TFDS's slice syntax for in-memory splits: "test[1000:]" -> ("test", slice(1000, None)).

  Only example counts, as tfds takes them; a held-out part of a split (say the test images a
  tuning grid never saw) is named in the config the way a TFDS user writes it.
  """
  match = _SLICE.match(split)
  if match is None:
    if "[" in split:
      raise ValueError(f"split {split!r}: only slices of example counts like 'test[1000:]' "
                       "are understood")
    return split, slice(None)
  name, start, stop = match.groups()
  return name, slice(int(start) if start else None, int(stop) if stop else None)
