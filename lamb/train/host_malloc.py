"""Let XLA:CPU reuse its per-step scratch memory instead of faulting it in afresh.

XLA:CPU allocates the temporaries of every execution anew (for LAMB, r_t + lambda x_t of every
layer: 420 MiB for BERT-base; for a ResNet, its activations). glibc's malloc serves blocks over
32 MiB with mmap and hands them back with munmap, and XLA's threads allocate in their own arenas,
whose heaps hold at most 64 MiB, so every step page-faults all of that memory in again. In a VM
that costs as much as the step's arithmetic: on this project's 2-core machine the LAMB step of
`benchmarks/optimizer_step.py` goes from 2.2-3.2x the memory floor to 1.7x, and a Table 9
ResNet-50 run trains ~17% faster, with identical results.

`reuse_freed_memory()` keeps freed memory in one heap (no mmap, no trimming, one arena). It
acts only on glibc, and only on arenas created afterwards, so call it before JAX starts its CPU
client, i.e. before the first computation. `experiments/run.py` calls it only for `cpu`-scale
configs, which are meant for CPU hosts: an accelerator's device memory has its own caching
allocator, and one arena would serialise a host input pipeline's threads. The cost: freed host
memory is never returned to the system, so the process keeps its high-water mark (and may
fragment more).
"""
from __future__ import annotations

import ctypes
import functools

# mallopt parameters, from glibc's malloc.h
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
M_ARENA_MAX = -8
_TRIM_NEVER = 2 ** 31 - 1


@functools.lru_cache(maxsize=1)
def reuse_freed_memory() -> bool:
  """Configures glibc malloc to keep freed memory for reuse; False where there is no glibc."""
  try:
    mallopt = ctypes.CDLL(None).mallopt  # the C library this process already runs on
  except (OSError, AttributeError, TypeError):  # no mallopt (macOS) or no CDLL(None) (Windows)
    return False
  mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
  return all(mallopt(param, value) == 1 for param, value in
             ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, _TRIM_NEVER)))
