"""The committed runs' fingerprints: `results/MANIFEST.json`, so that an edit of a run written
before runs recorded their own config's hash is still named.

Runs record the sha256 of the config.json they wrote (`summary.json`'s `config_sha256`); older
runs do not, and an edit of their config, or of their summary and metrics together, would pass
unseen. The manifest holds, for each run folder without `config_sha256`, the sha256 of its
config.json, summary.json and metrics.jsonl as committed; the join (`analysis.join`) marks a
run whose files differ from its entry `edited`, naming the file. Write it once for the
committed results, and again whenever such a run is deliberately replaced:

    python -m analysis.manifest [--results_dir results]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from functools import lru_cache
from pathlib import Path
from typing import Optional

from lamb.train import results  # file formats only: no jax

NAME = "MANIFEST.json"
FILES = (results.CONFIG, results.SUMMARY, results.METRICS)


def _sha(path: Path) -> Optional[str]:
  try:
    return hashlib.sha256(path.read_bytes()).hexdigest()
  except OSError:
    return None


def key(run_dir: Path) -> str:
  return f"{run_dir.parent.parent.name}/{run_dir.parent.name}/{run_dir.name}"


def build(results_dir: Path) -> dict:
  """{experiment/scale/run: {file: sha256}} for every run folder whose summary does not
  record its config's hash."""
  entries = {}
  for summary in sorted(Path(results_dir).glob(f"*/*/*/{results.SUMMARY}")):
    run_dir = summary.parent
    try:
      recorded = results.read_json(summary) or {}
    except results.UnreadableError:
      continue
    if recorded.get("config_sha256"):
      continue
    entries[key(run_dir)] = {name: _sha(run_dir / name) for name in FILES}
  return entries


@lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int) -> dict:
  del mtime_ns  # part of the cache key: a rewritten manifest is read again
  return json.loads(Path(path).read_text())


def entry(run_dir: Path) -> Optional[dict]:
  """The manifest's entry for `run_dir` (its results folder's manifest), None without one."""
  path = Path(run_dir).parents[2] / NAME
  try:
    manifest = _load(str(path), path.stat().st_mtime_ns)
  except (OSError, ValueError):
    return None
  return manifest.get(key(Path(run_dir)))


def differs(run_dir: Path) -> str:
  """Why the run's files are not the ones the manifest fingerprinted ('' when they are or it
  has no entry)."""
  found = entry(run_dir)
  if not found:
    return ""
  changed = [name for name, sha in found.items() if sha and _sha(Path(run_dir) / name) != sha]
  if not changed:
    return ""
  verb = "differs" if len(changed) == 1 else "differ"
  return (f"{', '.join(changed)} {verb} from the committed fingerprints in {NAME}; restore "
          f"them (git checkout), or, if the run was deliberately replaced, rewrite the "
          f"manifest (python -m analysis.manifest)")


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--results_dir", default=str(Path(__file__).resolve().parents[1] /
                                                   "results"))
  args = parser.parse_args(argv)
  folder = Path(args.results_dir)
  if not folder.is_dir():
    print(f"error: --results_dir={folder} is not a folder", file=sys.stderr)
    return 2
  entries = build(folder)
  results.atomic_write_text(folder / NAME, json.dumps(entries, indent=1, sort_keys=True) + "\n")
  print(f"wrote {folder / NAME}: {len(entries)} runs without a recorded config hash")
  return 0


if __name__ == "__main__":
  sys.exit(main())
