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


def _frame(results_dir, experiment: str, scale: str) -> pd.DataFrame:
  frame = runs.load(results_dir, experiment)
  return frame[frame.scale == scale] if len(frame) else frame


def _where(frame: pd.DataFrame, column: str, value) -> pd.DataFrame:
  """The runs whose `column` equals `value` (none when the column is absent)."""
  if not len(frame) or column not in frame:
    return frame.iloc[0:0]
  return frame[frame[column] == value]


def _mean_std(values) -> str:
  values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
  if not values:
    return "-"
  mean = sum(values) / len(values)
  if len(values) == 1:
    return f"{mean:.4f} (1 seed)"
  std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
  return f"{mean:.4f} ± {std:.4f}"


def _measured(group: pd.DataFrame, metric: str) -> tuple:
  """(text, mean or nan) of a group of seeds; diverged/failed groups say so."""
  if not len(group):
    return "not run", float("nan")
  done = group[group.status == "completed"]
  if not len(done):
    return str(group.status.iloc[0]), float("nan")
  values = [float(v) for v in done[metric] if pd.notna(v)]
  mean = sum(values) / len(values) if values else float("nan")
  text = _mean_std(values)
  if len(done) < len(group):
    text += f" ({len(group) - len(done)} not completed)"
  return text, mean


def _notes(frame, scale, results_dir, first: str) -> list:
  notes = _scale_notes(frame, scale) if len(frame) else [
      f"No runs found under {results_dir} for scale {scale}."]
  return [first] + notes


def table3(results_dir, scale: str) -> Rendered:
  paper = reported.load(3)
  frame = _frame(results_dir, "table3", scale)
  rows = []
  for _, rep in paper.iterrows():
    group = _where(frame, "config.variant", rep.optimizer.lower())
    text, mean = _measured(group, "final.accuracy")
    rows.append({"optimizer": rep.optimizer, "paper top-1": rep.value,
                 "measured top-1 (mean ± std over seeds)": text,
                 "difference": mean - rep.value, "runs": len(group)})
  notes = _notes(frame, scale, results_dir,
                 "Top-1 accuracy of ResNet-50 at batch 16K (cpu scale: 256), each optimizer at its "
                 "tuned setting; + = Goyal et al.'s learning-rate recipe.")
  return Rendered(f"Table 3: ImageNet with ResNet-50 ({scale} scale)", pd.DataFrame(rows), notes)


def table5(results_dir, scale: str) -> Rendered:
  paper = reported.load(5)
  frame = _frame(results_dir, "table5", scale)
  rows = []
  for batch, rep in paper.groupby("batch_size", sort=True):
    label = rep.batch_size_text.iloc[0]
    group = _where(frame, "config.variant", label)
    value = lambda m: rep[rep.metric == m].value.iloc[0]
    top1, mean1 = _measured(group, "final.accuracy")
    top5, _ = _measured(group, "final.top5_accuracy")
    rows.append({"batch (paper)": label,
                 "batch run": int(group["config.batch_size"].iloc[0]) if len(group) else "-",
                 "learning rate": value("learning_rate"), "warmup epochs": value("warmup_epochs"),
                 "paper top-1": value("top1_accuracy"), "measured top-1": top1,
                 "difference": mean1 - value("top1_accuracy"),
                 "paper top-5": value("top5_accuracy"), "measured top-5": top5})
  notes = _notes(frame, scale, results_dir,
                 "Untuned LAMB across the batch ladder: square-root learning-rate scaling and "
                 "linear-epoch warmup (cpu scale: batches / 64, warmup as the same fraction).")
  return Rendered(f"Table 5: LAMB's batch ladder on ImageNet/ResNet-50 ({scale} scale)",
                  pd.DataFrame(rows), notes)


def _best_setting(group: pd.DataFrame, settings: list, metric: str):
  """The setting (tuple of `settings` values) with the best mean over completed seeds."""
  best = None
  for key, g in group.groupby(settings, dropna=False):
    if not (g.status == "completed").all():
      continue
    mean = g[metric].astype(float).mean()
    if best is None or mean > best[1]:
      best = (key if isinstance(key, tuple) else (key,), mean, g)
  return best


