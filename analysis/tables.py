"""The paper's Tables 1-25 regenerated from `results/`: every printed row, the paper's number
beside the measured one, as markdown (the report), tidy CSV (one row per measured cell) or LaTeX.

    python -m analysis.tables table7 [--results_dir results] [--scale cpu|paper]
                                     [--format markdown|csv|latex]
    python -m analysis.tables all --format csv

This module owns the layout of each table (which printed row matches which runs) and the three
outputs. It decides nothing about runs: their status (diverged in the paper's sense included)
comes from `analysis.runs`, the setting a row shows from `analysis.select`, the words from
`analysis.vocabulary`. Every run is accounted for: a cell names the runs that kept it partial, and
the notes under a table name unreadable runs, the reasons of the runs behind a `diverged` cell,
and runs that match no printed row.

Each table builds rows whose measured cells are `Measure`s (numbers, not strings); the outputs
format them. The tidy CSV has the columns of `TIDY_COLUMNS`: `reported` is the paper's number
(empty where it prints a word such as "diverge": see `reported_text`), `measured` the mean over
seeds, `spread` their standard deviation (empty for one seed), `measured_text` the cell as shown.
The BERT tables put held-out masked-LM accuracy beside the paper's SQuAD F1, another metric: their
`reported_text` says "SQuAD F1".
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import math
import re
import sys
from pathlib import Path
from typing import Optional, Sequence

import pandas as pd

from analysis import reported, runs, select
from analysis import vocabulary as vocab
from lamb.train import results as result_files  # file formats only: no jax

PARTIAL = "partial"  # a tidy status: a cell with a value, some of whose runs could not count
TIDY_COLUMNS = ("table", "row_keys", "column", "reported", "measured", "spread", "seeds", "status",
                "scale", "reported_text", "measured_text")
NO_PAPER = (math.nan, "")
ACCURACY = "final.accuracy"
OPTIMIZER = "config.optimizer.name"
LR = "config.optimizer.learning_rate"
WD = "config.optimizer.weight_decay"
SELECTION_NOTE = ("The shown setting has the best mean over seeds among settings whose every run "
                  "completed (analysis.select); a setting with a diverged run ranks last, and one "
                  "with a run failed, unfinished or unreadable might be the best, so the cell shows "
                  "no number but names that run. Tuned on the split the table reports, as the "
                  "paper did.")
MAX_NAMED = 8  # runs a note names before it says how many more


# --- cells and tables ------------------------------------------------------------------------

@dataclasses.dataclass
class Measure:
  """One measured cell beside the paper's number: what the tidy CSV has one row of."""
  mean: float = math.nan            # the measured number (nan when there is none)
  spread: float = math.nan          # std over seeds (nan for one seed)
  seeds: int = 0
  status: str = vocab.NOT_RUN       # completed, partial, diverged, not run, unreadable...
  text: str = vocab.NOT_RUN         # the cell as markdown and LaTeX show it
  reported: float = math.nan        # the paper's number beside it (nan when it prints a word)
  reported_text: str = ""           # the paper's cell as printed
  runs: tuple = ()                  # every run the cell looked at
  diverged: dict = dataclasses.field(default_factory=dict)  # run -> why, behind a 'diverged' cell
  plain: bool = False               # shown as a bare number (steps, minutes), not 'mean ± std'

  @property
  def difference(self) -> float:
    return self.mean - self.reported

  @property
  def cell(self):
    """What the displayed frame holds: the number of a plain cell, else the text."""
    return self.mean if self.plain and math.isfinite(self.mean) else self.text

  def tidy(self) -> dict:
    why = "; ".join(f"{run}: {reason}" for run, reason in self.diverged.items())
    return {"reported": self.reported, "measured": self.mean, "spread": self.spread,
            "seeds": int(self.seeds), "status": self.status, "reported_text": self.reported_text,
            "measured_text": self.text + (f" ({why})" if why else "")}


@dataclasses.dataclass
class Rendered:
  """A table: the displayed frame, the lines that say what it is, and its measured cells (tidy)."""
  title: str
  frame: pd.DataFrame
  notes: list
  cells: list = dataclasses.field(default_factory=list)  # dicts with the TIDY_COLUMNS
  table: Optional[int] = None


def _paper(rec, metric: str = "") -> tuple:
  """(number, printed text) of one record of analysis/reported; a word has no number. `metric`
  prefixes a printed number measured by another metric than the column beside it."""
  if rec is None:
    return NO_PAPER
  if rec.status != "ok":
    return math.nan, str(rec.status)
  return float(rec.value), f"{metric}{rec.value_text}"


