"""The BERT claims (Section 4.1; Tables 1, 2, 4, 8; Appendix E; Figures 6, 7), judged on the runs.

At the cpu scale the metric is held-out masked-LM accuracy, a mean over masked tokens (the
paper's SQuAD F1 needs BERT-Large); at paper scale it is the F1 of each pre-training's
fine-tunes. Each claim declares the negative control its rule must fail on.
"""
from __future__ import annotations

from typing import Optional

import pandas as pd

from analysis import reported, runs
from analysis import verdicts as v
from analysis import vocabulary as vocab
from analysis.catalogue import E
from analysis.claims import context as c
from analysis.claims.context import Claim, Control
from lamb.train import results as result_files  # file formats only: no jax

BETTER = "better: the 95% interval of the difference lies above 0"
NO_WORSE = "no worse: the interval lies above −margin"
LADDER = (f"{NO_WORSE}, each batch against the smallest, margin = the paper's own largest drop "
          "on the table; the largest batch must train at least the floor's steps")


def _baseline(ctx):
  return ctx.side(E.TABLE1, "baseline", ctx.bert_metric, variant="baseline")


def bert_ladder(ctx):
  return c.ladder_claim(ctx, E.TABLE4, 4, "f1", ctx.bert_metric)


def lars_ladder_control(ctx):
  """Claim 1's rule on LARS's ladder (Table 2), which the paper says stops scaling."""
  rungs = c.ladder(ctx, E.TABLE2, ctx.bert_metric, "lars_")
  if len(rungs) < 2:
    return v.not_run("LARS's ladder (table2)")
  margin = c.paper_ladder_margin(4, "f1") * (rungs[0][1].setting.mean
                                              if rungs[0][1].setting else 0.0)
  return v.combine([ctx.compare("no worse", side, rungs[0][1], ctx.bert_metric, margin)
                    for _, side in rungs[1:]])


def lamb_rows_at_baseline(ctx):
  """Every LAMB row of Table 1 (Table 4's ladder, and table1's own mixed batch where it runs
  it, i.e. the paper scale; the cpu scale's, mixed_batch's, is claim 3's) no worse than the
  baseline."""
  base = _baseline(ctx)
  rungs = c.ladder(ctx, E.TABLE4, ctx.bert_metric)
  at_scale = runs.rows_at_scale(ctx.frame(E.TABLE4))
  expected = (sorted(at_scale) if at_scale is not None
              else list(reported.load(4).batch_size_text.unique()))
  missing = [r for r in expected if r not in dict(rungs)]
  if missing:
    return v.not_run(f"{len(expected) - len(missing)} of {len(expected)} LAMB rows (table4) "
                     f"exist (missing: {', '.join(missing)})")
  rows = [c.named(side, f"LAMB {label}") for label, side in rungs]
  if not c.left_to_paper(ctx, E.TABLE1, "lamb_64K-32K"):
    rows.append(ctx.side(E.TABLE1, "LAMB 64K/32K", ctx.bert_metric, variant="lamb_64K-32K"))
  if not rows:
    return v.not_run("no LAMB rows (table4)")
  return v.combine([c.comparable(ctx, r, base) or ctx.compare("no worse", r, base,
                                                               ctx.bert_metric)
                    for r in rows])


def _lars_32k(ctx) -> Optional[v.Side]:
  return dict(c.ladder(ctx, E.TABLE2, ctx.bert_metric, "lars_")).get("32K")


def lars_against_baseline(ctx):
  """The no-worse rule of claims 2 and 3 with LARS at 32K (Table 2) in the candidate's place."""
  lars = _lars_32k(ctx)
  if lars is None:
    return v.not_run("LARS at 32K (table2)")
  base = _baseline(ctx)
  return c.comparable(ctx, lars, base) or ctx.compare("no worse", c.named(lars, "LARS 32K"),
                                                       base, ctx.bert_metric)


