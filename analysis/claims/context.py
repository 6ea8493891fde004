"""What every claim shares: the runs of one results folder, the sides a claim compares, and the
helpers that judge a ladder, a pair of tasks or a run's step budget (Sections 4.1-4.2).

A `Context` loads the runs of one scale once, under one rule set (`analysis.rules`), and hands
out `Side`s: the best setting of the runs that a claim's arm names (`analysis.select`). It keeps
the sides each claim reads, so that the report can state the claim's regime (steps, batch
against the measured critical batch, the metric compared) beside its verdict.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Optional

import pandas as pd

from analysis import catalogue, reported, runs, select, stats
from analysis import rules as rule_sets
from analysis import verdicts as v
from analysis import vocabulary as vocab
from analysis.catalogue import E

ACCURACY = "final.accuracy"
# The BERT claims' metric: held-out masked-LM accuracy at the cpu scale; at paper scale the
# paper's, the SQuAD F1 of the run's fine-tunes (`squad:paper,pretrained=EXPERIMENT`), joined
# onto each pre-training run by `with_squad`.
BERT_METRIC = "final.masked_lm_accuracy"
SQUAD_F1 = "final.squad_f1"
SQUAD_EM = "final.squad_exact_match"
METRIC_NAMES = {ACCURACY: "top-1 accuracy", BERT_METRIC: "held-out masked-LM accuracy",
                SQUAD_F1: "SQuAD F1", "final.top5_accuracy": "top-5 accuracy"}


def with_squad(frame: pd.DataFrame) -> pd.DataFrame:
  """`frame` with each pre-training run's SQuAD F1 and exact match (the mean over its completed
  fine-tunes, which record it as `pretrained_run`) in SQUAD_F1 / SQUAD_EM; NaN without one."""
  if not len(frame) or "config.pretrained_run" not in frame:
    return frame
  tuned = frame[(frame.experiment == E.SQUAD) & (frame.status == vocab.COMPLETED)
                & (frame["config.pretrained_run"].fillna("").astype(str) != "")]
  if not len(tuned):
    return frame
  frame = frame.copy()
  folder = frame.experiment.astype(str) + "/" + frame.scale.astype(str) + "/" + frame.run.astype(str)
  for column, source in ((SQUAD_F1, "final.f1"), (SQUAD_EM, "final.exact_match")):
    if source not in tuned:
      continue
    means = pd.to_numeric(tuned[source], errors="coerce").groupby(
        tuned["config.pretrained_run"]).mean()
    frame[column] = folder.map(means)
  return frame


class Context:
  """The runs of one results folder at one scale, loaded once, and the sides claims compare."""

  def __init__(self, results_dir: Path, scale: str, rules: Optional[rule_sets.Rules] = None):
    self.results_dir, self.scale = Path(results_dir), scale
    self.rules = rules or rule_sets.current()
    every = runs.load(results_dir, rules=self.rules)
    self.all = with_squad(every[every.scale == scale] if len(every) else every)
    self.bert_metric = SQUAD_F1 if scale == "paper" else BERT_METRIC
    self._noise: dict = {}
    self._frames: dict = {}
    self.read: list = []  # (Side, metric) of the claim being judged, for its regime

  def frame(self, experiment: str) -> pd.DataFrame:
    """The runs of `experiment`, without runs of an older config that record no paper rows
    beside ones that do (`runs.recorded_rows`; `set_aside` names them), and with the arm that
    another experiment trains for it (`catalogue.SHARED_ARMS`)."""
    if experiment not in self._frames:
      frame = self.all[self.all.experiment == experiment] if len(self.all) else self.all
      kept, stale = runs.recorded_rows(frame.reset_index(drop=True))
      kept = runs.with_shared_arm(experiment, kept.reset_index(drop=True), self.all)
      self._frames[experiment] = (kept.reset_index(drop=True), stale)
    return self._frames[experiment][0]

  def set_aside(self, experiment: str) -> list:
    self.frame(experiment)
    return self._frames[experiment][1]

  def choose(self, experiment: str, runs_: pd.DataFrame, metric: str) -> select.Choice:
    """The best setting of `runs_`; a run of `experiment` whose config cannot be read could be
    any side's, so it holds every side of the experiment back."""
    return select.held_back(select.choose(runs_, select.SETTINGS, metric),
                            select.unplaced(self.frame(experiment)))

  def side(self, experiment: str, label: str, metric: str = ACCURACY, **where) -> v.Side:
    """The runs of `experiment` whose config columns equal `where`, at their best setting."""
    frame = self.frame(experiment)
    for column, value in where.items():
      column = "config." + column.replace("__", ".")
      frame = frame[frame[column] == value] if column in frame else frame.iloc[0:0]
    return self.note(v.Side(label, self.choose(experiment, frame, metric)), metric)

  def note(self, side: v.Side, metric: str) -> v.Side:
    """Records that the claim being judged reads `side` (its regime names the side's runs)."""
    self.read.append((side, metric))
    return side

  def noise(self, side: v.Side, metric: str) -> Optional[stats.Noise]:
    if side.setting is None:
      return None
    task = stats.task_key(side.setting.runs.iloc[:1]).iloc[0]
    if (task, metric) not in self._noise:
      self._noise[task, metric] = stats.task_noise(self.all, task, metric)
    return self._noise[task, metric]

  def compare(self, kind, a: v.Side, b: v.Side, metric=ACCURACY, margin=None) -> v.Verdict:
    noise = self.noise(a, metric) or self.noise(b, metric)
    if margin is None:  # no number in the paper: the spread between seeds of the task
      margin = self.default_margin(a, b, noise)
    return v.compare(kind, a, b, noise, margin=margin, rules=self.rules, metric=metric)

  def default_margin(self, a: v.Side, b: v.Side, noise: Optional[stats.Noise]) -> float:
    """The task's pooled seed spread; where the task's settings do not share one spread
    (Bartlett), under rule sets that say so, the larger of the two arms' own spreads."""
    if noise is None:
      return 0.0
    if noise.homogeneous or self.rules.margin_when_spreads_differ == "pooled":
      return noise.std
    own = [s.setting.std for s in (a, b) if s.setting is not None and s.setting.seeds >= 2]
    return max(own) if own else noise.std

  def steps(self, side: v.Side) -> Optional[int]:
    runs_ = side.choice.settings[0].runs if side.choice.settings else None
    if runs_ is None or not len(runs_):
      return None
    steps = pd.to_numeric(runs_.steps, errors="coerce").dropna()
    return int(steps.min()) if len(steps) else None


