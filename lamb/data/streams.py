"""Training streams over random-access records (grain): each batch a pure function of (seed, step).

Shared by the paper-scale pipelines that read from disk instead of holding a split in memory:
TFDS's ArrayRecord images (lamb.data.image_pipelines) and BERT's sharded pre-training instances
(lamb.data.pretraining_records). Random access is what makes resume exact and cheap: a run
restarted at step s computes which records step s reads and reads only those.

The global stream is the records reshuffled every epoch (grain's index shuffle, seeded by a hash
of the run's seed, then epoch by epoch) and repeated; global batch s holds stream positions
[s B, (s+1) B) with B = batch_size x process_count, and process p reads rows [p b, (p+1) b) of
it. So the concatenated shares of the processes are the global batch, whatever their number.

How batches are made ahead of the train loop (:func:`batches`): the unit of work and of
prefetch is one local batch, made whole by one task from its step number alone (a
`make_batch(step)` callable). A reading process holds at most BATCHES_AHEAD finished batches, and
within a batch at most READ_THREADS examples are in progress (:class:`ExampleBatches`); neither
number grows with the batch. (grain's per-example prefetch, used before, kept 2 x batch examples
in flight, and grain 0.2's prefetch iterator counts the finished elements at the front of its
buffer on every element it returns, so host time per example grew with the batch: 128 us of CPU
per BERT sequence at local batch 64, 1,024 us at 1,024, against 54 and 23 us now;
benchmarks/RESULTS.md, input pipeline.)
With `workers` > 0 the batches are made in that many worker processes (grain's mp_prefetch),
worker w making steps w, w + workers, ... and the main process taking them back in step order:
the same batches as without workers, only made elsewhere.
"""
from __future__ import annotations

import concurrent.futures
import threading
from typing import Callable, Iterator

import numpy as np

READ_THREADS = 16  # examples in progress at once within one batch (decoding runs there)
BATCHES_AHEAD = 2  # finished batches each reading process holds ahead of the train loop
WORKER_BUFFER = 1  # finished batches each worker process holds for the main process
SHUFFLE_SALT = 0x5EED  # mixed with the run's seed into the epochs' shuffle seed
ENDLESS = 2 ** 62  # steps of a training stream ("repeat forever" with a length)


def shuffle_seed(seed: int) -> int:
  """The seed of epoch 0's permutation. grain seeds epoch e's with (this + e); a hashed seed
  keeps the orders of runs with seeds 0, 1, 2 apart (with the seed itself, seed 1's epoch 0
  would be seed 0's epoch 1)."""
  return int(np.random.SeedSequence([seed, SHUFFLE_SALT]).generate_state(1)[0])


def check_stream_args(batch_size: int, seed: int, start_step: int, process_index: int,
                      process_count: int, workers: int = 0) -> None:
  if batch_size <= 0:
    raise ValueError(f"batch_size must be positive, got {batch_size}")
  if seed < 0 or start_step < 0:
    raise ValueError(f"seed and start_step must be non-negative, got {seed}, {start_step}")
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index {process_index} not in [0, {process_count})")
  if workers < 0:
    raise ValueError(f"input workers must be 0 (threads only) or more, got {workers}")


def epoch_order(num_records: int, seed: int):
  """grain MapDataset: position g of the global stream -> the record it reads (every epoch a new
  permutation of range(num_records))."""
  import grain  # pylint: disable=import-outside-toplevel
  return grain.MapDataset.range(num_records).shuffle(seed=shuffle_seed(seed)).repeat()


def positions(step: int, batch_size: int, process_index: int, process_count: int) -> np.ndarray:
  """Stream positions of process `process_index`'s rows of global batch `step`."""
  first = (step * process_count + process_index) * batch_size
  return np.arange(first, first + batch_size, dtype=np.int64)


class ExampleBatches:
  """make_batch for per-example work: batch `step` is ``example(records[order[g]], g)`` for this
  process's positions g, READ_THREADS at a time, stacked.

  Picklable, for worker processes: the thread pool is made in each process that uses it.
  `order` None reads `records` in order, `batch_size` rows a step, the last batch short
  (evaluation).
  """

  def __init__(self, records, example: Callable, batch_size: int, *, order=None,
               process_index: int = 0, process_count: int = 1):
    self.records, self.example, self.order = records, example, order
    self.batch_size, self.process_index, self.process_count = (batch_size, process_index,
                                                               process_count)
    self._pool, self._lock = None, threading.Lock()

  def __getstate__(self):
    return {k: v for k, v in self.__dict__.items() if k not in ("_pool", "_lock")}

  def __setstate__(self, state):
    self.__dict__.update(state)
    self._pool, self._lock = None, threading.Lock()

  def _threads(self) -> concurrent.futures.ThreadPoolExecutor:
    with self._lock:
      if self._pool is None:
        self._pool = concurrent.futures.ThreadPoolExecutor(READ_THREADS,
                                                           thread_name_prefix="batch-examples")
      return self._pool

  def _one(self, g: int):
    return self.example(self.records[int(self.order[g]) if self.order is not None else g], g)

  def __call__(self, step: int) -> dict:
    if self.order is None:
      rows = range(step * self.batch_size, min((step + 1) * self.batch_size, len(self.records)))
    else:
      rows = positions(step, self.batch_size, self.process_index, self.process_count).tolist()
    return stack(list(self._threads().map(self._one, rows)))


def stack(examples: list) -> dict:
  """One batch of a list of examples (dicts of arrays): each feature stacked along axis 0."""
  return {k: np.stack([e[k] for e in examples]) for k in examples[0]}


def batches(make_batch: Callable[[int], dict], first_step: int, end_step: int = ENDLESS, *,
            workers: int = 0) -> Iterator[dict]:
  """Iterator of ``make_batch(step)`` for first_step <= step < end_step, in order, made ahead:
  BATCHES_AHEAD per reading process, in `workers` worker processes (0: threads of this one).

  Close it when done (grain's worker processes and shared memory are released then).
  """
  import grain  # pylint: disable=import-outside-toplevel
  steps = grain.MapDataset.range(first_step, end_step).map(make_batch)
  stream = steps.to_iter_dataset(grain.ReadOptions(num_threads=BATCHES_AHEAD,
                                                   prefetch_buffer_size=BATCHES_AHEAD))
  if workers:
    _grain_flags_readable()
    stream = stream.mp_prefetch(grain.MultiprocessingOptions(
        num_workers=workers, per_worker_buffer_size=WORKER_BUFFER))
  return iter(stream)


def _grain_flags_readable() -> None:
  """grain's worker processes read its absl flags. run.py parses them; a test, notebook or
  benchmark that did not gets their defaults instead of an UnparsedFlagAccessError."""
  from absl import flags  # pylint: disable=import-outside-toplevel
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()