def _mixed_runs_of_two_configs(ctx) -> Optional[v.Verdict]:
  """Not judged when mixed_batch holds runs of one optimizer at two rate multipliers: its runs
  record no paper rows, so runs of an older config (another multiplier) copied back beside the
  current ones could otherwise join a 'best of its grid' unnoticed."""
  frame = ctx.frame(E.MIXED_BATCH)
  if not len(frame) or not {"config.learning_rate_multiplier",
                            "config.optimizer.name"} <= set(frame.columns):
    return None
  for name, group in frame.groupby("config.optimizer.name"):
    found = sorted(pd.to_numeric(group["config.learning_rate_multiplier"],
                                 errors="coerce").dropna().unique())
    if len(found) > 1:
      return v.not_run(f"mixed_batch holds {name} runs of two configs (rate multipliers "
                       f"{', '.join(f'x{m:g}' for m in found)}): move the older runs out of the "
                       "results folder, then judge again")
  return None


def mixed_batch_reaches_baseline(ctx):
  """Table 1's 64K/32K row no worse than the baseline: table1's own run where this scale runs it,
  else mixed_batch's re-warm-up run (the same recipe; the cpu scale trains it there)."""
  if c.left_to_paper(ctx, E.TABLE1, "lamb_64K-32K"):
    conflict = _mixed_runs_of_two_configs(ctx)
    if conflict:
      return conflict
    mixed = ctx.side(E.MIXED_BATCH, "LAMB 64K/32K (mixed_batch)", ctx.bert_metric,
                     variant="lamb_rewarmup")
  else:
    mixed = ctx.side(E.TABLE1, "LAMB 64K/32K", ctx.bert_metric, variant="lamb_64K-32K")
  base = _baseline(ctx)
  blocked = c.too_few_steps(ctx, mixed, "the 64K/32K run") or c.comparable(ctx, mixed, base)
  return blocked or ctx.compare("no worse", mixed, base, ctx.bert_metric)


def _rewarm(ctx):
  return ctx.side(E.MIXED_BATCH, "re-warm-up", ctx.bert_metric, variant="lamb_rewarmup")


def rewarmup_needed(ctx):
  """Section 4.1: the mixed batch with re-warm-up beats the same run decaying straight on."""
  conflict = _mixed_runs_of_two_configs(ctx)
  if conflict:
    return conflict
  rewarm = _rewarm(ctx)
  straight = ctx.side(E.MIXED_BATCH, "no re-warm-up", ctx.bert_metric,
                      variant="lamb_no_rewarmup")
  blocked = c.too_few_steps(ctx, rewarm, "the 64K/32K run")
  return blocked or ctx.compare("better", rewarm, straight, ctx.bert_metric)


def _nado_lamb(ctx):
  return ctx.side(E.NADO_BERT, "LAMB 32K (tuned)", ctx.bert_metric, variant="lamb_32K")


def lamb_beats_tuned_adamw(ctx):
  """Nado et al.'s BERT test at 32K: LAMB and AdamW, each at the best of one budget."""
  lamb = _nado_lamb(ctx)
  adamw = ctx.side(E.NADO_BERT, "AdamW 32K (tuned)", ctx.bert_metric, variant="adamw_32K")
  blocked = (c.too_few_steps(ctx, lamb, "LAMB's 32K run")
             or c.too_few_steps(ctx, adamw, "AdamW's 32K run"))
  return blocked or ctx.compare("better", lamb, adamw, ctx.bert_metric)


