"""The claims report: `python -m analysis.report` writes `results/REPORT.md`.

It renders every table that has runs at the chosen scale (reported beside measured), draws the
figures, and evaluates each of the paper's claims on the measured results as **held**,
**not held**, **inconclusive** (the compared scores tie, so they show nothing either way) or
**not run**, with the numbers that decided it. Each claim's threshold is stated
next to its wording below; at cpu scale a verdict is about the shrunk reproduction, not about
the paper's setting.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path
from typing import Callable

import pandas as pd

from analysis import figures, reported, runs, tables

HELD, NOT_HELD, NOT_RUN = "held", "not held", "not run"
# Scores that tie cannot show a difference either way (at cpu scale, BERT runs that learned
# nothing all score the unigram guess): such a comparison is inconclusive, not held or not.
INCONCLUSIVE = "inconclusive"
TIE = 0.001


@dataclasses.dataclass
class Verdict:
  status: str
  evidence: str


@dataclasses.dataclass
class Claim:
  wording: str
  source: str
  threshold: str
  evaluate: Callable  # (results_dir, scale) -> Verdict


def _runs(results_dir, experiment, scale) -> pd.DataFrame:
  frame = runs.load(results_dir, experiment)
  return frame[frame.scale == scale] if len(frame) else frame


DIVERGED = float("-inf")  # a group with a diverged run: below any score, so it never "beats"


def _mean_by(frame, column, metric="final.accuracy") -> dict:
  """Per group: the mean over its runs when all completed; DIVERGED when any diverged or
  failed; groups still running (incomplete) are left out."""
  if not len(frame) or column not in frame:
    return {}
  out = {}
  for key, group in frame.groupby(column):
    if group.status.isin(["diverged", "failed"]).any():
      out[key] = DIVERGED
    elif (group.status == "completed").all() and metric in group:
      values = pd.to_numeric(group[metric], errors="coerce").dropna()
      if len(values):
        out[key] = float(values.mean())
  return out


def _tuned(frame, group, settings, metric="final.accuracy") -> dict:
  """Per group: the best mean over seeds of any setting whose runs all completed."""
  out = {}
  if not len(frame) or metric not in frame:
    return {}
  for key, g in frame.groupby(group):
    best = None
    for _, s in g.groupby(settings, dropna=False):
      if (s.status == "completed").all():
        mean = pd.to_numeric(s[metric], errors="coerce").mean()
        if not math.isnan(mean) and (best is None or mean > best):
          best = mean
    if best is not None:
      out[key] = best
  return out


def _fmt(d: dict) -> str:
  return ", ".join(f"{k} diverged" if v == DIVERGED else f"{k} {v:.4f}" for k, v in d.items())


# --- the claims, each with its threshold ------------------------------------------------------

LADDER_DROP = 0.01  # "keeps its score": the largest batch within 0.01 (1 point) of the smallest


def _ladder_verdict(by_batch: dict, expected: int, label: str) -> Verdict:
  batches = sorted(by_batch)
  evidence = f"{label} by batch: " + _fmt({b: by_batch[b] for b in batches})
  if any(v == DIVERGED for v in by_batch.values()):
    return Verdict(NOT_HELD, evidence + "; a batch size diverged")
  if len(by_batch) < max(expected, 2):
    return Verdict(NOT_RUN, f"{len(by_batch)} of {expected} batch sizes completed; " + evidence)
  drop = by_batch[batches[0]] - min(by_batch[b] for b in batches[1:])
  if max(by_batch.values()) - min(by_batch.values()) < TIE:
    return Verdict(INCONCLUSIVE, evidence + f"; every batch size scores within {TIE} of the "
                                            "others, which a run that learned nothing also does")
  status = HELD if drop <= LADDER_DROP else NOT_HELD
  return Verdict(status, evidence + f"; largest drop below the smallest batch {drop:.4f}")


def ladder_claim(results_dir, scale) -> Verdict:
  """ImageNet (Table 5): top-1 of untuned LAMB from batch 512 to 32K."""
  frame = _runs(results_dir, "table5", scale)
  if not len(frame):
    return Verdict(NOT_RUN, "no table5 runs")
  return _ladder_verdict(_mean_by(frame, "config.batch_size"), len(reported_ladder()),
                         "Table 5 top-1")


BERT_METRIC = "final.masked_lm_accuracy"  # the cpu-scale stand-in for SQuAD F1
BERT_LOSS = "final.masked_lm_loss"


def bert_ladder_claim(results_dir, scale) -> Verdict:
  """BERT (Table 4): held-out masked-LM accuracy of untuned LAMB from batch 512 to 32K."""
  frame = _runs(results_dir, "table4", scale)
  if not len(frame):
    return Verdict(NOT_RUN, "no table4 runs")
  return _ladder_verdict(_mean_by(frame, "config.batch_size", BERT_METRIC),
                         len(_bert_ladder(4)), "Table 4 masked-LM accuracy")


def _bert_ladder(table: int) -> list:
  """The paper's batch labels of a BERT table ("512", "1K", ... "32K"), smallest first."""
  batches = sorted({int(b) for b in reported.load(table).batch_size if str(b).isdigit()})
  return [tables.bert_label(b) for b in batches]


