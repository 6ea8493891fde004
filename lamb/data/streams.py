"""Training streams over random-access records (grain): each batch a pure function of (seed, step).

Shared by the paper-scale pipelines that read from disk instead of holding a split in memory:
TFDS's ArrayRecord images (lamb.data.image_pipelines) and BERT's sharded pre-training instances
(lamb.data.pretraining_records). Random access is what makes resume exact and cheap: a run
restarted at step s computes which records step s reads and reads only those.

The global stream is the records reshuffled every epoch (grain's index shuffle, seeded by a hash
of the run's seed, then epoch by epoch) and repeated; global batch s holds stream positions
[s B, (s+1) B) with B = batch_size x process_count, and process p reads rows [p b, (p+1) b) of
it. So the concatenated shares of the processes are the global batch, whatever their number.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

READ_THREADS = 16  # grain's reader threads per process (decoding runs there)
SHUFFLE_SALT = 0x5EED  # mixed with the run's seed into the epochs' shuffle seed


def shuffle_seed(seed: int) -> int:
  """The seed of epoch 0's permutation. grain seeds epoch e's with (this + e); a hashed seed
  keeps the orders of runs with seeds 0, 1, 2 apart (with the seed itself, seed 1's epoch 0
  would be seed 0's epoch 1)."""
  return int(np.random.SeedSequence([seed, SHUFFLE_SALT]).generate_state(1)[0])


def check_stream_args(batch_size: int, seed: int, start_step: int, process_index: int,
                      process_count: int) -> None:
  if batch_size <= 0:
    raise ValueError(f"batch_size must be positive, got {batch_size}")
  if seed < 0 or start_step < 0:
    raise ValueError(f"seed and start_step must be non-negative, got {seed}, {start_step}")
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index {process_index} not in [0, {process_count})")


def local_examples(records, batch_size: int, *, seed: int, start_step: int,
                   process_index: int, process_count: int, example: Callable):
  """grain MapDataset of this process's examples from `start_step` on, in order:
  ``example(record, g)`` for each record it reads, g its position in the global stream."""
  import grain  # pylint: disable=import-outside-toplevel

  shuffled = records.shuffle(seed=shuffle_seed(seed)).repeat()
  global_batch = batch_size * process_count

  def at(j):
    g = (j // batch_size) * global_batch + process_index * batch_size + j % batch_size
    return example(shuffled[g], g)

  return grain.MapDataset.range(start_step * batch_size, 2 ** 62).map(at)


def read_options(batch_size: int):
  import grain  # pylint: disable=import-outside-toplevel
  return grain.ReadOptions(num_threads=READ_THREADS,
                           prefetch_buffer_size=max(2 * batch_size, READ_THREADS))
