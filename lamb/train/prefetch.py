"""Batches gathered and put on the devices by a background thread, ahead of the step that
needs them, so the train loop never waits on the input pipeline.

The host work of a batch (the shuffled gather from the in-memory arrays, or the read of a
streamed one, and the transfer to the devices) runs while the devices execute the previous
steps. Order is preserved, so the batches stay a pure function of (seed, step).

The buffer is `size` batches, whatever the batch: a bound on memory, not a share of the batch.
(The streamed pipelines keep their own buffers bounded the same way: lamb.data.streams.)
Closing the consumer closes the source too, so a source that reads in worker processes
(lamb.data.streams.batches with workers > 0) ends them when training ends, not at exit.
"""
from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator

from lamb.train import mesh as mesh_lib

_END = object()


class _Failure:
  def __init__(self, error: BaseException):
    self.error = error


def to_devices(local_batches: Iterable[dict], mesh, size: int = 2) -> Iterator[dict]:
  """Global, sharded device batches from this process's host batches, `size` steps ahead.

  Closing the consumer (or its garbage collection) stops the producer thread, waits for it and
  closes `local_batches` if it can be closed; an exception in the producer is raised in the
  consumer at the batch where it happened.
  """
  if size < 1:
    raise ValueError(f"prefetch size must be at least 1 batch, got {size}")
  buffer: queue.Queue = queue.Queue(maxsize=size)
  stop = threading.Event()

  def produce():
    try:
      for local in local_batches:
        item = mesh_lib.global_batch(local, mesh)
        while not stop.is_set():
          try:
            buffer.put(item, timeout=0.1)
            break
          except queue.Full:
            continue
        if stop.is_set():
          return
      buffer.put(_END)
    except BaseException as e:  # pylint: disable=broad-except  (re-raised in the consumer)
      buffer.put(_Failure(e))

  thread = threading.Thread(target=produce, name="batch-prefetch", daemon=True)
  thread.start()
  try:
    while True:
      item = buffer.get()
      if item is _END:
        return
      if isinstance(item, _Failure):
        raise item.error
      yield item
  finally:
    # Wait for the producer to leave: a thread still inside XLA when the interpreter exits
    # aborts the process.
    stop.set()
    while thread.is_alive():
      try:
        buffer.get(timeout=0.05)
      except queue.Empty:
        pass
      thread.join(timeout=0.05)
    # Only now, with the producer gone: a generator cannot be closed while another thread is
    # inside it.
    close = getattr(local_batches, "close", None)
    if close is not None:
      close()
