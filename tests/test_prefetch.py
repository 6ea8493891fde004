"""Batches prefetched onto the devices by a background thread: same order, errors surface, and
closing the consumer leaves no thread behind (one still inside XLA at exit aborts Python)."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from lamb.train import mesh as mesh_lib, prefetch


def _batches(n, fail_at=None):
  for i in range(n):
    if i == fail_at:
      raise RuntimeError(f"bad batch {i}")
    yield {"x": np.full((4, 2), i, np.float32)}


def _prefetch_threads():
  return [t for t in threading.enumerate() if t.name == "batch-prefetch"]


def test_order_is_preserved_and_the_end_is_reached():
  mesh = mesh_lib.make_mesh()
  got = [int(b["x"][0, 0]) for b in prefetch.to_devices(_batches(7), mesh, size=2)]
  assert got == list(range(7))


def test_a_failing_producer_raises_in_the_consumer_at_that_batch():
  mesh = mesh_lib.make_mesh()
  seen = []
  with pytest.raises(RuntimeError, match="bad batch 3"):
    for b in prefetch.to_devices(_batches(7, fail_at=3), mesh):
      seen.append(int(b["x"][0, 0]))
  assert seen == [0, 1, 2]


def test_closing_an_endless_stream_stops_its_thread():
  mesh = mesh_lib.make_mesh()
  endless = ({"x": np.zeros((4, 2), np.float32)} for _ in iter(int, 1))
  stream = prefetch.to_devices(endless, mesh, size=3)
  next(stream)
  assert _prefetch_threads()
  stream.close()
  assert not _prefetch_threads()
