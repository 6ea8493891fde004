"""Results in a bucket: `--results_dir=gs://...` through a local mirror (etils.epath).

A run folder's exactness rests on what a bucket does not have: atomic renames, appends and
file locks (lamb.train.results). So a sweep whose results live at a URI works in a local
staging folder that mirrors it: the results tree (without checkpoints) is pulled before the
sweep reads which runs are finished (a fresh folder per command, removed at its end), the runs
write to the staging folder as they would to a local one, and process 0 pushes each run folder's changed files (whole objects, each upload
atomic) whenever the run flushes its records before a checkpoint, and when it ends. A job
killed between two pushes resumes from its newest checkpoint, whose step is at most that of the
records last pushed (records are pushed before each checkpoint is written), so the resumed run
ends with the records of an uninterrupted one.

Checkpoints do not go through the mirror: orbax writes them to the bucket itself, under
``<results_dir>/checkpoints/<experiment>/<scale>/<run>/`` unless --checkpoint_dir names another
place. Two jobs training the same run of one bucket at once are not detected: no lock spans
hosts, so give each job its own runs (--only).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Optional

STAGING_ENV = "LAMB_STAGING_DIR"
DEFAULT_STAGING = Path.home() / ".cache" / "lamb" / "staging"
CHECKPOINTS = "checkpoints"  # under the results URI, and never mirrored
SUMMARY = "summary.json"
SCHEMES = ("gs",)  # what etils.epath reaches through TensorFlow's gfile, installed here


def is_uri(path) -> bool:
  return path is not None and "://" in str(path)


def epath(path):
  from etils import epath as ep  # pylint: disable=import-outside-toplevel
  return ep.Path(path)


def staging_root(uri: str) -> Path:
  """A fresh local folder that mirrors results URI `uri` for this command alone: two jobs on
  one machine never share one, and what a killed job left is never mistaken for the bucket's
  (the bucket is the only record). Removed when the command ends (`remove_staging`)."""
  root = Path(os.environ.get(STAGING_ENV) or DEFAULT_STAGING).expanduser()
  root.mkdir(parents=True, exist_ok=True)
  key = hashlib.sha256(str(uri).rstrip("/").encode()).hexdigest()[:16]
  return Path(tempfile.mkdtemp(prefix=f"{key}-", dir=root))


def remove_staging(folder: Path) -> None:
  shutil.rmtree(folder, ignore_errors=True)


def _skipped(relative: Path) -> bool:
  """Checkpoints (in the bucket already), locks and interrupted writes' temporaries."""
  return relative.parts[:1] == (CHECKPOINTS,) or any(
      p.startswith(".") for p in relative.parts) or CHECKPOINTS in relative.parts


def pull(remote, local: Path) -> int:
  """Copies every results file under `remote` into `local` (replacing what differs); returns
  how many were copied. A missing `remote` is an empty one."""
  remote = epath(remote)
  if not remote.exists():
    return 0
  copied = 0
  for folder, dirs, files in remote.walk():  # (rglob would glob `**`, which GCS refuses)
    base = Path(os.path.relpath(os.fspath(folder), os.fspath(remote)))
    dirs[:] = [d for d in dirs if not _skipped(base / d)]  # never descend into checkpoints
    for name in files:
      relative = base / name
      if not _skipped(relative):
        copied += _pull_one(epath(folder) / name, local / relative)
  return copied


def _pull_one(source, target: Path) -> int:
  data = source.read_bytes()
  if target.is_file() and target.read_bytes() == data:
    return 0
  target.parent.mkdir(parents=True, exist_ok=True)
  tmp = target.with_name(f".{target.name}.pull-{os.getpid()}")
  tmp.write_bytes(data)
  os.replace(tmp, target)
  return 1


class Pusher:
  """Uploads a local run folder's changed files to its place in the bucket, summary.json last
  (a run is finished in the bucket only once everything else is there). An upload that fails
  is said in one line and retried at the next push: training goes on, and a run resumed after
  a kill sets aside checkpoints ahead of the records the bucket holds."""

  def __init__(self, local: Path, remote):
    self.local, self.remote = Path(local), epath(remote)
    self._sent: dict = {}

  def __call__(self) -> int:
    sent = 0
    if not self.local.is_dir():
      return 0
    files = [p for p in sorted(self.local.rglob("*"))
             if p.is_file() and not _skipped(p.relative_to(self.local))]
    files.sort(key=lambda p: p.name == SUMMARY)  # stable: summary.json last
    for path in files:
      relative = path.relative_to(self.local)
      stat = path.stat()
      key = (stat.st_size, stat.st_mtime_ns)
      if self._sent.get(relative) == key:
        continue
      target = self.remote / os.fspath(relative)
      try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
      except Exception as e:  # pylint: disable=broad-except  (TensorFlow's and fsspec's errors)
        print(f"warning: could not upload {relative} to {self.remote} ({type(e).__name__}: "
              f"{' '.join(str(e).split())[:200]}); retried at the next push", file=sys.stderr,
              flush=True)
        return sent
      self._sent[relative] = key
      sent += 1
    return sent


def checkpoint_base(results_dir: str, checkpoint_dir: Optional[str]) -> Optional[str]:
  """--checkpoint_dir as given, or under a results URI its checkpoints/ (None: run folders)."""
  if checkpoint_dir:
    return checkpoint_dir
  return f"{str(results_dir).rstrip('/')}/{CHECKPOINTS}" if is_uri(results_dir) else None


def main(argv=None) -> int:
  """`python -m lamb.train.mirror URI FOLDER`: copies a bucket's results (no checkpoints) into
  FOLDER, for the analysis scripts, which read local folders."""
  import sys  # pylint: disable=import-outside-toplevel
  args = list(sys.argv[1:] if argv is None else argv)
  if len(args) != 2 or not is_uri(args[0]):
    print("usage: python -m lamb.train.mirror gs://BUCKET/results LOCAL_FOLDER", file=sys.stderr)
    return 2
  copied = pull(args[0], Path(args[1]))
  print(f"{copied} files copied from {args[0]} into {args[1]}")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