def reported_ladder() -> list:
  t5 = reported.load(5)
  return sorted(set(t5.batch_size))


BEATS_MARGIN = 0.0  # LAMB's mean at least every other optimizer's


def table3_claim(results_dir, scale) -> Verdict:
  frame = _runs(results_dir, "table3", scale)
  if not len(frame):
    return Verdict(NOT_RUN, "no table3 runs")
  means = _mean_by(frame, "config.variant")
  if "lamb" not in means:
    return Verdict(NOT_RUN, "LAMB has not completed")
  others = {k: v for k, v in means.items() if k != "lamb"}
  ok = means["lamb"] != DIVERGED and all(means["lamb"] >= v + BEATS_MARGIN
                                         for v in others.values())
  return Verdict(HELD if ok else NOT_HELD, "top-1: " + _fmt(dict(sorted(means.items(),
                                                                          key=lambda kv: -kv[1]))))


def best_on_small_data_claim(results_dir, scale) -> Verdict:
  found, parts, ok = False, [], True
  for experiment, settings in (("table6", ["config.optimizer.learning_rate",
                                           "config.optimizer.weight_decay"]),
                               ("table7", ["config.optimizer.learning_rate"])):
    frame = _runs(results_dir, experiment, scale)
    if not len(frame):
      parts.append(f"{experiment}: not run")
      continue
    tuned = _tuned(frame, "config.optimizer.name", settings)
    if "lamb" not in tuned:
      lamb = frame[frame["config.optimizer.name"] == "lamb"]
      if len(lamb) and lamb.status.isin(["diverged", "failed"]).all():
        found, ok = True, False
        parts.append(f"{experiment}: LAMB diverged or failed at every setting")
      else:
        parts.append(f"{experiment}: LAMB has not completed")
      continue
    found = True
    best_other = max((v for k, v in tuned.items() if k != "lamb"), default=float("-inf"))
    ok &= tuned["lamb"] >= best_other
    parts.append(f"{experiment} tuned accuracy: " + _fmt(dict(sorted(tuned.items(),
                                                                      key=lambda kv: -kv[1]))))
  if not found:
    return Verdict(NOT_RUN, "; ".join(parts))
  return Verdict(HELD if ok else NOT_HELD, "; ".join(parts))


CORRECTION_TOLERANCE = 0.01  # "the same effect": within 1 point of each other


def correction_claim(results_dir, scale) -> Verdict:
  frame = _runs(results_dir, "figure2", scale)
  means = _mean_by(frame, "config.variant") if len(frame) else {}
  need = ("correction_nowarmup", "nocorrection_warmup", "nocorrection_nowarmup")
  if not all(k in means for k in need):
    return Verdict(NOT_RUN, "figure2 runs missing: " + ", ".join(k for k in need if k not in means))
  if DIVERGED in (means["correction_nowarmup"], means["nocorrection_warmup"]):
    return Verdict(NOT_HELD, _fmt(means))
  gap = abs(means["correction_nowarmup"] - means["nocorrection_warmup"])
  status = HELD if gap <= CORRECTION_TOLERANCE else NOT_HELD
  return Verdict(status, _fmt(means) + f"; |correction only - warmup only| = {gap:.4f}")