def adamw_fails_mixed(ctx):
  """Section 4.1: AdamW gets no reasonable result on the mixed batch: every setting diverged,
  or LAMB's mixed run beats AdamW's best."""
  conflict = _mixed_runs_of_two_configs(ctx)
  if conflict:
    return conflict
  frame = ctx.frame(E.MIXED_BATCH)
  adamw = frame[frame["config.optimizer.name"] == "adamw"] \
      if "config.optimizer.name" in frame else frame.iloc[0:0]
  side = ctx.note(v.Side("AdamW 64K/32K (best of its grid)",
                         ctx.choose(E.MIXED_BATCH, adamw, ctx.bert_metric)), ctx.bert_metric)
  lamb = ctx.side(E.MIXED_BATCH, "LAMB 64K/32K", ctx.bert_metric, variant="lamb_rewarmup")
  blocked = c.too_few_steps(ctx, side, "AdamW's 64K/32K run") if side.choice.settings else None
  if blocked:
    return blocked
  if side.choice.status == vocab.DIVERGED and not side.choice.partial:
    # AdamW failing is the claim only where LAMB's run of the same batch did not fail too.
    blocked = v.precondition(lamb, rules=ctx.rules)
    if blocked:
      return blocked
    return v.Verdict(vocab.HELD, f"every AdamW setting diverged ({len(side.choice.settings)}) "
                     f"where {lamb} did not")
  return v.precondition(side, rules=ctx.rules) or ctx.compare("better", lamb, side,
                                                              ctx.bert_metric)


def lars_behind_lamb(ctx):
  """LAMB (Table 4's ladder) above LARS (Table 2) at every batch of the ladder below its top."""
  lamb = dict(c.ladder(ctx, E.TABLE4, ctx.bert_metric))
  lars = dict(c.ladder(ctx, E.TABLE2, ctx.bert_metric, "lars_"))
  batches = [b for b in lamb if b in lars]
  lars_rows = runs.rows_at_scale(ctx.frame(E.TABLE2))
  lamb_rows = runs.rows_at_scale(ctx.frame(E.TABLE4))
  if lars_rows is None or lamb_rows is None:
    expected = reported.load(2).batch_size.nunique()
  else:  # the batches both ladders run at this scale (LARS also runs 16K at cpu)
    expected = len({r[len("lars_"):] for r in lars_rows} & set(lamb_rows))
  if len(batches) < expected or len(batches) < 2:
    return v.not_run(f"{len(batches)} of {expected} batch sizes have both LARS (table2) and "
                     "LAMB (table4)")
  blocked = c.too_few_steps(ctx, lamb[batches[-1]], f"the largest batch ({batches[-1]})")
  if blocked:
    return blocked
  verdict = v.combine([c.comparable(ctx, lamb[b], lars[b]) or
                       ctx.compare("better", c.named(lamb[b], f"LAMB {b}"),
                                   c.named(lars[b], f"LARS {b}"), ctx.bert_metric)
                       for b in batches[:-1]])
  verdict.evidence = (f"compared at {', '.join(batches[:-1])} (the rungs below the top that "
                      f"both ladders run at this scale): " + verdict.evidence)
  return verdict


def _diverged_rule(ctx, side: Optional[v.Side], label: str) -> v.Verdict:
  """Claim 5b's point rule on one side: held when it diverged as the paper means it."""
  if side is None:
    return v.not_run(f"{label} not run")
  blocked = c.too_few_steps(ctx, side, label, metric=None)  # a point rule: no noise
  if blocked:
    return blocked
  if side.choice.status == vocab.DIVERGED:
    reasons = sorted({r for s in side.choice.settings for r in s.runs.diverged_because if r})
    return v.Verdict(vocab.HELD, f"{label} diverged ({'; '.join(reasons[:2])})")
  if side.setting is None:
    return v.not_run(f"{label}: {side.choice.status}")
  peaks = pd.to_numeric(side.setting.runs.get("peak_ratio"), errors="coerce").dropna() \
      if "peak_ratio" in side.setting.runs else pd.Series(dtype=float)
  peak = f"; training loss peaked at {peaks.max():.2f}x its start" if len(peaks) else ""
  return v.Verdict(vocab.NOT_HELD, f"{label} finished without diverging ({side}{peak})")


def lars_diverges_at_32k(ctx):
  return _diverged_rule(ctx, _lars_32k(ctx), "LARS 32K")