def _of_choice(choice: select.Choice, paper: tuple = NO_PAPER) -> Measure:
  """The cell of a chosen setting: its mean and spread over seeds, or the status that stops it."""
  best = choice.best
  looked = pd.concat([s.runs for s in choice.settings]) if choice.settings else None
  diverged = {}
  if choice.status == vocab.DIVERGED and looked is not None:
    gone = looked[looked.status == vocab.DIVERGED]
    diverged = dict(zip(gone.run, gone.get("diverged_because", pd.Series("", gone.index))))
  if best is None:
    return Measure(status=choice.status, text=choice.text, reported=paper[0],
                   reported_text=paper[1], runs=tuple(looked.run) if looked is not None else (),
                   diverged=diverged)
  return Measure(best.mean, best.std, best.seeds, PARTIAL if choice.partial else vocab.COMPLETED,
                 choice.text, paper[0], paper[1], tuple(looked.run))


def _of_run(group: pd.DataFrame, value: float, paper: tuple = NO_PAPER) -> Measure:
  """A number of the group's one run (steps, train time, last loss), shown whatever its status:
  a diverged run's last step is what the paper prints too."""
  if not len(group):
    return Measure(reported=paper[0], reported_text=paper[1], plain=True)
  status = str(group.status.iloc[0])
  finite = value is not None and math.isfinite(value)
  return Measure(value if finite else math.nan, math.nan, 1 if finite else 0, status,
                 _fmt(value) if finite else status, paper[0], paper[1], tuple(group.run),
                 plain=True)


def _rendered(table: int, title: str, rows: list, keys: Sequence[str], frame: pd.DataFrame,
              notes: list, scale: str) -> Rendered:
  """The displayed frame (cells formatted) and the tidy cells, from rows holding Measures."""
  shown = pd.DataFrame([{c: v.cell if isinstance(v, Measure) else v for c, v in row.items()}
                        for row in rows])
  cells, measures = [], []
  for row in rows:
    for column, m in row.items():
      if isinstance(m, Measure):
        measures.append(m)
        cells.append({"table": table, "row_keys": _row_keys(row, keys), "column": column,
                      "scale": scale, **m.tidy()})
  return Rendered(title, shown, notes + _run_notes(frame, measures), cells, table)


def _row_keys(row: dict, keys: Sequence[str]) -> str:
  """'optimizer=LAMB' or 'learning_rate=0.0001, weight_decay=0.01': what names a printed row."""
  name = lambda k: re.sub(r"\s*\(.*?\)", "", k).strip().replace(" ", "_").lower()
  return ", ".join(f"{name(k)}={_fmt(row[k])}" for k in keys if k in row)


def _named(items: list) -> str:
  shown = "; ".join(items[:MAX_NAMED])
  return shown + (f"; and {len(items) - MAX_NAMED} more" if len(items) > MAX_NAMED else "")


def _run_notes(frame: pd.DataFrame, measures: list) -> list:
  """Names every run a reader cannot see in a number: unreadable ones, the reasons behind
  'diverged' cells, and runs that match no printed row."""
  notes, diverged = [], {}
  for m in measures:
    diverged.update(m.diverged)
  if diverged:
    notes.append("Diverged (a non-finite value, or a training loss ending more than 5% above "
                 "its start or above chance; analysis.runs): "
                 + _named([f"{run}: {why}" for run, why in diverged.items()]) + ".")
  if not len(frame):
    return notes
  lost = frame[frame.status.isin([vocab.UNREADABLE, vocab.MISPLACED])]
  if len(lost):
    notes.append("Unreadable or misplaced runs (named in the cells they may belong to): "
                 + _named([f"{r.run} ({r.error})" for r in lost.itertuples()]) + ".")
  placed = {run for m in measures for run in m.runs}
  astray = [r for r, s in zip(frame.run, frame.status)
            if r not in placed and s not in (vocab.UNREADABLE, vocab.MISPLACED)]
  if astray:
    notes.append("Runs that match no printed row: " + _named(astray) + ".")
  return notes


# --- outputs ---------------------------------------------------------------------------------

def _fmt(value) -> str:
  """A cell as text: 4 decimals, small numbers in 4 significant digits, '-' for missing."""
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return "-"
  if isinstance(value, float):
    if abs(value) < 1e-3 and value != 0:
      return f"{value:.4g}"
    return f"{value:.4f}".rstrip("0").rstrip(".") if abs(value) >= 1 else f"{value:.4f}"
  return str(value)


def to_markdown(r: Rendered) -> str:
  cols = list(r.frame.columns)
  lines = [f"### {r.title}", ""]
  lines.append("| " + " | ".join(cols) + " |")
  lines.append("|" + "|".join("---" for _ in cols) + "|")
  for _, row in r.frame.iterrows():
    lines.append("| " + " | ".join(_fmt(row[c]).replace("|", "\\|") for c in cols) + " |")
  lines.append("")
  lines += [f"- {n}" for n in r.notes]
  return "\n".join(lines) + "\n"


def to_csv(*rendered: Rendered) -> str:
  """The tidy CSV of one or more tables: one header, one row per measured cell."""
  tidy = pd.DataFrame([c for r in rendered for c in r.cells], columns=list(TIDY_COLUMNS))
  buf = io.StringIO()
  tidy.to_csv(buf, index=False)
  return buf.getvalue()


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
        "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
        "<": r"\textless{}", ">": r"\textgreater{}", "±": r"$\pm$", "×": r"$\times$", "`": ""}