NORM_TOLERANCE = 0.001  # "less than 0.1 percent" (Appendix F)


def norm_claim(results_dir, scale) -> Verdict:
  frame = _runs(results_dir, "figure3", scale)
  means = _mean_by(frame, "config.optimizer.kwargs.norm") if len(frame) else {}
  if len(means) < 3:
    return Verdict(NOT_RUN, f"figure3: {len(means)} of 3 norms completed")
  if DIVERGED in means.values():
    return Verdict(NOT_HELD, _fmt(means))
  spread = max(means.values()) - min(means.values())
  return Verdict(HELD if spread < NORM_TOLERANCE else NOT_HELD,
                 _fmt(means) + f"; spread {spread:.4f}")


NESTEROV_TOLERANCE = 0.01  # "comparable": within 1 point of LAMB


def nesterov_claim(results_dir, scale) -> Verdict:
  frame = _runs(results_dir, "figure1", scale)
  means = _mean_by(frame, "config.optimizer.name") if len(frame) else {}
  if "nadam" in means:  # Nadam was tuned over a grid: its best learning rate, not the average
    tuned = _tuned(frame[frame["config.optimizer.name"] == "nadam"], "config.optimizer.name",
                   ["config.optimizer.learning_rate"])
    means["nadam"] = tuned.get("nadam", means["nadam"])
  if not all(k in means for k in ("lamb", "nlamb", "nnlamb")):
    return Verdict(NOT_RUN, "figure1: LAMB, N-LAMB or NN-LAMB missing")
  if DIVERGED in (means["lamb"], means["nlamb"], means["nnlamb"]):
    return Verdict(NOT_HELD, _fmt(means))
  gap = max(abs(means["nlamb"] - means["lamb"]), abs(means["nnlamb"] - means["lamb"]))
  ok = gap <= NESTEROV_TOLERANCE and (
      "momentum" not in means or min(means["nlamb"], means["nnlamb"]) > means["momentum"])
  return Verdict(HELD if ok else NOT_HELD, _fmt(means) + f"; largest gap to LAMB {gap:.4f}")


def loss_ranking_claim(results_dir, scale) -> Verdict:
  """Figure 5: ranking the completed Table 6 runs by validation loss is not the ranking by
  accuracy (held when the run with the lowest loss is not the most accurate one)."""
  frame = _runs(results_dir, "table6", scale)
  done = frame[frame.status == "completed"] if len(frame) else frame
  if len(done) < 2 or "final.loss" not in done:
    return Verdict(NOT_RUN, "fewer than two completed table6 runs")
  loss = pd.to_numeric(done["final.loss"], errors="coerce")
  acc = pd.to_numeric(done["final.accuracy"], errors="coerce")
  lowest_loss, most_accurate = done.loc[loss.idxmin()], done.loc[acc.idxmax()]
  corr = loss.rank().corr(-acc.rank())
  status = HELD if lowest_loss.run != most_accurate.run else NOT_HELD
  return Verdict(status, f"lowest loss {loss.min():.4f} in {lowest_loss.run} (accuracy "
                         f"{float(lowest_loss['final.accuracy']):.4f}); best accuracy "
                         f"{acc.max():.4f} in {most_accurate.run}; rank correlation of -loss "
                         f"and accuracy {corr:.3f}")


LARS_MARGIN = 0.0  # "falls behind": LARS strictly below LAMB at every batch of the ladder