def table6(results_dir, scale: str) -> Rendered:
  paper = reported.load(6)
  frame = _frame(results_dir, "table6", scale)
  rows = []
  for _, rep in paper.iterrows():
    key = rep.optimizer.lower()
    group = _where(frame, "config.optimizer.name", key)
    best = _best_setting(group, ["config.optimizer.learning_rate",
                                 "config.optimizer.weight_decay"], "final.accuracy") \
        if len(group) else None
    if best is None:
      text = ("not run" if not len(group) else "diverge" if (group.status == "diverged").all()
              else "no setting completed")
      mean, setting = float("nan"), "-"
    else:
      (lr, wd), mean, g = best
      text = _mean_std(list(g["final.accuracy"].astype(float)))
      setting = f"lr {lr:g}" + (f", wd {wd:g}" if key == "adamw" else "")
    rows.append({"optimizer": rep.optimizer_text, "paper test accuracy": rep.value,
                 "measured (best setting)": text, "difference": mean - rep.value,
                 "best setting": setting, "runs (diverged)":
                     f"{len(group)} ({int((group.status == 'diverged').sum())})" if len(group)
                     else "0"})
  notes = _notes(frame, scale, results_dir,
                 "Test accuracy of DavidNet at batch 512, each optimizer at its best learning rate "
                 "(AdamW: and weight decay) of the paper's grid.")
  return Rendered(f"Table 6: CIFAR-10 with DavidNet ({scale} scale)", pd.DataFrame(rows), notes)


def tuning_grid(table: int):
  """Tables 9-25: every printed row (learning rate, weight decay, L2) beside its run."""
  def render(results_dir, scale: str) -> Rendered:
    paper = reported.load(table)
    paper = paper[paper.metric == "top1_accuracy"]
    frame = _frame(results_dir, f"table{table}", scale)
    rows = []
    for _, rep in paper.iterrows():
      group = frame
      if len(frame):
        group = frame[(frame["config.optimizer.learning_rate"] - rep.learning_rate).abs()
                      < 1e-12 * max(1.0, rep.learning_rate)]
        if "weight_decay" in rep and pd.notna(rep.get("weight_decay")):
          group = group[(group["config.optimizer.weight_decay"] - rep.weight_decay).abs() < 1e-15]
      text, mean = _measured(group, "final.accuracy")
      row = {"learning rate": rep.learning_rate_text}
      if "weight_decay_text" in rep and pd.notna(rep.get("weight_decay_text")):
        row["weight decay"] = rep.weight_decay_text
      if "l2_regularization" in rep and pd.notna(rep.get("l2_regularization")):
        row["L2 regularization"] = rep.l2_regularization
      row.update({"paper top-1": rep.value if rep.status == "ok" else rep.status,
                  "measured top-1": text,
                  "difference": mean - rep.value if rep.status == "ok" else float("nan")})
      if isinstance(rep.get("note"), str) and rep.note:
        row["note"] = rep.note
      rows.append(row)
    notes = _notes(frame, scale, results_dir,
                   f"Appendix H.1 tuning grid of {paper.optimizer.iloc[0]} for ResNet-50 at batch "
                   "16K (cpu scale: 256), every printed row.")
    return Rendered(f"Table {table}: {paper.optimizer.iloc[0]} tuning ({scale} scale)",
                    pd.DataFrame(rows), notes)
  return render


# --- BERT (Tables 1, 2, 4, 8): the paper's SQuAD F1 beside what the runs measure ------------

BERT_METRIC = "final.masked_lm_accuracy"
BERT_METRIC_LABEL = "measured masked-LM accuracy (held-out text)"
# A short cpu-scale run can stay at the unigram stage (every row predicting the most frequent
# token, the same accuracy); the held-out masked-LM loss still ranks the runs.
BERT_LOSS = "final.masked_lm_loss"
BERT_LOSS_LABEL = "measured masked-LM loss (held-out)"


def bert_label(batch) -> str:
  return f"{batch // 1024}K" if batch >= 1024 else str(batch)


def _bert_run(frame: pd.DataFrame, run: str) -> pd.DataFrame:
  return frame[frame.run == run] if len(frame) else frame


def _bert_notes(frame, scale, results_dir, first: str) -> list:
  return _notes(frame, scale, results_dir, first) + [
      "The paper's metric is SQuAD v1.1 F1 after fine-tuning; the measured column is the "
      "pre-training run's masked-LM accuracy on held-out text (at cpu scale Sense and "
      "Sensibility), so compare trends across batch sizes, not values with the F1 column."]


