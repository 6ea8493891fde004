"""Deterministic host-side batching of in-memory arrays (a dict of equally long numpy arrays).

Training order is a pure function of (seed, step): step ``s`` belongs to epoch
``s // steps_per_epoch`` and takes the ``s % steps_per_epoch``-th slice of that epoch's
permutation ``epoch_permutation(num_examples, seed, epoch)``. So a run restarted with
``start_step=s`` sees exactly the batches an uninterrupted run would have seen from step ``s``
on, and every process can compute its share of a global batch without talking to the others:
process ``i`` of ``n`` gets rows ``[i * B / n, (i + 1) * B / n)`` of the global batch of ``B``
rows, so the shares of processes 0..n-1 concatenated are the global batch.
"""
from __future__ import annotations

from typing import Iterator, Mapping

import numpy as np

MASK_KEY = "mask"
INDEX_KEY = "index"


def steps_per_epoch(num_examples: int, global_batch_size: int, *,
                    drop_remainder: bool = True) -> int:
  """Training steps per epoch: ``num_examples // global_batch_size`` (rounded up if not dropping)."""
  if global_batch_size <= 0:
    raise ValueError(f"global_batch_size must be positive, got {global_batch_size}")
  if drop_remainder:
    return num_examples // global_batch_size
  return -(-num_examples // global_batch_size)


def epoch_permutation(num_examples: int, seed: int, epoch: int) -> np.ndarray:
  """The shuffled example order of `epoch` (int64 [num_examples]); a pure function of its args."""
  if seed < 0 or epoch < 0:
    raise ValueError(f"seed and epoch must be non-negative, got seed={seed}, epoch={epoch}")
  return np.random.default_rng([int(seed), int(epoch)]).permutation(num_examples)


def train_batches(arrays: Mapping[str, np.ndarray], global_batch_size: int, *, seed: int,
                  start_step: int = 0, process_index: int = 0, process_count: int = 1,
                  drop_remainder: bool = True) -> Iterator[dict[str, np.ndarray]]:
  """Endless shuffled batches from `start_step` on; each is this process's share of the global one.

  Each yielded dict has the keys of `arrays` and ``global_batch_size // process_count`` rows.
  With `drop_remainder` (the default) an epoch has ``num_examples // global_batch_size`` steps and
  the last ``num_examples % global_batch_size`` examples of each epoch's permutation are unused
  that epoch. Without it, the epoch has one more step whose batch is completed with the first
  examples of the same epoch's permutation, so batches keep their full size and every example is
  seen at least once per epoch.
  """
  num_examples = _check_arrays(arrays)
  local = _local_batch_size(global_batch_size, process_index, process_count)
  if global_batch_size > num_examples:
    raise ValueError(f"global_batch_size {global_batch_size} exceeds the {num_examples} examples")
  if start_step < 0:
    raise ValueError(f"start_step must be non-negative, got {start_step}")
  spe = steps_per_epoch(num_examples, global_batch_size, drop_remainder=drop_remainder)
  lo = process_index * local
  arrays = dict(arrays)

  def generate():
    epoch, perm = -1, None
    step = start_step
    while True:
      this_epoch, index = divmod(step, spe)
      if this_epoch != epoch:
        epoch, perm = this_epoch, epoch_permutation(num_examples, seed, this_epoch)
        if not drop_remainder:  # Wrap around: the last batch borrows the epoch's first examples.
          perm = np.concatenate([perm, perm[:spe * global_batch_size - num_examples]])
      start = index * global_batch_size + lo
      rows = perm[start:start + local]
      yield {k: v[rows] for k, v in arrays.items()}
      step += 1

  return generate()


def num_eval_batches(num_examples: int, global_batch_size: int) -> int:
  """How many (padded) batches `eval_batches` yields: ``ceil(num_examples / global_batch_size)``."""
  return steps_per_epoch(num_examples, global_batch_size, drop_remainder=False)


def eval_batches(arrays: Mapping[str, np.ndarray], global_batch_size: int, *,
                 process_index: int = 0,
                 process_count: int = 1) -> Iterator[dict[str, np.ndarray]]:
  """The whole split once, in order, as this process's share of full-size global batches.

  The last global batch is padded with zero rows; the extra boolean key ``"mask"`` is True for
  real examples, so summing a per-example metric times ``mask`` over all batches and processes
  counts every example exactly once. The extra int32 key ``"index"`` is each row's position in
  `arrays` (0 on padding): what ties a per-example evaluation record to its example.
  """
  num_examples = _check_arrays(arrays)
  for key in (MASK_KEY, INDEX_KEY):
    if key in arrays:
      raise ValueError(f"arrays already have a {key!r} key, which eval_batches adds")
  local = _local_batch_size(global_batch_size, process_index, process_count)
  num_batches = num_eval_batches(num_examples, global_batch_size)
  arrays = dict(arrays)

  def generate():
    for b in range(num_batches):
      start = b * global_batch_size + process_index * local
      stop = min(start + local, num_examples)
      real = max(stop - start, 0)
      batch = {}
      for k, v in arrays.items():
        if real == local:
          batch[k] = v[start:stop]
        else:
          padded = np.zeros((local,) + v.shape[1:], dtype=v.dtype)
          padded[:real] = v[start:start + real]
          batch[k] = padded
      mask = np.zeros((local,), dtype=bool)
      mask[:real] = True
      batch[MASK_KEY] = mask
      index = np.zeros((local,), dtype=np.int32)
      index[:real] = np.arange(start, start + real)
      batch[INDEX_KEY] = index
      yield batch

  return generate()


def _check_arrays(arrays: Mapping[str, np.ndarray]) -> int:
  if not arrays:
    raise ValueError("arrays is empty; expected a dict of equally long arrays")
  lengths = {k: len(v) for k, v in arrays.items()}
  if len(set(lengths.values())) != 1:
    raise ValueError(f"arrays must all have the same length, got {lengths}")
  n = next(iter(lengths.values()))
  if n == 0:
    raise ValueError("arrays have no examples")
  return n


def _local_batch_size(global_batch_size: int, process_index: int, process_count: int) -> int:
  if global_batch_size <= 0:
    raise ValueError(f"global_batch_size must be positive, got {global_batch_size}")
  if process_count <= 0 or not 0 <= process_index < process_count:
    raise ValueError(f"process_index {process_index} is not in [0, process_count="
                     f"{process_count})")
  if global_batch_size % process_count:
    raise ValueError(f"global_batch_size {global_batch_size} is not divisible by process_count "
                     f"{process_count}")
  return global_batch_size // process_count