def _tex(text) -> str:
  return "".join(_TEX.get(ch, ch) for ch in str(text))


def _is_number(value) -> bool:
  try:
    return not isinstance(value, bool) and math.isfinite(float(value))
  except (TypeError, ValueError):
    return False


def _numeric(values) -> bool:
  """A column of numbers, printed ones ('0.0001') included; a word such as 'diverge', a status or
  a missing value may stand in a cell."""
  words = set(reported.STATUSES) | set(vocab.STATUSES) | {vocab.NOT_RUN, "-"}
  missing = lambda v: v is None or (isinstance(v, float) and math.isnan(v))
  return (any(_is_number(v) for v in values)
          and all(_is_number(v) or missing(v) or str(v) in words for v in values))


def to_latex(r: Rendered) -> str:
  """A booktabs table (needs \\usepackage{booktabs}); numbers right-aligned, notes as caption."""
  cols = list(r.frame.columns)
  measured = {c["column"] for c in r.cells}
  align = "".join("r" if c in measured or _numeric(r.frame[c]) else "l" for c in cols)
  lines = [r"\begin{table}[htbp]", r"\centering", r"\small", r"\begin{tabular}{" + align + "}",
           r"\toprule", " & ".join(_tex(c) for c in cols) + r" \\", r"\midrule"]
  lines += [" & ".join(_tex(_fmt(row[c])) for c in cols) + r" \\" for _, row in r.frame.iterrows()]
  caption = " ".join(_tex(n if n.endswith(".") else n + ".") for n in [r.title] + r.notes)
  lines += [r"\bottomrule", r"\end{tabular}",
            r"\caption[{" + _tex(r.title) + "}]{" + caption + "}"]
  if r.table:
    lines.append(r"\label{tab:table" + str(r.table) + "}")
  return "\n".join(lines + [r"\end{table}", ""])


FORMATS = {"markdown": to_markdown, "csv": to_csv, "latex": to_latex}


# --- runs of a table -------------------------------------------------------------------------

def _frame(results_dir, experiment: str, scale: str) -> pd.DataFrame:
  return runs.of_scale(results_dir, experiment, scale)


def _where(frame: pd.DataFrame, column: str, value) -> pd.DataFrame:
  """The runs whose `column` equals `value` (none when the column is absent)."""
  if not len(frame) or column not in frame:
    return frame.iloc[0:0]
  return frame[frame[column] == value]


def _close(frame: pd.DataFrame, column: str, value: float) -> pd.Series:
  """Which runs have `column` equal to the printed number `value` (up to rounding)."""
  if column not in frame:
    return pd.Series(False, index=frame.index)
  return (pd.to_numeric(frame[column], errors="coerce") - value).abs() <= 1e-9 * abs(value)


def _choose(group: pd.DataFrame, settings: Sequence[str], metric: str, unplaced: Sequence = (),
            higher_is_better: bool = True) -> select.Choice:
  return select.held_back(
      select.choose(group, settings, metric, higher_is_better=higher_is_better), unplaced)


def _first(group: pd.DataFrame, column: str) -> float:
  """The group's first run's number in `column` (nan when there is none)."""
  if not len(group) or column not in group:
    return math.nan
  value = pd.to_numeric(pd.Series([group[column].iloc[0]]), errors="coerce").iloc[0]
  return float(value) if pd.notna(value) else math.nan


def _int_or_dash(value: float):
  return int(value) if math.isfinite(value) else "-"


def _best_value(choice: select.Choice, column: str) -> float:
  if choice.best is None or column not in choice.best.runs:
    return math.nan
  return float(choice.best.runs[column].iloc[0])


def _runs_text(group: pd.DataFrame) -> str:
  """'8 (2)': runs of a row and how many of them diverged."""
  return f"{len(group)} ({int((group.status == vocab.DIVERGED).sum())})" if len(group) else "0"


def _scale_notes(frame: pd.DataFrame, scale: str) -> list:
  notes = [f"Measured at scale `{scale}`; paper values are the paper's own (analysis/reported/)."]
  if scale != "paper":
    notes.append("cpu scale is a shrunk reproduction: compare rankings and trends, not digits.")
  if "data" in frame and frame["data"].notna().any():
    notes.append("Data: " + frame["data"].dropna().iloc[0])
  if "epochs" in frame and frame["epochs"].notna().any():
    epochs = sorted({round(float(e), 2) for e in frame["epochs"].dropna()})
    notes.append("Epochs run: " + ", ".join(f"{e:g}" for e in epochs) + f" ({len(frame)} runs).")
  shrink = frame.get("config.shrink_note")
  if shrink is not None and shrink.notna().any() and shrink.dropna().iloc[0]:
    notes.append("The config's shrink: " + shrink.dropna().iloc[0] +
                 " (command-line overrides, if any, are in each run's config.json).")
  return notes