def _rate_run(group: pd.DataFrame) -> str:
  """The learning rate the run used (cpu scale: the printed one x learning_rate_multiplier)."""
  column = "config.optimizer.learning_rate"
  return f"{group[column].iloc[0]:.6g}" if len(group) and column in group else "-"


def _steps_run(group: pd.DataFrame):
  return int(group["steps"].iloc[0]) if len(group) and pd.notna(group["steps"].iloc[0]) else "-"


def table1(results_dir, scale: str) -> Rendered:
  paper = reported.load(1)
  frame = _frame(results_dir, "table1", scale)
  rows = []
  for _, rep in paper.groupby("row", sort=True):
    value = lambda m: rep[rep.metric == m].value.iloc[0]
    first = rep.iloc[0]
    if first.optimizer == "Baseline":
      run = "baseline"
    elif str(first.batch_size).isdigit():
      run = f"lamb_{bert_label(int(first.batch_size))}"
    else:
      run = "lamb_64K-32K"
    group = _bert_run(frame, run)
    text, _ = _measured(group, BERT_METRIC)
    minutes = group["train_time_s"].iloc[0] / 60 if len(group) and pd.notna(
        group["train_time_s"].iloc[0]) else float("nan")
    rows.append({"solver": first.optimizer_text, "batch": first.batch_size_text,
                 "paper steps": rep[rep.metric == "steps"].value_text.iloc[0],
                 "steps run": _steps_run(group), "paper F1": value("f1"),
                 BERT_METRIC_LABEL: text, BERT_LOSS_LABEL: _measured(group, BERT_LOSS)[0],
                 "paper TPUs": int(first.tpus),
                 "paper time": rep[rep.metric == "time_hours"].value_text.iloc[0],
                 "measured train minutes": minutes})
  notes = _bert_notes(frame, scale, results_dir,
                      "BERT-Large pre-training, fixed epochs: LAMB from 512 to 32K (untuned, Table "
                      "4's rules) and 64K/32K mixed-batch with re-warm-up, against BERT's AdamW "
                      "baseline; the paper's times are on its TPUs, ours on this machine.")
  return Rendered(f"Table 1: BERT pre-training with LAMB ({scale} scale)", pd.DataFrame(rows),
                  notes)


def table2(results_dir, scale: str) -> Rendered:
  paper = reported.load(2)
  frame = _frame(results_dir, "table2", scale)
  rows = []
  for batch, rep in paper.groupby("batch_size", sort=True):
    row = {"batch": rep.batch_size_text.iloc[0]}
    for optimizer in ("LARS", "LAMB"):
      r = rep[rep.optimizer == optimizer].iloc[0]
      group = _bert_run(frame, f"{optimizer.lower()}_{bert_label(int(batch))}")
      row[f"paper {optimizer} F1"] = r.value if r.status == "ok" else r.status
      row[f"{optimizer}: {BERT_METRIC_LABEL}"] = _measured(group, BERT_METRIC)[0]
      row[f"{optimizer}: {BERT_LOSS_LABEL}"] = _measured(group, BERT_LOSS)[0]
    rows.append(row)
  notes = _bert_notes(frame, scale, results_dir,
                      "LARS against LAMB over the batch ladder (fixed epochs); LARS runs LAMB's "
                      "untuned learning rates and warmups (its own are not printed).")
  return Rendered(f"Table 2: LARS vs LAMB for BERT pre-training ({scale} scale)",
                  pd.DataFrame(rows), notes)


def table4(results_dir, scale: str) -> Rendered:
  paper = reported.load(4)
  frame = _frame(results_dir, "table4", scale)
  rows = []
  for batch, rep in paper.groupby("batch_size", sort=True):
    value = lambda m: rep[rep.metric == m].value.iloc[0]
    label = rep.batch_size_text.iloc[0]
    group = frame[frame["config.variant"] == label] if "config.variant" in frame else frame[:0]
    rows.append({"batch (paper)": label,
                 "batch run": int(group["config.batch_size"].iloc[0]) if len(group) else "-",
                 "learning rate": f"{value('learning_rate'):.6g}",
                 "learning rate run": _rate_run(group),
                 "warmup ratio": f"{value('warmup_ratio'):.6g}", "steps run": _steps_run(group),
                 "paper F1": value("f1"),
                 "paper EM": value("exact_match"),
                 BERT_METRIC_LABEL: _measured(group, BERT_METRIC)[0],
                 BERT_LOSS_LABEL: _measured(group, BERT_LOSS)[0]})
  notes = _bert_notes(frame, scale, results_dir,
                      "Untuned LAMB across the batch ladder: square-root learning-rate scaling "
                      "and linear-epoch warmup (a ratio of all steps), fixed epochs.")
  return Rendered(f"Table 4: LAMB's batch ladder for BERT pre-training ({scale} scale)",
                  pd.DataFrame(rows), notes)