def lamb_4k_diverged(ctx):
  """Claim 5b's rule on LAMB at 4K (Table 4), a run that learned: it must not call it
  diverged."""
  return _diverged_rule(ctx, dict(c.ladder(ctx, E.TABLE4, ctx.bert_metric)).get("4K"),
                        "LAMB 4K")


def _lars_at(ctx, batch: str):
  return dict(c.ladder(ctx, E.TABLE2, ctx.bert_metric, "lars_")).get(batch)


def _baseline_above_lars(ctx, batch: str) -> v.Verdict:
  lars = _lars_at(ctx, batch)
  if lars is None:
    return v.not_run(f"LARS at {batch} (table2) not run")
  base = _baseline(ctx)
  return c.comparable(ctx, base, lars) or ctx.compare("better", base,
                                                      c.named(lars, f"LARS {batch}"),
                                                      ctx.bert_metric)


def lars_stops_at_16k(ctx):
  return c.left_to_paper(ctx, E.TABLE2, "lars_16K") or _baseline_above_lars(ctx, "16K")


def adamw_stops_at_16k(ctx):
  """Section 4.1: AdamW at 16K 'is not able to achieve the target F1 score (88.1 vs 90.4)',
  the target being the baseline's. Read on `table8_replicates` (the grid's best cell on three
  fresh seeds) where it ran, after checking that it reran the cell the grid chooses now."""
  grid = ctx.choose(E.TABLE8, ctx.frame(E.TABLE8), ctx.bert_metric)
  adamw = ctx.note(v.Side("AdamW 16K (best of Table 8)", grid), ctx.bert_metric)
  replicates = ctx.frame(E.TABLE8_REPLICATES)
  if len(replicates) and grid.best is not None:
    rerun = ctx.choose(E.TABLE8_REPLICATES, replicates, ctx.bert_metric)
    keys = {c.setting_key(s.key) for s in rerun.settings}
    if keys != {c.setting_key(grid.best.key)}:
      return v.not_run(f"table8_replicates ran {sorted(keys)} but table8's best setting is now "
                       f"{grid.best.key}: rerun it with that setting "
                       "(experiments/configs/table8_replicates.py)")
    adamw = ctx.note(v.Side("AdamW 16K (Table 8's best, seeds 1-3)", rerun), ctx.bert_metric)
  base = _baseline(ctx)
  blocked = (v.precondition(adamw, rules=ctx.rules) or c.too_few_steps(ctx, adamw, "AdamW at 16K")
             or c.comparable(ctx, base, adamw))
  return blocked or ctx.compare("better", base, adamw, ctx.bert_metric)


def bert_correction_removable(ctx):
  """Appendix E on BERT: `bert_correction`'s rung without the adam-correction against Table 4's
  run of the same rung, no worse (one seed spread)."""
  frame = ctx.frame(E.BERT_CORRECTION)
  if not len(frame) or "config.variant" not in frame:
    return v.not_run("no bert_correction run (python experiments/run.py --config=bert_correction)")
  variant = str(frame["config.variant"].iloc[0])
  label = variant.split("_", 1)[1]
  without = ctx.side(E.BERT_CORRECTION, f"LAMB {label}, no correction", ctx.bert_metric,
                     variant=variant)
  with_ = ctx.side(E.TABLE4, f"LAMB {label} (Table 4)", ctx.bert_metric, variant=label)
  return c.comparable(ctx, without, with_) or ctx.compare("no worse", without, with_,
                                                           ctx.bert_metric)


def lars_against_4k(ctx):
  """Claim 15b's no-worse rule with LARS at 4K (Table 2) in place of the run without the
  correction: a clearly worse run of the same rung must fail it."""
  lars = _lars_at(ctx, "4K")
  with_ = ctx.side(E.TABLE4, "LAMB 4K (Table 4)", ctx.bert_metric, variant="4K")
  if lars is None:
    return v.not_run("LARS at 4K (table2)")
  return c.comparable(ctx, lars, with_) or ctx.compare("no worse", c.named(lars, "LARS 4K"),
                                                        with_, ctx.bert_metric)


