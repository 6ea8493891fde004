"""The training loop through the runner: resuming after SIGKILL, divergence, gradient
accumulation, determinism."""
from __future__ import annotations

import json
import math
import re
import signal

import pytest

from conftest import (HELPERS, INSTRUMENTED_RUN, RUN, TINY_STEPS, assert_close_losses,
                      assert_valid_run, cli_env, eval_records, kill_after_checkpoint, read_json,
                      run_cli, run_dir, start_cli, tiny_args, train_losses, train_records)
from helpers import microbatch_equivalence

# --------------------------------------------------------------------------------------------
# SIGKILL between checkpoints, then the same command again.

KILL_AFTER_CHECKPOINT = 8  # checkpoints at 4, 8, 12; the kill lands after 8, before 12


def _kill_and_resume(tmp_path, extra):
  """Start the tiny run, SIGKILL it right after checkpoint 8 is on disk, rerun the command."""
  results = tmp_path / "results"
  args = tiny_args(**extra)
  proc = start_cli(args, results_dir=results, script=INSTRUMENTED_RUN, log=tmp_path / "killed.log",
                   env=cli_env(LAMB_TEST_PAUSE_AT_STEP=KILL_AFTER_CHECKPOINT))
  ckpt = run_dir(results) / "checkpoints" / str(KILL_AFTER_CHECKPOINT)
  kill_after_checkpoint(proc, ckpt)
  assert proc.returncode == -signal.SIGKILL
  killed_at = sorted(int(p.name) for p in ckpt.parent.iterdir() if p.name.isdigit())
  assert killed_at[-1] == KILL_AFTER_CHECKPOINT, killed_at
  assert not (run_dir(results) / "summary.json").exists(), "the killed run is unfinished"

  resumed = run_cli(args, results_dir=results)
  assert resumed.returncode == 0, resumed.stdout + resumed.stderr
  assert f"{RUN}: completed after {TINY_STEPS} steps" in resumed.stdout
  return run_dir(results)


def _assert_same_as_uninterrupted(resumed, baseline):
  summary = read_json(resumed / "summary.json")
  reference = read_json(baseline.run_dir / "summary.json")
  assert summary["resumed_from_step"] == KILL_AFTER_CHECKPOINT
  assert summary["status"] == "completed" and summary["steps"] == TINY_STEPS
  for key, value in reference["final"].items():
    assert summary["final"][key] == pytest.approx(value, rel=1e-6, abs=1e-6), key
  # every train and eval record of the uninterrupted run, once, in order, with the same values
  for records in (train_records, eval_records):
    got, want = records(resumed), records(baseline.run_dir)
    assert [r["step"] for r in got] == [r["step"] for r in want], records.__name__
    for a, b in zip(got, want):
      assert a.keys() == b.keys()
      for key, value in b.items():
        if isinstance(value, float):
          assert a[key] == pytest.approx(value, rel=1e-6, abs=1e-7), (a["step"], key)
        else:
          assert a[key] == value, (a["step"], key)
  # the trust ratios logged before the kill are kept, the ones after it written once
  assert (resumed / "trust_ratios.csv").read_text() == \
      (baseline.run_dir / "trust_ratios.csv").read_text()


def test_sigkill_between_checkpoints_then_rerun_matches_uninterrupted_run(tmp_path, baseline):
  """The command a user types: metrics are logged every 50 steps (the config's default), which
  does not divide the checkpoint interval, so train records are pending when the checkpoint
  of step 8 is written."""
  _assert_same_as_uninterrupted(_kill_and_resume(tmp_path, {}), baseline)


def test_sigkill_then_rerun_matches_when_logging_at_every_checkpoint(tmp_path, baseline):
  """The same with a log interval (4) that divides the checkpoint interval (4)."""
  _assert_same_as_uninterrupted(_kill_and_resume(tmp_path, {"log_every_steps": 4}), baseline)


# --------------------------------------------------------------------------------------------
# Divergence: recorded, and the sweep goes on.