@dataclasses.dataclass
class Control:
  """A negative control: the claim's rule applied where it must fail (a committed run or pair
  that the paper's mechanism says should not pass). A rule that passes its control cannot
  discriminate, and its claim is not testable."""
  text: str
  judge: Callable[[Context], v.Verdict]


@dataclasses.dataclass
class Claim:
  id: str
  wording: str
  source: str
  rule: str
  judge: Callable[[Context], v.Verdict]
  control: Optional[Control] = None
  tuned_at_shape: Optional[bool] = None  # the compared settings were chosen at the judged shape
  # A line when a precondition of the paper's mechanism is absent at this scale, given the
  # verdicts of the other claims ({id: Verdict}); '' when it is present.
  scale_limited: Optional[Callable[[dict], str]] = None

  @property
  def configs(self) -> tuple:
    return catalogue.CLAIM_READS[self.id]


def too_few_steps(ctx: Context, side: v.Side, what: str,
                  metric: Optional[str] = "bert") -> Optional[v.Verdict]:
  """Not testable when `side` trains fewer than the floor's steps; the verdict also says when
  the comparison would lack a seed spread, so that every reason that blocks the claim is named."""
  metric = ctx.bert_metric if metric == "bert" else metric
  steps = ctx.steps(side)
  floor = ctx.rules.min_steps
  if steps is None or steps >= floor:
    return None
  why = f"{what} trains {steps} steps (< {floor})"
  if metric and side.setting is not None and side.setting.seeds < ctx.rules.min_paired_seeds \
      and ctx.noise(side, metric) is None:
    why += "; and one seed per run with no replicated setting of the task to measure noise with"
  return v.not_testable(why, decide=f"runs of {floor}+ steps at this batch")


def point_floor(ctx: Context, side: v.Side, what: str) -> Optional[v.Verdict]:
  """The floor for a point rule (one run, no interval): binding under rule sets whose floor
  covers every run a claim reads."""
  return too_few_steps(ctx, side, what, metric=None) if ctx.rules.floor_everywhere else None


def named(side: v.Side, label: str) -> v.Side:
  return v.Side(label, side.choice)


