"""Regenerate the paper's figures from `results/` (and its reported numbers), as PNG and PDF.

    python -m analysis.figures <name|all> [--results_dir results] [--scale cpu] [--out_dir DIR]

Each figure says in its title the scale it was measured at; reported numbers are drawn from
`analysis/reported/` and labelled "paper". A figure whose runs are missing is skipped with a
one-line reason (exit status 0 for `all`, 1 when a named figure has nothing to draw).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis import reported, runs  # noqa: E402
from lamb.train import cost_model  # noqa: E402  (pure Python: no jax)

OPTIMIZER_LABELS = {"momentum": "Momentum", "adagrad": "Adagrad", "adam": "Adam",
                    "adamw": "AdamW", "lamb": "LAMB", "lars": "LARS", "nlamb": "N-LAMB",
                    "nnlamb": "NN-LAMB", "nadam": "Nadam"}


class NoData(Exception):
  """Nothing to draw: the message says which runs are missing."""


def _frame(results_dir, experiment, scale) -> pd.DataFrame:
  frame = runs.load(results_dir, experiment)
  frame = frame[frame.scale == scale] if len(frame) else frame
  if not len(frame):
    raise NoData(f"no {scale}-scale runs of {experiment} under {results_dir} "
                 f"(python experiments/run.py --config={experiment})")
  return frame


def _evals(path) -> pd.DataFrame:
  m = runs.metrics(path)
  return m[m.split == "eval"] if len(m) else m


def _scale_title(title: str, scale: str, frame=None) -> str:
  data = ""
  if frame is not None and "data" in frame and frame["data"].notna().any() and scale != "paper":
    data = " - " + str(frame["data"].dropna().iloc[0]).split(" (")[0].split(" from ")[0]
  return f"{title}\n({scale} scale{data})"


def _best_per_group(frame, group_col, metric="final.accuracy"):
  """The completed run with the best `metric` in each group."""
  done = frame[frame.status == "completed"].copy()
  if not len(done) or metric not in done or group_col not in done:
    raise NoData("no completed runs")
  done[metric] = pd.to_numeric(done[metric], errors="coerce")
  done = done.dropna(subset=[metric])
  if not len(done):
    raise NoData("no completed runs")
  return done.loc[done.groupby(group_col)[metric].idxmax()]


# --- Figures 9-14: LAMB trust ratios ----------------------------------------------------------

def trust_ratio(results_dir, scale):
  """Per-layer trust ratios at six iterations of one LAMB run (Figures 9-14)."""
  try:
    frame = _frame(results_dir, "figures9_14", scale)
    source = "figures9_14"
  except NoData:
    frame = _frame(results_dir, "table7", scale)
    frame = frame[frame["config.optimizer.name"] == "lamb"]
    source = "table7 (LAMB)"
  frame = frame[frame.status == "completed"]
  frame = frame.assign(_acc=pd.to_numeric(frame.get("final.accuracy"), errors="coerce"))
  frame = frame.sort_values("_acc", ascending=False)  # the best run first
  paths = [Path(p) for p in frame.path if (Path(p) / "trust_ratios.csv").exists()]
  if not paths:
    raise NoData(f"no trust_ratios.csv in the {source} runs")
  ratios = runs.trust_ratios(paths[0])
  ratios["layer"] = ratios.path + np.where(ratios.groupby("path").slice.transform("max") > 0,
                                           "[" + ratios.slice.astype(str) + "]", "")
  # Layers whose ratio is exactly 1 at every recorded step are outside the adaptation mask
  # (batch-norm parameters, biases): LAMB leaves them alone, so they are not drawn.
  adapted = ratios.groupby("layer").ratio.transform(lambda r: not (r == 1.0).all())
  hidden = ratios[~adapted.astype(bool)].layer.nunique()
  ratios = ratios[adapted.astype(bool)]
  steps = sorted(ratios.step.unique())
  picks = [steps[round(i * (len(steps) - 1) / 5)] for i in range(6)] if len(steps) >= 6 else steps
  layers = list(dict.fromkeys(ratios.layer))
  fig, axes = plt.subplots(len(picks), 1, figsize=(max(8, 0.18 * len(layers) + 3),
                                                    2.1 * len(picks)), sharex=True)
  axes = np.atleast_1d(axes)
  for ax, step, number in zip(axes, picks, range(9, 15)):
    at = ratios[ratios.step == step].set_index("layer").reindex(layers)
    ax.bar(range(len(layers)), at.ratio.values, color="tab:blue")
    ax.set_yscale("log")
    ax.set_ylabel("trust ratio")
    ax.set_title(f"Figure {number}: iteration {step}", fontsize=9, loc="left")
  axes[-1].set_xticks(range(len(layers)))
  axes[-1].set_xticklabels(layers, rotation=90, fontsize=6)
  axes[-1].set_xlabel("layer (parameter path)")
  fig.suptitle(_scale_title(f"LAMB trust ratio phi(||x||)/||r + lambda x|| per layer, "
                            f"{source}, run {paths[0].name}"
                            + (f"; {hidden} layers outside the adaptation mask (ratio 1) not "
                               "shown" if hidden else ""), scale, frame), fontsize=10)
  fig.tight_layout()
  return fig


# --- Figures 4 and 5: the Table 6 optimizers ----------------------------------------------------

def figure4(results_dir, scale):
  """Test accuracy against epoch of each Table 6 optimizer at its best setting."""
  frame = _frame(results_dir, "table6", scale)
  best = _best_per_group(frame, "config.optimizer.name")
  fig, ax = plt.subplots(figsize=(6.5, 4.2))
  for _, row in best.iterrows():
    ev = _evals(row.path)
    epochs = ev.step / (row["total_steps"] / row["config.num_epochs"])
    label = (f"{OPTIMIZER_LABELS.get(row['config.optimizer.name'], row['config.optimizer.name'])}"
             f" (lr {row['config.optimizer.learning_rate']:g})")
    ax.plot(epochs, ev.accuracy, marker="o", ms=3, label=label)
  paper = reported.load(6)
  for _, rep in paper.iterrows():
    ax.axhline(rep.value, ls=":", lw=0.8, color="grey")
  ax.set_xlabel("epoch")
  ax.set_ylabel("test accuracy")
  ax.legend(fontsize=8)
  ax.set_title(_scale_title("Figure 4: test accuracy of the Table 6 optimizers (best setting "
                            "each); dotted: the paper's final accuracies", scale, frame),
               fontsize=9)
  fig.tight_layout()
  return fig


def figure5(results_dir, scale):
  """Validation loss against validation accuracy of every completed Table 6 run."""
  frame = _frame(results_dir, "table6", scale)
  done = frame[frame.status == "completed"].copy()
  if not len(done) or "final.loss" not in done:
    raise NoData("no completed table6 runs")
  fig, ax = plt.subplots(figsize=(6.5, 4.2))
  for name, group in done.groupby("config.optimizer.name"):
    ax.scatter(group["final.loss"], group["final.accuracy"], s=12,
               label=OPTIMIZER_LABELS.get(name, name))
  ax.set_xscale("log")
  ax.set_xlabel("final validation loss (log)")
  ax.set_ylabel("final validation accuracy")
  ax.legend(fontsize=8)
  ax.set_title(_scale_title("Figure 5: a lower validation loss does not mean a higher accuracy "
                            "(every Table 6 run)", scale, frame), fontsize=9)
  fig.tight_layout()
  return fig


# --- Figures 1-3: the ResNet-50 ablations -------------------------------------------------------

def _curves(results_dir, scale, experiment, group_col, title, labels=None):
  frame = _frame(results_dir, experiment, scale)
  best = _best_per_group(frame, group_col)
  fig, ax = plt.subplots(figsize=(6.5, 4.2))
  for _, row in best.iterrows():
    ev = _evals(row.path)
    epochs = ev.step / (row["total_steps"] / row["config.num_epochs"])
    key = row[group_col]
    ax.plot(epochs, ev.accuracy, marker="o", ms=3, label=(labels or {}).get(key, str(key)))
  ax.set_xlabel("epoch")
  ax.set_ylabel("top-1 validation accuracy")
  ax.legend(fontsize=8)
  ax.set_title(_scale_title(title, scale, frame), fontsize=9)
  fig.tight_layout()
  return fig


def figure1(results_dir, scale):
  frame = _frame(results_dir, "figure1", scale)
  frame = frame.assign(family=frame["config.optimizer.name"])
  best = _best_per_group(frame, "family")
  fig, ax = plt.subplots(figsize=(6.5, 4.2))
  for _, row in best.iterrows():
    ev = _evals(row.path)
    epochs = ev.step / (row["total_steps"] / row["config.num_epochs"])
    ax.plot(epochs, ev.accuracy, marker="o", ms=3,
            label=OPTIMIZER_LABELS.get(row.family, row.family)
            + (f" (best lr {row['config.optimizer.learning_rate']:g})" if row.family == "nadam"
               else ""))
  ax.set_xlabel("epoch")
  ax.set_ylabel("top-1 validation accuracy")
  ax.legend(fontsize=8)
  batch = pd.to_numeric(frame["config.batch_size"], errors="coerce").dropna() \
      if "config.batch_size" in frame else pd.Series(dtype=float)
  run_batch = f" (batch {batch.iloc[0]:g} run)" if scale != "paper" and len(batch) else ""
  ax.set_title(_scale_title("Figure 1: N-LAMB and NN-LAMB against LAMB, Nadam and momentum, "
                            f"batch 32K{run_batch}", scale, frame), fontsize=9)
  fig.tight_layout()
  return fig


def figure2(results_dir, scale):
  labels = {"correction_warmup": "adam-correction + warmup",
            "correction_nowarmup": "adam-correction, no warmup",
            "nocorrection_warmup": "no adam-correction, warmup",
            "nocorrection_nowarmup": "no adam-correction, no warmup"}
  return _curves(results_dir, scale, "figure2", "config.variant",
                 "Figure 2: adam-correction acts like learning-rate warmup (LAMB, 16K)", labels)


def figure3(results_dir, scale):
  frame = _frame(results_dir, "figure3", scale)
  done = frame[frame.status == "completed"]
  if not len(done) or "config.optimizer.kwargs.norm" not in done:
    raise NoData("no completed figure3 runs")
  fig, ax = plt.subplots(figsize=(5.5, 4.0))
  norms = ["l1", "l2", "linf"]
  for i, norm in enumerate(norms):
    values = done[done["config.optimizer.kwargs.norm"] == norm]["final.accuracy"].astype(float)
    ax.scatter([i] * len(values), values, color="tab:blue", s=18)
    if len(values):
      ax.hlines(values.mean(), i - 0.2, i + 0.2, color="tab:red")
  ax.set_xticks(range(len(norms)))
  ax.set_xticklabels(["L1", "L2", "L-infinity"])
  ax.set_ylabel("top-1 validation accuracy (dots: seeds; bar: mean)")
  ax.set_title(_scale_title("Figure 3: the trust-ratio norm in LAMB (16K)", scale, frame),
               fontsize=9)
  fig.tight_layout()
  return fig


# --- Figures 6 and 7: BERT pre-training loss curves ---------------------------------------------

def _train_losses(path) -> pd.DataFrame:
  m = runs.metrics(path)
  if "split" not in m or "loss" not in m:
    raise NoData(f"no train losses in {path}")
  m = m[(m["split"] == "train") & m["loss"].notna()]
  if not len(m):
    raise NoData(f"no train losses in {path}")
  return m


def _smoothed(loss: pd.Series, points: int = 100) -> tuple:
  """A centred rolling mean over ~1/points of the run (per-step losses of small batches are
  too noisy to compare runs by eye), and its window."""
  window = max(1, len(loss) // points)
  return loss.rolling(window, center=True, min_periods=1).mean(), window


def figure6(results_dir, scale):
  """Training loss against the fraction of training, one curve per batch of the ladder (every
  step is recorded, so Table 4's runs serve when figure6's own are absent)."""
  try:
    frame, source = _frame(results_dir, "figure6", scale), "figure6"
  except NoData:
    frame, source = _frame(results_dir, "table4", scale), "table4"
  frame = frame[frame.status.isin(["completed", "diverged"])]
  if not len(frame):
    raise NoData(f"no finished {source} runs")
  frame = frame.assign(_batch=pd.to_numeric(frame.get("config.batch_size"), errors="coerce"))
  fig, ax = plt.subplots(figsize=(6.5, 4.2))
  for _, row in frame.sort_values("_batch").iterrows():
    m = _train_losses(row.path)
    total = row["total_steps"] or m.step.max()
    label = row.get("config.variant") or f"batch {row._batch:g}"
    loss, window = _smoothed(m.loss.reset_index(drop=True))
    smoothing = f", mean of {window} steps" if window > 1 else ""
    ax.plot((m.step / total).to_numpy(), loss.to_numpy(), lw=1.0,
            label=f"{label} (batch {row._batch:g} run{smoothing})")
  ax.set_xlabel("fraction of training (steps / total steps)")
  ax.set_ylabel("training loss (masked LM + NSP), rolling mean")
  ax.legend(fontsize=7)
  ax.set_title(_scale_title(f"Figure 6: LAMB's BERT pre-training loss across batch sizes "
                            f"({source} runs)", scale, frame), fontsize=9)
  fig.tight_layout()
  return fig


def figure7(results_dir, scale):
  """The mixed-batch run's training loss, with the phase switch marked."""
  frame = _frame(results_dir, "figure7", scale)
  frame = frame[frame.status.isin(["completed", "diverged"])]
  if not len(frame):
    raise NoData("no finished figure7 run")
  row = frame.iloc[0]
  m = _train_losses(row.path)
  fig, ax = plt.subplots(figsize=(6.5, 4.2))
  ax.plot(m.step, m.loss, lw=0.8, label="training loss")
  if "phase" in m:
    switch = m[m.phase != m.phase.iloc[0]].step.min()
    if pd.notna(switch):
      ax.axvline(switch, ls="--", color="grey", label="phase 2: longer sequences, smaller batch, "
                                                      "learning rate re-warmed")
  ax.set_xlabel("step")
  ax.set_ylabel("training loss (masked LM + next sentence)")
  ax.legend(fontsize=7)
  ax.set_title(_scale_title("Figure 7: LAMB's mixed-batch BERT pre-training", scale, frame),
               fontsize=9)
  fig.tight_layout()
  return fig


