"""The claims report: `python -m analysis.report` writes `results/REPORT.md`.

It judges every claim of the paper on the measured runs (`analysis.claims`: held, not held,
inconclusive, not testable at this scale, not run; each with the rule, the numbers and the 95%
interval that decided it), says which choices were made by looking at results and which claims
they can bias, names every run that could not be read or failed, then renders every table that
has runs (reported beside measured) and embeds the figures, written as small PNGs beside the
report so that it reads the same in a fresh clone. At cpu scale a verdict is about the shrunk
reproduction, not about the paper's setting.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from analysis import claims, critical_batch, figures, join, runs, select, tables
from analysis import rules as rule_sets
from analysis import vocabulary as vocab
from lamb.train import results as result_files  # file formats only: no jax
from analysis.catalogue import E

LATER_EVIDENCE = (
    "Later evidence: Nado et al. 2021 (\"A Large Batch Optimizer Reality Check\", NeurIPS) "
    "matched LAMB at the same batch sizes with carefully tuned AdamW (BERT-Large at 32K, SQuAD F1 "
    "91.58) and Nesterov momentum (ResNet-50 at 32K, 75.9% top-1 in 2512 steps; "
    "`analysis/reported/nado2021.csv`, from secondary sources: their own settings could not be "
    "read here). Claim 10b repeats their ImageNet test at this scale at 32K, both optimizers "
    "with one tuning budget (above); claims 9 and 10 still compare LAMB with momentum by Goyal "
    "et al.'s fixed rule. Claim 6b repeats their BERT test at 32K (`nado_bert`): LAMB and "
    "BERT's AdamW, each the best of the same 4 rate multipliers (`top_rung_multipliers`), only "
    "the rate tuned, not AdamW's warmup, betas or decay as Nado et al. did; claim 6 (Table 8) "
    "still judges AdamW tuned as the paper tuned it.")


def _shown(path) -> str:
  """`path` relative to the working directory when below it, so the report does not depend on
  where the repository was cloned."""
  path, cwd = Path(path).resolve(), Path.cwd().resolve()
  return str(path.relative_to(cwd)) if path.is_relative_to(cwd) else str(path)


def _cell(text: str) -> str:
  return str(text).replace("|", "\\|").replace("\n", " ")


def _unchecked_unigram(results_dir: Path, scale: str) -> list:
  """A line when BERT runs predate the unigram level in their evaluation (so the precondition
  'at the unigram level' cannot be checked for them)."""
  frame = runs.load(results_dir)
  if not len(frame) or "config.model.name" not in frame:
    return []
  bert = frame[(frame.scale == scale) & (frame["config.model.name"] == "bert")]
  if claims.BERT_METRIC in bert:  # a run still training (or never evaluated) has no level yet
    bert = bert[pd.to_numeric(bert[claims.BERT_METRIC], errors="coerce").notna()]
  missing = int(bert.chance_accuracy.isna().sum()) if len(bert) else 0
  if not missing:
    return []
  return [f"- {missing} of {len(bert)} BERT runs were evaluated before the evaluation recorded "
          "the unigram level (the held-out accuracy of always guessing the most frequent "
          "masked token): for them 'at the unigram level' is not checked, and a claim they "
          "decide may rest on runs that learned nothing more than token frequencies."]


def how_claims_are_judged(results_dir: Path, scale: str) -> list:
  rules = rule_sets.current()
  return [
      "## How claims are judged", "",
      f"- **Rule set v{rules.version}** (`analysis/rulesets/{rules.path.name}`, sha256 "
      f"{rules.digest}): {rules.summary}. The floors, thresholds and margins below are read "
      "from it; the sensitivity table after the claims gives every verdict under each earlier "
      "rule set.",
      "- **Verdicts.** **held** / **not held**: the 95% interval of the difference lies on one "
      "side of the claim's threshold; **inconclusive**: the interval contains it, so the data "
      "cannot tell (\"no detectable difference\" is inconclusive, not held); **not testable at "
      "this scale**: a precondition fails (a run the claim reads trains fewer than "
      f"{rules.min_steps} steps, the evaluation set alone (per-example records) is wider than "
      "the margin, the rule "
      "holds on its negative control, the baseline diverged or sits at the chance level, both "
      "sides do, or there is no seed spread to measure noise with); **not run**: a run is "
      "missing, unfinished, unreadable, misplaced, renamed, duplicated or edited (named), or "
      "an arm the claim compares has no run, or no config runs the experiment "
      "yet. A claimed winner that diverged where the other side finished is **not held**; one "
      f"at the chance level where the other side learned (both {claims.MIN_STEPS}+ steps) is "
      "judged on its interval.",
      "- **Intervals** come from one engine (`analysis/intervals.py`, validated by a coverage "
      "simulation in its tests): the difference of two arms' means, with each arm's own seed "
      "spread and, where the runs wrote per-example records (`eval_examples.npz`), the "
      "evaluation set's part paired on the examples both arms scored and clustered by "
      "sequence for BERT's masked tokens (**per-example**); runs without records fall back to "
      "a binomial term per side counted as independent, with n the metric's recorded "
      "denominator, or the evaluated sequences for BERT runs that did not record their token "
      "count (**fallback**, wider than the truth). Each row names the method it used.",
      "- **Margins.** Where the paper gives a number (its own drop along a ladder, \"less than "
      "0.1 percent\") that is the margin; where it gives none (\"comparable\", \"no drop\") the "
      "margin is the task's pooled seed spread, or, where Bartlett's test rejects one spread "
      "across the task's settings, the larger of the two compared arms' own.",
      f"- **Diverged** means what the paper means: {runs.diverged_means(rules)}. Tables and "
      "claims both use it.",
      "- **Negative controls.** Every rule names a committed run or pair it must fail on (a "
      "placebo pair the paper calls equal, a pair that differs, LARS's ladder, the network at "
      "initialisation; for the BERT and MNIST/CIFAR \"better\" rules only the weak sanity "
      "check of the winner against itself, as no two of their arms are equal by the paper); a "
      "rule that holds on its control cannot discriminate, and its claim is not testable. A "
      "control that could not run is shown as such beside the verdict.",
      "- **Best settings** are chosen one way everywhere (`analysis/select.py`): the mean over "
      "seeds of settings whose runs all finished; a setting with a diverged run ranks last; an "
      "unfinished, unreadable or misplaced run might be the best, so its group shows no number "
      "and names it.",
      f"- Measured at `{scale}` scale; " + (
          "the BERT claims read the paper's metric, SQuAD F1: the mean over each pre-training "
          "run's finished fine-tunes (`squad:paper,pretrained=EXPERIMENT`); a run without one "
          "leaves its claim unjudged." if scale == "paper" else
          "the BERT claims read held-out masked-LM accuracy (the cpu runs' SQuAD stand-in is "
          "too small to rank pre-trainings), so they judge trends, not the paper's F1."),
      "- Claims marked \"one run, no interval\" in their rule are point checks on a single run "
      "(a divergence, a ratio, a curve's end): they carry no uncertainty estimate.",
      *_unchecked_unigram(results_dir, scale), ""]


def claims_section(results_dir: Path, scale: str) -> list:
  judged = claims.judge_all(results_dir, scale)
  disclosed = {}
  for k, d in enumerate(claims.DISCLOSURES, 1):
    for claim_id in d.claims:
      disclosed.setdefault(claim_id, []).append(f"C{k}")
  intervals: dict = {}
  lines = ["## Claims", "", "| # | claim | source | runs | rule | verdict | numbers and 95% "
           "interval | choices |", "|---|---|---|---|---|---|---|---|"]
  for claim, verdict in judged:
    refs = []
    for how in filter(None, verdict.interval.split(" | ")):
      refs.append(f"[i{intervals.setdefault(how, len(intervals) + 1)}]")
    configs = ", ".join(f"`{c}`" for c in claim.configs) or "no config yet"
    lines.append("| " + " | ".join(_cell(x) for x in (
        claim.id, claim.wording, claim.source, configs, claim.rule, f"**{verdict.status}**",
        verdict.evidence + (" " + " ".join(refs) if refs else ""),
        ", ".join(disclosed.get(claim.id, [])) or "-")) + " |")
  counts = {s: sum(v.status == s for _, v in judged) for s in vocab.VERDICTS}
  lines += ["", "Verdicts: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + ".", ""]
  lines += how_each_was_reached(judged)
  lines += sensitivity(results_dir, scale, judged)
  lines += ["Intervals:", ""]
  lines += [f"- [i{k}] {how}" for how, k in intervals.items()]
  lines += ["", "### Choices made by looking at results", ""]
  lines += [f"- **C{k}** ({'claims ' + ', '.join(d.claims) if d.claims else 'no claim'}): "
            f"{d.choice}"
            for k, d in enumerate(claims.DISCLOSURES, 1)]
  lines += ([""] + multiplier_section(results_dir, scale)
            + multiplier_section(results_dir, scale, E.LADDER_MULTIPLIERS,
                                 "The BERT ladder's multipliers, chosen at its smallest rung")
            + multiplier_section(results_dir, scale, E.TOP_RUNG_MULTIPLIERS,
                                 "Each optimizer's rate at the BERT ladder's top rung (32K), "
                                 "which the mixed batch and `nado_bert` run (claim 1 keeps the "
                                 "ladder's rule)")
            + tuning_budget_section(results_dir, scale))
  return lines + [LATER_EVIDENCE, ""] + compute_section(results_dir, scale, judged)


def how_each_was_reached(judged: list) -> list:
  """Per claim: the interval's method, the regime judged, the negative control and how it
  came out, and for a claim not decided, what would decide it."""
  lines = ["### How each verdict was reached", "",
           "| # | verdict | method | regime | negative control | what would decide it |",
           "|---|---|---|---|---|---|"]
  for claim, verdict in judged:
    method = verdict.method or ("point rule, no interval" if verdict.status in DECIDED
                                else "-")
    undecided = verdict.status in (vocab.INCONCLUSIVE, vocab.NOT_TESTABLE, vocab.NOT_RUN)
    lines.append("| " + " | ".join(_cell(x) for x in (
        claim.id, verdict.status, method, verdict.regime or "-",
        verdict.control or ("none declared" if claim.control is None else "not run"),
        (verdict.decide or "-") if undecided else "-")) + " |")
  return lines + [""]


def sensitivity(results_dir: Path, scale: str, judged: list) -> list:
  """Every claim's verdict under each earlier rule set beside the current one, so that a
  verdict that depends on a rule chosen after seeing results shows it."""
  earlier = rule_sets.every()[:-1]
  if not earlier:
    return []
  current = rule_sets.current()
  columns = [(r, [v for _, v in claims.judge_all(results_dir, scale, r)]) for r in earlier]
  lines = ["### Sensitivity to the rule set", "",
           "Each claim under every rule set (`analysis/rulesets/`); **bold** where an earlier "
           "set gives another verdict than the current one. " + " ".join(
               f"{r.label}: {r.summary}." for r in (*earlier, current)), "",
           "| # | " + " | ".join(r.label for r, _ in columns) + f" | {current.label} |",
           "|---|" + "---|" * (len(columns) + 1)]
  for k, (claim, verdict) in enumerate(judged):
    cells = [(f"**{v[k].status}**" if v[k].status != verdict.status else v[k].status)
             for _, v in columns]
    lines.append(f"| {claim.id} | " + " | ".join(cells) + f" | {verdict.status} |")
  changed = sum(any(v[k].status != verdict.status for _, v in columns)
                for k, (_, verdict) in enumerate(judged))
  return lines + ["", f"{changed} of {len(judged)} verdicts depend on the rule set.", ""]


DECIDED = (vocab.HELD, vocab.NOT_HELD, vocab.INCONCLUSIVE)
SHOWN_EXPERIMENTS = 12


def compute_section(results_dir: Path, scale: str, judged: list) -> list:
  """What the committed runs cost: each run's own wall time (`wall_time_s`, start-up and
  evaluation included) summed per experiment, and over the experiments whose runs decide a
  claim (held, not held or inconclusive)."""
  frame = runs.load(results_dir)
  if not len(frame) or "wall_time_s" not in frame:
    return []
  frame = frame[frame.scale == scale]
  minutes = pd.to_numeric(frame.wall_time_s, errors="coerce").fillna(0.0) / 60
  per = minutes.groupby(frame.experiment).agg(["sum", "count"]).sort_values("sum", ascending=False)
  if not len(per) or not per["sum"].sum():
    return []
  deciding = {c for claim, verdict in judged if verdict.status in DECIDED for c in claim.configs}
  behind = per[per.index.isin(deciding)]
  lines = ["### Compute spent", "",
           f"Summed wall time of the {int(per['count'].sum())} committed {scale}-scale runs "
           f"(each run's own, start-up and evaluation included; runs that shared the cores with "
           f"other work count their slowed time): **{per['sum'].sum() / 60:.1f} h**; the "
           f"{len(behind)} experiments named by a claim that is decided (held, not held or "
           f"inconclusive): **{behind['sum'].sum() / 60:.1f} h** (the grids that chose the "
           "rates of those runs count only where the claim names them). The largest:", "",
           "| experiment | runs | minutes | named by a decided claim |", "|---|---|---|---|"]
  for name, row in per.head(SHOWN_EXPERIMENTS).iterrows():
    lines.append(f"| {name} | {int(row['count'])} | {row['sum']:.0f} | "
                 f"{'yes' if name in deciding else 'no'} |")
  rest = per.iloc[SHOWN_EXPERIMENTS:]
  if len(rest):
    lines.append(f"| {len(rest)} others | {int(rest['count'].sum())} | {rest['sum'].sum():.0f} "
                 "| |")
  return lines + [""] + claim_costs(per["sum"], judged)


def claim_costs(minutes: pd.Series, judged: list) -> list:
  """What each decided claim costs to test again from nothing: the summed minutes of the
  experiments it names (an experiment two claims share counts for both), cheapest first, with
  the running total of the union, so a budget can be read off as the claims that fit in it."""
  rows = []
  for claim, verdict in judged:
    named = [c for c in claim.configs if c in minutes.index]
    if verdict.status in DECIDED and named:
      rows.append((float(minutes[named].sum()), claim.id, named, verdict.status))
  if not rows:
    return []
  lines = ["Each decided claim alone (the experiments it names, as committed), cheapest first; "
           "*together*: the union of the experiments of this claim and those above it, so the "
           "claims that fit in a budget are the rows above the first total over it:", "",
           "| claim | verdict | experiments | minutes | together |", "|---|---|---|---|---|"]
  union: set = set()
  for cost, claim_id, named, status in sorted(rows, key=lambda r: (r[0], r[1])):
    union.update(named)
    lines.append(f"| {claim_id} | {status} | {', '.join(f'`{c}`' for c in named)} | "
                 f"{cost:.0f} | {float(minutes[sorted(union)].sum()):.0f} |")
  return lines + [""]


def tuning_budget_section(results_dir: Path, scale: str) -> list:
  """Nado et al.'s test (claim 10b): each optimizer's tuning grid at 32K (`nado_tuning`), its
  best setting by `analysis.select`, and the budget each optimizer of the claims received."""
  frame = runs.of_scale(results_dir, E.NADO_TUNING, scale)
  if not len(frame) or "config.variant" not in frame:
    return []
  frame = frame.assign(factor=frame["config.variant"].astype(str).str.rsplit("_", n=1).str[-1])
  factors = sorted(frame.factor.unique(), key=lambda f: float(f.lstrip("x")))
  split = frame.get("config.data.eval_split", pd.Series(["?"])).iloc[0]
  lines = ["### Tuning budgets (Nado et al. 2021's test)", "",
           f"Top-1 on `{split}` at 32K, one seed per cell (`nado_tuning`): each optimizer's "
           "rate times each factor of its own rule (LAMB: Table 5's square-root rule; Nesterov: "
           "Goyal et al.'s 0.1 x B/256). **Bold**: the best by `analysis/select.py`, which "
           "`nado_imagenet` runs on 3 seeds and claim 10b reads on the other test images. "
           "Budgets elsewhere: Table 3's adaptive baselines the best of their cpu grids "
           "(Tables 9-25, 6-36 settings each), LAMB and Goyal et al.'s momentum none (a rule).",
           "", "| optimizer | " + " | ".join(factors) + " | best |",
           "|---|" + "---|" * (len(factors) + 1)]
  for name, group in frame.groupby(frame["config.variant"].astype(str).str.rsplit("_", n=1)
                                   .str[0]):
    choice = select.choose(group, select.SETTINGS, claims.ACCURACY)
    best = choice.best.runs.factor.iloc[0] if choice.best is not None else None
    cells = []
    for f in factors:
      runs_f = group[group.factor == f]
      done = pd.to_numeric(runs_f[runs_f.status == vocab.COMPLETED].get(claims.ACCURACY),
                           errors="coerce").dropna()
      text = (f"{done.mean():.4f}" if len(done) else
              str(runs_f.status.iloc[0]) if len(runs_f) else vocab.NOT_RUN)
      cells.append(f"**{text}**" if f == best else text)
    lines.append(f"| {name} | " + " | ".join(cells) + f" | {best or choice.text} |")
  return lines + [""]


def multiplier_section(results_dir: Path, scale: str, experiment: str = E.BERT_MULTIPLIERS,
                       title: str = "The BERT rate multiplier, chosen on a validation split"
                       ) -> list:
  """The cpu scale's BERT rate multiplier chosen per optimizer on a validation split
  (`bert_multipliers` at batch 8, `ladder_multipliers` at the ladder's 4K, `top_rung_multipliers`
  at its 32K), beside the ones the BERT runs ran (C1)."""
  frame = runs.of_scale(results_dir, experiment, scale)
  if not len(frame) or "config.learning_rate_multiplier" not in frame:
    return []
  multipliers = sorted(pd.to_numeric(frame["config.learning_rate_multiplier"]).dropna().unique())
  used = {}  # optimizer -> the multipliers the committed BERT runs ran
  for used_by in (E.TABLE1, E.TABLE2, E.TABLE4, E.TABLE8, E.MIXED_BATCH, E.FIGURE7,
                  E.NADO_BERT, E.BERT_CORRECTION, E.NOISE_SCALE_BERT):
    ran = runs.of_scale(results_dir, used_by, scale)
    if not len(ran) or "config.learning_rate_multiplier" not in ran:
      continue
    for name, group in ran.groupby("config.optimizer.name"):
      m = pd.to_numeric(group["config.learning_rate_multiplier"], errors="coerce").dropna()
      for value in m.unique():
        used.setdefault(vocab.optimizer_label(name), {}).setdefault(value, []).append(used_by)
  documents = pd.to_numeric(frame.get("config.data.validation_documents"), errors="coerce").max()
  batch = pd.to_numeric(frame.get("config.batch_size"), errors="coerce").max()
  lines = [f"### {title}", "",
           f"Held-out masked-LM accuracy at batch {batch:g} on {documents:g} documents drawn from "
           "the training text (not trained on, and not the reported text), one seed per cell "
           f"(`{experiment}`); **bold**: the best of each optimizer (a diverged or failed run "
           "loses; an unfinished or unreadable one holds the choice back). The committed BERT "
           "runs ran: " + ("; ".join(
               f"{name} " + ", ".join(f"x{m:g} ({', '.join(e)})" for m, e in sorted(ms.items()))
               for name, ms in sorted(used.items())) if used else "no committed multiplier")
           + ".", "",
           "| optimizer | " + " | ".join(f"x{m:g}" for m in multipliers) + " | best |",
           "|---|" + "---|" * (len(multipliers) + 1)]
  for name, group in frame.groupby("config.optimizer.name"):
    cells = {}
    for m in multipliers:
      runs_m = group[pd.to_numeric(group["config.learning_rate_multiplier"]) == m]
      if not len(runs_m):  # not in this optimizer's grid
        continue
      done = runs_m[runs_m.status == vocab.COMPLETED]
      value = pd.to_numeric(done.get(claims.BERT_METRIC), errors="coerce").dropna()
      cells[m] = (float(value.mean()) if len(value) else None,
                  str(runs_m.status.iloc[0]) if len(runs_m) else vocab.NOT_RUN)
    scored = {m: v for m, (v, _) in cells.items() if v is not None}
    waiting = any(status in vocab.BLOCKING + (vocab.NOT_RUN,) for v, status in cells.values()
                  if v is None and status != vocab.FAILED)
    best = max(scored, key=scored.get) if scored and not waiting else None
    shown = [((f"**{v:.4f}**" if m == best else f"{v:.4f}") if v is not None else status)
             if m in cells else "-" for m, (v, status) in
             ((m, cells.get(m, (None, ""))) for m in multipliers)]
    chosen = f"x{best:g}" if best is not None else "held back: not every run finished"
    lines.append(f"| {vocab.optimizer_label(name)} | " + " | ".join(shown) + f" | {chosen} |")
  return lines + [""]


def problems_section(results_dir: Path, scale: str) -> list:
  """Every run that could not be read, sits in the wrong folder or failed, and every finished
  run whose divergence could not be checked, so none is lost from sight."""
  frame = runs.load(results_dir)
  frame = frame[frame.scale == scale] if len(frame) else frame
  if not len(frame):
    return []
  bad = frame[frame.status.isin(vocab.BLOCKING) & (frame.status != vocab.INCOMPLETE)]
  unchecked = frame[frame.divergence_unchecked.fillna(False).astype(bool)]
  mixed = frame[frame.resumed_from_commit.notna() & frame.git_commit.notna()
                & (frame.resumed_from_commit != frame.git_commit)]
  recorded = frame.get("final.eval_units")
  missing = frame[recorded.notna() & ~frame.path.map(
      lambda p: (Path(p) / join.EVAL_EXAMPLES).exists())] if recorded is not None \
      else frame.iloc[0:0]
  unhashed = int(frame.config_unchecked.fillna(False).astype(bool).sum()) \
      if "config_unchecked" in frame else 0
  if not len(bad) and not len(unchecked) and not len(mixed) and not len(missing):
    return [f"{unhashed} of {len(frame)} runs record no hash of their config and have no entry "
            "in results/MANIFEST.json: an edit of their config.json cannot be detected.", ""] \
        if unhashed else []
  lines = ["## Runs that could not be used", ""]
  if unhashed:
    lines += [f"{unhashed} of {len(frame)} runs record no hash of their config and have no entry "
              "in results/MANIFEST.json: an edit of their config.json cannot be detected.", ""]
  for _, row in bad.iterrows():
    lines.append(f"- `{row.experiment}/{row.scale}/{row.run}`: {row.status} "
                 f"({_cell(row.error or 'no reason recorded')})")
  for _, row in missing.iterrows():
    lines.append(f"- `{row.experiment}/{row.scale}/{row.run}`: its summary records "
                 f"{int(row['final.eval_units'])} per-example units but eval_examples.npz is "
                 "missing; its comparisons fall back to the binomial term (rerun it to restore "
                 "the records)")
  for _, row in mixed.iterrows():  # counted, but named: its steps come from two versions
    lines.append(f"- `{row.experiment}/{row.scale}/{row.run}`: trained to step "
                 f"{int(row.resumed_from_step)} by commit {str(row.resumed_from_commit)[:10]}, "
                 f"then resumed by {str(row.git_commit)[:10]}; it counts, but a rerun from one "
                 "commit is cleaner")
  for _, row in unchecked.iterrows():
    lines.append(f"- `{row.experiment}/{row.scale}/{row.run}`: completed, but its "
                 "metrics.jsonl is missing or unreadable, so whether it diverged (as the paper "
                 "means it) is unchecked; it counts as completed")
  return lines + [""]


def tables_section(results_dir: Path, scale: str) -> list:
  lines, not_run = ["## Tables", ""], []
  for name, render in tables.TABLES.items():
    if not len(runs.of_scale(results_dir, name, scale)):
      not_run.append(name)
      continue
    lines.append(tables.to_markdown(render(results_dir, scale)))
  if not_run:
    lines += [f"Not run at {scale} scale: " + ", ".join(not_run) + ".", ""]
  return lines


def figures_section(results_dir: Path, scale: str, figures_dir: Path) -> list:
  lines = ["## Figures", ""]
  for name, path, reason in figures.render(results_dir, scale, figures_dir, formats=("png",)):
    if path is None:
      lines.append(f"- {name}: not drawn ({reason})")
      continue
    rel = path.relative_to(results_dir) if path.is_relative_to(results_dir) else path
    lines += [f"### {name}", "", f"![{name}]({rel.as_posix()})", ""]
  return lines


def build(results_dir: Path, scale: str, figures_dir: Path) -> str:
  results_dir = Path(results_dir)
  lines = [f"# Reproduction report ({scale} scale)", "",
           f"Generated by `python -m analysis.report` from `{_shown(results_dir)}`. Paper "
           "numbers come from `analysis/reported/`; measured numbers from the runs. "
           + ("At cpu scale every experiment is shrunk (each table says how) and runs on "
              "stand-in data: compare rankings and trends, not digits." if scale == "cpu"
              else ""), ""]
  lines += how_claims_are_judged(results_dir, scale)
  lines += claims_section(results_dir, scale)
  lines += critical_batch.section(results_dir, scale)
  lines += problems_section(results_dir, scale)
  lines += tables_section(results_dir, scale)
  lines += figures_section(results_dir, scale, Path(figures_dir))
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
  if not out.parent.is_dir():
    print(f"error: --out={out}: its folder does not exist", file=sys.stderr)
    return 2
  text = build(results_dir, args.scale, results_dir / "figures")
  # A temporary file of its own (two reports at once never write into one), then renamed.
  result_files.atomic_write_text(out, text)
  print(f"wrote {out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
