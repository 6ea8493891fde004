"""Figures 9-14 (Appendix H.0.2): LAMB's per-layer trust ratio at six iterations of one ResNet-50
run (`figures9_14`, else Table 7's LAMB runs), layers in network order from input to output
(`layer_key`, `network_order`) and labelled by a short form of their parameter path
(`short_name`).
"""
from __future__ import annotations

import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis import runs, select
from analysis import vocabulary as vocab
from analysis.catalogue import E
from analysis.figures.plot import (LABEL, METRIC, SETTINGS, TICK, TITLE, NoData, _column,
                                   _finish, _frame, _title)
from lamb.train import results as result_files  # file formats only: no jax


# Layer names that open a network (stems, embeddings) or close it (heads, classifiers, poolers);
# every other name keeps its natural order (layer2 before layer10).
_FIRST = re.compile(r"^(stem|prep|input|embed|embeddings|embedding)$")
_LAST = re.compile(r"^(fc\d*|head|heads|classifier|pooler|linear|logits|cls|output_layer)$")


def _natural(text: str) -> tuple:
  return tuple(int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text))


def layer_key(path: str) -> tuple:
  """Sort key that puts parameter paths in network order, input to output."""
  return tuple((0 if _FIRST.match(p) else 2 if _LAST.match(p) else 1, _natural(p))
               for p in str(path).split("/"))


def network_order(paths) -> list:
  """The distinct paths in network order (see `layer_key`)."""
  return sorted(dict.fromkeys(paths), key=layer_key)


_SHORT = ((r"/(kernel|embedding|weight)$", ""), (r"^bert/", ""), (r"(^|/)encoder/", r"\1"),
          (r"layer_?(\d+)", r"L\1"), (r"block(\d+)", r"b\1"), (r"attention", "attn"),
          (r"_embeddings$", ""), (r"embeddings", "emb"), (r"/dense$", ""))


def short_name(path: str) -> str:
  """A tick label: 'layer1/block0/conv1/kernel' -> 'L1/b0/conv1'."""
  name = str(path)
  for pattern, repl in _SHORT:
    name = re.sub(pattern, repl, name)
  return name or str(path)


def _trust_runs(results_dir, scale) -> tuple:
  """(candidate LAMB runs best first, source, frame): figures9_14's run, else Table 7's LAMB
  runs with the setting `select` chooses first."""
  try:
    frame = _frame(results_dir, E.FIGURES9_14, scale)
    source = E.FIGURES9_14
  except NoData as e:
    try:
      frame = _frame(results_dir, E.TABLE7, scale)
    except NoData:
      raise NoData(f"{e}; nor of {E.TABLE7}, whose LAMB runs would serve") from None
    frame = frame[_column(frame, "config.optimizer.name") == "lamb"]
    source = f"{E.TABLE7} (LAMB)"
  choice = select.choose(frame, SETTINGS, METRIC)
  best = list(choice.best.runs.index) if choice.best is not None else []
  rank = {vocab.COMPLETED: 0, vocab.DIVERGED: 1}
  rest = sorted((i for i in frame.index if i not in best),
                key=lambda i: (rank.get(frame.at[i, "status"], 2), frame.at[i, "run"]))
  return frame.loc[best + rest], source, frame


def _read_trust(candidates) -> tuple:
  for _, row in candidates.iterrows():
    try:
      ratios = runs.trust_ratios(row["path"])
    except (result_files.UnreadableError, OSError, ValueError):
      continue
    if len(ratios):
      return row, ratios
  return None, None


def _adapted(ratios: pd.DataFrame) -> tuple:
  """(ratios of the layers LAMB adapts, how many were left out). A layer whose ratio is exactly
  1 at every recorded step is outside the adaptation mask (batch-norm parameters, biases)."""
  ratios = ratios.assign(ratio=pd.to_numeric(ratios["ratio"], errors="coerce"))
  sliced = ratios.groupby("path")["slice"].transform("max") > 0
  ratios["layer"] = np.where(sliced, ratios["path"] + "[" + ratios["slice"].astype(str) + "]",
                             ratios["path"])
  outside = ratios.groupby("layer")["ratio"].transform(lambda r: bool((r == 1.0).all()))
  return ratios[~outside.astype(bool)], ratios[outside.astype(bool)]["layer"].nunique()


def _six(steps: list) -> list:
  if len(steps) <= 6:
    return steps
  return [steps[round(i * (len(steps) - 1) / 5)] for i in range(6)]


def _layer_order(ratios: pd.DataFrame) -> list:
  pairs = ratios[["layer", "path", "slice"]].drop_duplicates("layer")
  ordered = sorted(zip(pairs["layer"], pairs["path"], pairs["slice"]),
                   key=lambda t: (layer_key(t[1]), int(t[2])))
  return [layer for layer, _, _ in ordered]


def trust_ratio(results_dir, scale):
  """Per-layer trust ratios at six iterations of one LAMB run (Figures 9-14), layers in network
  order."""
  candidates, source, frame = _trust_runs(results_dir, scale)
  row, ratios = _read_trust(candidates)
  if row is None:
    raise NoData(f"no readable trust_ratios.csv in the {source} runs")
  ratios, hidden = _adapted(ratios)
  if not len(ratios):
    raise NoData(f"every layer of {row['run']} has trust ratio 1 (nothing adapted)")
  layers = _layer_order(ratios)
  steps = sorted(ratios["step"].unique())
  picks = _six(steps)
  groups = [str(ratios.loc[ratios["layer"] == l, "path"].iloc[0]).split("/")[0] for l in layers]
  colors = [f"C{list(dict.fromkeys(groups)).index(g) % 10}" for g in groups]
  width = max(6.5, 0.15 * len(layers) + 1.5)
  fig, axes = plt.subplots(len(picks), 1, figsize=(width, 1.1 * len(picks) + 1.8), sharex=True,
                           sharey=True, layout="constrained")
  axes = np.atleast_1d(axes)
  for ax, step, number in zip(axes, picks, range(9, 15)):
    at = ratios[ratios["step"] == step].set_index("layer")["ratio"].reindex(layers)
    values = at.to_numpy(float, copy=True)
    values[~np.isfinite(values)] = np.nan  # an inf would stretch the log axis: leave a gap
    ax.bar(range(len(layers)), values, color=colors, width=0.8)
    ax.axhline(1.0, color="grey", lw=0.6, ls=":")
    ax.set_yscale("log")
    ax.set_title(f"Figure {number}: iteration {step}", fontsize=LABEL, loc="left", pad=2)
  fig.supylabel("trust ratio (log scale)", fontsize=LABEL)
  axes[-1].set_xticks(range(len(layers)))
  axes[-1].set_xticklabels([short_name(l) for l in layers], rotation=90, fontsize=TICK)
  axes[-1].set_xlabel("layer, input to output (bar colour: network stage)", fontsize=LABEL)
  axes[-1].set_xlim(-0.7, len(layers) - 0.3)
  note = (f"; {hidden} layers outside the adaptation mask (ratio always 1) not shown"
          if hidden else "")
  fig.suptitle(_title(f"LAMB trust ratio phi(||x||) / ||r + lambda x|| per layer at {len(picks)} "
                      f"of {len(steps)} recorded iterations; {source} run '{row['run']}'{note}",
                      scale, frame, width), fontsize=TITLE)
  return _finish(fig)
