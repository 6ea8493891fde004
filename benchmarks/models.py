"""Throughput of each cpu-scale model: examples/s, achieved GFLOP/s, the fraction of this
machine's float32 matmul peak (measured here, not quoted), and peak memory of the train step.

The models are those of the experiment configs at cpu scale (one entry per distinct task,
model, data and batch size), trained with the same compiled step the runner uses. FLOPs per
step are XLA's own count of the compiled program; memory is its buffer assignment (arguments,
outputs and temporaries of the step). For the ResNet stand-in it also times the train step with
the residual blocks' convolutions as matrix products (`model.conv="matmul"`) against XLA's
(`"xla"`, what the committed runs used), alternating, and gives the ratio; for BERT at batch 64
and above, gradient accumulation over micro-batches of 32 sequences (`microbatches`) against one
pass over the whole batch (what the committed runs used), likewise. Both are levers for a rerun:
each changes the rounding of every step, so committed runs keep the setting they ran with.

    python -m benchmarks.models [--steps 10]
"""
from __future__ import annotations

import argparse
import importlib
import json
import statistics
import time
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]

import jax
import jax.numpy as jnp

from experiments import sweep
from lamb import optim
from lamb.data import batches as batches_lib
from lamb.train import mesh as mesh_lib, phases, programs, tasks
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
    first = phases.configs(first)[0][1]  # a phased run (figure7): its first phase
    key = json.dumps([first.task, first.model.to_dict(), first.data.to_dict(), first.batch_size,
                      first.get("microbatches", 1)], sort_keys=True, default=str)
    found.setdefault(key, (f"{first.model.name} ({first.name}, batch {first.batch_size})", first))
  return dict(found.values())


class Prepared(NamedTuple):
  """A compiled train step, warmed up, with what timing it needs."""
  compiled: Any
  state: Any  # after the warm-up step
  batches: list  # staged, not yet seen by the step
  hyperparameters: Any
  flops: float  # per step, XLA's count
  peak_bytes: int


def _prepared_step(config, steps: int) -> Prepared:
  task = tasks.build(config)
  mesh = mesh_lib.make_mesh()
  n = len(next(iter(task.train_arrays.values())))
  spe = batches_lib.steps_per_epoch(n, config.batch_size)
  # A phase of a phased run (figure7's) keeps the run's schedule, which spans every phase.
  phase_steps = [spe] * len(config.get("phases") or ()) or None
  structure, numbers = optim.split(plan_lib.optimizer_section(config, spe, spe, phase_steps))
  shared = programs.get(task, structure, mesh, config.get("microbatches", 1))
  hyperparameters = programs.hyperparameters(numbers, mesh)
  state = shared.init(config.seed, hyperparameters)
  local = batches_lib.train_batches(task.train_arrays, config.batch_size, seed=config.seed)
  staged = [mesh_lib.global_batch(next(local), mesh) for _ in range(steps + 1)]
  compiled = shared.train_step.lower(state, staged[0], hyperparameters).compile()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  memory = compiled.memory_analysis()
  peak_bytes = (memory.argument_size_in_bytes + memory.output_size_in_bytes
                + memory.temp_size_in_bytes - memory.alias_size_in_bytes)
  state, _ = compiled(state, staged[0], hyperparameters)  # warm up
  jax.block_until_ready(state)
  return Prepared(compiled, state, staged[1:], hyperparameters, float(cost.get("flops", 0.0)),
                  peak_bytes)


def _step_times(prepared: Prepared, state):
  """(per-step seconds over the staged batches, the state after them)."""
  times = []
  for batch in prepared.batches:
    start = time.perf_counter()
    state, _ = prepared.compiled(state, batch, prepared.hyperparameters)
    jax.block_until_ready(state)
    times.append(time.perf_counter() - start)
  return times, state


def measure_model(config, steps: int = 10) -> dict:
  prepared = _prepared_step(config, steps)
  times, state = _step_times(prepared, prepared.state)
  step = statistics.median(times)
  flops, peak_bytes = prepared.flops, prepared.peak_bytes
  params = sum(x.size for x in jax.tree.leaves(state.params))
  return {"params": int(params), "batch": config.batch_size, "step_s": step,
          "examples_per_s": config.batch_size / step, "gflop_per_step": flops / 1e9,
          "gflops": flops / step / 1e9, "peak_memory_mb": peak_bytes / 2 ** 20}


def measure_choice(config, choices: dict, steps: int = 10, rounds: int = 3) -> dict:
  """The train step under each of `choices` ({label: {dotted key: value}}, the first the
  baseline): all compiled once, then `rounds` alternating blocks of `steps` timed steps each;
  medians over all of a choice's steps. FLOPs are the baseline program's count for every choice
  (the same arithmetic), so the peak fractions compare the same work."""
  prepared, times = {}, {}
  for label, overrides in choices.items():
    variant = config.copy_and_resolve_references()
    with variant.unlocked():
      for key, value in overrides.items():
        sweep.set_path(variant, key, value)
    prepared[label] = _prepared_step(variant, steps)
    times[label] = []
  states = {label: p.state for label, p in prepared.items()}
  for _ in range(rounds):
    for label in choices:
      block, states[label] = _step_times(prepared[label], states[label])
      times[label] += block
  baseline, other = list(choices)[:2]
  out = {"batch": config.batch_size, "baseline": baseline, "other": other}
  for label in choices:
    step = statistics.median(times[label])
    out[label] = {"examples_per_s": config.batch_size / step,
                  "gflops": prepared[baseline].flops / step / 1e9,
                  "peak_memory_mb": prepared[label].peak_bytes / 2 ** 20}
  out["speedup"] = out[other]["examples_per_s"] / out[baseline]["examples_per_s"]
  return out


