"""Where each batch ladder stands against the measured gradient noise scale (the critical batch).

Runs that record `noise` lines in metrics.jsonl (configs setting `noise_scale_every_*`, e.g.
`noise_scale`, `noise_scale_bert`) give B_simple = tr(Σ)/|G|² over the first and the second half
of training (`lamb.train.noise_scale`, McCandlish et al. 2018), each with a 95% delta-method
interval over its measurements. B_simple stands in for their critical batch B_noise (equal when
the Hessian is well conditioned): by their model an example at batch B is worth about
1/(1 + B/B_noise) of one in a small batch, so a rung 10x beyond it gets at most 1/11 of that and
tests the step budget more than the optimizer.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis import reported, runs, stats
from analysis import vocabulary as vocab
from analysis.catalogue import CRITICAL_BATCH_LADDERS, E
from lamb.train import noise_scale
from lamb.train import results as result_files  # file formats only: no jax

FAR = 10.0  # a rung this many times above B_simple (its interval's upper end) is "far beyond"
CAVEATS = (
    "Caveats. A measurement compares the batch with its slices, each a batch of b examples "
    "normalised on its own (batch norm in training mode; BERT's masked-LM loss per masked "
    "token), so the two ImageNet rungs (b = 16 and 64) need not agree exactly. BERT runs are "
    "measured in their first phase only (length 32): B_simple is in sequences, and a phase-2 "
    "sequence holds twice the predictions. The first half of training includes the "
    "initialisation, where |G|² is large; ladders are placed against the second half.")


def _records(run) -> list:
  try:
    records = [r for r in result_files.read_jsonl(Path(run.path) / result_files.METRICS)
               if r.get("split") == noise_scale.SPLIT]
  except (result_files.UnreadableError, OSError):
    return []
  phases = [r.get("phase") for r in records if r.get("phase")]
  return [r for r in records if r.get("phase") == phases[0]] if phases else records


def measured(results_dir: Path, scale: str) -> pd.DataFrame:
  """One row per setting with noise records (its completed seeds pooled): task, batch, and
  B_simple with its interval over the first and the second half of its measurements (None: not
  measurable)."""
  frame = runs.load(results_dir)
  frame = frame[(frame.scale == scale) & (frame.status == vocab.COMPLETED)] if len(frame) \
      else frame
  # The loader counted each run's noise records: only those runs' files are read again.
  measuring = pd.to_numeric(frame.get("noise_records"), errors="coerce").fillna(0) > 0 \
      if len(frame) else frame.status.astype(bool)
  rows = []
  # The seeds of one setting measure one task at one batch: their records are pooled, so that a
  # short run's few measurements per half add up (runs named <setting>_seed<k>).
  measuring = frame[measuring]
  setting = measuring.run.str.replace(r"_seed\d+$", "", regex=True) if len(measuring) else []
  for (experiment, name), group in measuring.groupby([measuring.experiment, setting], sort=True):
    records, last = [], 0
    for _, run in group.iterrows():
      mine = _records(run)
      records += mine
      if mine:  # the halves of what was measured: BERT's first phase, an image run's length
        phased = any(r.get("phase") for r in mine)
        last = max(last, max(r["step"] for r in mine) if phased
                   else max(max(r["step"] for r in mine), run.total_steps or 0))
    if not records:
      continue
    early, late = noise_scale.halves(records, last)
    seeds = len(group)
    rows.append({"experiment": experiment, "run": name + (f" ({seeds} seeds)" if seeds > 1 else ""),
                 "task": stats.task_key(group.iloc[:1]).iloc[0],
                 "batch": int(records[0]["b_big"]), "b_small": int(records[0]["b_small"]),
                 "early_n": len(early), "late_n": len(late),
                 "early": noise_scale.interval(early), "late": noise_scale.interval(late)})
  return pd.DataFrame(rows)


def _fmt(interval, n: int) -> str:
  if not n:
    return "no measurements"
  if interval is None:
    return f"lost in noise ({n})"
  value, lo, hi = interval
  return f"{value:,.0f} [{lo:,.0f}, {hi:,.0f}] ({n})"


def section(results_dir: Path, scale: str) -> list:
  """The report's lines: the measurements, then each ladder's rungs against them."""
  table = measured(results_dir, scale)
  lines = ["## The critical batch", "", __doc__.split("\n\n")[1].replace("\n", " "), ""]
  if not len(table):
    return lines + ["No run records the gradient noise scale yet "
                    f"(`python experiments/run.py --config={E.NOISE_SCALE}`).", ""]
  lines += ["| run | task | batch (slices of) | B_simple, first half [95%] (measurements) | "
            "second half |", "|---|---|---|---|---|"]
  for _, r in table.iterrows():
    lines.append(f"| `{r.experiment}/{r.run}` | {stats.task_label(r.task)} | {r.batch} "
                 f"({r.b_small}) | "
                 f"{_fmt(r.early, r.early_n)} | {_fmt(r.late, r.late_n)} |")
  lines += ["", "'lost in noise': the mean |G|² of that half is within 2 standard errors of "
            "zero, or its mean tr(Σ) is not positive, so it gives no value. " + CAVEATS, ""]
  return lines + _ladders(results_dir, scale, table) + [""] + paper_ladders()


def task_estimate(table: pd.DataFrame, task: str):
  """(B_simple, low, high) of `task`: its most precise second-half measurement whose interval
  excludes zero; None when it has none."""
  late = [iv for iv in table[table.task == task].late if iv is not None and iv[1] > 0] \
      if len(table) else []
  return min(late, key=lambda iv: iv[2] - iv[1]) if late else None


def _ladders(results_dir: Path, scale: str, table: pd.DataFrame) -> list:
  lines = []
  for experiment in CRITICAL_BATCH_LADDERS:
    frame = runs.of_scale(results_dir, experiment, scale)
    if not len(frame) or "config.batch_size" not in frame:
      continue
    task = stats.task_key(frame.iloc[:1]).iloc[0]
    estimate = task_estimate(table, task)
    if estimate is None:
      lines.append(f"- {experiment}: its task ({stats.task_label(task)}) has no second-half "
                   "measurement of the noise scale whose interval excludes zero.")
      continue
    value, lo, hi = estimate
    batches = sorted(set(pd.to_numeric(frame["config.batch_size"], errors="coerce").dropna()))
    rungs = ", ".join(f"{int(x)} ({x / value:.2g}x{', far beyond' if x / hi >= FAR else ''})"
                      for x in batches)
    lines.append(f"- {experiment}: B_simple {value:,.0f} [{lo:,.0f}, {hi:,.0f}] (the most "
                 f"precise second-half measurement of its task); batches run and their ratio "
                 f"to it: {rungs}.")
  return lines


def paper_ladders() -> list:
  """The paper's own ladders against the critical batch the literature gives for their tasks
  (`analysis/reported/critical_batch.csv`, cited; a task without a published value says so)."""
  lines = ["The paper's ladders against the literature's critical batch of their tasks "
           "(`analysis/reported/critical_batch.csv`):", ""]
  for _, row in reported.critical_batch().iterrows():
    table = int(row.paper_ladder.removeprefix("table"))
    printed = pd.to_numeric(reported.load(table).batch_size, errors="coerce").dropna()
    batches = sorted({int(b) for b in printed})
    ladder = f"Table {table}'s ladder ({batches[0]:,}-{batches[-1]:,} {row.unit})"
    if pd.isna(row.batch_low):
      lines.append(f"- {ladder}: not placed; {row.source}.")
      continue
    far = [b for b in batches if b / row.batch_high >= FAR]
    lines.append(f"- {ladder}: the literature puts the task's critical batch at "
                 f"{row.batch_low:,.0f}-{row.batch_high:,.0f} {row.unit} ({row.source}: "
                 f"\"{row.quote}\"); its largest rung is {batches[-1] / row.batch_high:.2g}-"
                 f"{batches[-1] / row.batch_low:.2g}x of that, "
                 + (f"and {', '.join(f'{b:,}' for b in far)} far beyond it." if far
                    else "so no rung is far beyond it."))
  return lines + [""]