def _notes(frame, scale, results_dir, first: str) -> list:
  notes = _scale_notes(frame, scale) if len(frame) else [
      f"No runs found under {results_dir} for scale {scale}."]
  return [first] + notes


# --- image tables (3, 5, 6, 7, 9-25) ---------------------------------------------------------

def table7(results_dir, scale: str) -> Rendered:
  paper = reported.load(7)
  frame = _frame(results_dir, "table7", scale)
  unplaced = select.unplaced(frame)
  rows = []
  for _, rep in paper.iterrows():
    group = _where(frame, OPTIMIZER, rep.optimizer.lower())
    choice = _choose(group, [LR], ACCURACY, unplaced)
    m = _of_choice(choice, _paper(rep))
    rows.append({"optimizer": vocab.optimizer_label(rep.optimizer.lower()),
                 "paper accuracy (avg of 5)": rep.value,
                 "measured accuracy (mean ± std over seeds)": m, "difference": m.difference,
                 "best lr": _best_value(choice, LR), "seeds": m.seeds,
                 "runs (diverged)": _runs_text(group)})
  batches = sorted(set(frame["config.batch_size"].dropna().astype(int))) \
      if "config.batch_size" in frame else []
  batches = ", ".join(map(str, batches or [1024]))
  notes = _notes(frame, scale, results_dir,
                 f"Test accuracy of LeNet-5 on MNIST, batch {batches}; learning rate tuned per "
                 "optimizer (best mean over seeds).") + [SELECTION_NOTE]
  return _rendered(7, f"Table 7: MNIST with LeNet-5 ({scale} scale)", rows, ["optimizer"],
                   frame, notes, scale)


def _setting_text(choice: select.Choice, with_decay: bool) -> str:
  if choice.best is None:
    return "-"
  text = f"lr {_best_value(choice, LR):g}"
  return text + (f", wd {_best_value(choice, WD):g}" if with_decay else "")


def table6(results_dir, scale: str) -> Rendered:
  paper = reported.load(6)
  frame = _frame(results_dir, "table6", scale)
  unplaced = select.unplaced(frame)
  rows = []
  for _, rep in paper.iterrows():
    key = rep.optimizer.lower()
    group = _where(frame, OPTIMIZER, key)
    choice = _choose(group, [LR, WD], ACCURACY, unplaced)
    m = _of_choice(choice, _paper(rep))
    rows.append({"optimizer": vocab.optimizer_label(key), "paper test accuracy": rep.value,
                 "measured (best setting)": m, "difference": m.difference,
                 "best setting": _setting_text(choice, key == "adamw"),
                 "runs (diverged)": _runs_text(group)})
  notes = _notes(frame, scale, results_dir,
                 "Test accuracy of DavidNet at batch 512, each optimizer at its best learning rate "
                 "(AdamW: and weight decay) of the paper's grid.") + [SELECTION_NOTE]
  return _rendered(6, f"Table 6: CIFAR-10 with DavidNet ({scale} scale)", rows, ["optimizer"],
                   frame, notes, scale)


def table3(results_dir, scale: str) -> Rendered:
  paper = reported.load(3)
  frame = _frame(results_dir, "table3", scale)
  unplaced = select.unplaced(frame)
  rows = []
  for _, rep in paper.iterrows():
    group = _where(frame, "config.variant", rep.optimizer.lower())
    m = _of_choice(_choose(group, [], ACCURACY, unplaced), _paper(rep))
    rows.append({"optimizer": rep.optimizer, "paper top-1": rep.value,
                 "measured top-1 (mean ± std over seeds)": m, "difference": m.difference,
                 "runs": len(group)})
  notes = _notes(frame, scale, results_dir,
                 "Top-1 accuracy of ResNet-50 at batch 16K (cpu scale: 256), each optimizer at its "
                 "tuned setting; + = Goyal et al.'s learning-rate recipe.")
  return _rendered(3, f"Table 3: ImageNet with ResNet-50 ({scale} scale)", rows, ["optimizer"],
                   frame, notes, scale)


def _left_out(paper: tuple) -> Measure:
  return Measure(status=vocab.NOT_AT_SCALE, text=vocab.NOT_AT_SCALE, reported=paper[0],
                 reported_text=paper[1])


def _batch_order(label: str) -> float:
  return float(label[:-1]) * 1024 if label.endswith("K") else float(label)


