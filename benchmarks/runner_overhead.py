"""Runner overhead: the experiments' training loop against a bare jitted loop.

Both run the same compiled LeNet-5 train step of Table 7 (LAMB, batch 1024, real MNIST) for the
same number of steps. The bare loop feeds batches that are already on the device and does
nothing else; the runner (`lamb.train.trainer.train_and_evaluate`) draws its batches from the
input pipeline and keeps its default logging, trust-ratio and checkpoint intervals. Evaluation
is not training and is excluded from both (the runner reports its training time without it).
Repeats alternate bare and runner; the ratio is of the medians, in steps/s (1.0 = no overhead).

    python -m benchmarks.runner_overhead [--repeats 3] [--epochs 2]
"""
from __future__ import annotations

import argparse
import importlib
import statistics
import tempfile
import time
from pathlib import Path


import jax

from lamb import optim
from lamb.data import batches as batches_lib
from lamb.train import mesh as mesh_lib, programs, tasks, trainer
from lamb.train import plan as plan_lib


def table7_run(epochs: int):
  config = importlib.import_module("experiments.configs.table7").get_config("cpu")
  with config.unlocked():
    del config["sweep"]
    config.optimizer.name, config.optimizer.learning_rate = "lamb", 0.01
    config.num_epochs = int(epochs)
  return config


def bare_loop(task, config, steps: int) -> float:
  """Seconds for `steps` steps of the shared compiled step on device-resident batches."""
  mesh = mesh_lib.make_mesh()
  spe = batches_lib.steps_per_epoch(len(task.train_arrays["label"]), config.batch_size)
  structure, numbers = optim.split(plan_lib.optimizer_section(config, spe, steps))
  shared = programs.get(task, structure, mesh, config.microbatches)
  hyperparameters = programs.hyperparameters(numbers, mesh)
  state = shared.init(config.seed, hyperparameters)
  local = batches_lib.train_batches(task.train_arrays, config.batch_size, seed=config.seed)
  staged = [mesh_lib.global_batch(next(local), mesh) for _ in range(steps)]
  jax.block_until_ready(staged)
  start = time.perf_counter()
  for batch in staged:
    state, _ = shared.train_step(state, batch, hyperparameters)
  jax.block_until_ready(state)
  return time.perf_counter() - start


def measure(repeats: int = 3, epochs: int = 2, verbose: bool = True) -> dict:
  config = table7_run(epochs)
  task = tasks.build(config)
  bare, runner, steps = [], [], None
  with tempfile.TemporaryDirectory(prefix="runner-overhead-") as tmp:
    trainer.train_and_evaluate(config, Path(tmp) / "warmup", task=task)  # compile once
    for i in range(repeats):
      summary = trainer.train_and_evaluate(config, Path(tmp) / f"run{i}", task=task)
      steps = summary["steps"]
      runner.append(summary["train_time_s"] / steps)
      bare.append(bare_loop(task, config, steps) / steps)
      if verbose:
        print(f"  repeat {i + 1}: bare {bare[-1] * 1e3:.1f} ms/step, "
              f"runner {runner[-1] * 1e3:.1f} ms/step")
  ratio = statistics.median(bare) / statistics.median(runner)
  return {"steps": steps, "bare_step_s": statistics.median(bare),
          "runner_step_s": statistics.median(runner), "runner_ratio": ratio}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--epochs", type=int, default=2)
  args = parser.parse_args(argv)
  result = measure(args.repeats, args.epochs)
  print(f"runner_ratio={result['runner_ratio']:.3f} (bare {result['bare_step_s'] * 1e3:.1f} "
        f"ms/step, runner {result['runner_step_s'] * 1e3:.1f} ms/step, {result['steps']} steps)")


if __name__ == "__main__":
  main()
