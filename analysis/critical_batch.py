"""Where each batch ladder stands against the measured gradient noise scale (the critical batch).

Runs that record `noise` lines in metrics.jsonl (configs setting `noise_scale_every_*`, e.g.
`noise_scale`) give B_simple = tr(Σ)/|G|² over the first and the second half of training
(`lamb.train.noise_scale`, McCandlish et al. 2018). By their model a step at batch B makes
1/(1 + B_noise/B) of the progress of a step at an infinite batch, so an example at batch B is
worth 1/(1 + B/B_noise) of one in a small batch; a rung 10x beyond B_simple gets less than 1/11
of that, and tests the step budget more than the optimizer.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis import runs, stats
from analysis import vocabulary as vocab
from lamb.train import noise_scale
from lamb.train import results as result_files  # file formats only: no jax

FAR = 10.0  # a rung this many times above B_simple is "far beyond" the critical batch
LADDERS = ("table5", "table4", "table2", "table1")


def measured(results_dir: Path, scale: str) -> pd.DataFrame:
  """One row per run with noise records: its task, batch, and B_simple early, late and over all."""
  frame = runs.load(results_dir)
  frame = frame[frame.scale == scale] if len(frame) else frame
  rows = []
  for _, run in frame.iterrows():
    if run.status not in (vocab.COMPLETED, vocab.DIVERGED):
      continue
    try:
      records = [r for r in result_files.read_jsonl(Path(run.path) / result_files.METRICS)
                 if r.get("split") == noise_scale.SPLIT]
    except (result_files.UnreadableError, OSError):
      continue
    if not records:
      continue
    early, late = noise_scale.early_and_late(records, run.total_steps or records[-1]["step"])
    rows.append({"experiment": run.experiment, "run": run.run,
                 "task": stats.task_key(pd.DataFrame([run])).iloc[0],
                 "batch": int(records[0]["b_big"]), "measurements": len(records),
                 "early": early, "late": late, "all": noise_scale.b_simple(records)})
  return pd.DataFrame(rows)


def _fmt(value) -> str:
  return "-" if value is None or pd.isna(value) else f"{value:,.0f}"


def section(results_dir: Path, scale: str) -> list:
  """The report's lines: the measurements, then each ladder's rungs against them."""
  table = measured(results_dir, scale)
  lines = ["## The critical batch", "", __doc__.split("\n\n")[1].replace("\n", " "), ""]
  if not len(table):
    return lines + ["No run records the gradient noise scale yet "
                    "(`python experiments/run.py --config=noise_scale`).", ""]
  lines += ["| run | task | batch | measurements | B_simple, first half | second half | all |",
            "|---|---|---|---|---|---|---|"]
  for _, r in table.iterrows():
    lines.append(f"| `{r.experiment}/{r.run}` | {r.task} | {r.batch} | {r.measurements} | "
                 f"{_fmt(r.early)} | {_fmt(r.late)} | {_fmt(r['all'])} |")
  lines += ["", "A '-' is a half whose mean |G|² estimate is not positive: the gradient signal is "
            "lost in the noise of the measurements (small slices, few measurements), and that "
            "half gives no value. The ladders below use each run's value over all of training, "
            "the median over the runs of the task.", ""]
  lines += _ladders(results_dir, scale, table)
  return lines + [""]


def _ladders(results_dir: Path, scale: str, table: pd.DataFrame) -> list:
  lines = []
  for experiment in LADDERS:
    frame = runs.of_scale(results_dir, experiment, scale)
    if not len(frame) or "config.batch_size" not in frame:
      continue
    task = stats.task_key(frame.iloc[:1]).iloc[0]
    noise = table[table.task == task]["all"].dropna()
    if not len(noise):
      lines.append(f"- {experiment}: its task ({task}) has no noise-scale measurement.")
      continue
    b = float(noise.median())
    batches = sorted(set(pd.to_numeric(frame["config.batch_size"], errors="coerce").dropna()))
    rungs = ", ".join(f"{int(x)} ({x / b:.2g}x{', far beyond' if x / b >= FAR else ''})"
                      for x in batches)
    lines.append(f"- {experiment}: B_simple {b:,.0f} (median of {len(noise)} run(s)); batches "
                 f"run and their ratio to it: {rungs}.")
  return lines