def table5(results_dir, scale: str) -> Rendered:
  paper = reported.load(5)
  frame, stale = runs.recorded_rows(_frame(results_dir, "table5", scale))
  unplaced = select.unplaced(frame)
  at_scale = runs.rows_at_scale(frame)
  rows = []
  for _, rep in paper.groupby("batch_size", sort=True):
    label = rep.batch_size_text.iloc[0]
    group = _where(frame, "config.variant", label)
    record = lambda metric: rep[rep.metric == metric].iloc[0]
    if at_scale is not None and label not in at_scale and not len(group):
      top1, top5 = (_left_out(_paper(record(m))) for m in ("top1_accuracy", "top5_accuracy"))
    else:
      top1 = _of_choice(_choose(group, [], ACCURACY, unplaced), _paper(record("top1_accuracy")))
      top5 = _of_choice(_choose(group, [], "final.top5_accuracy", unplaced),
                        _paper(record("top5_accuracy")))
    rows.append({"batch (paper)": label,
                 "batch run": _int_or_dash(_first(group, "config.batch_size")),
                 "learning rate": record("learning_rate").value,
                 "warmup epochs": record("warmup_epochs").value,
                 "paper top-1": top1.reported, "measured top-1": top1,
                 "difference": top1.difference, "paper top-5": top5.reported,
                 "measured top-5": top5})
  notes = _notes(frame, scale, results_dir,
                 "Untuned LAMB across the batch ladder: square-root learning-rate scaling and "
                 "linear-epoch warmup (cpu scale: batches / 64, warmup as the same fraction)." +
                 (f" This scale runs the rows {', '.join(sorted(at_scale, key=_batch_order))}; "
                  f"'{vocab.NOT_AT_SCALE}' marks the others." if at_scale else "") +
                 (f" Set aside, as runs of an older config: {', '.join(stale)}." if stale else ""))
  return _rendered(5, f"Table 5: LAMB's batch ladder on ImageNet/ResNet-50 ({scale} scale)",
                   rows, ["batch (paper)"], frame, notes, scale)


def _grid_row(rep, group: pd.DataFrame, unplaced: list) -> dict:
  """One printed row of a tuning grid: its setting as printed beside its runs."""
  m = _of_choice(_choose(group, [], ACCURACY, unplaced), _paper(rep))
  row = {"learning rate": rep.learning_rate_text}
  if pd.notna(rep.get("weight_decay_text")):
    row["weight decay"] = rep.weight_decay_text
  if pd.notna(rep.get("l2_regularization")):
    row["L2 regularization"] = rep.l2_regularization
  row.update({"paper top-1": rep.value if rep.status == "ok" else rep.status,
              "measured top-1": m, "difference": m.difference})
  if isinstance(rep.get("note"), str) and rep.note:
    row["note"] = rep.note
  return row


def tuning_grid(table: int):
  """Tables 9-25: every printed row (learning rate, weight decay, L2) beside its run."""
  def render(results_dir, scale: str) -> Rendered:
    paper = reported.load(table)
    paper = paper[paper.metric == "top1_accuracy"]
    frame = _frame(results_dir, f"table{table}", scale)
    unplaced = select.unplaced(frame)
    rows = []
    for _, rep in paper.iterrows():
      matches = _close(frame, LR, rep.learning_rate)
      if pd.notna(rep.get("weight_decay")):
        matches &= _close(frame, WD, rep.weight_decay)
      rows.append(_grid_row(rep, frame[matches], unplaced))
    optimizer = paper.optimizer.iloc[0]
    notes = _notes(frame, scale, results_dir,
                   f"Appendix H.1 tuning grid of {optimizer} for ResNet-50 at batch 16K (cpu "
                   "scale: 256), every printed row.")
    return _rendered(table, f"Table {table}: {optimizer} tuning ({scale} scale)", rows,
                     ["learning rate", "weight decay", "L2 regularization"], frame, notes, scale)
  return render


# --- BERT (Tables 1, 2, 4, 8): the paper's SQuAD F1 beside what the runs measure ------------

BERT_METRIC = "final.masked_lm_accuracy"
BERT_METRIC_LABEL = "measured masked-LM accuracy (held-out text)"
# A short cpu-scale run can stay at the unigram stage (every row predicting the most frequent
# token, the same accuracy); the held-out masked-LM loss still ranks the runs.
BERT_LOSS = "final.masked_lm_loss"
BERT_LOSS_LABEL = "measured masked-LM loss (held-out)"
F1 = "SQuAD F1 "  # the paper's metric, named in reported_text: not the one measured beside it


def _bert_notes(frame, scale, results_dir, first: str) -> list:
  return _notes(frame, scale, results_dir, first) + [
      "The paper's metric is SQuAD v1.1 F1 after fine-tuning; the measured column is the "
      "pre-training run's masked-LM accuracy on held-out text (at cpu scale Sense and "
      "Sensibility), so compare trends across batch sizes, not values with the F1 column."]


SQUAD_F1_LABEL = "measured SQuAD F1 (fine-tuned from the row's runs)"
SQUAD_EM_LABEL = "measured SQuAD exact match"


def _squad_runs(results_dir, scale: str) -> pd.DataFrame:
  """The `squad` fine-tunes that record the pre-training run they started from (`squad`'s
  `pretrained=EXPERIMENT`): how a row's F1 is found."""
  frame = _frame(results_dir, "squad", scale)
  if not len(frame) or "config.pretrained_run" not in frame:
    return frame.iloc[0:0]
  return frame[frame["config.pretrained_run"].fillna("").astype(str) != ""]


