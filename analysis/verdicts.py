"""The rules that turn a comparison with its interval into a verdict on a claim of the paper.

Three kinds of claim, each judged on the 95% interval of a difference a − b (`analysis.stats`):
- **better** ("LAMB beats AdamW"): held when the interval lies above 0, not held when it lies
  below 0, inconclusive when it contains 0.
- **no worse** ("keeps its score", "costs no accuracy"), with a margin m: held when the interval
  lies above −m, not held when it lies below −m, inconclusive otherwise.
- **same** ("comparable", "less than 0.1%"), with a margin m: held when the interval lies inside
  (−m, m), not held when it lies wholly outside it, inconclusive otherwise (the data cannot tell
  a difference of m from none: "no detectable difference" is inconclusive, not held).

Before a rule runs, each side must exist (else **not run**) and have finished every run it needs
(else not run, naming the runs), and trained at least the rule set's floor of steps
(else not testable). A claimed winner (or one of two claimed equals) that diverged
where the other side finished fails the claim (**not held**). One left at the chance level
where the other side learned, both having trained MIN_STEPS steps, is judged on the interval
like any other score; a baseline that diverged or sits at the chance level, or two sides both
at it, leave the claim **not testable at this scale** (the shrunk setting decides, not the
optimizer), as does a missing seed spread to measure noise with. A claim made of several comparisons takes
the first of: not held, not run, not testable, inconclusive, held.

Before a "no worse" or "same" rule judges (rule sets with `decidability`), the narrowest interval
the evaluation set could ever give, with unlimited seeds, is compared with the margin: when it
is wider, no run of this size can hold the claim, and the verdict is **not testable at this
scale** with what would decide it (seeds or evaluation examples, computed). Floors, thresholds
and the interval's level come from the frozen rule set (`analysis.rules`).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence

import pandas as pd

from analysis import evidence, rules as rule_sets, select, stats
from analysis import vocabulary as vocab

PRECEDENCE = (vocab.NOT_HELD, vocab.NOT_RUN, vocab.NOT_TESTABLE, vocab.INCONCLUSIVE, vocab.HELD)
MIN_STEPS = rule_sets.current().min_steps  # the steps a run needs before its score speaks


@dataclasses.dataclass
class Verdict:
  status: str
  evidence: str
  interval: str = ""  # how the interval was made, when one decided
  method: str = ""    # "per-example, paired on units", "fallback: ...", or "" for point rules
  decide: str = ""    # for "not testable" and "inconclusive": what would decide it
  control: str = ""   # the negative control the rule was run on, and how it came out
  regime: str = ""    # steps, batch against the critical batch, metric, tuning: what was judged


@dataclasses.dataclass
class Side:
  """One side of a comparison: a label and the chosen setting of its runs."""
  label: str
  choice: select.Choice

  @property
  def setting(self) -> Optional[select.Setting]:
    return self.choice.best

  def __str__(self) -> str:
    s = self.setting
    seeds = f"{s.seeds} seeds" if s.seeds > 1 else "1 seed"
    return f"{self.label} {s.mean:.4f} ({seeds})"


def not_run(why: str) -> Verdict:
  return Verdict(vocab.NOT_RUN, why)


def not_testable(why: str, decide: str = "") -> Verdict:
  return Verdict(vocab.NOT_TESTABLE, why, decide=decide)


def at_chance(s: select.Setting, rules: Optional[rule_sets.Rules] = None) -> Optional[float]:
  """The chance accuracy when `s` cannot be told from it (binomial error of its evaluation, n
  the metric's recorded denominator: masked tokens for BERT where recorded)."""
  rules = rules or rule_sets.current()
  chance = s.runs.chance_accuracy.dropna() if "chance_accuracy" in s.runs else []
  if not len(chance) or not s.values:
    return None
  c, n = float(chance.iloc[0]), evidence.chance_units(s) or 0
  error = rules.z_chance * math.sqrt(c * (1 - c) / n) if n else 0.0
  return c if s.mean <= c + error else None


def _diverged(side: Side) -> bool:
  return side.choice.status == vocab.DIVERGED and not side.choice.partial


def _why_diverged(side: Side) -> str:
  reasons = {r for s in side.choice.settings for r in s.runs.diverged_because if r}
  return f"{side.label} diverged ({'; '.join(sorted(reasons)[:2])})"


def precondition(side: Side, *, divergence_expected: bool = False,
                 chance_allowed: bool = False,
                 rules: Optional[rule_sets.Rules] = None) -> Optional[Verdict]:
  """Why `side` cannot enter a comparison (None when it can)."""
  c = side.choice
  if c.status == vocab.NOT_RUN:
    return not_run(f"{side.label}: not run")
  if c.partial:
    return not_run(f"{side.label}: waiting for " + ", ".join(c.partial))
  if _diverged(side) and not divergence_expected:
    return not_testable(_why_diverged(side))
  if c.best is None:
    return not_run(f"{side.label}: {c.status}")
  chance = None if chance_allowed else at_chance(c.best, rules)
  if chance is not None:
    return not_testable(f"{side.label} at the chance level ({c.best.mean:.4f}; chance "
                        f"{chance:.4f}): the shrunk setting, not the optimizer, decides")
  return None


def below_floor(side: Side, rules: rule_sets.Rules) -> Optional[Verdict]:
  """Not testable when the runs of `side` train fewer steps than the rule set's floor."""
  steps = steps_of(side)
  if steps is None or steps >= rules.min_steps:
    return None
  return not_testable(f"{side.label} trains {steps} steps (< {rules.min_steps}): too few for "
                      "its score to speak for the optimizer",
                      decide=f"runs of {rules.min_steps}+ steps at this batch")


def _one_diverged(kind: str, a: Side, b: Side) -> Optional[Verdict]:
  """A claimed winner (or an equal) that diverged where the other side finished fails the
  claim; a baseline that diverged alone leaves it untested (the shrink may have done it)."""
  for side in (a, b):
    if side.choice.partial or side.choice.status == vocab.NOT_RUN:
      return precondition(side)
  if _diverged(a) and not _diverged(b) and b.setting is not None:
    return Verdict(vocab.NOT_HELD, f"{_why_diverged(a)} where {b} did not")
  if kind == "same" and _diverged(b) and not _diverged(a) and a.setting is not None:
    return Verdict(vocab.NOT_HELD, f"{_why_diverged(b)} where {a} did not")
  return None


def steps_of(side: Side) -> Optional[int]:
  runs = side.setting.runs if side.setting is not None else None
  if runs is None or "steps" not in runs:
    return None
  steps = pd.to_numeric(runs.steps, errors="coerce").dropna()
  return int(steps.min()) if len(steps) else None


def _judged_at_chance(kind: str, a: Side, b: Side,
                      rules: rule_sets.Rules) -> Optional[Side]:
  """The claimed winner (or one of two equals) that sits at the chance level where the other
  side learned, both with the steps to learn (MIN_STEPS): the interval judges it, as it would
  a divergence, rather than the chance precondition. A baseline at the chance level still
  blocks the claim (the shrink may have broken the baseline's setting, which cannot speak for
  the paper), as do both sides at it."""
  if a.setting is None or b.setting is None:
    return None
  if any((steps_of(s) or 0) < rules.min_steps for s in (a, b)):
    return None
  for side, other in (((a, b), (b, a)) if kind == "same" else ((a, b),)):
    if (at_chance(side.setting, rules) is not None and at_chance(other.setting, rules) is None
        and not _diverged(other)):
      return side
  return None


def _status(kind: str, lo: float, hi: float, margin: float) -> str:
  if kind == "better":
    return vocab.HELD if lo > 0 else vocab.NOT_HELD if hi < 0 else vocab.INCONCLUSIVE
  if kind == "no worse":
    return vocab.HELD if lo > -margin else vocab.NOT_HELD if hi < -margin else vocab.INCONCLUSIVE
  return (vocab.HELD if -margin < lo and hi < margin
          else vocab.NOT_HELD if lo > margin or hi < -margin else vocab.INCONCLUSIVE)


def compare(kind: str, a: Side, b: Side, noise: Optional[stats.Noise], *,
            margin: float = 0.0, rules: Optional[rule_sets.Rules] = None,
            metric: str = "final.accuracy") -> Verdict:
  """One comparison of `kind` 'better', 'no worse' or 'same' (see the module docstring)."""
  if kind not in ("better", "no worse", "same"):
    raise ValueError(f"unknown comparison {kind!r}")
  rules = rules or rule_sets.current()
  decided = _one_diverged(kind, a, b)
  if decided:
    return decided
  judged = _judged_at_chance(kind, a, b, rules)
  for side in (a, b):
    blocked = precondition(side, chance_allowed=side is judged, rules=rules)
    if blocked:
      return blocked
  if rules.floor_everywhere:
    for side in (a, b):
      blocked = below_floor(side, rules)
      if blocked:
        return blocked
  numbers = f"{a} − {b}"
  if judged is not None:
    numbers = (f"{judged.label} at the chance level ({at_chance(judged.setting, rules):.4f}) "
               f"where the other side learned, judged on the interval: " + numbers)
  iv = evidence.difference(a.setting, b.setting, noise, level=rules.level, metric=metric)
  if iv is None:
    why = ("one seed each, and the task's replicated settings do not share one seed spread "
           f"({noise}), so none can be borrowed" if noise is not None and not noise.homogeneous
           else "one seed each and no replicated setting of this task to measure the seed "
           "spread with")
    return not_testable(f"{numbers}: {why}", decide="3 or more seeds per arm")
  status = _status(kind, iv.lo, iv.hi, margin)
  text = f"{numbers} = {iv}" + (f" (margin {margin:.4f})" if kind != "better" else "")
  if status != vocab.INCONCLUSIVE:
    return Verdict(status, text, iv.how, method=iv.method)
  if kind == "better":
    # An effect of about zero: the data bound how large it could be; no smallest effect of
    # interest is declared, so no number of seeds is computed for it.
    return Verdict(status, text + f"; the data bound the gain to at most {iv.hi:+.4f}",
                   iv.how, method=iv.method,
                   decide=("per-example records (these arms rerun with the current code)"
                           if not evidence.both_recorded(a.setting, b.setting, metric)
                           else "more seeds per arm, or a declared smallest effect of "
                           "interest to size them for"))
  if rules.decidability and evidence.both_recorded(a.setting, b.setting, metric):
    # Undecided, and no number of seeds could decide it: the evaluation set is the limit. Only
    # with records: the fallback's evaluation part is an upper bound, not a floor.
    reach = evidence.reachable(a.setting, b.setting, level=rules.level, metric=metric,
                               noise=noise)
    if reach >= margin:
      return Verdict(vocab.NOT_TESTABLE,
                     f"{text}: inconclusive, and the evaluation set alone gives a half-width of "
                     f"at least {reach:.4f} against the margin, so no number of seeds could "
                     "decide it", iv.how, method=iv.method,
                     decide=evidence.what_would_decide(a.setting, b.setting, margin,
                                                       level=rules.level, metric=metric,
                                                       noise=noise))
  return Verdict(status, text, iv.how, method=iv.method,
                 decide=evidence.what_would_decide(a.setting, b.setting, margin,
                                                   level=rules.level, metric=metric,
                                                   noise=noise))


def combine(parts: Sequence[Verdict]) -> Verdict:
  """A claim made of several comparisons: the first status of PRECEDENCE any part has."""
  status = next(s for s in PRECEDENCE if any(p.status == s for p in parts))
  how = list(dict.fromkeys(p.interval for p in parts if p.interval))
  said = dict.fromkeys(p.evidence for p in parts)  # two parts blocked by one run say it once
  methods = list(dict.fromkeys(p.method for p in parts if p.method))
  decide = list(dict.fromkeys(p.decide for p in parts if p.decide and p.status == status))
  return Verdict(status, "; ".join(said), " | ".join(how), method="; ".join(methods),
                 decide="; ".join(decide))
