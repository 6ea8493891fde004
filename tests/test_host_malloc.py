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

# Three LAMB steps on one 64 MiB leaf: the step's r + lambda x is a temporary over glibc's 32 MiB
# mmap threshold, i.e. the memory the setting makes reusable.
_STEPS = """
import hashlib, sys
sys.path.insert(0, {root!r})
from lamb.train import host_malloc
applied = host_malloc.reuse_freed_memory() if sys.argv[1] == "reuse" else False
import jax, jax.numpy as jnp, numpy as np, optax
from lamb import optim
params = {{"w": jax.random.normal(jax.random.PRNGKey(0), (2048, 8192))}}
grads = {{"w": jax.random.normal(jax.random.PRNGKey(1), (2048, 8192))}}
tx = optim.lamb(1e-2)
def step(params, state):
  updates, state = tx.update(grads, state, params)
  return optax.apply_updates(params, updates), state
step = jax.jit(step, donate_argnums=(0, 1))
state = tx.init(params)
temp = step.lower(params, state).compile().memory_analysis().temp_size_in_bytes
for _ in range(3):
  params, state = step(params, state)
print(applied, temp, hashlib.sha256(np.asarray(params["w"]).tobytes()).hexdigest())
"""


def _run_steps(mode: str) -> list:
  return subprocess.run([sys.executable, "-c", _STEPS.format(root=str(ROOT)), mode],
                        capture_output=True, text=True, check=True, cwd=ROOT).stdout.split()


def test_reuse_freed_memory_applies_on_glibc_and_changes_no_result():
  reused, default = _run_steps("reuse"), _run_steps("glibc")
  assert reused[0] == str(GLIBC) and default[0] == "False"
  assert int(reused[1]) > 32 * 2 ** 20, "the step must have a temporary above the mmap threshold"
  assert reused[2] == default[2], "the allocator must not change a single bit of the result"


@pytest.mark.slow  # a benchmark's output format (~20 s): `pytest -m slow`
def test_optimizer_step_benchmark_prints_both_allocators_and_the_ratio_line():
  out = subprocess.run([sys.executable, "benchmarks/optimizer_step.py", "--layers", "1",
                        "--repeats", "1"], capture_output=True, text=True, check=True,
                       cwd=ROOT).stdout.strip().splitlines()
  assert re.fullmatch(r"lamb/floor=\d+\.\d\d optax/floor=\d+\.\d\d", out[-1])
  glibc_line = (r"lamb/floor=\d+\.\d\d optax/floor=\d+\.\d\d" if GLIBC
                else r"not measured \(no glibc: the allocator was left unchanged\)")
  assert re.fullmatch(r"with glibc's default malloc: " + glibc_line, out[-2])
