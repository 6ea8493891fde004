"""The memory layout each checkpoint was trained with, and when a resume may change it.

A phase's remat policy (lamb.train.memory) recomputes the same operations, so it is not part of
a run's identity (experiments.sweep.LAYOUT_KEYS): a run planned again with more remat (its
length-512 phase ran out of memory) resumes rather than restarting from step 0. A change inside
a phase would leave a run whose steps were computed two ways, unlike any uninterrupted run, so
it is refused with the flag that restores the old layout; at a phase boundary it is allowed and
recorded in the summary (`layout_change`). Micro-batches are recorded too, but they are part of
a run's identity (each draws its own dropout masks and loss denominators), so a change of them
is another run and never reaches this check.
"""
from __future__ import annotations

import json
from typing import Optional

import jax

from lamb.train import checkpoint as checkpoint_lib

LAYOUTS = "layouts.json"  # beside the checkpoints: step -> the layout that trained up to it


def of(phase) -> dict:
  """The layout of one phase of a plan (lamb.train.plan.PhasePlan)."""
  return {"phase": phase.name, "microbatches": int(phase.microbatches),
          "remat": phase.config.get("remat") or "none"}


def describe(layout: dict) -> str:
  k = layout["microbatches"]
  return (f"{k} micro-batch{'es' if k > 1 else ''}, "
          + ("no remat" if layout["remat"] == "none" else f"remat {layout['remat']}"))


def save(directory, step: int, phase) -> None:
  """Records the layout that trained up to the checkpoint at `step` (process 0 writes)."""
  if jax.process_index() == 0:
    path = checkpoint_lib._path(directory) / LAYOUTS  # pylint: disable=protected-access
    layouts = checkpoint_lib._read_json(path) or {}  # pylint: disable=protected-access
    layouts[str(step)] = of(phase)
    text = json.dumps(layouts, sort_keys=True) + "\n"
    checkpoint_lib._write_text(path, text)  # pylint: disable=protected-access


def at(directory, step: int) -> Optional[dict]:
  path = checkpoint_lib._path(directory) / LAYOUTS  # pylint: disable=protected-access
  return (checkpoint_lib._read_json(path) or {}).get(str(step))  # pylint: disable=protected-access


def check_resume(directory, step: int, plan, run_name: str) -> Optional[dict]:
  """The change of layout a resume at `step` makes, as a summary record, or None. ValueError
  when the change falls inside a phase. Checkpoints from before layouts were recorded trained
  with the layout their config named (then part of the identity), so they pass."""
  before = at(directory, step)
  if before is None or step == 0:
    return None
  index = plan.index_at(step)
  phase = plan.phases[index]
  now = of(phase)
  if {k: before[k] for k in ("microbatches", "remat")} == {k: now[k] for k in
                                                           ("microbatches", "remat")}:
    return None
  if before.get("phase") == phase.name and phase.start < step < phase.end:
    counts = ",".join(str(before["microbatches"]) if p.name == phase.name
                      else str(p.microbatches) for p in plan.phases)
    raise ValueError(
        f"{run_name} was trained to step {step}, inside phase {phase.name}, with "
        f"{describe(before)}; this command plans {describe(now)}, and a layout changes only at "
        f"a phase boundary: rerun with --phase_microbatches={counts}"
        + (f" --config.remat={before['remat']}" if before["remat"] != now["remat"] else ""))
  return {"step": step, "phase": phase.name, "from": describe(before), "to": describe(now)}
