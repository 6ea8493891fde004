"""The sweep benchmark: a 20-point learning-rate grid through `experiments/run.py`.

Runs `benchmarks/lr_grid_config.py` (Table 7's LeNet-5/MNIST LAMB run at cpu scale, 20
learning rates) as one command, in a fresh results folder and a fresh compilation cache, and
compares its wall time (process start-up, data loading, compilation, evaluation, checkpoints
and results included) with the sum of the 20 runs' pure training time. Then it reruns the
finished sweep, which should only find the runs done.

    python -m benchmarks.sweep [--points 20]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "benchmarks" / "lr_grid_config.py"


def _run(args, cache: Path) -> float:
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", LAMB_COMPILATION_CACHE=str(cache))
  start = time.perf_counter()
  proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "run.py")] + args, cwd=ROOT,
                        env=env, capture_output=True, text=True)
  seconds = time.perf_counter() - start
  if proc.returncode != 0:
    raise RuntimeError(f"sweep failed ({proc.returncode}): {proc.stderr[-2000:]}")
  return seconds


def measure(points: int = 20, verbose: bool = True) -> dict:
  with tempfile.TemporaryDirectory(prefix="sweep-benchmark-") as tmp:
    tmp = Path(tmp)
    args = [f"--config={CONFIG}", f"--results_dir={tmp / 'results'}"]
    if points < 20:  # a thinner grid for quick checks
      args.append("--only=" + "|".join(f"^lr{re.escape(i)}$" for i in _first_labels(points)))
    wall = _run(args, tmp / "cache")
    summaries = [json.loads(p.read_text())
                 for p in sorted((tmp / "results").rglob("summary.json"))]
    train = sum(s["train_time_s"] for s in summaries)
    rerun = _run(args, tmp / "cache")
  if verbose:
    print(f"  {len(summaries)} runs: sweep wall {wall:.1f} s, sum of training {train:.1f} s, "
          f"rerun of the finished sweep {rerun:.1f} s")
  return {"runs": len(summaries), "wall_s": wall, "train_s": train, "rerun_s": rerun,
          "sweep_ratio": wall / train}


def _first_labels(points):
  from benchmarks.lr_grid_config import LEARNING_RATES  # pylint: disable=import-outside-toplevel
  return [f"{lr:g}" for lr in LEARNING_RATES[:points]]


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--points", type=int, default=20)
  args = parser.parse_args(argv)
  result = measure(args.points)
  print(f"sweep_ratio={result['sweep_ratio']:.3f}")


if __name__ == "__main__":
  main()
