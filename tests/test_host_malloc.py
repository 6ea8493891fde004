"""The runner's cpu-scale allocator setting (lamb/train/host_malloc.py) and the optimizer-step
benchmark that reports its effect."""
from __future__ import annotations

import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

_CHECK = """
import sys
sys.path.insert(0, {root!r})
from lamb.train import host_malloc
applied = host_malloc.reuse_freed_memory()
import jax, jax.numpy as jnp, numpy as np
f = jax.jit(lambda x: jnp.sum(jnp.sqrt(x * x + 1.0) * 2.0))  # a 128 MiB temporary
x = jnp.ones((32 * 2 ** 20,), jnp.float32)
values = {{float(f(x)) for _ in range(3)}}
close = abs(values.pop() / (np.sqrt(2.0) * 2 * x.size) - 1) < 1e-3 if len(values) == 1 else False
print(applied, host_malloc.reuse_freed_memory(), close)
"""


def test_reuse_freed_memory_applies_on_glibc_and_changes_no_result():
  out = subprocess.run([sys.executable, "-c", _CHECK.format(root=str(ROOT))], capture_output=True,
                       text=True, check=True, cwd=ROOT).stdout.split()
  assert out == [str(GLIBC), str(GLIBC), "True"]


def test_optimizer_step_benchmark_prints_both_allocators_and_the_ratio_line():
  out = subprocess.run([sys.executable, "benchmarks/optimizer_step.py", "--layers", "1",
                        "--repeats", "1"], capture_output=True, text=True, check=True,
                       cwd=ROOT).stdout.strip().splitlines()
  assert re.fullmatch(r"lamb/floor=\d+\.\d\d optax/floor=\d+\.\d\d", out[-1])
  assert re.fullmatch(r"with glibc's default malloc: lamb/floor=\d+\.\d\d optax/floor=\d+\.\d\d",
                      out[-2])
