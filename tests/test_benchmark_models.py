"""The model benchmark's alternating A/B of a config knob (benchmarks/models.py): both programs
are timed on the same batches and the note says which way the ratio points. Speeds themselves
are measured by `python -m benchmarks`, not asserted here."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import models  # noqa: E402  (the benchmarks folder is not an installed package)
from experiments import sweep  # noqa: E402


def _lenet():
  config = sweep.load_config(sweep.resolve_config("table7"))
  name, values = sweep.expand_sweep(config)[0]
  run = sweep.run_config(config, values)
  with run.unlocked():
    run.batch_size = 64
  return run


def test_a_choice_is_timed_against_its_baseline_on_the_same_work():
  result = models.measure_choice(_lenet(), {"1": {"microbatches": 1}, "2": {"microbatches": 2}},
                                 steps=2, rounds=2)
  assert (result["baseline"], result["other"], result["batch"]) == ("1", "2", 64)
  for label in ("1", "2"):
    assert result[label]["examples_per_s"] > 0 and result[label]["peak_memory_mb"] > 0
  # One FLOP count (the baseline's) for both, so the ratio of GFLOP/s is the ratio of speeds.
  assert result["2"]["gflops"] / result["1"]["gflops"] == pytest.approx(result["speedup"])


def test_the_microbatch_note_names_the_count_and_the_direction():
  result = {"microbatches": {"baseline": "1", "other": "16", "speedup": 1.43, "1_peak_fraction": 0.3,
                             "16_peak_fraction": 0.43, "1": {"peak_memory_mb": 841.0},
                             "16": {"peak_memory_mb": 74.0}}}
  assert models.microbatch_note(result) == (
      ", microbatches=16 (of 32) / 1 1.43x alternating (30.0% -> 43.0% of peak, 841 -> 74 MiB)")
  assert models.microbatch_note({}) == ""
  assert "not measured (ValueError" in models.microbatch_note(
      {"microbatch_error": "ValueError: x"})
