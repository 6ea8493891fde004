"""Every figure of the paper, redrawn from `results/` (and its reported numbers), as PNG and PDF.

    python -m analysis.figures <name|grids|all> [--results_dir results] [--scale cpu|paper]
                               [--out_dir DIR] [--dpi N]

This package owns the drawing only. Runs, their status and divergence come from `analysis.runs`,
the setting a curve shows from `analysis.select` (best mean over complete seeds; a diverged
setting ranks last), labels from `analysis.vocabulary`, the paper's numbers from
`analysis.reported`.

    trust_ratio                 Figures 9-14  LAMB's per-layer trust ratios at six iterations
    figure1                     Figure 1      N-LAMB and NN-LAMB against LAMB, Nadam and momentum
    figure2                     Figure 2      adam-correction acts like learning-rate warmup
    figure3                     Figure 3      the trust-ratio norm: L1, L2, L-infinity
    figure4                     Figure 4      test accuracy per epoch of the Table 6 optimizers
    figure5                     Figure 5      validation loss against accuracy, every Table 6 run
    figure6                     Figure 6      BERT pre-training loss across batch sizes
    figure7                     Figure 7      mixed-batch BERT pre-training loss
    figure8                     Figure 8      scaling efficiency (paper's Table 1 times, cost model)
    imagenet_ladders            Tables 3, 5   LAMB, momentum and LARS across ImageNet batch sizes
    table9_grid .. table25_grid Tables 9-25   a tuning grid, paper above measured (`grids`: all)

What every figure keeps to: the title says the scale and, below paper scale, the stand-in data; a
curve is the mean over the seeds of the chosen setting, with a shaded min-max band when it has
several seeds; a diverged run is marked (legend entry, x marker, hatched cell) and never drawn at
its blown-up values; legends sit outside the axes. A figure with nothing to draw raises `NoData`
with a one-line reason. `render` draws them all, writes each file atomically and says why the
others were skipped; the CLI is `render` plus exit statuses (0 for `all`, 1 when a named figure
has nothing to draw, 2 with one `error:` line for a missing results folder or an unknown name).

The modules follow the paper's experiments as the configs and the README group them:

    plot          colours, titles, legends, curves and saving: what every figure shares
    trust_ratios  Figures 9-14          LAMB's trust ratios through ResNet-50 (Appendix H.0.2)
    imagenet      Figures 1-3, ladders  ResNet-50 ablations (Appendices D-F), Tables 3 and 5
    small_images  Figures 4, 5          the Table 6 optimizers on CIFAR-10 (Appendix G)
    bert          Figures 6, 7          BERT pre-training loss (Appendix H.0.1)
    systems       Figure 8              scaling efficiency from Table 1's times (Appendix H.0.1)
    grids         Tables 9-25           the ImageNet tuning grids as heat maps (Appendix H.1)

Callers import everything from here (`from analysis import figures`): `FIGURES` names each figure
the command line takes.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

# Before any module of the package loads pyplot: files only, no display.
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from analysis import runs  # noqa: E402
from analysis.figures.bert import figure6, figure7  # noqa: E402
from analysis.figures.grids import GRID_TABLES, _grid_figure  # noqa: E402
from analysis.figures.imagenet import (  # noqa: E402
    FIGURE2_LABELS, LADDER_SOURCES, NORMS, figure1, figure2, figure3, imagenet_ladders)
from analysis.figures.plot import (  # noqa: E402
    BAND, CELL, COLORS, CURVES, DPI, LABEL, LEGEND, METRIC, SETTINGS, TICK, TITLE, Curve, Entry,
    NoData, _save)
from analysis.figures.small_images import figure4, figure5  # noqa: E402
from analysis.figures.systems import BERT_BATCH_PER_CHIP, BERT_LARGE, figure8  # noqa: E402
from analysis.figures.trust_ratios import (  # noqa: E402
    layer_key, network_order, short_name, trust_ratio)

__all__ = ["ALIASES", "BAND", "BERT_BATCH_PER_CHIP", "BERT_LARGE", "CELL", "COLORS", "CURVES",
           "Curve", "DPI", "Entry", "FIGURE2_LABELS", "FIGURES", "GRID_TABLES", "LABEL",
           "LADDER_SOURCES", "LEGEND", "METRIC", "NORMS", "NoData", "SETTINGS", "TICK", "TITLE",
           "figure1", "figure2", "figure3", "figure4", "figure5", "figure6", "figure7", "figure8",
           "imagenet_ladders", "layer_key", "main", "network_order", "plt", "render",
           "short_name", "trust_ratio"]

FIGURES = {"trust_ratio": trust_ratio, "figure1": figure1, "figure2": figure2,
           "figure3": figure3, "figure4": figure4, "figure5": figure5, "figure6": figure6,
           "figure7": figure7, "figure8": figure8, "imagenet_ladders": imagenet_ladders,
           **{f"table{t}_grid": _grid_figure(t) for t in GRID_TABLES}}
ALIASES = {"grids": [f"table{t}_grid" for t in GRID_TABLES]}


def render(results_dir, scale: str, out_dir, formats=("png", "pdf"), dpi: int = DPI,
           names=None) -> list:
  """Draw every figure (or `names`) into `out_dir` as `<name>_<scale>.<format>`.

  Returns (name, path of its first format or None, why it was not drawn or '') per figure."""
  out = []
  for name in (names or list(FIGURES)):
    try:
      fig = FIGURES[name](Path(results_dir), scale)
    except NoData as e:
      out.append((name, None, str(e)))
      continue
    try:
      paths = [_save(fig, Path(out_dir) / f"{name}_{scale}.{ext}", ext, dpi) for ext in formats]
    finally:
      plt.close(fig)
    out.append((name, paths[0] if paths else None, "" if paths else "no format asked for"))
  return out


def main(argv=None, prog=None) -> int:
  parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
  parser.add_argument("name", help="a figure (" + ", ".join([*FIGURES, *ALIASES]) + ") or 'all'")
  parser.add_argument("--results_dir", default=str(runs.RESULTS))
  parser.add_argument("--scale", default="cpu", choices=("cpu", "paper"))
  parser.add_argument("--out_dir", default=None, help="default: <results_dir>/figures")
  parser.add_argument("--dpi", type=int, default=DPI)
  args = parser.parse_args(argv)
  if runs.check_results_dir(args.results_dir):
    print(f"error: {runs.check_results_dir(args.results_dir)}", file=sys.stderr)
    return 2
  if args.name != "all" and args.name not in FIGURES and args.name not in ALIASES:
    print(f"error: unknown figure {args.name!r}; known: {', '.join([*FIGURES, *ALIASES])}, all",
          file=sys.stderr)
    return 2
  names = list(FIGURES) if args.name == "all" else ALIASES.get(args.name, [args.name])
  out = Path(args.out_dir or Path(args.results_dir) / "figures")
  drawn = 0
  for name, path, reason in render(args.results_dir, args.scale, out, dpi=args.dpi, names=names):
    print(f"{name}: {path}" if path else f"{name}: skipped ({reason})")
    drawn += path is not None
  return 0 if drawn or args.name == "all" else 1

