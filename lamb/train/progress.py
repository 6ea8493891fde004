"""The progress line a run prints while it trains: step / total, loss, steps/s and ETA.

One line on stderr at a steady cadence (`every_s` seconds of wall time; 0 = silent), so a
long run says where it is without flooding a log, and stdout keeps one line per finished run.
"""
from __future__ import annotations

import sys
import time
from typing import Optional


def _duration(seconds: float) -> str:
  seconds = int(round(seconds))
  hours, rest = divmod(seconds, 3600)
  minutes, secs = divmod(rest, 60)
  return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class Progress:
  def __init__(self, total_steps: int, *, every_s: float, label: str, stream=None):
    self.total, self.every_s, self.label = total_steps, every_s, label
    self.stream = stream or sys.stderr
    self.loss: Optional[float] = None
    self._mark: Optional[tuple] = None  # (time, step) of the last line

  def update(self, step: int) -> None:
    if not self.every_s:
      return
    now = time.time()
    if self._mark is None:  # the first step after (re)starting: the rate is measured from here
      self._mark = (now, step)
      return
    then, before = self._mark
    if now - then < self.every_s or step == before:
      return
    rate = (step - before) / (now - then)
    loss = f"loss {self.loss:.4f}  " if self.loss is not None else ""
    eta = _duration((self.total - step) / rate) if rate > 0 else "?"
    print(f"  {self.label}: step {step}/{self.total} ({100 * step / self.total:.0f}%)  {loss}"
          f"{rate:.3g} steps/s  ETA {eta}", file=self.stream, flush=True)
    self._mark = (now, step)
