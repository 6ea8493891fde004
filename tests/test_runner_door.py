"""Strict at the door: every bad invocation and every damaged run folder the runner cannot be
sure of ends in one `error:` line, exit status 2, nothing written and every good file
byte-identical; the damage it can repair (a torn last record, a corrupt or orphaned
checkpoint, a lost final evaluation) is repaired, said, and ends with the uninterrupted run's
results."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from experiments import sweep

from conftest import (RUN, ROOT, TINY_STEPS, assert_valid_run, read_json, run_cli, run_dir,
                      tiny_args, tree_bytes)

# --------------------------------------------------------------------------------------------
# Bad invocations on an empty results folder: (arguments, fragments of the error line).

LAMB = "^lamb_"  # overriding a swept field renames the run, so select by optimizer
BAD_INVOCATIONS = {
    "batch_zero": (tiny_args(batch_size=0), ["batch_size must be a positive integer", "0"]),
    "batch_negative": (tiny_args(batch_size=-8), ["batch_size", "-8"]),
    "batch_fraction": (tiny_args(batch_size=1.5), ["batch_size", "1.5"]),
    "batch_word": (tiny_args(batch_size="abc"), ["batch_size", "abc"]),
    "batch_over_examples": (tiny_args(batch_size=4096), ["batch_size 4096", "2048"]),
    "epochs_zero": (tiny_args(num_steps=0, num_epochs=0), ["num_epochs", "positive"]),
    "epochs_negative": (tiny_args(num_steps=0, num_epochs=-1), ["num_epochs", "-1"]),
    "epochs_nan": (tiny_args(num_steps=0, num_epochs="nan"), ["num_epochs", "nan"]),
    "steps_negative": (tiny_args(num_steps=-1), ["num_steps", "non-negative"]),
    "steps_fraction": (tiny_args(num_steps=2.5), ["num_steps", "2.5"]),
    "eval_batch_zero": (tiny_args(eval_batch_size=0), ["eval_batch_size", "positive"]),
    "lr_nan": (tiny_args(only=LAMB, optimizer__learning_rate="nan"),
               ["optimizer.learning_rate must be finite", "nan"]),
    "lr_inf": (tiny_args(only=LAMB, optimizer__learning_rate="inf"), ["learning_rate", "inf"]),
    "lr_negative": (tiny_args(only=LAMB, optimizer__learning_rate=-1),
                    ["optimizer.learning_rate must be >= 0"]),
    "weight_decay_negative": (tiny_args(optimizer__weight_decay=-0.1),
                              ["optimizer.weight_decay must be >= 0"]),
    "weight_decay_nan": (tiny_args(optimizer__weight_decay="nan"), ["weight_decay", "finite"]),
    "momentum_above_one": (tiny_args(optimizer__momentum=1.5),
                           ["optimizer.momentum must lie in [0, 1]"]),
    "warmup_ratio_negative": (tiny_args(optimizer__schedule__warmup_ratio=-0.1),
                              ["warmup_ratio", ">= 0"]),
    "seed_negative": (tiny_args(only="seed-1", seed=-1), ["seed", "non-negative"]),
    "microbatches_zero": (tiny_args(microbatches=0), ["microbatches", "positive"]),
    "microbatches_not_dividing": (tiny_args(microbatches=3),
                                  ["microbatches=3 does not divide batch_size=128"]),
    "log_every_zero": (tiny_args(log_every_steps=0), ["log_every_steps", "positive"]),
    "eval_every_negative": (tiny_args(eval_every_epochs=-1), ["eval_every_epochs"]),
    "checkpoint_every_nan": (tiny_args(checkpoint_every_epochs="nan"),
                             ["checkpoint_every_epochs"]),
    "trust_every_negative": (tiny_args(trust_ratio_every_steps=-3),
                             ["trust_ratio_every_steps"]),
    "train_examples_negative": (tiny_args(data__train_examples=-5),
                                ["data.train_examples", "-5"]),
    "train_examples_too_many": (tiny_args(data__train_examples=70000),
                                ["data.train_examples=70000", "60000"]),
    "eval_examples_negative": (tiny_args(data__eval_examples=-1), ["data.eval_examples"]),
    "eval_examples_too_many": (tiny_args(data__eval_examples=20000),
                               ["data.eval_examples=20000", "10000"]),
    "unknown_optimizer": (tiny_args(only="^sgd_", optimizer__name="sgd"),
                          ["unknown optimizer 'sgd'"]),
    "unknown_scale": (["--config=table7:bogus"], ["unknown scale 'bogus'"]),
    "unknown_config": (["--config=tabel7"], ["'tabel7'", "did you mean table7"]),
    "unknown_field": (tiny_args(optimzer__learning_rate=0.1),
                      ["unknown config field 'optimzer.learning_rate'"]),
    "config_twice": (["--config=table7", "--config=table6"], ["--config is given 2 times"]),
    "config_empty": (["--config="], ["--config is empty"]),
    "config_without_value": (["--config"], ["--config needs a value"]),
    "no_config": (["--dry_run"], ["no --config"]),
    "unknown_flag": (tiny_args() + ["--bogus_flag=1"], ["bogus_flag"]),
    "only_empty": (tiny_args(only=None) + ["--only="], ["--only is empty"]),
    "only_invalid": (tiny_args(only="lamb_(lr"), ["--only", "not a valid regular expression"]),
    "only_no_match": (tiny_args(only="^sgd_"), ["--only", "matches no run"]),
    "results_dir_empty": (tiny_args() + ["--results_dir="], ["--results_dir is empty"]),
    "results_dir_is_file": (tiny_args() + ["--results_dir={file}"], ["is a file, not a folder"]),
    "results_dir_unwritable": (tiny_args() + ["--results_dir=/proc/lamb-results"],
                               ["cannot be written"]),
    "checkpoint_dir_empty": (tiny_args() + ["--checkpoint_dir="], ["--checkpoint_dir is empty"]),
    "checkpoint_dir_is_file": (tiny_args() + ["--checkpoint_dir={file}"],
                               ["--checkpoint_dir", "is a file"]),
    "data_dir_missing": (tiny_args() + ["--data_dir=/nonexistent/tfds"], ["--data_dir", "folder"]),
    "dry_run_and_estimate": (tiny_args() + ["--dry_run", "--estimate"], ["two views"]),
    "estimate_no_chips": (tiny_args() + ["--estimate", "--chips=0"], ["--chips", "positive"]),
    "estimate_utilisation": (tiny_args() + ["--estimate", "--utilisation=1.5"],
                             ["--utilisation", "(0, 1]"]),
    "progress_negative": (tiny_args() + ["--progress_every=-1"], ["--progress_every"]),
    "processes_zero": (tiny_args() + ["--num_processes=0"], ["--num_processes"]),
}


def _assert_refused(proc, fragments):
  lines = [line for line in proc.stderr.splitlines() if line.strip()]
  assert proc.returncode == 2, f"exit {proc.returncode}\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}"
  assert len(lines) == 1, f"{len(lines)} lines on stderr:\n{proc.stderr[-3000:]}"
  assert lines[0].startswith("error: "), lines[0]
  for fragment in fragments:
    assert fragment in lines[0], (fragment, lines[0])
  assert proc.stdout == "", proc.stdout


@pytest.mark.parametrize("case", list(BAD_INVOCATIONS))
def test_bad_invocation_is_one_line_exit_2_nothing_written(case, tmp_path):
  args, fragments = BAD_INVOCATIONS[case]
  a_file = tmp_path / "a_file"
  a_file.write_text("keep me\n")
  results = tmp_path / "results"
  args = [a.replace("{file}", str(a_file)) for a in args]
  proc = run_cli(args if "--results_dir" in " ".join(args) else args + [f"--results_dir={results}"],
                 timeout=120)
  _assert_refused(proc, fragments)
  assert not results.exists(), f"wrote {sorted(map(str, results.rglob('*')))}"
  assert a_file.read_text() == "keep me\n"
  assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"], "nothing written beside it"


# --------------------------------------------------------------------------------------------
# Damaged or foreign run folders: (how to damage the baseline's copy, extra arguments,
# fragments). Each must be refused before anything is written.


def _write(name, data: bytes, keep_summary=True):
  def damage(path: Path):
    if not keep_summary:
      (path / "summary.json").unlink()
    (path / name).write_bytes(data)
  return damage


def _remove_summary_then(damage):
  def both(path: Path):
    (path / "summary.json").unlink()
    damage(path)
  return both


def _break_line(path: Path):
  lines = (path / "metrics.jsonl").read_text().splitlines(keepends=True)
  lines[2] = "{broken\n"
  (path / "metrics.jsonl").write_text("".join(lines))


def _config_dir(path: Path):
  (path / "config.json").unlink()
  (path / "config.json").mkdir()


DAMAGED = {
    "config_not_utf8": (_write("config.json", b"\xff\xfe{}"), [], ["config.json is unreadable",
                                                                   "rm -r"]),
    "config_not_json": (_write("config.json", b'{"name": "table7",'), [], ["config.json",
                                                                          "unreadable"]),
    "config_a_list": (_write("config.json", b"[1, 2]\n"), [], ["config.json", "not an object"]),
    "config_a_folder": (_config_dir, [], ["config.json", "unreadable"]),
    "summary_not_utf8": (_write("summary.json", b"\xff\xfe"), [], ["summary.json is unreadable"]),
    "summary_truncated": (_write("summary.json", b'{"status": "compl'), [], ["summary.json"]),
    "metrics_middle_line_broken": (_remove_summary_then(_break_line), [],
                                   ["metrics.jsonl is unreadable", "line 3"]),
    "metrics_not_utf8": (_write("metrics.jsonl", b"\xff\xfe\n", keep_summary=False), [],
                         ["metrics.jsonl is unreadable"]),
    "another_config_in_folder": (lambda path: None, ["--config.optimizer.weight_decay=0.02"],
                                 ["1 run(s)", RUN, "different config"]),
    "another_config_unfinished": (lambda path: (path / "summary.json").unlink(),
                                  ["--config.num_steps=24"], ["different config", RUN]),
}


@pytest.mark.parametrize("case", list(DAMAGED))
def test_damaged_run_folder_is_refused_and_left_as_it_was(case, copy_of_baseline):
  damage, extra, fragments = DAMAGED[case]
  damage(run_dir(copy_of_baseline))
  before = tree_bytes(copy_of_baseline)
  proc = run_cli(tiny_args() + extra, results_dir=copy_of_baseline, timeout=120)
  _assert_refused(proc, fragments)
  assert tree_bytes(copy_of_baseline) == before, "every file byte-identical"


def test_checkpoint_dir_of_another_config_is_refused(copy_of_baseline, tmp_path):
  """--checkpoint_dir holding another config's checkpoints (here: the baseline's, moved where a
  run with another weight decay would look for its own) is never resumed."""
  ckpts = tmp_path / "ckpts"
  other = ckpts / "table7" / "cpu" / "lamb_lr0.01_seed0"
  other.parent.mkdir(parents=True)
  shutil.copytree(run_dir(copy_of_baseline) / "checkpoints", other)
  before = tree_bytes(tmp_path)
  proc = run_cli(tiny_args(optimizer__weight_decay=0.02) + [f"--checkpoint_dir={ckpts}"],
                 results_dir=tmp_path / "fresh", timeout=120)
  _assert_refused(proc, ["different config", RUN])
  assert tree_bytes(tmp_path) == before


def test_a_process_training_another_config_is_refused(copy_of_baseline):
  """A second process with different overrides on a run the first is training."""
  path = run_dir(copy_of_baseline)
  (path / "summary.json").unlink()
  holder = subprocess.Popen(
      [sys.executable, "-c", "import fcntl, os, sys, time\n"
       "fd = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR)\n"
       "fcntl.flock(fd, fcntl.LOCK_EX)\nos.ftruncate(fd, 0)\nos.write(fd, b'0123456789abcdef')\n"
       "print('locked', flush=True)\ntime.sleep(120)\n", str(path / ".lock")],
      stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == "locked"
    before = tree_bytes(copy_of_baseline)
    proc = run_cli(tiny_args(), results_dir=copy_of_baseline, timeout=120)
    _assert_refused(proc, ["different config", RUN])
    assert tree_bytes(copy_of_baseline) == before
  finally:
    holder.kill()
    holder.wait()


# --------------------------------------------------------------------------------------------
# Damage the runner repairs: said on stderr, ends with the uninterrupted run's results.


def _same_metrics(path: Path, baseline_dir: Path):
  assert (path / "metrics.jsonl").read_text() == (baseline_dir / "metrics.jsonl").read_text()
  assert (path / "trust_ratios.csv").read_text() == (baseline_dir / "trust_ratios.csv").read_text()


def _torn_last_line(path: Path):
  (path / "summary.json").unlink()
  text = (path / "metrics.jsonl").read_bytes()
  (path / "metrics.jsonl").write_bytes(text[:-20])  # the final evaluation, cut mid-line


def _lost_summary_and_metrics(path: Path):
  (path / "summary.json").unlink()
  (path / "metrics.jsonl").unlink()


def _corrupt_newest_checkpoint(path: Path):
  (path / "summary.json").unlink()
  for f in (path / "checkpoints" / str(TINY_STEPS)).rglob("*"):
    if f.is_file():
      f.write_bytes(b"")


REPAIRED = {
    "torn_last_line": (_torn_last_line, ["dropped a torn last line"]),
    "lost_summary_and_metrics": (_lost_summary_and_metrics,
                                 [f"checkpoint {TINY_STEPS} is ahead of the recorded metrics",
                                  "moved to", "training from the start"]),
    "corrupt_newest_checkpoint": (_corrupt_newest_checkpoint,
                                  [f"checkpoint {TINY_STEPS} cannot be restored",
                                   "moved to", "its steps are retrained"]),
}


@pytest.mark.parametrize("case", list(REPAIRED))
def test_repairable_damage_is_said_and_repaired(case, copy_of_baseline, baseline):
  damage, said = REPAIRED[case]
  path = run_dir(copy_of_baseline)
  damage(path)
  proc = run_cli(tiny_args(), results_dir=copy_of_baseline, timeout=180)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  for fragment in said:
    assert fragment in proc.stderr, proc.stderr
  assert "Traceback" not in proc.stderr
  summary = assert_valid_run(path)
  assert summary["final"] == read_json(baseline.run_dir / "summary.json")["final"]
  _same_metrics(path, baseline.run_dir)
  assert not list(path.glob(".*.tmp"))
  if case != "torn_last_line":  # set aside, never deleted
    assert (path / "checkpoints" / "unusable" / str(TINY_STEPS)).is_dir()


def test_a_fresh_start_over_old_records_does_not_append_to_them(copy_of_baseline, baseline):
  """Records a kill left before the first checkpoint are replaced, not appended to."""
  path = run_dir(copy_of_baseline)
  shutil.rmtree(path / "checkpoints")
  (path / "summary.json").unlink()
  proc = run_cli(tiny_args(), results_dir=copy_of_baseline, timeout=180)
  assert proc.returncode == 0, proc.stderr
  assert_valid_run(path)
  _same_metrics(path, baseline.run_dir)


def test_stale_temporary_files_of_a_killed_write_are_removed(copy_of_baseline):
  path = run_dir(copy_of_baseline)
  (path / "summary.json").unlink()
  (path / ".summary.json.abc123.tmp").write_text('{"status": "comp')
  proc = run_cli(tiny_args(), results_dir=copy_of_baseline, timeout=180)
  assert proc.returncode == 0, proc.stderr
  assert not list(path.glob(".*.tmp"))
  assert_valid_run(path)


# --------------------------------------------------------------------------------------------
# What a good run writes, and how.


def test_metrics_are_appended_not_rewritten(tmp_path):
  """A fresh run replaces only config.json and summary.json; its records are appended."""
  log = tmp_path / "writes.log"
  results = tmp_path / "results"
  from conftest import INSTRUMENTED_RUN, cli_env  # pylint: disable=import-outside-toplevel
  proc = run_cli(tiny_args(log_every_steps=1), results_dir=results, script=INSTRUMENTED_RUN,
                 env=cli_env(LAMB_TEST_WRITE_LOG=log), timeout=180)
  assert proc.returncode == 0, proc.stderr
  lines = log.read_text().splitlines()
  replaced = sorted({Path(line).name for line in lines if not line.endswith(" appended")})
  appended = [Path(line.split()[0]).name for line in lines if line.endswith(" appended")]
  assert replaced == ["config.json", "summary.json"], replaced
  assert set(appended) == {"metrics.jsonl", "trust_ratios.csv"}, appended
  assert appended.count("metrics.jsonl") > 1, "flushed at each checkpoint, never rewritten"
  assert_valid_run(run_dir(results))


def test_identity_travels_with_the_run(baseline):
  summary = read_json(baseline.run_dir / "summary.json")
  stored = json.loads((baseline.run_dir / "checkpoints" / "identity.json").read_text())
  assert len(summary["identity"]) == 16 and stored["identity"] == summary["identity"]
  from experiments import sweep  # pylint: disable=import-outside-toplevel
  assert sweep.identity(read_json(baseline.run_dir / "config.json")) == summary["identity"]


@pytest.mark.parametrize("flag", ["--help", "--helpfull"])
def test_help_lists_every_flag(flag, tmp_path):
  proc = run_cli([flag], results_dir=tmp_path / "results", timeout=60)
  assert proc.returncode == 0 and proc.stderr == "", proc.stderr
  for name in ("--config", "--dry_run", "--estimate", "--only", "--results_dir",
               "--checkpoint_dir", "--data_dir", "--progress_every", "--verbosity",
               "--compilation_cache_dir", "--helpfull"):
    assert name in proc.stdout, name
  for name in ("--coordinator_address", "--num_processes", "--process_id", "--chips",
               "--accelerator", "--utilisation", "--list"):
    assert f"  {name}:" in proc.stdout, name
  assert not (tmp_path / "results").exists()


def test_both_entry_points_run_without_path_edits(tmp_path):
  for cmd in ([sys.executable, str(ROOT / "experiments" / "run.py"), "--list"],
              [sys.executable, "-m", "experiments.run", "--list"]):
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=""))
    assert proc.returncode == 0, proc.stderr
    listed = [line.split()[0] for line in proc.stdout.splitlines() if line.strip()]
    assert listed[0] == sorted(sweep.available_configs())[0] and "table7" in listed


def test_dry_run_prints_each_runs_plan(tmp_path):
  proc = run_cli(["--config=table4", "--dry_run"], results_dir=tmp_path / "results", timeout=120)
  assert proc.returncode == 0, proc.stderr
  line = next(l for l in proc.stdout.splitlines() if l.startswith("batch32K_seed0 "))
  # 32K at cpu scale is batch 512: 16384 x 8 / 512 = 256 steps split 9/10 + 1/10, lr 8 x
  # 5e-3/2^3 x 2^3 (LAMB's ladder multiplier x8), warmup 1/5 of 256
  assert "seq32 batch 512 x 231 steps" in line and "seq64 batch 512 x 25 steps" in line, line
  assert "peak lr 0.04," in line and "warmup 51 steps" in line and "weight decay 0.01" in line
  assert not (tmp_path / "results").exists()


def test_progress_line_at_its_cadence_and_no_library_chatter(tmp_path):
  proc = run_cli(tiny_args(log_every_steps=1) + ["--progress_every=0.000001"],
                 results_dir=tmp_path / "results", timeout=180)
  assert proc.returncode == 0, proc.stderr
  lines = proc.stderr.splitlines()
  progress = [l for l in lines if "steps/s" in l]
  assert progress and all(re.search(rf"{RUN}: step \d+/{TINY_STEPS} \(\d+%\)  loss \d\.\d{{4}}  "
                                    r"\S+ steps/s  ETA \d+m\d\ds$", l) for l in progress), lines
  assert len(progress) == len(lines), f"nothing but progress on stderr: {lines}"
  assert proc.stdout.count("\n") == 1  # one line per finished run


def test_a_checkpoint_dir_shared_by_two_results_folders_is_refused(tmp_path):
  """Same config, another results folder, the first one's --checkpoint_dir: its checkpoints
  belong to the first run folder and are neither resumed nor touched."""
  ckpts = tmp_path / "ckpts"
  first = run_cli(tiny_args() + [f"--checkpoint_dir={ckpts}"], results_dir=tmp_path / "a",
                  timeout=180)
  assert first.returncode == 0, first.stderr
  before = tree_bytes(ckpts)
  proc = run_cli(tiny_args() + [f"--checkpoint_dir={ckpts}"], results_dir=tmp_path / "b",
                 timeout=120)
  _assert_refused(proc, ["different config", RUN])
  assert tree_bytes(ckpts) == before and not (tmp_path / "b").exists()
