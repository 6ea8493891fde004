"""The cost model of paper-scale runs and `run.py --estimate`."""
from __future__ import annotations

import math
import re

import pytest

from conftest import run_cli
from lamb.train import cost_model

TPU = cost_model.ACCELERATORS["tpu_v3"]


def test_ring_allreduce_formula():
  hw = cost_model.Slice(TPU, 4)
  want = 2 * 3 / 4 * 8e9 / TPU.link_bandwidth + 2 * 3 * TPU.hop_latency
  assert cost_model.allreduce_seconds(8e9, hw) == pytest.approx(want)
  assert cost_model.allreduce_seconds(8e9, cost_model.Slice(TPU, 1)) == 0.0


def test_compute_term_is_per_chip_batch_plus_the_replicated_update():
  phase = cost_model.Phase("p", steps=10, batch_size=64, flops_per_example=1e9,
                           optimizer_flops=5e8)
  hw = cost_model.Slice(TPU, 8, utilisation=0.5)
  cost = cost_model.phase_cost(phase, 0.0, hw)
  assert cost.compute_s == pytest.approx((8 * 1e9 + 5e8) / (TPU.peak_flops * 0.5))
  assert cost.total_s == pytest.approx(10 * cost.step_s)
  assert cost.total_flops == 10 * 64 * 1e9


def test_scaling_efficiency_is_one_without_communication_and_falls_with_it():
  phase = cost_model.Phase("p", steps=1000, batch_size=1024, flops_per_example=1e9,
                           optimizer_flops=0.0)
  free = cost_model.Accelerator("free", 1e14, math.inf, 0.0, "test")
  assert cost_model.scaling_efficiency([phase], 1e9, cost_model.Slice(free, 16),
                                       cost_model.Slice(free, 1024)) == pytest.approx(1.0)
  effs = [cost_model.scaling_efficiency([phase], 1.3e9, cost_model.Slice(TPU, 16),
                                        cost_model.Slice(TPU, n)) for n in (32, 256, 1024)]
  assert 0 < effs[2] < effs[1] < effs[0] <= 1.0
  # Fewer parameters, less to all-reduce: ResNet-50 (25M) scales better than BERT (300M), at
  # a realistic per-chip load (32 examples of 100 GFLOP).
  phase = cost_model.Phase("p", steps=1000, batch_size=32768, flops_per_example=1e11,
                           optimizer_flops=0.0)
  small = cost_model.scaling_efficiency([phase], 4 * 25e6, cost_model.Slice(TPU, 16),
                                        cost_model.Slice(TPU, 1024))
  big = cost_model.scaling_efficiency([phase], 4 * 300e6, cost_model.Slice(TPU, 16),
                                      cost_model.Slice(TPU, 1024))
  assert small > big


def test_bad_slices_are_refused():
  with pytest.raises(ValueError, match="unknown accelerator"):
    cost_model.slice_from("tpu_v9", 8)
  with pytest.raises(ValueError, match="utilisation"):
    cost_model.slice_from("tpu_v3", 8, utilisation=1.5)
  with pytest.raises(ValueError, match="chip"):
    cost_model.slice_from("tpu_v3", 0)


def test_estimate_of_table7_paper(tmp_path):
  proc = run_cli(["--config=table7:paper", "--estimate"], results_dir=tmp_path)
  assert proc.returncode == 0, proc.stderr
  out = proc.stdout
  assert "61,706 parameters" in out and "1,740 steps x batch 1,024" in out  # 30 epochs of 58
  assert "assumptions:" in out and "TPU v3" in out
  assert out.count("[") == 1, "one estimate for the 100 runs of the same shapes"
  # XLA's FLOP count against LeNet-5's multiply-adds counted by hand: forward 2 x 416,520
  # (conv1 117,600, conv2 240,000, fc 58,920); backward twice that, less conv1's input gradient.
  got = float(re.search(r"([\d.]+) MFLOP per example", out).group(1)) * 1e6
  by_hand = 3 * 2 * 416_520 - 2 * 117_600
  assert abs(got - by_hand) / by_hand < 0.1, (got, by_hand)
  assert not any(tmp_path.iterdir()), "an estimate writes nothing"


def test_estimate_on_another_slice_and_bad_accelerator(tmp_path):
  proc = run_cli(["--config=table7:paper", "--estimate", "--accelerator=h100", "--chips=64"],
                 results_dir=tmp_path)
  assert proc.returncode == 0, proc.stderr
  assert "64 x NVIDIA H100" in proc.stdout
  proc = run_cli(["--config=table7:paper", "--estimate", "--accelerator=tpu_v9"],
                 results_dir=tmp_path)
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines()[-1].startswith("error: unknown accelerator 'tpu_v9'")
