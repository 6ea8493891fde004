"""The CIFAR-10 and MNIST claims (Appendix G, Tables 6 and 7; Appendix H, Figure 5), judged on
the runs of DavidNet on the Fashion-MNIST stand-in and LeNet on MNIST.

"LAMB is best" needs every optimizer the paper's table compares (`catalogue.REQUIRED_ARMS`): a
folder that holds only some of them leaves the claim "not run", naming the missing ones, never
judged against whichever happen to be there.
"""
from __future__ import annotations

import math
from typing import Optional

import pandas as pd

from analysis import catalogue
from analysis import verdicts as v
from analysis import vocabulary as vocab
from analysis.catalogue import E
from analysis.claims import context as c
from analysis.claims.context import ACCURACY, Claim, Control

BETTER = "better: the 95% interval of the difference lies above 0"


def lamb_best_on(experiment: str, replicates: Optional[str] = None):
  """LAMB's best setting above each other optimizer's, on `replicates` (the chosen settings
  rerun on fresh seeds and unseen test images) when this scale ran it, else on the grid."""
  def judge(ctx):
    if not (replicates and len(ctx.frame(replicates))):
      return _lamb_best(ctx, experiment)
    return _stale_replicates(ctx, experiment, replicates) or _lamb_best(ctx, replicates)
  return judge


def _stale_replicates(ctx, experiment: str, replicates: str) -> Optional[v.Verdict]:
  """Refuses replicates of a setting the grid no longer chooses (the grid rerun since), or
  of an optimizer the grid has not chosen for: they would judge another setting silently."""
  grid, rerun = ctx.frame(experiment), ctx.frame(replicates)
  column = "config.optimizer.name"
  if column not in rerun or column not in grid:
    return None
  stale = []
  for name in sorted(set(rerun[column].dropna())):
    choice = ctx.choose(experiment, grid[grid[column] == name], ACCURACY)
    if choice.partial:  # the grid's choice is held back, not moved: say which runs hold it
      return v.not_run(f"{experiment}'s choice for {vocab.optimizer_label(name)} is held back "
                       f"by {', '.join(choice.partial)}: resolve those runs, then judge again")
    chosen = choice.best
    ran = {c.setting_key(s.key)
           for s in ctx.choose(replicates, rerun[rerun[column] == name], ACCURACY).settings}
    if chosen is None or ran != {c.setting_key(chosen.key)}:
      stale.append(f"{name} ran {sorted(ran)}, {experiment} chooses "
                   f"{chosen.key if chosen else 'none'}")
  if stale:
    return v.not_run(f"{replicates} reran settings its grid no longer chooses ({'; '.join(stale)})"
                     f": rerun it with the grid's choices (experiments/configs/{replicates}.py)")
  return None


def _lamb_best(ctx, experiment: str):
  frame = ctx.frame(experiment)
  if not len(frame):
    return v.not_run(f"no {experiment} runs")
  present = set(frame.get("config.optimizer.name", pd.Series(dtype=object)).dropna())
  required = catalogue.REQUIRED_ARMS.get(experiment, ())
  missing = [n for n in ("lamb", *required) if n not in present]
  if missing:
    return v.not_run(f"{experiment} has no run of " + ", ".join(
        vocab.optimizer_label(n) for n in missing) + " (the paper's table compares LAMB "
        "with every one of them)")
  names = sorted((present | set(required)) - {"lamb"})
  lamb = ctx.side(experiment, "LAMB", optimizer__name="lamb")
  return v.combine([ctx.compare("better", lamb, ctx.side(experiment, vocab.optimizer_label(n),
                                                         optimizer__name=n))
                    for n in names])


def _lamb_of(experiment: str, replicates: str):
  def side(ctx):
    source = replicates if len(ctx.frame(replicates)) else experiment
    return ctx.side(source, "LAMB", optimizer__name="lamb")
  return side


