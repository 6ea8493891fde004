"""The run's PRNG (`rng_impl`): jax's threefry by default, the TPU's hardware generator
(`unsafe_rbg`, as MaxText and t5x train at scale) when a config asks; another run's numbers,
so another identity, and one per process."""
from __future__ import annotations

from conftest import read_json, run_cli, run_dir, tiny_args, train_losses
from experiments import sweep


def test_a_run_on_the_hardware_generator_trains_as_another_run(tmp_path, baseline):
  proc = run_cli(tiny_args(rng_impl="unsafe_rbg"), results_dir=tmp_path)
  assert proc.returncode == 0, proc.stderr
  summary = read_json(run_dir(tmp_path) / "summary.json")
  assert summary["status"] == "completed"
  config = read_json(run_dir(tmp_path) / "config.json")
  assert config["rng_impl"] == "unsafe_rbg"
  default = read_json(baseline.run_dir / "config.json")
  assert sweep.identity(config) != sweep.identity(default)
  # other keys, other initial weights: other losses from the first step
  assert train_losses(run_dir(tmp_path))[0] != train_losses(baseline.run_dir)[0]


def test_an_unknown_generator_is_one_line_and_writes_nothing(tmp_path):
  proc = run_cli(tiny_args(rng_impl="philox"), results_dir=tmp_path)
  assert proc.returncode == 2
  assert "rng_impl='philox' is not one of" in proc.stderr
  assert not any(tmp_path.iterdir())


def test_the_default_generator_keeps_committed_identities():
  plain = {"name": "table7", "seed": 0}
  assert sweep.identity(dict(plain, rng_impl="threefry2x32")) == sweep.identity(plain)
