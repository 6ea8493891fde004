"""The frozen rules every verdict reads: floors, margins and thresholds as versioned data.

Each `analysis/rulesets/v<N>.toml` is one rule set; the newest is the one the report judges with,
and the report prints its hash (`Rules.digest`) so that a reader can tell which numbers decided.
A rule changed after seeing results is a new version, never an edit: the report judges every
claim under each earlier version as well (its sensitivity table), so a verdict that depends on a
choice made after seeing results shows it. The loader (`analysis.runs`: what "diverged" means)
and the claims (`analysis.claims`: floors, margins, negative controls) read the same object.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import tomllib
from functools import lru_cache
from pathlib import Path

FOLDER = Path(__file__).resolve().parent / "rulesets"


@dataclasses.dataclass(frozen=True)
class Rules:
  version: int
  summary: str
  digest: str                 # sha256 of the file's bytes, first 12 hex digits
  path: Path
  level: float
  min_paired_seeds: int
  min_steps: int
  floor_everywhere: bool      # the floor binds every run a claim reads, not only a ladder's top
  z_chance: float
  blow_up: float
  spike: float
  left_plateau: float
  trust_spread_ratio: float
  trust_spread_quantiles: tuple
  norm_margin: float
  dawnbench_top5: float
  negative_controls: bool
  decidability: bool
  margin_when_spreads_differ: str  # "pooled" or "larger arm"

  @property
  def label(self) -> str:
    return f"v{self.version} ({self.digest})"


def _number(value) -> float:
  return math.inf if value == "inf" else float(value)


def _parse(path: Path) -> Rules:
  raw = path.read_bytes()
  data = tomllib.loads(raw.decode())
  floor, div, claims = data["floor"], data["divergence"], data["claims"]
  if floor["scope"] not in ("ladders", "every run"):
    raise ValueError(f"{path.name}: floor.scope must be 'ladders' or 'every run', not "
                     f"{floor['scope']!r}")
  return Rules(
      version=int(data["version"]), summary=str(data["summary"]),
      digest=hashlib.sha256(raw).hexdigest()[:12], path=path,
      level=float(data["intervals"]["level"]),
      min_paired_seeds=int(data["intervals"]["min_paired_seeds"]),
      min_steps=int(floor["min_steps"]), floor_everywhere=floor["scope"] == "every run",
      z_chance=float(data["chance"]["z"]), blow_up=float(div["blow_up"]),
      spike=_number(div["spike"]), left_plateau=_number(div["left_plateau"]),
      trust_spread_ratio=float(claims["trust_spread_ratio"]),
      trust_spread_quantiles=tuple(float(q) for q in claims["trust_spread_quantiles"]),
      norm_margin=float(claims["norm_margin"]), dawnbench_top5=float(claims["dawnbench_top5"]),
      negative_controls=bool(claims["negative_controls"]),
      decidability=bool(claims["decidability"]),
      margin_when_spreads_differ=str(data["margins"]["default_when_spreads_differ"]))


@lru_cache(maxsize=None)
def every() -> tuple:
  """Every rule set, oldest first; a file whose name and version disagree is refused."""
  found = []
  for path in sorted(FOLDER.glob("v*.toml"), key=lambda p: int(p.stem[1:])):
    rules = _parse(path)
    if f"v{rules.version}" != path.stem:
      raise ValueError(f"{path.name} declares version {rules.version}: a rule set's file is "
                       "named after its version")
    found.append(rules)
  if not found:
    raise FileNotFoundError(f"no rule set in {FOLDER}")
  return tuple(found)


def current() -> Rules:
  """The newest rule set: the one verdicts are judged with."""
  return every()[-1]


def version(number: int) -> Rules:
  for rules in every():
    if rules.version == number:
      return rules
  raise KeyError(f"no rule set v{number} in {FOLDER}")