def lars_claim(results_dir, scale) -> Verdict:
  """Table 2: LARS below LAMB at every batch, and diverged at 32K."""
  frame = _runs(results_dir, "table2", scale)
  if not len(frame):
    return Verdict(NOT_RUN, "no table2 runs")
  score = _mean_by(frame, "config.variant", BERT_METRIC)
  batches = _bert_ladder(2)  # every batch the paper ran, so a partial sweep never decides
  pairs = {b: (score.get(f"lars_{b}"), score.get(f"lamb_{b}")) for b in batches}
  if any(lars is None or lamb is None for lars, lamb in pairs.values()):
    done = sum(lars is not None and lamb is not None for lars, lamb in pairs.values())
    return Verdict(NOT_RUN, f"{done} of {len(pairs)} batch sizes have both runs finished")
  evidence = "masked-LM accuracy LARS / LAMB: " + ", ".join(
      f"{b} " + " / ".join("diverged" if v == DIVERGED else f"{v:.4f}" for v in pair)
      for b, pair in pairs.items())
  behind = all(lars < lamb - LARS_MARGIN for lars, lamb in pairs.values())  # DIVERGED is -inf
  diverged = pairs[batches[-1]][0] == DIVERGED
  evidence += (f"; LARS {'below' if behind else 'not below'} LAMB at every batch; LARS at "
               f"{batches[-1]} {'diverged' if diverged else 'did not diverge'}")
  return Verdict(HELD if behind and diverged else NOT_HELD, evidence)


ADAMW_SHORTFALL = 0.01  # "stops scaling": AdamW's best at 16K more than 1 point below LAMB's


def adamw_claim(results_dir, scale) -> Verdict:
  """Table 8: no AdamW setting at batch 16K gets within ADAMW_SHORTFALL of LAMB at 16K (the
  paper: none reaches the baseline's F1 90.395, which LAMB reaches at 16K)."""
  frame = _runs(results_dir, "table8", scale)
  ladder = _runs(results_dir, "table4", scale)
  if not len(frame):
    return Verdict(NOT_RUN, "no table8 runs")
  expected = reported.load(8).row.nunique()  # the paper's 3 x 3 grid
  adamw = _mean_by(frame, "run", BERT_METRIC)
  lamb = _mean_by(ladder, "config.variant", BERT_METRIC).get("16K") \
      if "config.variant" in ladder else None
  if len(adamw) < expected or lamb is None:
    return Verdict(NOT_RUN, f"{len(adamw)} of {expected} AdamW runs finished; "
                            f"LAMB at 16K (table4) {'missing' if lamb is None else 'finished'}")
  best_run = max(adamw, key=adamw.get)
  best = adamw[best_run]
  evidence = (f"best AdamW at 16K: {'diverged' if best == DIVERGED else f'{best:.4f}'} "
              f"({best_run}); LAMB at 16K (Table 4): "
              f"{'diverged' if lamb == DIVERGED else f'{lamb:.4f}'}")
  if DIVERGED not in (best, lamb) and abs(best - lamb) < TIE:
    loss = _mean_by(frame, "run", BERT_LOSS)
    lamb_loss = _mean_by(ladder, "config.variant", BERT_LOSS).get("16K")
    best_loss = min((v for v in loss.values() if v != DIVERGED), default=None)
    losses = (f"; lowest AdamW held-out masked-LM loss {best_loss:.4f}, LAMB's "
              f"{lamb_loss:.4f}" if best_loss is not None and lamb_loss is not None
              and lamb_loss != DIVERGED else "")
    return Verdict(INCONCLUSIVE, evidence + f"; a tie within {TIE}" + losses)
  return Verdict(HELD if best < lamb - ADAMW_SHORTFALL else NOT_HELD, evidence)


