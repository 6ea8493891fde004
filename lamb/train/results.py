"""What a run leaves in `results/<experiment>/<scale>/<run>/`, written so nothing is ever torn.

`config.json` and `summary.json` are replaced atomically (write a temporary file in the same
folder, fsync, rename), so a crash or SIGKILL leaves either the old or the new version.
`metrics.jsonl` and `trust_ratios.csv` grow by appending (a 1000k-step run must not rewrite them
at every flush): a kill can tear only their last line, which the next reader drops and reports.
Resuming truncates them to the restored step. A per-run lock file, holding the identity of the
config that runs, keeps two processes that share a results folder from running the same run at
once, and lets the second one tell whether it would have run the same config.

`eval_examples.npz` holds one record per unit the final evaluation scored (image, masked token,
SQuAD question): whether it was right, its loss or F1, and for BERT the sequence each token
belongs to. It is the per-example evidence behind the comparisons' intervals (paired
differences between runs that scored the same units, clustered where units share a sequence).
`write_eval_examples` writes it atomically and byte-deterministically (fixed member order and
timestamps), so a resumed run's file equals an uninterrupted run's; `read_eval_examples` reads
it without jax, as the analysis does.
"""
from __future__ import annotations

import fcntl
import hashlib
import io
import json
import math
import os
import tempfile
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

import numpy as np

CONFIG = "config.json"
METRICS = "metrics.jsonl"
TRUST_RATIOS = "trust_ratios.csv"
SUMMARY = "summary.json"
EVAL_EXAMPLES = "eval_examples.npz"
LOCK = ".lock"

# A run's status in summary.json; the analysis reads the same words.
COMPLETED, DIVERGED, FAILED = "completed", "diverged", "failed"


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
  _atomic_write(path, text, "w")


def atomic_write_bytes(path: Path, data: bytes) -> None:
  _atomic_write(path, data, "wb")


def _atomic_write(path: Path, content, mode: str) -> None:
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
  try:
    with os.fdopen(fd, mode) as f:
      f.write(content)
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


class UnreadableError(Exception):
  """A results file that exists but cannot be read: the run is neither finished nor safe to
  resume. The message is one line naming the file and the command that resolves it."""


def _unreadable(path: Path, why: str) -> UnreadableError:
  return UnreadableError(f"{path} is unreadable ({why}); remove its run folder to rerun it: "
                         f"rm -r {Path(path).parent}")


def read_json(path: Path) -> Optional[dict]:
  """The object in `path`; None when there is no such file; UnreadableError when it is damaged."""
  try:
    value = json.loads(Path(path).read_text(encoding="utf-8"))
  except FileNotFoundError:
    return None
  except (UnicodeDecodeError, json.JSONDecodeError, IsADirectoryError, PermissionError) as e:
    raise _unreadable(Path(path), type(e).__name__) from None
  if not isinstance(value, dict):
    raise _unreadable(Path(path), f"a JSON {type(value).__name__}, not an object")
  return value


def _line(record: dict) -> str:
  return json.dumps(_jsonable(record), sort_keys=True) + "\n"


def write_jsonl(path: Path, records: Iterable[dict]) -> None:
  atomic_write_text(path, "".join(_line(r) for r in records))


def _lines(path: Path, torn=None) -> list:
  """The complete lines of a text file; a last line without its newline (a kill mid-append) is
  dropped and passed to `torn`."""
  try:
    text = Path(path).read_text(encoding="utf-8")
  except FileNotFoundError:
    return []
  except (UnicodeDecodeError, IsADirectoryError, PermissionError) as e:
    raise _unreadable(Path(path), type(e).__name__) from None
  lines = text.split("\n")
  tail = lines.pop()  # "" when the file ends with its newline
  if tail.strip() and torn is not None:
    torn(Path(path), tail)
  return lines


def read_jsonl(path: Path, *, torn=None) -> list:
  """The records of a JSON-lines file (a torn last line dropped, see `_lines`); any other damaged
  line raises UnreadableError."""
  records = []
  for number, line in enumerate(_lines(path, torn), start=1):
    if line.strip():
      try:
        records.append(json.loads(line))
      except json.JSONDecodeError:
        raise _unreadable(Path(path), f"line {number} is not JSON") from None
  return records


def read_trust_rows(path: Path, torn=None) -> list:
  """The data rows of a trust_ratios.csv (`step,path,slice,ratio`), a torn last row dropped;
  UnreadableError for any other damaged row."""
  rows = [r for r in _lines(path, torn)[1:] if r.strip()]
  for number, row in enumerate(rows, start=2):
    parts = row.split(",")
    try:
      int(parts[0]), int(parts[-2]), float(parts[-1])
    except (ValueError, IndexError):
      raise _unreadable(Path(path), f"line {number} is not step,path,slice,ratio") from None
  return rows


