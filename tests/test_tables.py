"""How tables pick the tuned setting, and refusing to mix runs of different configs."""
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from analysis import tables

ROOT = Path(__file__).resolve().parents[1]


def _runs(rows):
  return pd.DataFrame([{"config.optimizer.name": o, "config.optimizer.learning_rate": lr,
                        "status": st, "final.accuracy": acc} for o, lr, st, acc in rows])


def test_best_learning_rate_needs_every_seed_completed():
  frame = _runs([("lamb", 0.1, "completed", 0.99), ("lamb", 0.1, "diverged", None),
                 ("lamb", 0.01, "completed", 0.95), ("lamb", 0.01, "completed", 0.97)])
  row = tables.tuned_by_optimizer(frame).iloc[0]
  assert row.best_lr == 0.01 and abs(row["mean"] - 0.96) < 1e-12 and row.seeds == 2
  assert row.diverged == 1


def test_optimizer_with_only_diverged_settings_reports_diverge():
  frame = _runs([("adam", 1.0, "diverged", None), ("adam", 10.0, "completed", 0.5),
                 ("adam", 10.0, "diverged", None)])
  row = tables.tuned_by_optimizer(frame).iloc[0]
  assert row.status == "diverge" and pd.isna(row.get("best_lr"))


def test_results_of_another_config_are_not_skipped_or_resumed(tmp_path):
  run_dir = tmp_path / "table7" / "cpu" / "lamb_lr0.01_seed0"
  run_dir.mkdir(parents=True)
  (run_dir / "config.json").write_text(json.dumps({"name": "table7", "num_epochs": 99}))
  (run_dir / "summary.json").write_text(json.dumps({"status": "completed"}))
  before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
  out = subprocess.run([sys.executable, "experiments/run.py", "--config=table7",
                        "--only=^lamb_lr0.01_seed0$", f"--results_dir={tmp_path}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=180)
  assert out.returncode == 2
  assert "different config" in out.stderr and len(out.stderr.strip().splitlines()) == 1
  after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
  assert after == before


def _fake_run(root, experiment, name, config, summary):
  run_dir = Path(root) / experiment / "cpu" / name
  run_dir.mkdir(parents=True)
  (run_dir / "config.json").write_text(json.dumps(dict(config, name=experiment, scale="cpu")))
  (run_dir / "summary.json").write_text(json.dumps(summary))


def test_table6_picks_each_optimizers_best_setting(tmp_path):
  done = lambda acc: {"status": "completed", "final": {"accuracy": acc}}
  for lr, acc in ((0.01, 0.80), (0.1, 0.85)):
    _fake_run(tmp_path, "table6", f"lamb_lr{lr:g}",
              {"optimizer": {"name": "lamb", "learning_rate": lr, "weight_decay": 0.01}},
              done(acc))
  for wd, acc in ((0.001, 0.7), (0.1, 0.9)):
    _fake_run(tmp_path, "table6", f"adamw_wd{wd:g}_lr0.01",
              {"optimizer": {"name": "adamw", "learning_rate": 0.01, "weight_decay": wd}},
              done(acc))
  _fake_run(tmp_path, "table6", "adam_lr50",
            {"optimizer": {"name": "adam", "learning_rate": 50.0, "weight_decay": 0.01}},
            {"status": "diverged"})
  frame = tables.table6(tmp_path, "cpu").frame.set_index("optimizer")
  assert frame.loc["LAMB", "best setting"] == "lr 0.1"
  assert frame.loc["LAMB", "measured (best setting)"].startswith("0.8500")
  assert abs(frame.loc["LAMB", "difference"] - (0.85 - 0.9408)) < 1e-9
  assert frame.loc["ADAMW", "best setting"] == "lr 0.01, wd 0.1"
  assert frame.loc["ADAM", "measured (best setting)"] == "diverge"
  assert frame.loc["Adagrad", "measured (best setting)"] == "not run"


def test_tuning_grid_rows_follow_the_printed_table(tmp_path):
  _fake_run(tmp_path, "table15", "wd0.001_lr0.0001",
            {"optimizer": {"name": "adamw", "learning_rate": 0.0001, "weight_decay": 0.001}},
            {"status": "completed", "final": {"accuracy": 0.5}})
  frame = tables.TABLES["table15"](tmp_path, "cpu").frame
  assert len(frame) == 20  # every printed row, the repeated first setting included
  first_two = frame.iloc[:2]
  assert list(first_two["measured top-1"]) == ["0.5000 (1 seed)"] * 2
  assert (frame.iloc[2:]["measured top-1"] == "not run").all()