def _end_loss(side: v.Side):
  """(where the run's training loss ends, the spread of its last 5%), None when unreadable."""
  # A diverged setting has no score but still its curve (LARS's ladder, claim 20's control).
  setting = side.setting or (side.choice.settings[0] if side.choice.settings else None)
  losses = runs.train_losses(setting.runs.path.iloc[0]) if setting is not None else None
  if not losses:
    return None
  end = pd.Series(runs.tail(losses))
  return float(end.mean()), float(end.std()) if len(end) > 1 else 0.0


def _curves_alike(ctx, experiment: str, prefix: str = "") -> v.Verdict:
  rungs = c.ladder(ctx, experiment, ctx.bert_metric, prefix)
  if len(rungs) < 2:
    return v.not_run(f"fewer than two batch sizes of {experiment}")
  blocked = c.too_few_steps(ctx, rungs[-1][1], f"the largest batch ({rungs[-1][0]})",
                            metric=None)
  if blocked:
    return blocked
  ends = {label: _end_loss(side) for label, side in rungs}
  if any(e is None for e in ends.values()):
    return v.not_run("a ladder run has no training losses")
  (first, (end0, spread0)) = next(iter(ends.items()))
  worst = max(ends, key=lambda k: ends[k][0])
  gap = ends[worst][0] - end0
  evidence = ("one run per batch, no interval: final training loss (mean of the last 5%): " +
              ", ".join(f"{k} {e:.3f}" for k, (e, _) in ends.items()) +
              f"; largest excess over {first}: {gap:.3f} against its own step-to-step spread "
              f"{spread0:.3f}")
  return v.Verdict(vocab.HELD if gap <= spread0 else vocab.NOT_HELD, evidence)


def loss_curves_alike(ctx):
  experiment = E.TABLE4 if len(ctx.frame(E.TABLE4)) or not len(ctx.frame(E.FIGURE6)) \
      else E.FIGURE6
  return _curves_alike(ctx, experiment)


