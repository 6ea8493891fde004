"""What a run leaves in `results/<experiment>/<scale>/<run>/`, written so nothing is ever torn.

Every file is replaced atomically (write a temporary file in the same folder, fsync, rename),
so a crash or SIGKILL leaves either the old or the new version. A per-run lock file keeps two
processes that share a results folder from running the same run at once.
"""
from __future__ import annotations

import fcntl
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Optional

CONFIG = "config.json"
METRICS = "metrics.jsonl"
TRUST_RATIOS = "trust_ratios.csv"
SUMMARY = "summary.json"
LOCK = ".lock"

STATUSES = ("completed", "diverged", "failed")


def _jsonable(value):
  """Floats that JSON cannot hold (nan, inf) become strings; numpy scalars become Python."""
  if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
    value = value.item()
  if isinstance(value, float) and not math.isfinite(value):
    return str(value)
  if isinstance(value, dict):
    return {k: _jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_jsonable(v) for v in value]
  return value


def atomic_write_text(path: Path, text: str) -> None:
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
  try:
    with os.fdopen(fd, "w") as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.chmod(tmp, 0o644)  # mkstemp makes files private; results are meant to be shared
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise


def write_json(path: Path, obj: Any) -> None:
  atomic_write_text(path, json.dumps(_jsonable(obj), indent=2, sort_keys=True) + "\n")


def read_json(path: Path) -> Optional[dict]:
  try:
    return json.loads(Path(path).read_text())
  except (FileNotFoundError, json.JSONDecodeError):
    return None


def write_jsonl(path: Path, records: Iterable[dict]) -> None:
  atomic_write_text(path, "".join(json.dumps(_jsonable(r), sort_keys=True) + "\n" for r in records))


def read_jsonl(path: Path) -> list:
  try:
    lines = Path(path).read_text().splitlines()
  except FileNotFoundError:
    return []
  return [json.loads(line) for line in lines if line.strip()]


def is_finished(run_dir: Path) -> bool:
  summary = read_json(Path(run_dir) / SUMMARY)
  return bool(summary) and summary.get("status") in ("completed", "diverged")


class RunLock:
  """An exclusive, non-blocking lock on a run folder; released when the process dies."""

  def __init__(self, run_dir: Path):
    self.path = Path(run_dir) / LOCK
    self._fd = None

  def acquire(self) -> bool:
    self.path.parent.mkdir(parents=True, exist_ok=True)
    self._fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
      fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      os.close(self._fd)
      self._fd = None
      return False
    return True

  def release(self) -> None:
    if self._fd is not None:
      fcntl.flock(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.release()


class RunRecorder:
  """Metrics and trust ratios of one run, kept in memory and flushed atomically.

  On resume the records after the restored step are dropped, so a run killed between a
  flush and a checkpoint still ends with exactly the records of an uninterrupted run.
  """

  def __init__(self, run_dir: Path, enabled: bool = True):
    self.run_dir = Path(run_dir)
    self.enabled = enabled
    self.metrics: list = []
    self.trust_rows: list = []

  def resume(self, step: int) -> None:
    self.metrics = [r for r in read_jsonl(self.run_dir / METRICS) if r.get("step", 0) <= step]
    path = self.run_dir / TRUST_RATIOS
    if path.exists():
      rows = path.read_text().splitlines()[1:]
      self.trust_rows = [r for r in rows if r and int(r.split(",", 1)[0]) <= step]

  def log(self, record: dict) -> None:
    self.metrics.append(_jsonable(record))

  def log_trust_ratios(self, step: int, ratios: dict) -> None:
    for path, values in ratios.items():
      for i, value in enumerate(values):
        self.trust_rows.append(f"{step},{path},{i},{value:.8g}")

  def flush(self) -> None:
    if not self.enabled:
      return
    write_jsonl(self.run_dir / METRICS, self.metrics)
    if self.trust_rows:
      atomic_write_text(self.run_dir / TRUST_RATIOS,
                        "step,path,slice,ratio\n" + "\n".join(self.trust_rows) + "\n")