def ladder(ctx: Context, experiment: str, metric: str, prefix: str = "") -> list:
  """[(batch label, Side)] of a batch ladder, smallest batch first (runs of an older config that
  record no rows beside ones that do are set aside: `runs.recorded_rows`)."""
  frame = ctx.frame(experiment)
  if not len(frame) or "config.variant" not in frame:
    return []
  out = []
  for variant, group in frame.groupby("config.variant"):
    if not str(variant).startswith(prefix) or "-" in str(variant):
      continue
    batch = pd.to_numeric(group["config.batch_size"], errors="coerce").max()
    label = str(variant)[len(prefix):]
    side = ctx.note(v.Side(label, ctx.choose(experiment, group, metric)), metric)
    out.append((batch, label, side))
  return [(label, side) for _, label, side in sorted(out, key=lambda t: t[0])]


def paper_ladder_margin(table: int, metric: str) -> float:
  """The paper's own largest drop below its smallest batch on a ladder, relative to it."""
  t = reported.load(table)
  t = t[(t.metric == metric) & t.value.notna()].sort_values("batch_size")
  first = float(t.value.iloc[0])
  return max(0.0, (first - float(t.value.min())) / first)


def ladder_claim(ctx: Context, experiment: str, table: int, paper_metric: str,
                 metric: str) -> v.Verdict:
  """Every rung no worse than the smallest, margin the paper's own largest drop on the table."""
  rungs = ladder(ctx, experiment, metric)
  paper_rows = reported.load(table).batch_size_text.unique()
  at_scale = runs.rows_at_scale(ctx.frame(experiment))
  expected = [r for r in paper_rows if at_scale is None or r in at_scale]
  missing = [r for r in expected if r not in dict(rungs)]
  if missing:
    return v.not_run(f"{len(expected) - len(missing)} of {len(expected)} batch sizes of "
                     f"{experiment} exist (missing: {', '.join(missing)})")
  (_, small), (top_label, top) = rungs[0], rungs[-1]
  blocked = too_few_steps(ctx, top, f"the largest batch ({top_label})", metric)
  if blocked:
    return blocked
  relative = paper_ladder_margin(table, paper_metric)
  margin = relative * small.setting.mean if small.setting else 0.0
  parts = [ctx.compare("no worse", side, small, metric, margin) for _, side in rungs[1:]]
  verdict = v.combine(parts)
  stale = ctx.set_aside(experiment)
  covers = (f"set aside as runs of an older config: {', '.join(stale)}; " if stale else "") + (
      "" if len(expected) == len(paper_rows) else (
      f"this scale runs {len(expected)} of the paper's {len(paper_rows)} rungs "
      f"({expected[0]}-{expected[-1]}), so the claim is tested from {expected[0]} up; "))
  verdict.evidence = (covers + f"margin: the paper's largest drop on Table {table}, "
                      f"{relative:.2%} of the smallest batch = {margin:.4f}; " + verdict.evidence)
  return verdict


def left_to_paper(ctx: Context, experiment: str, row: str) -> Optional[v.Verdict]:
  """Not testable when this scale's `experiment` records its rows and `row` is not one."""
  at_scale = runs.rows_at_scale(ctx.frame(experiment))
  if at_scale is not None and row not in at_scale:
    return v.not_testable(f"{experiment} leaves {row} to the paper scale (this scale runs "
                          f"{', '.join(sorted(at_scale))})")
  return None


def comparable(ctx: Context, a: v.Side, b: v.Side, floor: bool = True) -> Optional[v.Verdict]:
  """Not testable when two sides read from different experiments are not the same task (data,
  length of training), or (with `floor`, the ladders' rule) either trains fewer than the floor's
  steps."""
  keys = [stats.task_key(s.setting.runs.iloc[:1]).iloc[0] for s in (a, b) if s.setting]
  if len(set(keys)) > 1:
    return v.not_testable(f"{a.label} and {b.label} are runs of different tasks ({keys[0]} "
                          f"against {keys[1]}): rerun both configs at this scale")
  for side in (a, b) if floor else ():
    blocked = too_few_steps(ctx, side, side.label, metric=None)
    if blocked:
      return blocked
  return None


def setting_key(key: tuple) -> tuple:
  """A setting's key with an unset field (NaN, which equals nothing) as None, for comparing."""
  return tuple(None if isinstance(k, float) and k != k else k for k in key)


def null_control(judge_pair: Callable[[Context], tuple], metric: str = ACCURACY):
  """The generic control of a "better" rule: the claimed winner against itself (the same
  runs). Its difference is zero, so the rule must not hold; one that holds is broken."""
  def judge(ctx: Context) -> v.Verdict:
    side = judge_pair(ctx)
    if side is None:
      return v.not_run("the claimed winner's runs")
    m = ctx.bert_metric if metric == "bert" else metric
    return ctx.compare("better", named(side, side.label), named(side, side.label + " (again)"),
                       m)
  return judge