def _squad_measure(group: pd.DataFrame, squad: pd.DataFrame, metric: str, paper) -> Measure:
  """Mean and spread of the fine-tunes of `group`'s runs (one per pre-training run)."""
  folders = {f"{e}/{s}/{r}" for e, s, r in zip(group.get("experiment", []),
                                               group.get("scale", []), group.get("run", []))}
  tuned = squad[squad["config.pretrained_run"].isin(folders)]
  done = tuned[tuned.status == vocab.COMPLETED]
  values = pd.to_numeric(done.get(metric), errors="coerce").dropna()
  if not len(values):
    status = ", ".join(sorted(set(tuned.status))) if len(tuned) else vocab.NOT_RUN
    return Measure(status=status, text=status, reported=paper[0], reported_text=paper[1],
                   runs=tuple(tuned.run))
  mean = float(values.mean())
  spread = float(values.std()) if len(values) > 1 else math.nan
  text = (f"{mean:.2f} ± {spread:.2f} ({len(values)} fine-tunes)" if len(values) > 1
          else f"{mean:.2f} (1 fine-tune)")
  return Measure(mean, spread, len(values), vocab.COMPLETED if len(done) == len(tuned)
                 else PARTIAL, text, paper[0], paper[1], tuple(tuned.run))


def _bert_measures(group: pd.DataFrame, f1, unplaced: Sequence = (),
                   squad: Optional[pd.DataFrame] = None) -> dict:
  """The masked-LM accuracy (beside the paper's F1 record `f1`) and loss of one row's runs,
  and, where `squad` fine-tuned them, their SQuAD F1 and exact match."""
  accuracy = _choose(group, [], BERT_METRIC, unplaced)
  loss = _choose(group, [], BERT_LOSS, unplaced, higher_is_better=False)
  out = {BERT_METRIC_LABEL: _of_choice(accuracy, _paper(f1, F1)),
         BERT_LOSS_LABEL: _of_choice(loss)}
  if squad is not None and len(squad):
    out[SQUAD_F1_LABEL] = _squad_measure(group, squad, "final.f1", _paper(f1))
    out[SQUAD_EM_LABEL] = _squad_measure(group, squad, "final.exact_match", NO_PAPER)
  return out


def _rate_run(group: pd.DataFrame) -> str:
  """The learning rate the run used (cpu scale: the printed one x learning_rate_multiplier)."""
  rate = _first(group, LR)
  return f"{rate:.6g}" if math.isfinite(rate) else "-"


def _table1_run(first) -> str:
  if first.optimizer == "Baseline":
    return "baseline"
  if str(first.batch_size).isdigit():
    return f"lamb_{vocab.batch_label(int(first.batch_size))}"
  return "lamb_64K-32K"


def _bert_left_out(f1) -> dict:
  return {BERT_METRIC_LABEL: _left_out(_paper(f1, F1)), BERT_LOSS_LABEL: _left_out(NO_PAPER)}


def _lamb_ladder(results_dir, scale: str) -> tuple:
  """(runs, rows at this scale or None, runs set aside) of the one LAMB ladder: Table 4's runs,
  which Tables 1 and 2 and Figure 6 read too."""
  frame, stale = runs.recorded_rows(_frame(results_dir, "table4", scale))
  return frame, runs.rows_at_scale(frame), stale


def _expected(at_scale, row: str, group: pd.DataFrame) -> bool:
  """Whether a row with no runs is missing (not run) rather than left out at this scale."""
  return at_scale is None or row in at_scale or len(group) > 0


def _set_aside(stale: Sequence) -> str:
  return f" Set aside, as runs of an older config: {', '.join(stale)}." if stale else ""


def _multiplier_note(mixed: pd.DataFrame) -> str:
  """Where the mixed batch runs another rate multiplier than the ladder, say so: its rows sit
  beside rungs run at a different factor on the printed rates."""
  m = pd.to_numeric(mixed.get("config.learning_rate_multiplier"), errors="coerce").dropna()
  if not len(m):
    return ""
  return (f", at LAMB x{m.iloc[0]:g} (its rate multiplier chosen at 32K on a validation split, "
          "not the ladder's)")


