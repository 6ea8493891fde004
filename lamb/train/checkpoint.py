"""orbax checkpoints of the whole TrainState; the newest two are kept.

orbax writes each checkpoint into a temporary folder and renames it when complete, so a run
killed mid-save restarts from the previous checkpoint. Saving is asynchronous: `save` returns
once the state is copied off the devices, and the files are written while training goes on
(`close` waits for the last one).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import jax
import orbax.checkpoint as ocp


class Checkpointer:
  def __init__(self, directory: Path, max_to_keep: int = 2):
    self.manager = ocp.CheckpointManager(
        Path(directory).absolute(),
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                             enable_async_checkpointing=True))

  def latest_step(self) -> Optional[int]:
    return self.manager.latest_step()

  def save(self, step: int, state) -> None:
    self.manager.save(step, args=ocp.args.StandardSave(state), force=True)

  def restore(self, state):
    """The newest checkpoint, laid out (shapes, dtypes, shardings) like `state`."""
    target = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    return self.manager.restore(self.manager.latest_step(), args=ocp.args.StandardRestore(target))

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()
