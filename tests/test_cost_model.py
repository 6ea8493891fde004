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


def test_a_calibration_is_fitted_by_least_squares_on_torus_hops():
  truth = cost_model.Calibration(0.05, 8e-4, "truth")
  points = [(n, truth.overhead_seconds(n)) for n in (16, 64, 256, 1024)]
  fit = cost_model.fit_calibration(points, "test")
  assert fit.fixed_s == pytest.approx(0.05) and fit.per_hop_s == pytest.approx(8e-4)
  assert cost_model.torus_hops(1024) == 4 * 31 and cost_model.torus_hops(1) == 0
  with pytest.raises(ValueError, match="two slice sizes"):
    cost_model.fit_calibration([(16, 0.1), (16, 0.2)], "test")


def test_a_calibration_adds_its_overhead_to_every_step_and_lowers_the_efficiency():
  phase = cost_model.Phase("p", steps=100, batch_size=32 * 1024, flops_per_example=2.4e11,
                           optimizer_flops=0.0)
  hw = cost_model.Slice(TPU, 1024)
  plain = cost_model.phase_cost(phase, 1.3e9, hw)
  calibrated = cost_model.phase_cost(phase, 1.3e9, hw, cost_model.TPU_V3_BERT)
  assert calibrated.step_s - plain.step_s == pytest.approx(
      cost_model.TPU_V3_BERT.overhead_seconds(1024))
  base = cost_model.Slice(TPU, 16)
  assert (cost_model.scaling_efficiency([phase], 1.3e9, base, hw, cost_model.TPU_V3_BERT)
          < cost_model.scaling_efficiency([phase], 1.3e9, base, hw))


@pytest.mark.slow
def test_the_committed_calibration_is_the_fit_and_predicts_the_rows_it_did_not_see(tmp_path):
  """Refits on Table 1 (BERT-Large's FLOPs at abstract shapes, ~30 s): the committed constants
  are the fit, held-out rows within 10%, Figure 8's efficiencies within 10 points."""
  from experiments import calibrate_cost_model as calibrate  # pylint: disable=import-outside-toplevel
  table = calibrate.rows()
  fit = calibrate.calibrate(table)
  assert fit.fixed_s == pytest.approx(cost_model.TPU_V3_BERT.fixed_s, abs=5e-5)
  assert fit.per_hop_s == pytest.approx(cost_model.TPU_V3_BERT.per_hop_s, abs=5e-7)
  by = {row[0]: row for row in table}
  for label, row in by.items():
    if label not in calibrate.CALIBRATION_ROWS:
      assert abs(calibrate._predicted(row, fit) / row[3] - 1) < 0.10, label
  base = by[calibrate.BASE_ROW]
  for label, paper in ((calibrate.TOP_ROW, 76.8), (calibrate.MIXED_ROW, 101.8)):
    row = by[label]
    eff = calibrate._predicted(base, fit) / calibrate._predicted(row, fit) / (row[2] / base[2])
    assert abs(100 * eff - paper) < 10, (label, eff)
  out = tmp_path / "COST_MODEL.md"
  assert calibrate.main([f"--out={out}"]) == 0 and "held out" in out.read_text()
  assert calibrate.main([f"--out={tmp_path / 'no' / 'x.md'}"]) == 2