def measure_conv_choice(config, steps: int = 10, rounds: int = 3) -> dict:
  """The ResNet train step with the blocks' convolutions as XLA's (`model.conv="xla"`) and as
  matrix products (`"matmul"`, lamb.models.matmul_conv)."""
  return measure_choice(config, {"xla": {"model.conv": "xla"},
                                 "matmul": {"model.conv": "matmul"}}, steps, rounds)


MICROBATCH = 32  # sequences: the fastest micro-batch of BERT tiny measured here (16-64 tried)


def measure_microbatch_choice(config, steps: int = 10, rounds: int = 3) -> dict:
  """The BERT train step over the whole batch against micro-batches of MICROBATCH sequences."""
  count = config.batch_size // MICROBATCH
  return measure_choice(config, {"1": {"microbatches": 1}, str(count): {"microbatches": count}},
                        steps, rounds)


def measure(steps: int = 10, verbose: bool = True) -> dict:
  peak = matmul_peak()
  if verbose:
    print(f"  float32 matmul peak: {peak:.1f} GFLOP/s")
  out = {"matmul_peak_gflops": peak, "models": {}}
  # The conv A/B once per batch size: the ResNet entries share the model's shapes and differ in
  # their data and optimizer, which the step's time barely depends on.
  conv_batches, micro_batches = set(), set()
  for label, config in cpu_models().items():
    try:
      result = measure_model(config, steps)
    except Exception as e:  # pylint: disable=broad-except  (e.g. its data is not installed)
      out["models"][label] = {"error": f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"}
      if verbose:
        print(f"  {label}: skipped ({out['models'][label]['error']})")
      continue
    result["peak_fraction"] = result["gflops"] / peak
    if "conv" in config.model and config.batch_size not in conv_batches:
      conv_batches.add(config.batch_size)
      try:
        choice = measure_conv_choice(config, steps)
      except Exception as e:  # pylint: disable=broad-except
        result["conv_error"] = f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"
      else:
        result["conv"] = dict(choice, **{f"{c}_peak_fraction": choice[c]["gflops"] / peak
                                         for c in ("xla", "matmul")})
    if config.model.name == "bert" and config.batch_size >= 2 * MICROBATCH and \
        config.batch_size % MICROBATCH == 0 and config.get("microbatches", 1) == 1 and \
        config.batch_size not in micro_batches:
      micro_batches.add(config.batch_size)
      try:
        choice = measure_microbatch_choice(config, steps)
      except Exception as e:  # pylint: disable=broad-except
        result["microbatch_error"] = f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"
      else:
        result["microbatches"] = dict(choice, **{
            f"{c}_peak_fraction": choice[c]["gflops"] / peak for c in ("1", choice["other"])})
    out["models"][label] = result
    if verbose:
      print(f"  {label}: {result['examples_per_s']:.0f} examples/s, {result['gflops']:.1f} "
            f"GFLOP/s ({100 * result['peak_fraction']:.1f}% of peak), "
            f"{result['peak_memory_mb']:.0f} MiB{conv_note(result)}{microbatch_note(result)}")
  return out


def _choice_note(result: dict, key: str, what: str, name: str) -> str:
  """The A/B stored under `key` in words: ', {name} {ratio}x alternating (peak fractions,
  memory)'; what was not measured says why; '' for a model without the choice."""
  if f"{key}_error" in result:
    return f", {what} A/B not measured ({result[f'{key}_error']})"
  if key not in result:
    return ""
  c = result[key]
  a, b = c["baseline"], c["other"]
  return (f", {name} {c['speedup']:.2f}x alternating ("
          f"{100 * c[f'{a}_peak_fraction']:.1f}% -> {100 * c[f'{b}_peak_fraction']:.1f}% of "
          f"peak, {c[a]['peak_memory_mb']:.0f} -> {c[b]['peak_memory_mb']:.0f} MiB)")


def conv_note(result: dict) -> str:
  """The conv choice's A/B in words ('' for a model without the choice)."""
  return _choice_note(result, "conv", "model.conv", "model.conv=matmul/xla")


def microbatch_note(result: dict) -> str:
  """The micro-batch choice's A/B in words ('' where it was not measured)."""
  other = result.get("microbatches", {}).get("other")
  return _choice_note(result, "microbatch" if "microbatch_error" in result else "microbatches",
                      "micro-batch", f"microbatches={other} (of {MICROBATCH}) / 1")


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=10)
  args = parser.parse_args(argv)
  measure(args.steps)


if __name__ == "__main__":
  main()
