"""orbax checkpoints of the whole TrainState; the newest two are kept.

orbax writes each checkpoint into a temporary folder and renames it when complete, so a run
killed mid-save restarts from the previous checkpoint. Saving is asynchronous: `save` returns
once the state is copied off the devices, and the files are written while training goes on
(`close` waits for the last one).

A checkpoint folder carries the identity of the run config that wrote it (`identity.json`), so
that a folder of another run is refused rather than resumed; and `restore_newest_usable`
falls back to an older checkpoint when the newest cannot be read, or is newer than the run's
recorded metrics, saying which.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable, Optional

import jax
import orbax.checkpoint as ocp

log = logging.getLogger(__name__)
IDENTITY = "identity.json"


def stored_identity(directory: Path) -> Optional[str]:
  """The identity a checkpoint folder was written for; None when it has none (or no folder)."""
  try:
    return json.loads((Path(directory) / IDENTITY).read_text()).get("identity")
  except (OSError, ValueError, AttributeError):
    return None


def has_checkpoints(directory: Path) -> bool:
  directory = Path(directory)
  return directory.is_dir() and any(p.name.isdigit() for p in directory.iterdir())


class IdentityError(Exception):
  """The checkpoint folder belongs to another run config (one line, both identities named)."""


class Checkpointer:
  def __init__(self, directory: Path, max_to_keep: int = 2):
    self.directory = Path(directory).absolute()
    self.manager = ocp.CheckpointManager(
        Path(directory).absolute(),
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

  def check_identity(self, identity: str, run_label: str, trusted_without: bool) -> None:
    """Refuses checkpoints written for another config. A folder without an identity file
    (written before identities existed) is accepted only when `trusted_without` (it is the run
    folder's own, whose config.json was already compared)."""
    if self.latest_step() is None:
      return
    stored = stored_identity(self.directory)
    if stored == identity or (stored is None and trusted_without):
      return
    raise IdentityError(
        f"{self.directory} holds checkpoints of run config {stored or 'unknown'}, not of "
        f"{run_label} ({identity}); point --checkpoint_dir elsewhere or remove that folder")

  def write_identity(self, identity: str) -> None:
    if jax.process_index() == 0:
      self.directory.mkdir(parents=True, exist_ok=True)
      (self.directory / IDENTITY).write_text(json.dumps({"identity": identity}) + "\n")

  def restore_newest_usable(self, state, max_step: int, say: Callable[[str], None]):
    """(state, step) from the newest checkpoint at or below `max_step` that reads; checkpoints
    above it or unreadable are deleted (each said). (state, 0) when none is usable."""
    for step in sorted(self.manager.all_steps(), reverse=True):
      if step > max_step:
        say(f"checkpoint {step} is ahead of the recorded metrics (step {max_step}); "
            "discarded, its steps are retrained")
      else:
        try:
          return self.restore(state, step), step
        except Exception as e:  # orbax raises many kinds for a damaged checkpoint
          say(f"checkpoint {step} in {self.directory} is unreadable "
              f"({type(e).__name__}); discarded")
      self.manager.delete(step)
    return state, 0

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()
