"""Every run under `results/` as one pandas DataFrame (no jax: reads files only).

One row per run folder: experiment, scale, run, status, the config flattened to dotted
columns (``optimizer.name``, ``optimizer.learning_rate``, ``seed``...), and the summary's
final/best metrics as ``final.accuracy``, ``best.accuracy`` etc. A folder without a summary
is a row with status ``incomplete``, one whose config.json or summary.json cannot be read a row
with status ``unreadable`` (its ``error`` says which file and why); nothing is dropped silently.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Optional

import pandas as pd

from lamb.train import results  # file formats only: no jax

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"


def _flatten(obj, prefix="") -> dict:
  out = {}
  for key, value in (obj or {}).items():
    name = f"{prefix}{key}"
    if isinstance(value, dict):
      out.update(_flatten(value, name + "."))
    elif isinstance(value, list):
      out[name] = tuple(tuple(v) if isinstance(v, list) else v for v in value)
    else:
      out[name] = value
  return out


def _read(path: Path) -> tuple:
  """(the object in `path` or None, why it could not be read or '')."""
  try:
    return results.read_json(path), ""
  except results.UnreadableError as e:
    return None, str(e)


def check_results_dir(results_dir) -> Optional[str]:
  """The one-line error for a results folder that does not exist (None when it does)."""
  if not Path(results_dir).is_dir():
    return (f"--results_dir={results_dir} is not a folder; give the folder runs wrote to "
            f"(default {RESULTS})")
  return None


def load(results_dir: Path | str = RESULTS, experiment: Optional[str] = None) -> pd.DataFrame:
  results_dir = Path(results_dir)
  rows = []
  pattern = f"{experiment or '*'}/*/*/config.json"
  run_dirs = {p.parent for p in results_dir.glob(pattern)}
  run_dirs |= {p.parent for p in results_dir.glob(pattern.replace("config.json", "summary.json"))}
  for run_dir in sorted(run_dirs):
    config, config_error = _read(run_dir / "config.json")
    summary, summary_error = _read(run_dir / "summary.json")
    config, summary = config or {}, summary or {}
    unreadable = config_error or summary_error
    row = {"experiment": run_dir.parent.parent.name, "scale": run_dir.parent.name,
           "run": run_dir.name, "path": str(run_dir),
           "status": "unreadable" if unreadable else summary.get("status", "incomplete")}
    row.update({f"config.{k}": v for k, v in _flatten(config).items()
                if k != "sweep" and not k.startswith("variants")})
    for key in ("final", "best"):
      row.update({f"{key}.{k}": v for k, v in _flatten(summary.get(key)).items()})
    for key in ("steps", "total_steps", "epochs", "wall_time_s", "train_time_s", "examples_per_s",
                "diverged_at_step", "device_kind", "device_count", "data", "error"):
      row[key] = summary.get(key)
    if unreadable:
      row["error"] = unreadable
    rows.append(row)
  return pd.DataFrame(rows)


def metrics(run_path: Path | str) -> pd.DataFrame:
  """One run's metrics.jsonl as a DataFrame. The file grows by appending while a run trains, so
  a last line without its newline is a record still being written: it is left out."""
  return pd.DataFrame(results.read_jsonl(Path(run_path, "metrics.jsonl")))


def trust_ratios(run_path: Path | str) -> pd.DataFrame:
  """One run's trust_ratios.csv (step, path, slice, ratio); a row still being written is left out."""
  rows = results.read_trust_rows(Path(run_path, "trust_ratios.csv"))
  return pd.read_csv(io.StringIO(results.TRUST_HEADER + "".join(r + "\n" for r in rows)))
