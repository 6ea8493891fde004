"""Regenerate the paper's tables from `results/`, reported numbers beside measured ones.

    python -m analysis.tables table7 [--results_dir results] [--scale cpu] [--format markdown|csv|latex]
    python -m analysis.tables all
"""
from __future__ import annotations

import argparse
import io
import math
import sys
from pathlib import Path

import pandas as pd

from analysis import reported, runs

OPTIMIZER_LABELS = {"momentum": "Momentum", "adagrad": "Adagrad", "adam": "Adam",
                    "adamw": "AdamW", "lamb": "LAMB", "lars": "LARS", "nlamb": "N-LAMB",
                    "nnlamb": "NN-LAMB", "nadam": "Nadam"}


class Rendered:
  """A table plus the lines that say what it is (scale, stand-in data, shrink)."""

  def __init__(self, title: str, frame: pd.DataFrame, notes: list):
    self.title, self.frame, self.notes = title, frame, notes


def _fmt(value) -> str:
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return "-"
  if isinstance(value, float):
    return f"{value:.4g}" if abs(value) < 1e-3 and value != 0 else f"{value:.4f}".rstrip("0").rstrip(".") if abs(value) >= 1 else f"{value:.4f}"
  return str(value)


def to_markdown(r: Rendered) -> str:
  cols = list(r.frame.columns)
  lines = [f"### {r.title}", ""]
  lines.append("| " + " | ".join(cols) + " |")
  lines.append("|" + "|".join("---" for _ in cols) + "|")
  for _, row in r.frame.iterrows():
    lines.append("| " + " | ".join(_fmt(row[c]) for c in cols) + " |")
  lines.append("")
  lines += [f"- {n}" for n in r.notes]
  return "\n".join(lines) + "\n"


def to_csv(r: Rendered) -> str:
  buf = io.StringIO()
  r.frame.to_csv(buf, index=False)
  return buf.getvalue()


def to_latex(r: Rendered) -> str:
  cols = list(r.frame.columns)
  esc = lambda s: str(s).replace("_", r"\_").replace("%", r"\%").replace("±", r"$\pm$")
  lines = [r"\begin{table}[h]", r"\centering", r"\begin{tabular}{" + "l" * len(cols) + "}",
           r"\toprule", " & ".join(esc(c) for c in cols) + r" \\", r"\midrule"]
  for _, row in r.frame.iterrows():
    lines.append(" & ".join(esc(_fmt(row[c])) for c in cols) + r" \\")
  lines += [r"\bottomrule", r"\end{tabular}", r"\caption{" + esc(r.title + ". " + " ".join(r.notes)) + "}",
            r"\end{table}"]
  return "\n".join(lines) + "\n"


FORMATS = {"markdown": to_markdown, "csv": to_csv, "latex": to_latex}


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


def tuned_by_optimizer(frame: pd.DataFrame, metric: str = "final.accuracy") -> pd.DataFrame:
  """Per optimizer: mean/std over seeds at each learning rate, then the best learning rate.

  Only a learning rate at which every seed completed can be chosen (the paper prints a setting
  with diverged runs as "diverge"); an optimizer with no such rate is reported as diverged.
  """
  out = []
  for name, group in frame.groupby("config.optimizer.name", sort=False):
    row = {"optimizer": name, "runs": len(group), "diverged": int((group.status == "diverged").sum()),
           "failed_or_incomplete": int(group.status.isin(["failed", "incomplete"]).sum())}
    lrs = group.groupby("config.optimizer.learning_rate")
    complete = [lr for lr, g in lrs if (g.status == "completed").all()]
    per_lr = group[group["config.optimizer.learning_rate"].isin(complete)].groupby(
        "config.optimizer.learning_rate")[metric].agg(["mean", "std", "count"])
    if len(per_lr):
      best_lr = per_lr["mean"].idxmax()
      row.update(best_lr=best_lr, mean=per_lr.loc[best_lr, "mean"],
                 std=per_lr.loc[best_lr, "std"], seeds=int(per_lr.loc[best_lr, "count"]))
    elif row["diverged"]:
      row["status"] = "diverge"
    out.append(row)
  return pd.DataFrame(out)


def table7(results_dir, scale: str) -> Rendered:
  paper = reported.load(7)
  frame = runs.load(results_dir, "table7")
  frame = frame[frame.scale == scale] if len(frame) else frame
  measured = tuned_by_optimizer(frame) if len(frame) else pd.DataFrame()
  rows = []
  for _, rep in paper.iterrows():
    key = rep.optimizer.lower()
    m = measured[measured.optimizer == key].iloc[0] if len(measured) and key in set(measured.optimizer) else None
    mean = m["mean"] if m is not None and "mean" in m and pd.notna(m.get("mean")) else float("nan")
    std = m["std"] if m is not None and pd.notna(m.get("std")) else float("nan")
    rows.append({
        "optimizer": rep.optimizer,
        "paper accuracy (avg of 5)": rep.value,
        "measured accuracy (mean ± std over seeds)":
            (m.get("status") if m is not None and isinstance(m.get("status"), str) else "-")
            if math.isnan(mean) else (f"{mean:.4f} ± {std:.4f}" if not math.isnan(std)
                                          else f"{mean:.4f} (1 seed)"),
        "difference": float("nan") if math.isnan(mean) else mean - rep.value,
        "best lr": m["best_lr"] if m is not None and "best_lr" in m else float("nan"),
        "seeds": int(m["seeds"]) if m is not None and pd.notna(m.get("seeds")) else 0,
        "runs (diverged)": f"{int(m['runs'])} ({int(m['diverged'])})" if m is not None else "0",
    })
  notes = _scale_notes(frame, scale) if len(frame) else [f"No runs found under {results_dir} for scale {scale}."]
  batches = sorted(set(frame["config.batch_size"].dropna().astype(int))) if len(frame) else [1024]
  notes.insert(0, f"Test accuracy of LeNet-5 on MNIST, batch {', '.join(map(str, batches))}; "
                  "learning rate tuned per optimizer (best mean over seeds).")
  return Rendered(f"Table 7: MNIST with LeNet-5 ({scale} scale)", pd.DataFrame(rows), notes)


TABLES = {"table7": table7}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("name", help="a table (" + ", ".join(TABLES) + ") or 'all'")
  parser.add_argument("--results_dir", default=str(runs.RESULTS))
  parser.add_argument("--scale", default="cpu", choices=("cpu", "paper"))
  parser.add_argument("--format", default="markdown", choices=tuple(FORMATS))
  args = parser.parse_args(argv)
  names = list(TABLES) if args.name == "all" else [args.name]
  for name in names:
    if name not in TABLES:
      print(f"error: unknown table {name!r}; known: {', '.join(TABLES)}", file=sys.stderr)
      return 2
    sys.stdout.write(FORMATS[args.format](TABLES[name](Path(args.results_dir), args.scale)))
  return 0


if __name__ == "__main__":
  sys.exit(main())
