"""The rendering layer of the tables: a measured cell (`Measure`), a rendered table
(`Rendered`), its three outputs (markdown for the report, the tidy CSV, LaTeX) and the notes that
every table carries under it (the scale, the data, the runs no number shows). Nothing here knows
a table of the paper; `bert`, `imagenet` and `small_images` lay the tables out.
"""
from __future__ import annotations

import dataclasses
import io
import math
import re
from typing import Optional, Sequence

import pandas as pd

from analysis import reported, runs
from analysis import vocabulary as vocab


PARTIAL = "partial"  # a tidy status: a cell with a value, some of whose runs could not count
TIDY_COLUMNS = ("table", "row_keys", "column", "reported", "measured", "spread", "seeds", "status",
                "scale", "reported_text", "measured_text")
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
    notes.append(f"Diverged ({runs.diverged_means()}; analysis.runs): "
                 + _named([f"{run}: {why}" for run, why in diverged.items()]) + ".")
  if not len(frame):
    return notes
  unplaceable = [s for s in vocab.BLOCKING if s not in (vocab.FAILED, vocab.INCOMPLETE)]
  lost = frame[frame.status.isin(unplaceable)]
  if len(lost):
    notes.append("Unreadable, misplaced, renamed, duplicate or edited runs (named in the cells "
                 "they may belong to): "
                 + _named([f"{r.run} ({r.status}: {r.error})" for r in lost.itertuples()]) + ".")
  placed = {run for m in measures for run in m.runs}
  astray = [r for r, s in zip(frame.run, frame.status)
            if r not in placed and s not in unplaceable]
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


# --- notes under every table -----------------------------------------------------------------

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