def is_finished(run_dir: Path) -> bool:
  """Completed with the final evaluation that proves it, or diverged."""
  summary = read_json(Path(run_dir) / SUMMARY)
  if not summary:
    return False
  if summary.get("status") == COMPLETED:
    return bool(summary.get("final"))
  return summary.get("status") == DIVERGED


def remove_stale_temporaries(run_dir: Path) -> list:
  """Deletes what interrupted atomic writes left behind; returns the names."""
  removed = []
  for tmp in Path(run_dir).glob(".*.tmp"):
    tmp.unlink(missing_ok=True)
    removed.append(tmp.name)
  return removed


class RunLock:
  """An exclusive, non-blocking lock on a run folder; released when the process dies. The lock
  file holds the identity of the config its holder runs."""

  def __init__(self, run_dir: Path):
    self.path = Path(run_dir) / LOCK
    self._fd = None

  def acquire(self, identity: str = "") -> bool:
    self.path.parent.mkdir(parents=True, exist_ok=True)
    self._fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
      fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      os.close(self._fd)
      self._fd = None
      return False
    os.ftruncate(self._fd, 0)
    os.write(self._fd, identity.encode())
    return True

  def held_elsewhere(self) -> bool:
    """Whether another process holds the lock now (a probe that writes nothing)."""
    try:
      fd = os.open(self.path, os.O_RDONLY)
    except FileNotFoundError:
      return False
    try:
      fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
      fcntl.flock(fd, fcntl.LOCK_UN)
      return False
    except BlockingIOError:
      return True
    finally:
      os.close(fd)

  def holder(self, wait_s: float = 2.0) -> str:
    """The identity written by the process holding the lock ('' if it wrote none in time)."""
    deadline = time.time() + wait_s
    while True:
      try:
        text = self.path.read_text().strip()
      except OSError:
        text = ""
      if text or time.time() > deadline:
        return text
      time.sleep(0.05)

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
  """Metrics and trust ratios of one run, appended to their files at each flush.

  On resume the records after the restored step are dropped (the files truncated to it), so a
  run killed between a flush and a checkpoint still ends with exactly the records of an
  uninterrupted one. Only the evaluation records stay in memory (the summary needs them).
  """

  def __init__(self, run_dir: Path, enabled: bool = True, torn=None):
    self.run_dir = Path(run_dir)
    self.enabled = enabled
    self.torn = torn
    self.evals: list = []
    self._pending: list = []
    self._trust_pending: list = []

  def read(self) -> list:
    """The records on disk (a torn last line dropped and said)."""
    return read_jsonl(self.run_dir / METRICS, torn=self.torn)

  def resume(self, step: int, records: Optional[list] = None) -> None:
    """Keeps the records up to `step` (in memory the evaluations; on disk everything), and
    rewrites a file only when it holds more (or a torn last line). `records`: what `read`
    returned, when the caller has read them already."""
    records = self.read() if records is None else records
    kept = [r for r in records if r.get("step", 0) <= step]
    self.evals = [r for r in kept if r.get("split") == "eval"]
    rows = read_trust_rows(self.run_dir / TRUST_RATIOS, self.torn)
    kept_rows = [r for r in rows if int(r.split(",", 1)[0]) <= step]
    if not self.enabled:
      return
    if len(kept) < len(records) or _has_torn_line(self.run_dir / METRICS):
      write_jsonl(self.run_dir / METRICS, kept)
    if len(kept_rows) < len(rows) or _has_torn_line(self.run_dir / TRUST_RATIOS):
      atomic_write_text(self.run_dir / TRUST_RATIOS, TRUST_HEADER + "".join(
          r + "\n" for r in kept_rows))

  def log(self, record: dict) -> None:
    record = _jsonable(record)
    if record.get("split") == "eval":
      self.evals.append(record)
    self._pending.append(record)

  def log_trust_ratios(self, step: int, ratios: dict) -> None:
    for path, values in ratios.items():
      for i, value in enumerate(values):
        self._trust_pending.append(f"{step},{path},{i},{value:.8g}\n")

  def flush(self) -> None:
    if self.enabled and self._pending:
      _append(self.run_dir / METRICS, "".join(_line(r) for r in self._pending))
    if self.enabled and self._trust_pending:
      path = self.run_dir / TRUST_RATIOS
      header = "" if path.exists() and path.stat().st_size else TRUST_HEADER
      _append(path, header + "".join(self._trust_pending))
    self._pending, self._trust_pending = [], []


TRUST_HEADER = "step,path,slice,ratio\n"


def _has_torn_line(path: Path) -> bool:
  try:
    with open(path, "rb") as f:
      f.seek(0, os.SEEK_END)
      if f.tell() == 0:
        return False
      f.seek(-1, os.SEEK_END)
      return f.read(1) != b"\n"
  except FileNotFoundError:
    return False


