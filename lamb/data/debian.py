"""Debian packages as data: fetched without root into a per-user cache on first use.

The cpu scale's real data sets ship as Debian packages (Fashion-MNIST in dataset-fashion-mnist,
Jane Austen's novels in r-cran-janeaustenr). Where a Debian package registry is reachable,
`fetch_package` runs ``apt-get download`` and ``dpkg-deb -x`` (nothing is installed) and keeps
the package's data folder under the cache. It unpacks into a temporary folder first and moves
the result in with os.replace, so a concurrent or interrupted fetch never leaves a half-written
folder. ``$LAMB_NO_FETCH`` (anything but 0) turns fetching off.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

CACHE_ROOT = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"), "lamb")
NO_FETCH_ENV = "LAMB_NO_FETCH"


class FetchError(Exception):
  """Why a package could not be fetched, in one line (callers add how else to provide it)."""


def fetch_package(package: str, subdir: tuple, cache_dir: Path,
                  complete: Callable[[Path], bool]) -> Path:
  """`cache_dir`/`subdir` holding the package's `subdir`, fetched unless `complete` already."""
  folder = Path(cache_dir).joinpath(*subdir)
  if complete(folder):
    return folder
  if os.environ.get(NO_FETCH_ENV, "") not in ("", "0"):
    raise FetchError(f"not fetched, since ${NO_FETCH_ENV}={os.environ[NO_FETCH_ENV]}")
  for tool in ("apt-get", "dpkg-deb"):
    if shutil.which(tool) is None:
      raise FetchError(f"cannot fetch it: `{tool}` is not available")
  try:
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".fetch-") as tmp:
      run(["apt-get", "download", package], cwd=tmp)
      debs = sorted(Path(tmp).glob(f"{package}_*.deb"))
      if not debs:
        raise FetchError(f"cannot fetch it: `apt-get download {package}` produced no .deb")
      unpacked = Path(tmp, "root")
      run(["dpkg-deb", "-x", str(debs[0]), str(unpacked)], cwd=tmp)
      unpacked = unpacked.joinpath(*subdir)
      if not complete(unpacked):
        raise FetchError(f"cannot fetch it: {debs[0].name} has no complete {'/'.join(subdir)}/")
      folder.parent.mkdir(parents=True, exist_ok=True)
      try:
        os.replace(unpacked, folder)
      except OSError:
        if not complete(folder):  # not a concurrent fetch that got there first
          raise
  except OSError as e:
    raise FetchError(f"cannot fetch it into {cache_dir} ({e})") from e
  return folder


def run(cmd: list, cwd) -> None:
  """Runs `cmd`; a failure raises FetchError with apt's own error line."""
  try:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600,
                          check=False)
  except (OSError, subprocess.TimeoutExpired) as e:
    raise FetchError(f"cannot fetch it: `{' '.join(cmd)}` failed ({e})") from e
  if proc.returncode != 0:
    err = [l for l in (proc.stderr or "").splitlines() if l.startswith("E:")] or \
        (proc.stderr or "").strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
    hint = " (are the apt package lists current? `apt-get update`)" if \
        "Unable to locate" in err[-1] else ""
    raise FetchError(f"cannot fetch it: `{' '.join(cmd)}` failed: {err[-1]}{hint}")