def _phase_losses(path):
  """(training loss over the first 5% of the last phase, over the last 5% of the run), or
  None. A run of one phase counts as a phase of its own (the control's LARS run)."""
  try:
    m = runs.metrics(path)
  except (result_files.UnreadableError, OSError):
    return None
  if "loss" not in m:
    return None
  train = m[(m.split == "train") & m.loss.notna()]
  if not len(train):
    return None
  last = train[train.phase == train.phase.iloc[-1]] if "phase" in train else train
  losses = list(last.loss)
  if len(losses) < 2:
    return None
  start = losses[:max(1, len(losses) // 20)]
  return sum(start) / len(start), runs.tail_mean(list(train.loss))


def _smooth_rule(ctx, frame: pd.DataFrame, source: str, label: str) -> v.Verdict:
  """Claim 21's rule on one run: not diverged, not at chance, and its last phase ends below
  where it started."""
  side = ctx.note(v.Side(label, ctx.choose(source, frame, ctx.bert_metric)), ctx.bert_metric)
  blocked = c.too_few_steps(ctx, side, label, metric=None)
  if blocked:
    return blocked
  if side.choice.status == vocab.DIVERGED:
    return v.Verdict(vocab.NOT_HELD, f"{label} diverged")
  chance = v.at_chance(side.setting, ctx.rules) if side.setting is not None else None
  if chance is not None:  # a curve flat at the guess says nothing about the re-warm-up
    return v.not_testable(f"{label} ends at the chance level ({side.setting.mean:.4f}; "
                          f"chance {chance:.4f}): it learned nothing whose curve re-warm-up "
                          "could disturb")
  losses = _phase_losses(frame.path.iloc[0])
  if losses is None:
    return v.not_run(f"the {source} run has no phase-tagged training losses")
  start2, end = losses
  return v.Verdict(vocab.HELD if end < start2 else vocab.NOT_HELD,
                   f"{label}: training loss over the first 5% of its last phase {start2:.3f}, "
                   f"over the last 5% {end:.3f}")


def mixed_batch_smooth(ctx):
  frame = runs.mixed_curve(ctx.frame(E.FIGURE7), ctx.frame(E.MIXED_BATCH))
  if not len(frame):
    return v.not_run("no figure7 run, and no re-warm-up run of mixed_batch (seed 0)")
  source = str(frame.experiment.iloc[0])
  conflict = _mixed_runs_of_two_configs(ctx) if source == E.MIXED_BATCH else None
  return conflict or _smooth_rule(ctx, frame, source, f"{source}'s 64K/32K run")


def _seed0(frame: pd.DataFrame, **where) -> pd.DataFrame:
  for column, value in where.items():
    frame = frame[frame[column] == value] if column in frame else frame.iloc[0:0]
  seed = pd.to_numeric(frame.get("config.seed"), errors="coerce") if len(frame) else None
  return frame[seed == seed.min()] if seed is not None and len(frame) else frame


def smooth_controls(ctx):
  """Claim 21's rule on AdamW's mixed-batch run (which the paper says fails there) and on
  LARS at 32K (Table 2): the rule must fail on both; it cannot discriminate if either passes."""
  parts = []
  for source, where, label in (
      (E.MIXED_BATCH, {"config.optimizer.name": "adamw"}, "AdamW's 64K/32K run"),
      (E.TABLE2, {"config.variant": "lars_32K"}, "LARS 32K")):
    frame = _seed0(ctx.frame(source), **where)
    parts.append(_smooth_rule(ctx, frame.reset_index(drop=True), source, label)
                 if len(frame) else v.not_run(f"{label} ({source})"))
  held = [p for p in parts if p.status == vocab.HELD]
  return v.Verdict(vocab.HELD if held else (vocab.NOT_RUN if any(
      p.status == vocab.NOT_RUN for p in parts) else vocab.NOT_HELD),
      "; ".join(p.evidence for p in parts))


def _null(side_of):
  # No two BERT arms of this scale are equal by the paper or by construction: the control of
  # the "better" rules is the sanity check of a zero difference (docs/claims.md says so).
  return c.null_control(side_of, "bert")


CLAIMS = (
    Claim("1", "LAMB keeps its score from batch 512 to 32K at fixed epochs, untuned (BERT)",
          "Abstract; Tables 1, 4", LADDER, bert_ladder,
          Control("the same rule on LARS's ladder (Table 2)", lars_ladder_control),
          tuned_at_shape=False),
    Claim("2", "every LAMB row of Table 1 is at or above the baseline", "Table 1; Section 4.1",
          f"{NO_WORSE} (one seed spread), each LAMB row (Table 4's ladder, and the mixed batch "
          "where it runs) against the baseline", lamb_rows_at_baseline,
          Control("the same rule with LARS at 32K (Table 2) as the row", lars_against_baseline),
          tuned_at_shape=False),
    Claim("3", "the 64K/32K mixed batch reaches the baseline (8599 steps, 76 minutes)",
          "Abstract; Table 1; Section 4.1",
          f"{NO_WORSE} (one seed spread) against the baseline; the time half is a systems "
          "claim (claim 23)", mixed_batch_reaches_baseline,
          Control("the same rule with LARS at 32K (Table 2) as the row", lars_against_baseline),
          tuned_at_shape=True),
    Claim("4", "re-warm-up is needed when the batch shrinks at the phase switch", "Section 4.1",
          f"{BETTER}: the 64K/32K run with re-warm-up above the same run decaying straight on",
          rewarmup_needed, Control("the re-warm-up run against itself", _null(_rewarm)),
          tuned_at_shape=True),
    Claim("5a", "LAMB beats LARS at every batch size (BERT)", "Table 2; Section 4.1",
          f"{BETTER}: LAMB (Table 4's ladder) above LARS at every batch of the ladder below 32K",
          lars_behind_lamb,
          Control("LAMB's 4K rung against itself", _null(
              lambda ctx: dict(c.ladder(ctx, E.TABLE4, ctx.bert_metric)).get("4K"))),
          tuned_at_shape=True),
    Claim("5b", "LARS diverges at 32K (BERT)", "Table 2",
          "LARS at 32K diverged as the paper means it (non-finite; a loss ending above its "
          "start or chance; or ending at chance after a spike; one run, no interval)",
          lars_diverges_at_32k,
          Control("the same rule on LAMB at 4K (Table 4), which learned", lamb_4k_diverged),
          tuned_at_shape=True),
    Claim("5c", "LARS stops scaling at 16K: below the baseline", "Table 2 caption",
          f"{BETTER}: baseline above LARS at 16K", lars_stops_at_16k,
          Control("the same rule at 4K, where LARS should still scale",
                  lambda ctx: _baseline_above_lars(ctx, "4K")), tuned_at_shape=True),
    Claim("6", "AdamW stops scaling at 16K: its best setting misses the baseline's score (88.1 "
          "vs 90.4)", "Section 4.1; Table 8",
          f"{BETTER}: the baseline above AdamW's best Table 8 setting, on `table8_replicates` "
          "(that setting on 3 fresh seeds) where it ran", adamw_stops_at_16k,
          Control("the baseline against itself", _null(_baseline)), tuned_at_shape=True),
    Claim("6b", "LAMB beats AdamW at 32K, also when AdamW is tuned with LAMB's budget (Nado "
          "et al. 2021's test)", "Section 4.1; Table 8; Nado et al. 2021",
          f"{BETTER}: LAMB above BERT's AdamW at 32K, both on LAMB's 32K schedule, each at "
          "the best of the same number of rate multipliers (`top_rung_multipliers`, chosen on "
          "a validation split the claim does not read)", lamb_beats_tuned_adamw,
          Control("LAMB's tuned run against itself", _null(_nado_lamb)), tuned_at_shape=True),
    Claim("7", "AdamW fails on the 64K/32K mixed batch even after tuning", "Section 4.1",
          f"every AdamW setting diverged, or {BETTER}: LAMB's mixed run above AdamW's best",
          adamw_fails_mixed, Control("LAMB's mixed run against itself", _null(_rewarm)),
          tuned_at_shape=True),
    Claim("15b", "removing the adam-correction costs no accuracy in BERT pre-training either",
          "Appendix E", f"{NO_WORSE} (one seed spread): Table 4's rung without the "
          "adam-correction (4K at this scale, the rung that learns) against Table 4's run of it",
          bert_correction_removable,
          Control("the same rule with LARS at 4K (Table 2) in place of the run without it",
                  lars_against_4k), tuned_at_shape=False),
    Claim("20", "LAMB's loss curves are almost the same across batch sizes",
          "Appendix H.0.1; Figure 6",
          "no batch ends (last 5% of steps) above the smallest batch by more than that run's "
          "step-to-step spread (one run each, no interval)", loss_curves_alike,
          Control("the same rule on LARS's ladder (Table 2)",
                  lambda ctx: _curves_alike(ctx, E.TABLE2, "lars_")), tuned_at_shape=False),
    Claim("21", "LAMB converges smoothly on the 64K/32K mixed batch", "Appendix H.0.1; Figure 7",
          "not diverged, not at the chance level, and its last phase ends below where it "
          "started (figure7's run, or mixed_batch's re-warm-up run of seed 0; one run, no "
          "interval)", mixed_batch_smooth,
          Control("the same rule on AdamW's mixed-batch run and on LARS at 32K",
                  smooth_controls), tuned_at_shape=True),
)
