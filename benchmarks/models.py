"""Throughput of each cpu-scale model: examples/s, achieved GFLOP/s, the fraction of this
machine's float32 matmul peak (measured here, not quoted), and peak memory of the train step.

The models are those of the experiment configs at cpu scale (one entry per distinct task,
model, data and batch size), trained with the same compiled step the runner uses. FLOPs per
step are XLA's own count of the compiled program; memory is its buffer assignment (arguments,
outputs and temporaries of the step).

    python -m benchmarks.models [--steps 10]
"""
from __future__ import annotations

import argparse
import importlib
import json
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

import jax
import jax.numpy as jnp

from experiments import sweep
from lamb import optim
from lamb.data import batches as batches_lib
from lamb.train import mesh as mesh_lib, programs, tasks
from lamb.train import plan as plan_lib


def matmul_peak(n: int = 2048, repeats: int = 20) -> float:
  """float32 GFLOP/s of an n x n matmul, the median of `repeats` timed calls."""
  a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
  b = jax.random.normal(jax.random.PRNGKey(1), (n, n), jnp.float32)
  matmul = jax.jit(jnp.matmul)
  jax.block_until_ready(matmul(a, b))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(matmul(a, b))
    times.append(time.perf_counter() - start)
  return 2 * n ** 3 / statistics.median(times) / 1e9


def cpu_models() -> dict:
  """{label: config} with the first run of each cpu-scale config, one per distinct model setup."""
  found = {}
  for name, path in sweep.available_configs().items():
    module = importlib.import_module(f"experiments.configs.{name}")
    config = module.get_config("cpu")
    first = sweep.run_config(config, sweep.expand_sweep(config)[0][1])
    key = json.dumps([first.task, first.model.to_dict(), first.data.to_dict(), first.batch_size,
                      first.get("microbatches", 1)], sort_keys=True, default=str)
    found.setdefault(key, (f"{first.model.name} ({first.name}, batch {first.batch_size})", first))
  return dict(found.values())


def measure_model(config, steps: int = 10) -> dict:
  task = tasks.build(config)
  mesh = mesh_lib.make_mesh()
  n = len(next(iter(task.train_arrays.values())))
  spe = batches_lib.steps_per_epoch(n, config.batch_size)
  structure, numbers = optim.split(plan_lib.optimizer_section(config, spe, spe))
  shared = programs.get(task, structure, mesh, config.get("microbatches", 1))
  hyperparameters = programs.hyperparameters(numbers, mesh)
  state = shared.init(config.seed, hyperparameters)
  local = batches_lib.train_batches(task.train_arrays, config.batch_size, seed=config.seed)
  staged = [mesh_lib.global_batch(next(local), mesh) for _ in range(steps + 1)]
  compiled = shared.train_step.lower(state, staged[0], hyperparameters).compile()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  flops = float(cost.get("flops", 0.0))
  memory = compiled.memory_analysis()
  peak_bytes = (memory.argument_size_in_bytes + memory.output_size_in_bytes
                + memory.temp_size_in_bytes - memory.alias_size_in_bytes)
  state, _ = compiled(state, staged[0], hyperparameters)  # warm up
  jax.block_until_ready(state)
  times = []
  for batch in staged[1:]:
    start = time.perf_counter()
    state, _ = compiled(state, batch, hyperparameters)
    jax.block_until_ready(state)
    times.append(time.perf_counter() - start)
  step = statistics.median(times)
  params = sum(x.size for x in jax.tree.leaves(state.params))
  return {"params": int(params), "batch": config.batch_size, "step_s": step,
          "examples_per_s": config.batch_size / step, "gflop_per_step": flops / 1e9,
          "gflops": flops / step / 1e9, "peak_memory_mb": peak_bytes / 2 ** 20}


def measure(steps: int = 10, verbose: bool = True) -> dict:
  peak = matmul_peak()
  if verbose:
    print(f"  float32 matmul peak: {peak:.1f} GFLOP/s")
  out = {"matmul_peak_gflops": peak, "models": {}}
  for label, config in cpu_models().items():
    try:
      result = measure_model(config, steps)
    except Exception as e:  # pylint: disable=broad-except  (e.g. its data is not installed)
      out["models"][label] = {"error": f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"}
      if verbose:
        print(f"  {label}: skipped ({out['models'][label]['error']})")
      continue
    result["peak_fraction"] = result["gflops"] / peak
    out["models"][label] = result
    if verbose:
      print(f"  {label}: {result['examples_per_s']:.0f} examples/s, {result['gflops']:.1f} "
            f"GFLOP/s ({100 * result['peak_fraction']:.1f}% of peak), "
            f"{result['peak_memory_mb']:.0f} MiB")
  return out


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=10)
  args = parser.parse_args(argv)
  measure(args.steps)


if __name__ == "__main__":
  main()
