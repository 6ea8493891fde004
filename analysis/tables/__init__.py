"""The paper's Tables 1-25 regenerated from `results/`: every printed row, the paper's number
beside the measured one, as markdown (the report), tidy CSV (one row per measured cell) or LaTeX.

    python -m analysis.tables table7 [--results_dir results] [--scale cpu|paper]
                                     [--format markdown|csv|latex]
    python -m analysis.tables all --format csv

This package owns the layout of each table (which printed row matches which runs) and the three
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

The modules follow the paper's experiments as the configs and the README group them:

    render        Measure, Rendered, the three outputs and the notes every table carries
    rows          which runs a printed row holds, and the cell they make
    bert          Tables 1, 2, 4, 8     BERT-Large pre-training (Section 4.1)
    imagenet      Tables 3, 5, 9-25     ImageNet/ResNet-50 (Section 4.2, Appendix H.1's grids)
    small_images  Tables 6, 7           CIFAR-10/DavidNet and MNIST/LeNet-5 (Appendix G)

Callers import everything from here (`from analysis import tables`): `TABLES` names each table the
command line takes.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis import runs
from analysis.catalogue import TUNING_GRID
from analysis.tables.bert import (BERT_LOSS, BERT_LOSS_LABEL, BERT_METRIC, BERT_METRIC_LABEL, F1,
                                  SQUAD_EM_LABEL, SQUAD_F1_LABEL, table1, table2, table4, table8)
from analysis.tables.imagenet import table3, table5, tuning_grid
from analysis.tables.render import (FORMATS, MAX_NAMED, PARTIAL, TIDY_COLUMNS, Measure,
                                    Rendered, to_csv, to_latex, to_markdown)
from analysis.tables.rows import ACCURACY, LR, NO_PAPER, OPTIMIZER, WD
from analysis.tables.small_images import SELECTION_NOTE, table6, table7

__all__ = ["ACCURACY", "BERT_LOSS", "BERT_LOSS_LABEL", "BERT_METRIC", "BERT_METRIC_LABEL", "F1",
           "FORMATS", "LR", "MAX_NAMED", "Measure", "NO_PAPER", "OPTIMIZER", "PARTIAL",
           "Rendered", "SELECTION_NOTE", "SQUAD_EM_LABEL", "SQUAD_F1_LABEL", "TABLES",
           "TIDY_COLUMNS", "WD", "main", "table1", "table2", "table3", "table4", "table5",
           "table6", "table7", "table8", "to_csv", "to_latex", "to_markdown", "tuning_grid"]

TABLES = {"table1": table1, "table2": table2, "table3": table3, "table4": table4,
          "table5": table5, "table6": table6, "table7": table7, "table8": table8,
          **{f"table{t}": tuning_grid(t) for t in TUNING_GRID}}


def main(argv=None, prog=None) -> int:
  parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
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