CLAIMS = [
    Claim("LAMB keeps its score across the batch ladder (ImageNet)", "Table 5",
          f"top-1 of the largest batches within {LADDER_DROP} of the smallest", ladder_claim),
    Claim("LAMB keeps its score across the batch ladder (BERT)", "Tables 1, 4",
          f"masked-LM accuracy of the largest batches within {LADDER_DROP} of the smallest",
          bert_ladder_claim),
    Claim("LARS falls behind LAMB and diverges at 32K on BERT", "Table 2",
          "LARS below LAMB at every batch; diverged at 32K", lars_claim),
    Claim("AdamW stops scaling at 16K", "Table 8",
          f"every AdamW setting at 16K more than {ADAMW_SHORTFALL} below LAMB at 16K",
          adamw_claim),
    Claim("LAMB beats the tuned adaptive baselines and momentum on ResNet-50 at 16K", "Table 3",
          "LAMB's mean top-1 >= every other optimizer's", table3_claim),
    Claim("adam-correction acts like learning-rate warmup", "Figure 2",
          f"correction without warmup within {CORRECTION_TOLERANCE} of warmup without "
          "correction", correction_claim),
    Claim("the trust-ratio norm changes accuracy by less than 0.1%", "Figure 3",
          f"spread of the l1/l2/linf means < {NORM_TOLERANCE}", norm_claim),
    Claim("N-LAMB and NN-LAMB match LAMB (and beat momentum)", "Figure 1",
          f"within {NESTEROV_TOLERANCE} of LAMB", nesterov_claim),
    Claim("LAMB is best on CIFAR-10 and MNIST", "Tables 6, 7",
          "LAMB's tuned accuracy >= every other optimizer's", best_on_small_data_claim),
    Claim("validation loss does not rank optimizers the way accuracy does", "Figure 5",
          "the lowest-loss run is not the most accurate one", loss_ranking_claim),
]


def _shown(path) -> str:
  """`path` relative to the working directory when it is below it, so that the report does
  not depend on where the repository was cloned."""
  path = Path(path).resolve()
  return str(path.relative_to(Path.cwd().resolve())) if path.is_relative_to(Path.cwd().resolve()) \
      else str(path)


def build(results_dir: Path, scale: str, figures_dir: Path) -> str:
  lines = [f"# Reproduction report ({scale} scale)", "",
           f"Generated by `python -m analysis.report` from `{_shown(results_dir)}`. Paper "
           "numbers come "
           "from `analysis/reported/`; measured numbers from the runs. "
           + ("At cpu scale every experiment is shrunk (each table says how) and runs on "
              "stand-in data: compare rankings and trends, not digits." if scale == "cpu" else ""),
           "", "## Claims", "", "| claim | source | threshold | verdict | evidence |",
           "|---|---|---|---|---|"]
  for claim in CLAIMS:
    v = claim.evaluate(results_dir, scale)
    lines.append(f"| {claim.wording} | {claim.source} | {claim.threshold} | **{v.status}** | "
                 f"{v.evidence} |")
  lines += ["", "## Tables", ""]
  not_run = []
  for name, render in tables.TABLES.items():
    frame = _runs(results_dir, name, scale)
    if not len(frame):
      not_run.append(name)
      continue
    lines.append(tables.to_markdown(render(results_dir, scale)))
  if not_run:
    lines += [f"Not run at {scale} scale: " + ", ".join(not_run) + ".", ""]
  lines += ["## Figures", ""]
  for name, draw in figures.FIGURES.items():
    try:
      fig = draw(results_dir, scale)
    except figures.NoData as e:
      lines.append(f"- {name}: not drawn ({e})")
      continue
    figures_dir.mkdir(parents=True, exist_ok=True)
    path = figures_dir / f"{name}_{scale}.png"
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    tmp.replace(path)
    figures.plt.close(fig)
    rel = path.relative_to(results_dir) if path.is_relative_to(results_dir) else path
    lines.append(f"- {name}: ![{name}]({rel})")
  return "\n".join(lines) + "\n"


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--results_dir", default=str(runs.RESULTS))
  parser.add_argument("--scale", default="cpu", choices=("cpu", "paper"))
  parser.add_argument("--out", default=None, help="default: <results_dir>/REPORT.md")
  args = parser.parse_args(argv)
  results_dir = Path(args.results_dir)
  if runs.check_results_dir(results_dir):
    print(f"error: {runs.check_results_dir(results_dir)}", file=sys.stderr)
    return 2
  out = Path(args.out) if args.out else results_dir / "REPORT.md"
  text = build(results_dir, args.scale, results_dir / "figures")
  tmp = out.with_suffix(".tmp")
  tmp.write_text(text)
  tmp.replace(out)
  print(f"wrote {out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
