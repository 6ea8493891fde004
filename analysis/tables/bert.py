"""The BERT tables (Section 4.1): BERT-Large pre-training, the paper's SQuAD v1.1 F1 beside what
the runs measure. Table 1 (LAMB against BERT's AdamW baseline, and the 64K/32K mixed batch),
Table 2 (LARS against LAMB over the batch ladder), Table 4 (untuned LAMB's ladder, whose runs
Tables 1 and 2 read too) and Table 8 (AdamW at 16K over warmup and learning rate).

A pre-training run measures held-out masked-LM accuracy and loss, another metric than the
paper's F1: the columns say which is which, and a `squad` fine-tune of a row's runs adds the
measured F1 and exact match beside the paper's.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import pandas as pd

from analysis import reported, runs, select
from analysis.catalogue import E
from analysis import vocabulary as vocab
from analysis.tables.render import PARTIAL, Measure, Rendered, _notes, _rendered
from analysis.tables.rows import (LR, NO_PAPER, _batch_order, _choose, _close, _first, _frame,
                                  _int_or_dash, _left_out, _of_choice, _of_run, _paper, _where)
from lamb.train import results as result_files  # file formats only: no jax


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
  frame = _frame(results_dir, E.SQUAD, scale)
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
  frame, stale = runs.recorded_rows(_frame(results_dir, E.TABLE4, scale))
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
  frame, stale = runs.recorded_rows(_frame(results_dir, E.TABLE1, scale))
  ladder, ladder_rows, ladder_stale = _lamb_ladder(results_dir, scale)
  own_rows = runs.rows_at_scale(frame)
  # Where this scale's table1 leaves its 64K/32K row out, the row is mixed_batch's re-warm-up
  # run (the same recipe; the cpu scale trains it there).
  mixed = _frame(results_dir, E.MIXED_BATCH, scale)
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
                      (f" The 64K/32K row is {E.MIXED_BATCH}'s re-warm-up run"
                       + _multiplier_note(mixed) + "." if len(mixed) and own_rows is not None
                       and "lamb_64K-32K" not in own_rows else "") +
                      _set_aside(stale + ladder_stale))
  return _rendered(1, f"Table 1: BERT pre-training with LAMB ({scale} scale)", rows,
                   ["solver", "batch"], pd.concat([frame, ladder]), notes, scale)


def table2(results_dir, scale: str) -> Rendered:
  paper = reported.load(2)
  squad = _squad_runs(results_dir, scale)
  frame, stale = runs.recorded_rows(_frame(results_dir, E.TABLE2, scale))
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
      # How far each run's training loss rose above its start: the paper's "diverge" (LARS at
      # 32K) is a spike, not only a non-finite value.
      row[f"{optimizer}: peak/start (largest seed)"] = (
          _peak(group) if _expected(at_scale, name, group) else _left_out(NO_PAPER))
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


def _peak(group: pd.DataFrame) -> Measure:
  """The largest peak/start ratio of the training loss over the group's runs."""
  peaks = pd.to_numeric(group.get("peak_ratio"), errors="coerce").dropna() \
      if len(group) and "peak_ratio" in group else pd.Series(dtype=float)
  return _of_run(group, float(peaks.max()) if len(peaks) else math.nan)


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
  frame = _frame(results_dir, E.TABLE8, scale)
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
                 "peak/start (largest seed)": _peak(group),
                 **_bert_measures(group, f1, unplaced, squad)})
  notes = _bert_notes(frame, scale, results_dir,
                      "AdamW at batch 16K (cpu scale: 256): warmup ratio x learning rate; the "
                      "paper's diverged runs stopped at step 28126, the first step at length 512.")
  return _rendered(8, f"Table 8: AdamW for BERT pre-training at 16K ({scale} scale)", rows,
                   ["warmup", "learning rate"], frame, notes, scale)