def _misranks(ctx, frame: pd.DataFrame, what: str) -> v.Verdict:
  """Claim 19's rule on `frame`'s completed runs: the lowest validation loss is less accurate
  than the most accurate run by more than the test set's sampling error."""
  done = frame[frame.status == vocab.COMPLETED] if len(frame) else frame
  loss = pd.to_numeric(done.get("final.loss"), errors="coerce") if len(done) else pd.Series()
  acc = pd.to_numeric(done.get(ACCURACY), errors="coerce") if len(done) else pd.Series()
  if loss.notna().sum() < 2 or acc.notna().sum() < 2:
    return v.not_run(f"fewer than two completed {what} runs with a validation loss and accuracy")
  steps = pd.to_numeric(done.get("steps"), errors="coerce").dropna()
  if ctx.rules.floor_everywhere and len(steps) and steps.min() < ctx.rules.min_steps:
    return v.not_testable(f"{what}'s runs train {int(steps.min())} steps (< "
                          f"{ctx.rules.min_steps}): too few for their scores to speak for "
                          "the optimizers", decide=f"runs of {ctx.rules.min_steps}+ steps")
  low, best = done.loc[loss.idxmin()], done.loc[acc.idxmax()]
  a, b, n = float(best[ACCURACY]), float(low[ACCURACY]), int(low.eval_examples or 0)
  if not n:
    return v.not_testable("the test-set size is not recorded")
  half = 1.96 * math.sqrt(a * (1 - a) / n + b * (1 - b) / n)
  gap = a - b
  evidence = (f"lowest validation loss {loss.min():.4f} ({low.run}, accuracy {b:.4f}); most "
              f"accurate {best.run} {a:.4f} (loss {float(best['final.loss']):.4f}); accuracy "
              f"gap {gap:+.4f} [{gap - half:+.4f}, {gap + half:+.4f}]")
  if low.run == best.run:
    return v.Verdict(vocab.NOT_HELD, evidence + ": the lowest loss is the most accurate run")
  status = vocab.HELD if gap - half > 0 else vocab.INCONCLUSIVE
  return v.Verdict(status, evidence, f"test-set sampling error of {n} examples, binomial",
                   method="fallback: binomial, two runs, independent")


def loss_misranks(ctx):
  return _misranks(ctx, ctx.frame(E.TABLE6), E.TABLE6)


def misranks_placebo(ctx):
  """Claim 19's rule on the seeds of one setting (LAMB's, `table6_replicates`): the same
  setting's runs differ by noise only, so the rule must not hold."""
  frame = ctx.frame(E.TABLE6_REPLICATES)
  lamb = frame[frame["config.optimizer.name"] == "lamb"] if "config.optimizer.name" in frame \
      else frame.iloc[0:0]
  return _misranks(ctx, lamb.reset_index(drop=True), f"{E.TABLE6_REPLICATES} LAMB")


def _best_claim(claim_id: str, task: str, source: str, experiment: str,
                replicates: str) -> Claim:
  """"LAMB is best on `task`": LAMB's best setting above each other optimizer's of the paper's
  table, on the replicates where they ran."""
  return Claim(claim_id, f"LAMB is best on {task}", source,
               f"{BETTER}: LAMB's best setting above each optimizer's of the paper's table; on "
               f"`{replicates}` (the grid's choices on 3 fresh seeds and unseen test images) "
               "where it ran", lamb_best_on(experiment, replicates),
               Control("LAMB's runs against themselves",
                       c.null_control(_lamb_of(experiment, replicates))),
               tuned_at_shape=True)


CLAIMS = (
    _best_claim("17", "CIFAR-10 (DavidNet)", "Appendix G; Table 6; Figure 4", E.TABLE6,
                E.TABLE6_REPLICATES),
    _best_claim("18", "MNIST (LeNet)", "Appendix G; Table 7", E.TABLE7, E.TABLE7_REPLICATES),
    Claim("19", "a lower validation loss does not mean a higher accuracy", "Appendix H; Figure 5",
          "the run with the lowest validation loss is less accurate than the most accurate run "
          "by more than the test set's sampling error (binomial interval; runs, not seeds, are "
          "compared)", loss_misranks,
          Control("the same rule on the seeds of one setting (LAMB's table6_replicates)",
                  misranks_placebo)),
)