def _append(path: Path, text: str) -> None:
  """Appends whole lines and fsyncs: a kill can tear only the last line."""
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(path, "a", encoding="utf-8") as f:
    f.write(text)
    f.flush()
    os.fsync(f.fileno())


# --- per-example records of the final evaluation (eval_examples.npz) -----------------------------

# Members in the order they are written, with their dtypes (None: a 0-d string).
EVAL_MEMBERS = {"unit": None, "metric": None, "step": np.int64, "eval_set": None,
                "index": np.int32, "correct": np.bool_, "loss": np.float16,
                "cluster": np.int32, "score": np.float32}
_EVAL_REQUIRED = ("unit", "metric", "step", "eval_set", "index", "correct")
# Any fixed time will do: the file's bytes must not depend on when it was written.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def eval_set_fingerprint(identity: Mapping[str, Any]) -> str:
  """16 hex characters of the sha256 of the evaluated units' identities (`identity`: name ->
  array of indices, labels, targets or strings). Integers are hashed as int64 whatever their
  dtype, so runs that scored the same units in the same order agree."""
  digest = hashlib.sha256()
  for name in sorted(identity):
    values = np.asarray(identity[name])
    if values.dtype.kind in "iub":
      payload = np.ascontiguousarray(values, dtype="<i8").tobytes()
    else:
      payload = json.dumps(values.tolist(), ensure_ascii=False).encode("utf-8")
    digest.update(f"{name}:{values.shape}:{len(payload)}\n".encode())
    digest.update(payload)
  return digest.hexdigest()[:16]


def _eval_member(name: str, value) -> np.ndarray:
  dtype = EVAL_MEMBERS[name]
  if dtype is None:
    return np.asarray(str(value))
  array = np.asarray(value)
  if name != "step" and array.ndim != 1:
    raise ValueError(f"eval record {name!r} must be one value per unit, got shape {array.shape}")
  return array.astype(dtype)


def write_eval_examples(run_dir: Path, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> Path:
  """Writes `run_dir`/eval_examples.npz: `meta` (unit, metric, step, eval_set) and the per-unit
  `arrays` (index, correct, and loss, cluster or score), atomically, the same bytes for the
  same records. Returns the path."""
  members = {**meta, **arrays}
  unknown = sorted(set(members) - set(EVAL_MEMBERS))
  missing = [k for k in _EVAL_REQUIRED if k not in members]
  if unknown or missing:
    raise ValueError(f"eval records: unknown members {unknown}, missing {missing}")
  members = {k: _eval_member(k, members[k]) for k in EVAL_MEMBERS if k in members}
  lengths = {k: len(v) for k, v in members.items() if v.ndim == 1}
  if len(set(lengths.values())) != 1:
    raise ValueError(f"eval records of different lengths: {lengths}")
  buffer = io.BytesIO()
  with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
    for name, array in members.items():
      npy = io.BytesIO()
      np.lib.format.write_array(npy, array, allow_pickle=False)
      info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
      info.compress_type = zipfile.ZIP_DEFLATED
      info.external_attr = 0o644 << 16
      archive.writestr(info, npy.getvalue())
  path = Path(run_dir) / EVAL_EXAMPLES
  atomic_write_bytes(path, buffer.getvalue())
  return path


def read_eval_examples(path: Path) -> Optional[dict]:
  """The records of an eval_examples.npz: unit, metric and eval_set as str, step as int, the
  per-unit members as arrays. None when there is no such file; UnreadableError when it is
  damaged (truncated, a member missing or of the wrong length)."""
  path = Path(path)
  try:
    data = path.read_bytes()
  except FileNotFoundError:
    return None
  except (IsADirectoryError, PermissionError) as e:
    raise _unreadable(path, type(e).__name__) from None
  records = {}
  try:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
      for info in archive.infolist():
        name = info.filename[:-len(".npy")] if info.filename.endswith(".npy") else None
        if name not in EVAL_MEMBERS:
          raise _unreadable(path, f"unexpected member {info.filename!r}")
        with archive.open(info) as member:
          records[name] = np.lib.format.read_array(member, allow_pickle=False)
  except UnreadableError:
    raise
  except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, KeyError,
          NotImplementedError) as e:  # (zipfile's answer to a damaged method or version field)
    why = " ".join(str(e).split())[:120]
    raise _unreadable(path, f"{type(e).__name__}: {why}" if why else type(e).__name__) from None
  missing = [k for k in _EVAL_REQUIRED if k not in records]
  if missing:
    raise _unreadable(path, f"no member {', '.join(missing)}")
  lengths = {k: len(v) for k, v in records.items() if v.ndim == 1}
  if len(set(lengths.values())) != 1 or lengths.get("index") is None:
    raise _unreadable(path, f"members of different lengths {lengths}")
  for name in ("unit", "metric", "eval_set"):
    records[name] = str(records[name])
  records["step"] = int(records["step"])
  return records
