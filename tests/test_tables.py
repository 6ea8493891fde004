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