def test_absurd_learning_rate_diverges_and_the_sweep_goes_on(tmp_path):
  results = tmp_path / "results"
  names = ["momentum_lr1e+30_seed0", "adam_lr1e+30_seed0"]  # overriding lr pins the sweep axis
  proc = run_cli(tiny_args(only=r"^(momentum|adam)_lr1e\+30_seed0$", num_steps=4,
                           optimizer__learning_rate=1e30), results_dir=results)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  for i, name in enumerate(names):
    assert re.search(rf"^\[{i + 1}/2\] {re.escape(name)}: diverged after", proc.stdout, re.M), \
        proc.stdout
    path = run_dir(results, name)
    summary = read_json(path / "summary.json")
    assert summary["status"] == "diverged", summary
    at = summary["diverged_at_step"]
    assert isinstance(at, int) and 1 <= at <= 4
    assert summary["final"] is None
    # caught at the step it happened: the steps and epochs it reports are those before it
    assert summary["steps"] == at
    assert summary["epochs"] == pytest.approx(at / summary["steps_per_epoch"])
    train = train_records(path)
    assert train[-1] == {"step": at, "split": "train", "diverged": True}
    assert [r["step"] for r in train[:-1]] == list(range(1, at)), "finite steps before it"
    assert all(math.isfinite(r["loss"]) for r in train[:-1])
  # a diverged run is finished: the next sweep skips it
  again = run_cli(tiny_args(only=r"^momentum_lr1e\+30_seed0$", num_steps=4,
                            optimizer__learning_rate=1e30), results_dir=results, timeout=120)
  assert again.returncode == 0 and "finished before, skipped" in again.stdout, again.stdout


# --------------------------------------------------------------------------------------------
# Gradient accumulation: microbatches=k is one step on the mean gradient of the global batch.


@pytest.mark.parametrize("optimizer", list(microbatch_equivalence.OPTIMIZERS))
@pytest.mark.parametrize("microbatches", [2, 4])
def test_microbatches_match_one_big_batch_in_process(optimizer, microbatches):
  one = microbatch_equivalence.trajectories(optimizer, 1)
  diff = microbatch_equivalence.max_relative_differences(
      microbatch_equivalence.trajectories(optimizer, microbatches), one)
  assert diff["moved"] > 1e-2, "the parameters must actually train"
  assert diff["loss"] < 1e-5 and diff["params"] < 1e-5, diff
  assert diff["accuracy"] == 0, diff


def test_microbatches_match_on_four_devices():
  proc = run_cli([], script=HELPERS / "microbatch_equivalence.py", env=cli_env(devices=4),
                 timeout=120)
  assert proc.returncode == 0, proc.stderr
  report = json.loads(proc.stdout.splitlines()[-1])
  assert report.pop("devices") == 4
  assert len(report) == 4
  for case, diff in report.items():
    assert diff["moved"] > 1e-2, case
    assert diff["loss"] < 1e-5 and diff["params"] < 1e-5, (case, diff)


def test_microbatches_through_the_runner_match_the_baseline(tmp_path, baseline):
  results = tmp_path / "results"
  proc = run_cli(tiny_args(microbatches=4), results_dir=results)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  path = run_dir(results)
  assert read_json(path / "config.json")["microbatches"] == 4
  assert_valid_run(path)
  assert_close_losses(train_losses(path), train_losses(baseline.run_dir), 1e-5, "microbatches=4")
  got, want = train_records(path), train_records(baseline.run_dir)
  assert [r["accuracy"] for r in got] == pytest.approx([r["accuracy"] for r in want], abs=1e-6)
  assert eval_records(path)[-1]["loss"] == pytest.approx(eval_records(baseline.run_dir)[-1]["loss"],
                                                         rel=1e-5)


# --------------------------------------------------------------------------------------------
# Determinism.


def test_same_config_and_seed_twice_give_identical_metrics(tmp_path, baseline):
  results = tmp_path / "results"
  proc = run_cli(tiny_args(), results_dir=results)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  assert train_records(run_dir(results)) == train_records(baseline.run_dir)  # bit for bit
  assert eval_records(run_dir(results)) == eval_records(baseline.run_dir)
  assert (run_dir(results) / "trust_ratios.csv").read_text() == \
      (baseline.run_dir / "trust_ratios.csv").read_text()