def table1(results_dir, scale: str) -> Rendered:
  paper = reported.load(1)
  squad = _squad_runs(results_dir, scale)
  frame, stale = runs.recorded_rows(_frame(results_dir, "table1", scale))
  ladder, ladder_rows, ladder_stale = _lamb_ladder(results_dir, scale)
  own_rows = runs.rows_at_scale(frame)
  # Where this scale's table1 leaves its 64K/32K row out, the row is mixed_batch's re-warm-up
  # run (the same recipe; the cpu scale trains it there).
  mixed = _frame(results_dir, "mixed_batch", scale)
  mixed = _where(mixed, "config.variant", "lamb_rewarmup") if len(mixed) else mixed
  rows = []
  for _, rep in paper.groupby("row", sort=True):
    record = lambda metric: rep[rep.metric == metric].iloc[0]
    first = rep.iloc[0]
    name = _table1_run(first)
    if name.startswith("lamb_") and name != "lamb_64K-32K":  # a rung of Table 4's ladder
      label, at_scale, source = name[len("lamb_"):], ladder_rows, ladder
    elif name == "lamb_64K-32K" and own_rows is not None and name not in own_rows and len(mixed):
      label, at_scale, source = "lamb_rewarmup", None, mixed
    else:
      label, at_scale, source = name, own_rows, frame
    group = _where(source, "config.variant", label)
    hours, hours_text = _paper(record("time_hours"))
    shown = (_bert_measures(group, record("f1"), select.unplaced(source), squad)
             if _expected(at_scale, label, group) else _bert_left_out(record("f1")))
    rows.append({"solver": first.optimizer_text, "batch": first.batch_size_text,
                 "paper steps": record("steps").value_text,
                 "steps run": _of_run(group, _first(group, "steps"), _paper(record("steps"))),
                 "paper F1": record("f1").value, **shown,
                 "paper TPUs": int(first.tpus), "paper time": hours_text,
                 "measured train minutes": _of_run(group, _first(group, "train_time_s") / 60,
                                                   (hours * 60, hours_text))})
  notes = _bert_notes(pd.concat([frame, ladder]), scale, results_dir,
                      "BERT-Large pre-training, fixed epochs: LAMB from 512 to 32K (untuned, Table "
                      "4's rules; the LAMB rows are Table 4's runs) and 64K/32K mixed-batch with "
                      "re-warm-up, against BERT's AdamW baseline; the paper's times are on its "
                      "TPUs, ours on this machine; train minutes are the first seed's." +
                      (" The 64K/32K row is mixed_batch's re-warm-up run" + _multiplier_note(mixed)
                       + "." if len(mixed) and own_rows is not None
                       and "lamb_64K-32K" not in own_rows else "") +
                      _set_aside(stale + ladder_stale))
  return _rendered(1, f"Table 1: BERT pre-training with LAMB ({scale} scale)", rows,
                   ["solver", "batch"], pd.concat([frame, ladder]), notes, scale)


def table2(results_dir, scale: str) -> Rendered:
  paper = reported.load(2)
  squad = _squad_runs(results_dir, scale)
  frame, stale = runs.recorded_rows(_frame(results_dir, "table2", scale))
  ladder, ladder_rows, ladder_stale = _lamb_ladder(results_dir, scale)
  lars_rows = runs.rows_at_scale(frame)
  rows = []
  for batch, rep in paper.groupby("batch_size", sort=True):
    label = vocab.batch_label(int(batch))
    row = {"batch": rep.batch_size_text.iloc[0]}
    for optimizer, source, name, at_scale in (("LARS", frame, f"lars_{label}", lars_rows),
                                              ("LAMB", ladder, label, ladder_rows)):
      f1 = rep[rep.optimizer == optimizer].iloc[0]
      group = _where(source, "config.variant", name)
      row[f"paper {optimizer} F1"] = f1.value if f1.status == "ok" else f1.status
      shown = (_bert_measures(group, f1, select.unplaced(source), squad)
               if _expected(at_scale, name, group) else _bert_left_out(f1))
      for label_, m in shown.items():
        row[f"{optimizer}: {label_}"] = m
    rows.append(row)
  notes = _bert_notes(pd.concat([frame, ladder]), scale, results_dir,
                      "LARS against LAMB over the batch ladder (fixed epochs); LARS runs LAMB's "
                      "untuned learning rates and warmups (its own are not printed); the LAMB "
                      "column is Table 4's runs." + _set_aside(stale + ladder_stale))
  return _rendered(2, f"Table 2: LARS vs LAMB for BERT pre-training ({scale} scale)", rows,
                   ["batch"], pd.concat([frame, ladder]), notes, scale)


def table4(results_dir, scale: str) -> Rendered:
  paper = reported.load(4)
  squad = _squad_runs(results_dir, scale)
  frame, at_scale, stale = _lamb_ladder(results_dir, scale)
  unplaced = select.unplaced(frame)
  rows = []
  for batch, rep in paper.groupby("batch_size", sort=True):
    record = lambda metric: rep[rep.metric == metric].iloc[0]
    label = rep.batch_size_text.iloc[0]
    group = _where(frame, "config.variant", label)
    shown = (_bert_measures(group, record("f1"), unplaced, squad)
             if _expected(at_scale, label, group) else _bert_left_out(record("f1")))
    rows.append({"batch (paper)": label,
                 "batch run": _int_or_dash(_first(group, "config.batch_size")),
                 "learning rate": f"{record('learning_rate').value:.6g}",
                 "learning rate run": _rate_run(group),
                 "warmup ratio": f"{record('warmup_ratio').value:.6g}",
                 "steps run": _of_run(group, _first(group, "steps")),
                 "paper F1": record("f1").value, "paper EM": record("exact_match").value,
                 **shown})
  notes = _bert_notes(frame, scale, results_dir,
                      "Untuned LAMB across the batch ladder: square-root learning-rate scaling "
                      "and linear-epoch warmup (a ratio of all steps), fixed epochs." +
                      (f" This scale runs the rows {', '.join(sorted(at_scale, key=_batch_order))}"
                       f"; '{vocab.NOT_AT_SCALE}' marks the others." if at_scale else "") +
                      _set_aside(stale))
  return _rendered(4, f"Table 4: LAMB's batch ladder for BERT pre-training ({scale} scale)",
                   rows, ["batch (paper)"], frame, notes, scale)


