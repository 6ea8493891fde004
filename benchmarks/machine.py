"""The machine a benchmark row was measured on, named the same way by every benchmark."""
from __future__ import annotations

import platform
from pathlib import Path


def cpu_model() -> str:
  """The CPU's model name (/proc/cpuinfo), else what the platform module knows."""
  cpu = platform.processor() or platform.machine()
  try:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("model name"):
        return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return cpu