def _last_train_record(path) -> dict:
  try:
    records = runs.metrics(path)
  except (OSError, ValueError):
    return {}
  if not len(records) or "split" not in records:
    return {}
  train = records[(records.split == "train") & records["loss"].notna()] \
      if "loss" in records else records.iloc[0:0]
  return train.iloc[-1].to_dict() if len(train) else {}


def table8(results_dir, scale: str) -> Rendered:
  paper = reported.load(8)
  frame = _frame(results_dir, "table8", scale)
  rows = []
  for _, rep in paper.groupby("row", sort=True):
    first = rep.iloc[0]
    group = frame[:0]  # runs that do not say their rate and warmup match no row
    if {"config.optimizer.learning_rate", "config.optimizer.schedule.warmup_ratio"} <= set(frame):
      # cpu-scale runs scale every printed rate by the config's learning_rate_multiplier.
      multiplier = frame.get("config.learning_rate_multiplier", pd.Series(1.0, frame.index))
      printed_lr = frame["config.optimizer.learning_rate"] / multiplier.fillna(1.0)
      group = frame[((printed_lr - first.learning_rate).abs() < 1e-12)
                    & ((frame["config.optimizer.schedule.warmup_ratio"] - first.warmup).abs()
                       < 1e-12)]
    last = _last_train_record(group["path"].iloc[0]) if len(group) else {}
    f1 = rep[rep.metric == "f1"].iloc[0]
    rows.append({"warmup": first.warmup_text, "learning rate": first.learning_rate_text,
                 "learning rate run": _rate_run(group),
                 "paper last step": rep[rep.metric == "last_step"].value_text.iloc[0],
                 "paper last loss": rep[rep.metric == "last_loss"].value.iloc[0],
                 "paper F1": f1.value if f1.status == "ok" else f1.status,
                 "status": group.status.iloc[0] if len(group) else "not run",
                 "last step run": int(last["step"]) if last else "-",
                 "last train loss": float(last["loss"]) if last else float("nan"),
                 BERT_METRIC_LABEL: _measured(group, BERT_METRIC)[0],
                 BERT_LOSS_LABEL: _measured(group, BERT_LOSS)[0]})
  notes = _bert_notes(frame, scale, results_dir,
                      "AdamW at batch 16K (cpu scale: 256): warmup ratio x learning rate; the "
                      "paper's diverged runs stopped at step 28126, the first step at length 512.")
  return Rendered(f"Table 8: AdamW for BERT pre-training at 16K ({scale} scale)",
                  pd.DataFrame(rows), notes)


TABLES = {"table1": table1, "table2": table2, "table3": table3, "table4": table4, "table5": table5, "table6": table6, "table7": table7,
          "table8": table8, **{f"table{t}": tuning_grid(t) for t in range(9, 26)}}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("name", help="a table (" + ", ".join(TABLES) + ") or 'all'")
  parser.add_argument("--results_dir", default=str(runs.RESULTS))
  parser.add_argument("--scale", default="cpu", choices=("cpu", "paper"))
  parser.add_argument("--format", default="markdown", choices=tuple(FORMATS))
  args = parser.parse_args(argv)
  if runs.check_results_dir(args.results_dir):
    print(f"error: {runs.check_results_dir(args.results_dir)}", file=sys.stderr)
    return 2
  names = list(TABLES) if args.name == "all" else [args.name]
  for name in names:
    if name not in TABLES:
      print(f"error: unknown table {name!r}; known: {', '.join(TABLES)}", file=sys.stderr)
      return 2
    sys.stdout.write(FORMATS[args.format](TABLES[name](Path(args.results_dir), args.scale)))
  return 0


if __name__ == "__main__":
  sys.exit(main())
