"""Results in a bucket (`--results_dir=gs://...`, lamb.train.mirror), on a fake bucket that
maps gs://test-bucket/ to a local folder (tests/helpers/fake_bucket.py): the mirror pushes and
pulls run folders without checkpoints, locks or temporaries, and a run killed on one machine
resumes on another (an empty staging folder) with the records of an uninterrupted run."""
from __future__ import annotations


import pytest

from conftest import (HELPERS, INSTRUMENTED_RUN, RUN, RUN_PY, TINY_STEPS, cli_env,
                      kill_after_checkpoint, read_json, run_cli, start_cli, tiny_args)
from helpers.fake_bucket import BUCKET, fake_bucket
from lamb.train import mirror
from test_training_loop import KILL_AFTER_CHECKPOINT, _assert_same_as_uninterrupted

FAKE_BUCKET = HELPERS / "fake_bucket.py"


def test_push_then_pull_mirrors_results_only(tmp_path):
  run = tmp_path / "local" / "table7" / "cpu" / "run"
  (run / "checkpoints" / "8").mkdir(parents=True)
  (run / "checkpoints" / "8" / "state").write_text("weights")
  (run / "tensorboard").mkdir()
  (run / "tensorboard" / "events").write_bytes(b"\x00\x01")
  (run / "metrics.jsonl").write_text('{"step": 1}\n')
  (run / ".lock").write_text("identity")
  (run / ".summary.json.tmp").write_text("{")
  with fake_bucket(tmp_path / "bucket"):
    push = mirror.Pusher(run, f"{BUCKET}/results/table7/cpu/run")
    assert push() == 2 and push() == 0  # unchanged files are not sent again
    (run / "metrics.jsonl").write_text('{"step": 1}\n{"step": 2}\n')
    assert push() == 1
    pulled = tmp_path / "elsewhere"
    assert mirror.pull(f"{BUCKET}/results/table7/cpu", pulled) == 2
    assert mirror.pull(f"{BUCKET}/results/table7/cpu", pulled) == 0
    assert mirror.pull(f"{BUCKET}/results/nothing", tmp_path / "none") == 0
  stored = tmp_path / "bucket" / "results" / "table7" / "cpu" / "run"
  assert sorted(str(p.relative_to(stored)) for p in stored.rglob("*") if p.is_file()) == \
      ["metrics.jsonl", "tensorboard/events"]
  assert (pulled / "run" / "metrics.jsonl").read_text() == '{"step": 1}\n{"step": 2}\n'
  with fake_bucket(tmp_path / "bucket"):  # the command that copies results for the analysis
    assert mirror.main([f"{BUCKET}/results", str(tmp_path / "for_analysis")]) == 0
  assert (tmp_path / "for_analysis" / "table7" / "cpu" / "run" / "metrics.jsonl").is_file()
  assert mirror.main(["results", "x"]) == 2
  assert mirror.checkpoint_base("gs://b/results/", None) == "gs://b/results/checkpoints"
  assert mirror.checkpoint_base("gs://b/results", "/ckpt") == "/ckpt"
  assert mirror.checkpoint_base("results", None) is None


def test_a_run_into_a_bucket_holds_the_records_of_a_local_one(tmp_path, baseline):
  """The fast end-to-end check: a run with --results_dir=gs://... leaves in the bucket the
  records of the same run in a local folder; another machine then skips it as finished."""
  bucket = tmp_path / "bucket"
  args = tiny_args() + [f"--results_dir={BUCKET}/results",
                        f"--checkpoint_dir={tmp_path / 'checkpoints'}"]
  env = lambda machine: cli_env(LAMB_TEST_BUCKET=bucket, LAMB_STAGING_DIR=tmp_path / machine)
  first = run_cli([RUN_PY] + args, env=env("machine_a"), script=FAKE_BUCKET)
  assert first.returncode == 0, first.stdout + first.stderr
  stored = bucket / "results" / "table7" / "cpu" / RUN
  assert read_json(stored / "summary.json")["status"] == "completed"
  assert (stored / "metrics.jsonl").read_text() == (baseline.run_dir / "metrics.jsonl").read_text()
  assert not list((tmp_path / "machine_a").iterdir()), "the staging folder is removed at the end"
  again = run_cli([RUN_PY] + args, env=env("machine_b"), script=FAKE_BUCKET)
  assert again.returncode == 0 and "finished before, skipped" in again.stdout, again.stdout


@pytest.mark.slow
def test_a_run_in_a_bucket_killed_on_one_machine_resumes_on_another(tmp_path, baseline):
  """Machine A trains into the bucket and is SIGKILLed after checkpoint 8; machine B (its own,
  empty staging folder) runs the same command and finishes: the bucket then holds exactly the
  records of an uninterrupted run. Checkpoints sit in a local --checkpoint_dir shared by both
  (orbax would write a real bucket itself)."""
  bucket, checkpoints = tmp_path / "bucket", tmp_path / "checkpoints"
  args = tiny_args() + [f"--results_dir={BUCKET}/results", f"--checkpoint_dir={checkpoints}"]
  env = lambda machine, **extra: cli_env(LAMB_TEST_BUCKET=bucket,
                                         LAMB_STAGING_DIR=tmp_path / machine, **extra)
  proc = start_cli([INSTRUMENTED_RUN] + args, script=FAKE_BUCKET, log=tmp_path / "a.log",
                   env=env("machine_a", LAMB_TEST_PAUSE_AT_STEP=KILL_AFTER_CHECKPOINT))
  ckpt = checkpoints / "table7" / "cpu" / RUN / str(KILL_AFTER_CHECKPOINT)
  kill_after_checkpoint(proc, ckpt)
  stored = bucket / "results" / "table7" / "cpu" / RUN
  assert (stored / "config.json").is_file() and (stored / "metrics.jsonl").is_file()
  assert not (stored / "summary.json").exists(), "the killed run is unfinished in the bucket"

  resumed = run_cli([RUN_PY] + args, env=env("machine_b"), script=FAKE_BUCKET)
  assert resumed.returncode == 0, resumed.stdout + resumed.stderr
  assert f"{RUN}: completed after {TINY_STEPS} steps" in resumed.stdout
  assert read_json(stored / "summary.json")["status"] == "completed"
  _assert_same_as_uninterrupted(stored, baseline)


def test_a_results_url_of_an_unknown_scheme_is_refused(tmp_path):
  proc = run_cli(tiny_args() + ["--results_dir=ftp://host/results"])
  assert proc.returncode == 2
  assert "ftp:// is not a bucket this can write to" in proc.stderr
