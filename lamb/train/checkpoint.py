"""orbax checkpoints of the whole TrainState; the newest two are kept.

orbax writes each checkpoint into a temporary folder and renames it when complete, so a run
killed mid-save restarts from the previous checkpoint. Saving is asynchronous: `save` returns
once the state is copied off the devices, and the files are written while training goes on
(`close` waits for the last one).

A checkpoint folder carries the identity of the run config that wrote it (`identity.json`), so
that a folder of another run is refused rather than resumed; and `restore_newest_usable`
falls back to an older checkpoint when the newest cannot be read, or is newer than the run's
recorded metrics, saying which.

A preemption notice (SIGTERM, lamb.train.cluster) writes one more checkpoint, of the step
every process stops at, through the same `save`. In a job of several processes every process
restores the whole checkpoint: lamb.train.cluster says why not orbax's single-replica restore.
"""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Callable, Optional

import jax
import orbax.checkpoint as ocp

from lamb.train import mirror
from lamb.train.results import atomic_write_text

log = logging.getLogger(__name__)
IDENTITY = "identity.json"
TRAIN_TIME = "train_time.json"
COMMITS = "commits.json"  # the code (git commit) that wrote each checkpoint
UNUSABLE = "unusable"  # checkpoints that could not be resumed are moved here, never deleted


def _path(directory):
  """A local folder as an absolute Path; a URI (gs://...) as an etils.epath.Path, which orbax
  writes to directly."""
  if mirror.is_uri(directory):
    return mirror.epath(directory)
  return Path(directory).expanduser().absolute()


def _where(run_dir) -> str:
  """How a checkpoint folder names the run folder that owns it."""
  return str(run_dir) if mirror.is_uri(run_dir) else str(Path(run_dir).absolute())


def _write_text(path, text: str) -> None:
  if mirror.is_uri(path):
    path.write_text(text)  # one object upload: all or nothing
  else:
    atomic_write_text(path, text)


def _read_json(path) -> Optional[dict]:
  try:
    value = json.loads(_path(path).read_text())
  except (OSError, ValueError):
    return None
  return value if isinstance(value, dict) else None


def stored_identity(directory: Path) -> Optional[str]:
  """The identity a checkpoint folder was written for; None when it has none (or no folder)."""
  return (_read_json(_path(directory) / IDENTITY) or {}).get("identity")


def ownership_problem(directory: Path, identity: str, run_dir: Path, own: bool) -> str:
  """Why the checkpoints in `directory` are not this run's to resume ('' when they are)."""
  stored = _read_json(_path(directory) / IDENTITY) or {}
  if stored.get("identity") not in ((identity, None) if own else (identity,)):
    return (f"{directory} holds checkpoints of run config {stored.get('identity') or 'unknown'}"
            f", not of {str(run_dir).rstrip('/').rsplit('/', 1)[-1]} ({identity}); point "
            "--checkpoint_dir elsewhere or "
            "remove that folder")
  owner = stored.get("run_dir")
  if not own and owner and owner != _where(run_dir):
    return (f"{directory} holds the checkpoints of the run in {owner}, not of {run_dir}; give "
            "each results folder its own --checkpoint_dir")
  return ""


def has_checkpoints(directory: Path) -> bool:
  directory = _path(directory)
  return directory.is_dir() and any(p.name.isdigit() for p in directory.iterdir())


class IdentityError(Exception):
  """The checkpoint folder belongs to another run config (one line, both identities named)."""


class Checkpointer:
  def __init__(self, directory: Path, max_to_keep: int = 2):
    self.directory = _path(directory)
    self.manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                             enable_async_checkpointing=True))

  def latest_step(self) -> Optional[int]:
    return self.manager.latest_step()

  def save(self, step: int, state) -> None:
    self.manager.save(step, args=ocp.args.StandardSave(state), force=True)

  def restore(self, state, step: Optional[int] = None):
    """Checkpoint `step` (default the newest), laid out (shapes, dtypes, shardings) like `state`."""
    target = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    step = self.manager.latest_step() if step is None else step
    return self.manager.restore(step, args=ocp.args.StandardRestore(target))

  def check_identity(self, identity: str, run_dir: Path, own: bool) -> None:
    """Refuses checkpoints written for another config, or (in a folder given apart from the run
    folder, `own` False) for another run folder. A run folder's own checkpoints without an
    identity file (written before identities existed) are trusted: its config.json was
    compared already."""
    if self.latest_step() is None:
      return
    problem = ownership_problem(self.directory, identity, run_dir, own)
    if problem:
      raise IdentityError(problem)

  def write_identity(self, identity: str, run_dir: Path) -> None:
    if jax.process_index() == 0:
      _write_text(self.directory / IDENTITY, json.dumps(
          {"identity": identity, "run_dir": _where(run_dir)}) + "\n")

  def save_train_time(self, step: int, seconds: float) -> None:
    """The training time up to a checkpoint, so a resumed run reports its whole training time."""
    if jax.process_index() == 0:
      path = self.directory / TRAIN_TIME
      times = _read_json(path) or {}
      times[str(step)] = seconds
      _write_text(path, json.dumps(times, sort_keys=True) + "\n")

  def save_commit(self, step: int, commit: Optional[str]) -> None:
    """The commit of the code that trained up to a checkpoint, so that a run resumed under
    other code says so in its summary (the analysis names such runs)."""
    if jax.process_index() == 0 and commit:
      path = self.directory / COMMITS
      commits = _read_json(path) or {}
      commits[str(step)] = commit
      _write_text(path, json.dumps(commits, sort_keys=True) + "\n")

  def commit_at(self, step: int) -> Optional[str]:
    return (_read_json(self.directory / COMMITS) or {}).get(str(step))

  def train_time(self, step: int) -> float:
    return float((_read_json(self.directory / TRAIN_TIME) or {}).get(str(step), 0.0))

  def restore_newest_usable(self, state, max_step: int, say: Callable[[str], None]):
    """(state, step) from the newest checkpoint at or below `max_step` that reads. Checkpoints
    above it (their metrics were lost) or unreadable are moved into `unusable/` (each said,
    nothing deleted) and their steps retrained. (state, 0) when none is usable."""
    for step in sorted(self.manager.all_steps(), reverse=True):
      if step > max_step:
        why = f"is ahead of the recorded metrics (step {max_step})"
      else:
        try:
          return self.restore(state, step), step
        except Exception as e:  # orbax raises many kinds for a damaged or foreign checkpoint
          why = f"cannot be restored ({type(e).__name__}: {' '.join(str(e).split())[:200]})"
      moved = self._set_aside(step)
      say(f"checkpoint {step} {why}; moved to {moved}, its steps are retrained")
    return state, 0

  def _set_aside(self, step: int) -> Path:
    target = self.directory / UNUSABLE / str(step)
    if jax.process_index() == 0:
      target.parent.mkdir(parents=True, exist_ok=True)
      if target.exists():
        if mirror.is_uri(target):
          target.rmtree()
        else:
          shutil.rmtree(target)  # an older set-aside copy of the same step
      (self.directory / str(step)).rename(target)
    self.manager.reload()
    return target

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()