# --- Figure 8: scaling efficiency from Table 1 ---------------------------------------------------

# BERT-Large for the cost model's curve: one TPU v3 chip per 32 sequences (Table 1), 9/10 of
# the steps at length 128 and 1/10 at 512 (Section 4.1), FLOPs per sequence of length s from
# the usual analytic count 6 N s + 12 L s^2 h (N = 302M non-embedding weights, L = 24 layers,
# h = 1024; Kaplan et al. 2020), float32 gradients of all 336M parameters on the ring.
BERT_BATCH_PER_CHIP = 32
BERT_LARGE = dict(weights=302e6, params=336.2e6, layers=24, hidden=1024)


def _bert_flops(length: int) -> float:
  b = BERT_LARGE
  return 6 * b["weights"] * length + 12 * b["layers"] * length ** 2 * b["hidden"]


def _predicted_hours(batch: int, steps: int) -> float:
  """The cost model's time for a Table 1 row (`run.py --config=table1:paper --estimate` gives
  the same with XLA's own FLOP count)."""
  hardware = cost_model.slice_from("tpu_v3", batch // BERT_BATCH_PER_CHIP)
  phases = [cost_model.Phase(f"seq{length}", n, batch, _bert_flops(length),
                             optimizer_flops=20 * BERT_LARGE["params"])
            for length, n in ((128, round(0.9 * steps)), (512, steps - round(0.9 * steps)))]
  return cost_model.run_seconds(phases, 4 * BERT_LARGE["params"], hardware) / 3600


def figure8(results_dir, scale):
  """Speedup against TPU chips from Table 1's reported times (the paper's own numbers)."""
  del results_dir, scale
  t1 = reported.load(1)
  times = t1[t1.metric == "time_hours"]
  base = times[(times.optimizer == "LAMB") & (times.batch_size_text == "512")].iloc[0]
  fig, ax = plt.subplots(figsize=(6.0, 4.2))
  rows = []
  for _, r in times[times.optimizer == "LAMB"].iterrows():
    speedup = base.value / r.value
    rows.append((int(r.tpus), speedup, r.batch_size_text))
  plain = [r for r in rows if "/" not in r[2]]
  mixed = [r for r in rows if "/" in r[2]]
  xs = [r[0] for r in rows]
  ax.plot([r[0] for r in plain], [r[1] for r in plain], marker="o",
          label="LAMB (paper, Table 1 times)")
  if mixed:
    ax.scatter([r[0] for r in mixed], [r[1] for r in mixed], marker="*", s=120, color="tab:red",
               zorder=3, label="LAMB mixed batch (paper)")
  ideal = sorted(set(xs))
  ax.plot(ideal, [x / base.tpus for x in ideal], ls="--", color="grey", label="linear")
  steps = t1[(t1.metric == "steps") & (t1.optimizer == "LAMB")]
  steps = {int(r.batch_size): int(r.value) for _, r in steps.iterrows()
           if str(r.batch_size).isdigit()}
  predicted = {b: _predicted_hours(b, n) for b, n in sorted(steps.items())}
  if 512 in predicted:
    chips = [b // BERT_BATCH_PER_CHIP for b in predicted]
    ax.plot(chips, [predicted[512] / h for h in predicted.values()], marker="s", ms=4,
            ls=":", color="tab:green",
            label=f"cost model (TPU v3 at {cost_model.DEFAULT_UTILISATION:.0%} of peak, "
                  "analytic FLOPs)")
  for x, s, label in rows:
    ax.annotate(label, (x, s), textcoords="offset points", xytext=(4, -10), fontsize=7)
  eff = reported.figures()
  eff = eff[(eff.figure == "Figure 8") & (eff.quantity == "scaling_efficiency_percent")]
  ax.set_xscale("log", base=2)
  ax.set_yscale("log", base=2)
  ax.set_xlabel("TPUv3 chips")
  ax.set_ylabel(f"speedup over {int(base.tpus)} chips")
  ax.legend(fontsize=8)
  note = f"paper: {eff.value.iloc[0]:g}% efficiency at 64x" if len(eff) else ""
  if 512 in predicted and 32768 in predicted:
    note += (f", cost model: {100 * predicted[512] / predicted[32768] / 64:.1f}% (no input, host or "
             "straggler time in the model)")
  ax.set_title("Figure 8: scaling BERT pre-training (paper's Table 1 times and the cost model)\n"
               + note + "\nper row: run.py --config=table1:paper --estimate", fontsize=8)
  fig.tight_layout()
  return fig


# --- the tuning grids as heatmaps -------------------------------------------------------------

def _grid(frame_rep, frame_run, value_rep, value_run):
  lrs = sorted(set(frame_rep.learning_rate.dropna()))
  rows = sorted(set(frame_rep.get("weight_decay", pd.Series([np.nan])).dropna())) or [None]
  rep = np.full((len(rows), len(lrs)), np.nan)
  run = np.full((len(rows), len(lrs)), np.nan)
  for i, wd in enumerate(rows):
    for j, lr in enumerate(lrs):
      r = frame_rep[np.isclose(frame_rep.learning_rate, lr)]
      if wd is not None:
        r = r[np.isclose(r.weight_decay, wd)]
      if len(r):
        rep[i, j] = r[value_rep].astype(float).max()
      if frame_run is not None and len(frame_run):
        m = frame_run[np.isclose(frame_run["config.optimizer.learning_rate"].astype(float), lr)]
        if wd is not None:
          m = m[np.isclose(m["config.optimizer.weight_decay"].astype(float), wd)]
        m = m[m.status == "completed"]
        if len(m):
          run[i, j] = m[value_run].astype(float).mean()
  return lrs, rows, rep, run


def grids(results_dir, scale):
  """Tables 9-25 as heatmaps of top-1 accuracy: reported beside measured."""
  tables = list(range(9, 26))
  fig, axes = plt.subplots(len(tables), 2, figsize=(13, 1.45 * len(tables) + 1.0),
                           constrained_layout=True)
  any_measured = False
  for k, table in enumerate(tables):
    rep = reported.load(table)
    rep = rep[rep.metric == "top1_accuracy"]
    try:
      measured = _frame(results_dir, f"table{table}", scale)
      any_measured = True
    except NoData:
      measured = None
    lrs, wds, a, b = _grid(rep, measured, "value", "final.accuracy")
    for ax, values, what in ((axes[k, 0], a, "paper"), (axes[k, 1], b, f"measured ({scale})")):
      im = ax.imshow(values, aspect="auto", vmin=0, vmax=1, cmap="viridis")
      ax.set_yticks(range(len(wds)))
      ax.set_yticklabels(["-" if w is None else f"wd {w:g}" for w in wds], fontsize=6)
      ax.set_xticks(range(len(lrs)))
      ax.set_xticklabels([f"{lr:g}" for lr in lrs], rotation=90, fontsize=5)
      l2 = rep.l2_regularization.dropna() if "l2_regularization" in rep else []
      l2 = f", L2 {l2.iloc[0]}" if len(l2) and str(l2.iloc[0]).strip() else ""
      ax.set_title(f"Table {table} ({rep.optimizer.iloc[0]}{l2}): {what}", fontsize=7,
                   loc="left")
  fig.colorbar(im, ax=axes, shrink=0.3, label="top-1 accuracy (learning rate on the x axis)")
  fig.suptitle("Tables 9-25: ResNet-50 tuning grids (learning rate across, weight decay down); "
               "blank = not run" + ("" if any_measured else " (no measured runs yet)"),
               fontsize=9)
  return fig


FIGURES = {"trust_ratio": trust_ratio, "figure1": figure1, "figure2": figure2,
           "figure3": figure3, "figure4": figure4, "figure5": figure5, "figure6": figure6,
           "figure7": figure7, "figure8": figure8, "grids": grids}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("name", help="a figure (" + ", ".join(FIGURES) + ") or 'all'")
  parser.add_argument("--results_dir", default=str(runs.RESULTS))
  parser.add_argument("--scale", default="cpu", choices=("cpu", "paper"))
  parser.add_argument("--out_dir", default=None, help="default: <results_dir>/figures")
  args = parser.parse_args(argv)
  if runs.check_results_dir(args.results_dir):
    print(f"error: {runs.check_results_dir(args.results_dir)}", file=sys.stderr)
    return 2
  if args.name != "all" and args.name not in FIGURES:
    print(f"error: unknown figure {args.name!r}; known: {', '.join(FIGURES)}, all",
          file=sys.stderr)
    return 2
  out = Path(args.out_dir or Path(args.results_dir) / "figures")
  names = list(FIGURES) if args.name == "all" else [args.name]
  drawn = 0
  for name in names:
    try:
      fig = FIGURES[name](Path(args.results_dir), args.scale)
    except NoData as e:
      print(f"{name}: skipped ({e})")
      continue
    out.mkdir(parents=True, exist_ok=True)
    for ext in ("png", "pdf"):
      path = out / f"{name}_{args.scale}.{ext}"
      tmp = path.with_suffix(f".tmp.{ext}")
      fig.savefig(tmp, dpi=150, bbox_inches="tight")
      tmp.replace(path)
    plt.close(fig)
    drawn += 1
    print(f"{name}: {out / f'{name}_{args.scale}.png'}")
  return 0 if drawn or args.name == "all" else 1


if __name__ == "__main__":
  sys.exit(main())