def _last_train_record(path) -> dict:
  """The last training record of a run's metrics.jsonl ({} when it has none or is damaged)."""
  try:
    records = runs.metrics(path)
  except (OSError, ValueError, result_files.UnreadableError):
    return {}
  if not len(records) or "split" not in records or "loss" not in records:
    return {}
  train = records[(records.split == "train") & records["loss"].notna()]
  return train.iloc[-1].to_dict() if len(train) else {}


def _table8_runs(frame: pd.DataFrame, first) -> pd.DataFrame:
  """The runs of one printed (warmup, learning rate): cpu-scale runs scale every printed rate by
  the config's learning_rate_multiplier; runs that do not say their rate and warmup match none."""
  if not len(frame) or LR not in frame:
    return frame.iloc[0:0]
  multiplier = frame.get("config.learning_rate_multiplier", pd.Series(1.0, frame.index))
  printed = frame.assign(printed_lr=pd.to_numeric(frame[LR], errors="coerce")
                         / pd.to_numeric(multiplier, errors="coerce").fillna(1.0))
  matches = _close(printed, "printed_lr", first.learning_rate) \
      & _close(frame, "config.optimizer.schedule.warmup_ratio", first.warmup)
  return frame[matches]


def table8(results_dir, scale: str) -> Rendered:
  paper = reported.load(8)
  squad = _squad_runs(results_dir, scale)
  frame = _frame(results_dir, "table8", scale)
  unplaced = select.unplaced(frame)
  rows = []
  for _, rep in paper.groupby("row", sort=True):
    record = lambda metric: rep[rep.metric == metric].iloc[0]
    first = rep.iloc[0]
    group = _table8_runs(frame, first)
    last = _last_train_record(group["path"].iloc[0]) if len(group) else {}
    f1 = record("f1")
    rows.append({"warmup": first.warmup_text, "learning rate": first.learning_rate_text,
                 "learning rate run": _rate_run(group),
                 "paper last step": record("last_step").value_text,
                 "paper last loss": record("last_loss").value,
                 "paper F1": f1.value if f1.status == "ok" else f1.status,
                 "status": ", ".join(sorted(set(group.status))) or vocab.NOT_RUN,
                 "last step run": _of_run(group, float(last.get("step", math.nan)),
                                          _paper(record("last_step"))),
                 "last train loss": _of_run(group, float(last.get("loss", math.nan)),
                                            _paper(record("last_loss"))),
                 **_bert_measures(group, f1, unplaced, squad)})
  notes = _bert_notes(frame, scale, results_dir,
                      "AdamW at batch 16K (cpu scale: 256): warmup ratio x learning rate; the "
                      "paper's diverged runs stopped at step 28126, the first step at length 512.")
  return _rendered(8, f"Table 8: AdamW for BERT pre-training at 16K ({scale} scale)", rows,
                   ["warmup", "learning rate"], frame, notes, scale)


TABLES = {"table1": table1, "table2": table2, "table3": table3, "table4": table4,
          "table5": table5, "table6": table6, "table7": table7, "table8": table8,
          **{f"table{t}": tuning_grid(t) for t in range(9, 26)}}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("name", help="a table (" + ", ".join(TABLES) + ") or 'all'")
  parser.add_argument("--results_dir", default=str(runs.RESULTS))
  parser.add_argument("--scale", default="cpu", choices=("cpu", "paper"))
  parser.add_argument("--format", default="markdown", choices=tuple(FORMATS))
  args = parser.parse_args(argv)
  error = runs.check_results_dir(args.results_dir)
  if not error and args.name != "all" and args.name not in TABLES:
    error = f"unknown table {args.name!r}; known: {', '.join(TABLES)}"
  if error:
    print(f"error: {error}", file=sys.stderr)
    return 2
  names = list(TABLES) if args.name == "all" else [args.name]
  rendered = [TABLES[name](Path(args.results_dir), args.scale) for name in names]
  if args.format == "csv":  # one tidy frame: a single header for every table
    sys.stdout.write(to_csv(*rendered))
  else:
    sys.stdout.write("\n".join(FORMATS[args.format](r) for r in rendered))
  return 0


if __name__ == "__main__":
  sys.exit(main())
