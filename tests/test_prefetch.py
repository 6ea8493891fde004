"""Batches prefetched onto the devices by a background thread: same order, errors surface, and
closing the consumer leaves no thread behind (one still inside XLA at exit aborts Python) and
closes its source. The streamed pipelines' host buffer (lamb.data.streams): a fixed number of
batches made ahead and of examples in progress, whatever the batch."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from lamb.data import streams
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


def test_closing_the_consumer_closes_its_source():
  """A source that reads in worker processes (lamb.data.streams) must end them with training."""
  closed = []

  def source():
    try:
      while True:
        yield {"x": np.zeros((4, 2), np.float32)}
    finally:
      closed.append(True)

  stream = prefetch.to_devices(source(), mesh_lib.make_mesh())
  next(stream)
  assert not closed
  stream.close()
  assert closed == [True]
  with pytest.raises(ValueError, match="at least 1 batch"):
    next(prefetch.to_devices(source(), mesh_lib.make_mesh(), size=0))


# ---------------------------------------------------------------------------------------------
# The streamed pipelines' buffer (lamb.data.streams): a fixed number of whole batches made ahead
# and a fixed number of examples in progress, whatever the batch.


class _Counting:
  """A make_batch that counts the batches it has made (from the pipeline's threads)."""

  def __init__(self, batch_size):
    self.batch_size, self.made, self.lock = batch_size, [], threading.Lock()

  def __call__(self, step):
    with self.lock:
      self.made.append(step)
    return {"x": np.full((self.batch_size, 3), step, np.int64)}


def _settled(count, timeout=5.0):
  """count() once it has stopped changing (the pipeline's threads have filled its buffer)."""
  deadline, last = time.monotonic() + timeout, -1
  while time.monotonic() < deadline:
    now = count()
    if now == last:
      return now
    last = now
    time.sleep(0.2)
  return count()


@pytest.mark.parametrize("batch_size", [8, 1024])
def test_a_stream_makes_a_fixed_number_of_batches_ahead(batch_size):
  make = _Counting(batch_size)
  stream = streams.batches(make, first_step=5)
  try:
    got = [next(stream) for _ in range(3)]
    ahead = _settled(lambda: len(make.made)) - len(got)
  finally:
    stream.close()
  assert [int(b["x"][0, 0]) for b in got] == [5, 6, 7]
  assert got[0]["x"].shape == (batch_size, 3)
  assert 1 <= ahead <= streams.BATCHES_AHEAD  # batches, not a multiple of the batch


class _Concurrency:
  """An example function that records how many examples are in progress at once."""

  def __init__(self):
    self.now = self.most = self.started = 0
    self.lock = threading.Lock()

  def __call__(self, record, position):
    with self.lock:
      self.now += 1
      self.started += 1
      self.most = max(self.most, self.now)
    time.sleep(0.002)
    with self.lock:
      self.now -= 1
    return {"x": np.int64(record)}


@pytest.mark.parametrize("batch_size", [8, 256])
def test_examples_in_progress_are_bounded_by_the_threads_not_the_batch(batch_size):
  example = _Concurrency()
  records = list(range(10_000))
  make = streams.ExampleBatches(records, example, batch_size,
                                order=streams.epoch_order(len(records), seed=0))
  stream = streams.batches(make, first_step=0)
  try:
    batch = next(stream)
    started = _settled(lambda: example.started)
  finally:
    stream.close()
  assert example.most <= streams.READ_THREADS
  assert started <= (1 + streams.BATCHES_AHEAD) * batch_size  # whole batches, nothing more
  # the batch is the records at its positions of the shuffled stream, in order
  order = streams.epoch_order(len(records), seed=0)
  assert batch["x"].tolist() == [order[g] for g in range(batch_size)]


def test_the_per_example_buffer_it_replaces_grew_with_the_batch():
  """The negative case: grain's per-example prefetch with a buffer of 2 x batch (the pipelines'
  old setting) holds that many elements, and grain 0.2 scans its buffer for every element it
  returns: host time per example grew with the batch. Now an element is a batch, 2 held."""
  import grain  # pylint: disable=import-outside-toplevel
  batch_size = 256
  example = _Concurrency()
  old = grain.MapDataset.range(10_000).map(lambda i: example(i, i)).to_iter_dataset(
      grain.ReadOptions(num_threads=16, prefetch_buffer_size=2 * batch_size))
  iterator = iter(old)
  next(iterator)
  started = _settled(lambda: example.started)
  iterator.close()
  assert started >= 2 * batch_size


@pytest.mark.slow
def test_image_batches_are_the_same_with_0_and_2_worker_processes():
  """CIFAR-10's pipeline on 40 synthetic PNGs: a resumed training share and an evaluation share
  (each worker process imports TensorFlow: ~30 s on 2 cores each)."""
  import multiprocessing  # pylint: disable=import-outside-toplevel
  import grain  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from lamb.data import image_pipelines  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  records = grain.MapDataset.source([
      {"image": tf.io.encode_png(rng.integers(0, 256, (32, 32, 3), np.uint8)).numpy(),
       "label": np.int64(i % 10)} for i in range(40)])
  got = {}
  for workers in (0, 2):
    train = image_pipelines.cifar10("train", batch_size=4, seed=1, start_step=3,
                                    process_index=1, process_count=2, records=records,
                                    workers=workers)
    try:
      got["train", workers] = [dict(next(train)) for _ in range(4)]
    finally:
      train.close()
    got["eval", workers] = list(image_pipelines.cifar10(
        "test", batch_size=3, records=records, workers=workers, process_index=1,
        process_count=3))
  assert not multiprocessing.active_children()
  for kind in ("train", "eval"):
    assert len(got[kind, 0]) == len(got[kind, 2]) == (4 if kind == "train" else 5)
    for a, b in zip(got[kind, 0], got[kind, 2]):
      assert set(a) == set(b)
      for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=f"{kind} {k}")
  assert not np.array_equal(got["train", 0][0]["image"], got["train", 0][1]["image"])
