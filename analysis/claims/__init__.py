"""Every claim of the paper, judged on the measured runs with its uncertainty.

Each `Claim` names where the paper makes it, the rule (`analysis.verdicts`: better / no worse /
same on a 95% interval, after the preconditions) and the negative control the rule must fail
on; the catalogue (`analysis.catalogue.CLAIM_READS`) says which experiments it reads.
`judge_all(results_dir, scale, rules)` returns one `Verdict` per claim under a frozen rule set
(`analysis.rules`): a rule that holds on its negative control cannot discriminate, and its claim
is not testable; each verdict carries its regime (steps, batch against the measured critical
batch, the metric compared, whether the settings were tuned at that shape) and, where it is
not decided, what would decide it. Margins come from the paper where it gives one (its own
spread over a ladder, "less than 0.1 percent"); where it gives none ("comparable", "no drop")
the margin is the measured spread between seeds of the task. `DISCLOSURES` lists every choice
made by looking at measured results, with the claims each can bias.

The claims live by task: `bert` (Section 4.1), `imagenet` (Section 4.2, Appendices D-F, H.0.2),
`small_images` (Appendix G, H), `systems` (Figure 8, the theorems).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from analysis import critical_batch, stats
from analysis import rules as rule_sets
from analysis import verdicts as v
from analysis import vocabulary as vocab
from analysis.claims import bert, imagenet, small_images, systems
from analysis.claims.context import (ACCURACY, BERT_METRIC, METRIC_NAMES, SQUAD_EM, SQUAD_F1,
                                     Claim, Context, Control, with_squad)
from analysis.claims.disclosures import DISCLOSURES, Disclosure

MIN_STEPS = rule_sets.current().min_steps  # the floor of the current rule set
_ORDER = ("1", "2", "3", "4", "5a", "5b", "5c", "6", "6b", "7", "8", "8b", "9", "10", "10b", "11",
          "12", "12b", "13a", "13b", "14", "15", "15b", "16", "17", "18", "19", "20", "21", "22",
          "23", "T")
_BY_ID = {c.id: c for c in (*bert.CLAIMS, *imagenet.CLAIMS, *small_images.CLAIMS,
                            *systems.CLAIMS)}
CLAIMS: Sequence[Claim] = tuple(_BY_ID[i] for i in _ORDER)

__all__ = ["ACCURACY", "BERT_METRIC", "CLAIMS", "Claim", "Context", "Control", "DISCLOSURES",
           "Disclosure", "MIN_STEPS", "SQUAD_EM", "SQUAD_F1", "judge_all", "judge", "v", "vocab",
           "with_squad"]


def _regime(ctx: Context, claim: Claim, read: list, critical) -> str:
  """Steps at the judged settings, the largest batch against the task's measured critical
  batch, the metric compared, and whether the compared settings were tuned at that shape."""
  steps, batches, metrics = set(), [], []
  for side, metric in read:
    s = side.setting or (side.choice.settings[0] if side.choice.settings else None)
    if s is None or not len(s.runs):
      continue
    found = s.runs.get("steps")
    if found is not None:
      steps.update(int(x) for x in found.dropna() if x == x)
    batch = s.runs.get("config.batch_size")
    if batch is not None and batch.notna().any():
      batches.append((int(batch.dropna().max()), stats.task_key(s.runs.iloc[:1]).iloc[0]))
    metrics.append(METRIC_NAMES.get(metric, metric))
  parts = []
  if steps:
    parts.append(f"steps {min(steps)}" + (f"-{max(steps)}" if max(steps) != min(steps) else ""))
  if batches:
    batch, task = max(batches)
    estimate = critical_batch.task_estimate(critical, task) if critical is not None and \
        len(critical) else None
    parts.append(f"batch up to {batch}" + (
        f" = {batch / estimate[0]:.2g}x the measured critical batch ({estimate[0]:,.0f})"
        if estimate else " (no critical-batch measurement of its task)"))
  if metrics:
    metric = ", ".join(dict.fromkeys(metrics))
    if ctx.scale != "paper" and BERT_METRIC in {m for _, m in read}:
      metric += " (the paper compares SQuAD F1)"
    parts.append(metric)
  if claim.tuned_at_shape is not None:
    parts.append("settings tuned at this shape" if claim.tuned_at_shape
                 else "settings not tuned at this shape")
  return "; ".join(parts)


def _with_control(ctx: Context, claim: Claim, verdict: v.Verdict) -> v.Verdict:
  """The claim's verdict once its rule has run on its negative control."""
  if claim.control is None:
    return verdict
  control = claim.control.judge(ctx)
  verdict.control = f"{claim.control.text}: {control.status}"
  if control.status == vocab.HELD and verdict.status not in (vocab.NOT_RUN,):
    return v.Verdict(vocab.NOT_TESTABLE,
                     f"the rule also holds on its negative control ({claim.control.text}: "
                     f"{control.evidence}), so it cannot tell the claim from its opposite here; "
                     f"as judged: {verdict.status}, {verdict.evidence}", verdict.interval,
                     method=verdict.method, decide="a rule, or a scale, at which the control "
                     "fails", control=verdict.control)
  return verdict


def judge(ctx: Context, claim: Claim, critical=None) -> v.Verdict:
  """One claim under `ctx`'s rule set: its rule, then its negative control."""
  ctx.read = []
  verdict = claim.judge(ctx)
  read, ctx.read = list(ctx.read), []  # the control's runs are not the claim's regime
  if ctx.rules.negative_controls:
    verdict = _with_control(ctx, claim, verdict)
  ctx.read = []
  verdict.regime = _regime(ctx, claim, read, critical)
  return verdict


def judge_all(results_dir: Path, scale: str, rules: Optional[rule_sets.Rules] = None) -> list:
  """[(Claim, Verdict)] for every claim, on the runs of `results_dir` at `scale`."""
  ctx = Context(Path(results_dir), scale, rules)
  try:
    critical = critical_batch.measured(Path(results_dir), scale)
  except Exception:  # a damaged noise record must not stop the verdicts; the section names it
    critical = None
  judged = [(claim, judge(ctx, claim, critical)) for claim in CLAIMS]
  verdicts = {claim.id: verdict for claim, verdict in judged}
  for claim, verdict in judged:
    limited = claim.scale_limited(verdicts) if claim.scale_limited else ""
    if limited:
      verdict.regime = "; ".join(filter(None, (verdict.regime, limited)))
  return judged
