"""The gradient noise scale (lamb.train.noise_scale, step.make_noise_step): the estimators against
a simulation with known |G|² and tr(Σ), the jitted measurement against numpy, the plan's checks,
and a run that measures without changing what it trains."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import HELPERS, TINY_STEPS, read_json, run_cli, run_dir, tiny_args
from lamb.train import noise_scale

NOISE_CONFIG = HELPERS / "tiny_noise_config.py"


def test_estimators_recover_a_known_gradient_and_noise():
  rng = np.random.default_rng(0)
  dim, sigma, big, parts = 50, 0.5, 64, 4
  mean = rng.normal(size=dim) * 0.3
  g_sq, trace = np.sum(mean ** 2), dim * sigma ** 2
  records = []
  for step in range(4000):
    per_example = mean + sigma * rng.normal(size=(big, dim))
    slices = per_example.reshape(parts, big // parts, dim).mean(axis=1)
    records.append(noise_scale.record(
        step, float(np.mean(np.sum(slices ** 2, axis=1))),
        float(np.sum(per_example.mean(axis=0) ** 2)), big // parts, big))
  assert np.mean([r["g_sq"] for r in records]) == pytest.approx(g_sq, rel=0.05)
  assert np.mean([r["trace"] for r in records]) == pytest.approx(trace, rel=0.05)
  assert noise_scale.b_simple(records) == pytest.approx(trace / g_sq, rel=0.1)
  early, late = noise_scale.early_and_late(records, 4000)
  assert early == pytest.approx(trace / g_sq, rel=0.15) and late == pytest.approx(
      trace / g_sq, rel=0.15)
  value, lo, hi = noise_scale.interval(records)
  assert lo < trace / g_sq < hi and hi - lo < 0.3 * value
  with pytest.raises(ValueError):
    noise_scale.estimates(1.0, 1.0, 8, 8)
  assert noise_scale.b_simple([]) is None


def test_noise_step_matches_slice_gradients_written_out():
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from lamb.train import mesh as mesh_lib, step  # pylint: disable=import-outside-toplevel
  from lamb.train.state import TrainState  # pylint: disable=import-outside-toplevel

  rng = np.random.default_rng(1)
  x, y = rng.normal(size=(16, 3)).astype(np.float32), rng.normal(size=16).astype(np.float32)
  w = rng.normal(size=3).astype(np.float32)

  def loss_fn(params, model_state, batch, key, train):
    del key, train
    err = batch["x"] @ params["w"] - batch["y"]
    return 0.5 * jnp.mean(err ** 2), ({}, model_state)

  mesh = mesh_lib.make_mesh()
  state = TrainState(step=jnp.zeros([], jnp.int32), params={"w": jnp.asarray(w)}, opt_state=(),
                     model_state={}, rng=jax.random.PRNGKey(0))
  out = step.make_noise_step(loss_fn, mesh, 4)(state, {"x": x, "y": y})
  # Slice j holds rows j, j+4, j+8, j+12 (the micro-batch layout); the gradient of a slice of
  # 0.5 mean (x w - y)^2 is x^T (x w - y) / 4.
  grads = [x[j::4].T @ (x[j::4] @ w - y[j::4]) / 4 for j in range(4)]
  assert float(out["g_small_sq"]) == pytest.approx(np.mean([g @ g for g in grads]), rel=1e-5)
  full = np.mean(grads, axis=0)
  assert float(out["g_big_sq"]) == pytest.approx(full @ full, rel=1e-5)


def test_the_plan_checks_the_slices():
  from lamb.train import plan  # pylint: disable=import-outside-toplevel
  from ml_collections import ConfigDict  # pylint: disable=import-outside-toplevel
  config = ConfigDict({"batch_size": 96, "noise_scale_parts": 5})
  with pytest.raises(ValueError, match="noise_scale_parts=5"):
    plan._noise_parts(config, 1, 1)  # pylint: disable=protected-access
  config.noise_scale_parts = 0
  assert plan._noise_parts(config, 1, 1) == 4  # pylint: disable=protected-access
  assert plan._noise_parts(config, 8, 1) == 8  # pylint: disable=protected-access


def test_a_run_measures_noise_without_changing_what_it_trains(baseline, tmp_path):
  proc = run_cli(["--config=" + str(NOISE_CONFIG)] + tiny_args()[1:], results_dir=tmp_path)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  records = [r for r in _records(run_dir(tmp_path)) if r["split"] == noise_scale.SPLIT]
  assert [r["step"] for r in records] == list(range(1, TINY_STEPS + 1, 4))
  assert all(r["b_small"] * 4 == r["b_big"] == 128 for r in records)
  assert all(r["g_small_sq"] > r["g_big_sq"] > 0 for r in records)
  train = lambda d: [(r["step"], r["loss"]) for r in _records(d) if r["split"] == "train"]
  assert train(run_dir(tmp_path)) == train(baseline.run_dir)  # the same steps, bit for bit
  ours = read_json(run_dir(tmp_path) / "summary.json")["final"]
  assert ours == read_json(baseline.run_dir / "summary.json")["final"]


def _records(directory):
  from lamb.train import results  # pylint: disable=import-outside-toplevel
  return results.read_jsonl(directory / "metrics.jsonl")


def test_the_report_places_a_ladder_against_the_measured_noise_scale(tmp_path):
  import json  # pylint: disable=import-outside-toplevel
  from analysis import critical_batch  # pylint: disable=import-outside-toplevel
  task = {"data": {"name": "fashion_mnist"}, "model": {"name": "resnet", "num_classes": 10}}

  def run(experiment, name, batch, lines=(), seed=None):
    d = tmp_path / experiment / "cpu" / name
    d.mkdir(parents=True)
    seeded = {} if seed is None else {"seed": seed}  # two seeds of one setting are two runs
    (d / "config.json").write_text(json.dumps({**task, "name": experiment, "scale": "cpu",
                                               "batch_size": batch, **seeded}))
    (d / "summary.json").write_text(json.dumps({"status": "completed", "total_steps": 8,
                                                "final": {"accuracy": 0.7}}))
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))

  # |G|^2 = 1 and tr(Sigma) = 100, measured with a little noise: E|G_n|^2 = 1 + 100/n.
  wobble = [0.99, 1.01] * 4
  run("noise_scale", "batch64", 64, [
      noise_scale.record(s, (1 + 100 / 16) * w, (1 + 100 / 64) * w, 16, 64)
      for s, w in zip(range(1, 9), wobble)])
  for batch in (8, 64, 2048):
    run("table5", f"batch{batch}", batch)
  text = "\n".join(critical_batch.section(tmp_path, "cpu"))
  assert "| `noise_scale/batch64` | cpu/fashion_mnist/resnet | 64 (16) | 100 [" in text
  assert "table5: B_simple 100 [" in text
  assert "8 (0.08x), 64 (0.64x), 2048 (20x, far beyond)" in text
  # Measurements whose |G|^2 cannot be told from zero give no value, and no ladder placement.
  d = tmp_path / "noise_scale" / "cpu" / "batch64" / "metrics.jsonl"
  # |G_b|^2 = 4 |G_B|^2 + e makes the |G|^2 estimate -e/3: zero on average.
  d.write_text("".join(json.dumps(noise_scale.record(s, 40 + e, 10, 16, 64)) + "\n"
                       for s, e in zip(range(1, 9), [3, -3, 2, -2, 1, -1, 3, -3])))
  text = "\n".join(critical_batch.section(tmp_path, "cpu"))
  assert "lost in noise (4)" in text and "has no second-half measurement" in text
  # The seeds of one setting pool their measurements: two runs of 4 give one row of 8.
  for seed in (0, 1):
    run("table5", f"batch32K_seed{seed}", 64, [
        noise_scale.record(s, (1 + 100 / 16) * w, (1 + 100 / 64) * w, 16, 64)
        for s, w in zip(range(1, 9, 2), wobble)], seed=seed)
  table = critical_batch.measured(tmp_path, "cpu")
  pooled = table[table.run == "batch32K (2 seeds)"].iloc[0]
  assert (pooled.early_n, pooled.late_n) == (4, 4)
  assert pooled.late[0] == pytest.approx(100, rel=0.05)
