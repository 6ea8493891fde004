"""Every benchmark, one table: `python -m benchmarks [--quick]`.

  - the LAMB step against the memory floor and against optax.lamb (BERT-base-shaped tree),
  - the sweep ratio: a 20-point learning-rate grid's wall time over its pure training time,
  - the runner ratio: the experiments' loop against a bare jitted loop (steps/s),
  - each cpu-scale model: examples/s, GFLOP/s, fraction of the measured matmul peak, memory.

Each figure is a ratio or a median measured within this one invocation (this machine is shared
and noisy). A dated row is appended to benchmarks/RESULTS.md with the machine description, and
the last line printed is `sweep_ratio=X.XX runner_ratio=Y.YY lamb/floor=Z.ZZ`.
`--quick` runs a thinner version of each (3 sweep points, 1 epoch, fewer repeats) for a smoke
check; its figures are not the targets' and are not appended to RESULTS.md.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
TARGETS = {"sweep_ratio": ("<=", 1.15), "runner_ratio": (">=", 0.95), "lamb/floor": ("<=", 1.5)}


def machine() -> str:
  import jax
  from benchmarks.machine import cpu_model  # pylint: disable=import-outside-toplevel
  return (f"{cpu_model()}, {os.cpu_count()} cores, {jax.devices()[0].platform} x{jax.device_count()}, "
          f"jax {jax.__version__}, Python {platform.python_version()}")


def _meets(name: str, value: float) -> str:
  op, target = TARGETS[name]
  ok = value <= target if op == "<=" else value >= target
  return f"{'meets' if ok else 'MISSES'} target {op} {target}"


def _glibc_cell(glibc, key: str) -> str:
  return f" (glibc malloc {glibc[key]:.2f})" if glibc else ""


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="a thin smoke run, not recorded")
  args = parser.parse_args(argv)
  from lamb.train import host_malloc
  host_malloc.reuse_freed_memory()  # as experiments/run.py at cpu scale, before JAX starts
  from benchmarks import models, optimizer_step, runner_overhead, sweep

  print("LAMB step (BERT-base-shaped tree):", flush=True)
  glibc = optimizer_step.measure_with_glibc_malloc(repeats=3 if args.quick else 9,
                                                   layers=2 if args.quick else 12)
  opt = optimizer_step.measure(repeats=3 if args.quick else 9, layers=2 if args.quick else 12)
  print("Sweep (20-point learning-rate grid, Table 7 LeNet-5/MNIST, cpu scale):", flush=True)
  sw = sweep.measure(points=3 if args.quick else 20)
  print("Runner overhead (Table 7 LAMB run against a bare jitted loop):", flush=True)
  run = runner_overhead.measure(repeats=1 if args.quick else 3, epochs=1 if args.quick else 2)
  print("Models at cpu scale:", flush=True)
  mod = models.measure(steps=3 if args.quick else 10)

  rows = [
      ("LAMB step / memory floor", f"{opt['lamb/floor']:.2f}", _meets("lamb/floor", opt["lamb/floor"])),
      ("optax.lamb step / memory floor", f"{opt['optax/floor']:.2f}", ""),
      ("LAMB step / memory floor, glibc's default malloc",
       f"{glibc['lamb/floor']:.2f}" if glibc else "-",
       f"optax.lamb {glibc['optax/floor']:.2f}; separate process" if glibc
       else "not measured: no glibc, the allocator was left unchanged"),
      ("LAMB step / optax.lamb step", f"{opt['lamb/optax']:.2f}", ""),
      ("sweep wall / sum of training", f"{sw['sweep_ratio']:.2f}",
       f"{_meets('sweep_ratio', sw['sweep_ratio'])}; {sw['runs']} runs, rerun of the finished "
       f"sweep {sw['rerun_s']:.1f} s"),
      ("runner steps/s / bare loop", f"{run['runner_ratio']:.2f}",
       f"{_meets('runner_ratio', run['runner_ratio'])}; {run['steps']} steps, medians of "
       f"alternating repeats"),
      ("float32 matmul peak (GFLOP/s)", f"{mod['matmul_peak_gflops']:.0f}", "measured, 2048^2"),
  ]
  for label, m in mod["models"].items():
    if "error" in m:
      rows.append((label, "-", f"not measured: {m['error']}"))
    else:
      rows.append((label, f"{m['examples_per_s']:.0f} ex/s",
                   f"{m['gflops']:.1f} GFLOP/s = {100 * m['peak_fraction']:.1f}% of peak; "
                   f"{m['params']:,} params; step memory {m['peak_memory_mb']:.0f} MiB"
                   f"{models.conv_note(m)}{models.microbatch_note(m)}"))
  width = max(len(r[0]) for r in rows)
  print()
  print(f"{'benchmark':<{width}}  {'value':>10}  note")
  for label, value, note in rows:
    print(f"{label:<{width}}  {value:>10}  {note}")

  if not args.quick:
    day = datetime.date.today().isoformat()
    model_cells = "; ".join(f"{label}: not measured ({m['error']})" if "error" in m else
                            f"{label}: {m['examples_per_s']:.0f} ex/s, "
                            f"{100 * m['peak_fraction']:.1f}% of peak, "
                            f"{m['peak_memory_mb']:.0f} MiB{models.conv_note(m)}{models.microbatch_note(m)}"
                            for label, m in mod["models"].items())
    if not RESULTS.exists():
      RESULTS.write_text(
          "# Benchmark results\n\nOne row per `python -m benchmarks` run (appended by it). "
          "Ratios are measured within one run; targets: sweep_ratio <= 1.15, runner_ratio >= "
          "0.95, lamb/floor <= 1.5.\n\n| date | machine | sweep_ratio | runner_ratio | "
          "lamb/floor | optax/floor | matmul GFLOP/s | models |\n|---|---|---|---|---|---|---|"
          "---|\n")
    with open(RESULTS, "a") as f:
      f.write(f"| {day} | {machine()} | {sw['sweep_ratio']:.2f} | {run['runner_ratio']:.2f} | "
              f"{opt['lamb/floor']:.2f}{_glibc_cell(glibc, 'lamb/floor')} | "
              f"{opt['optax/floor']:.2f}{_glibc_cell(glibc, 'optax/floor')} | "
              f"{mod['matmul_peak_gflops']:.0f} | {model_cells} |\n")
  print(f"sweep_ratio={sw['sweep_ratio']:.2f} runner_ratio={run['runner_ratio']:.2f} "
        f"lamb/floor={opt['lamb/floor']:.2f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
