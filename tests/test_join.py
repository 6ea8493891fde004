"""The loader's divergence under each rule set and its integrity checks (no jax, no training).

Each test writes the files a run leaves (config.json, summary.json, metrics.jsonl, sometimes
eval_examples.npz) into a temp folder, as a finished run or a hand-made copy of one would, and
checks the status and the error the loader gives each folder.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from analysis import join, rules, runs, select
from analysis import vocabulary as vocab

ROOT = Path(__file__).resolve().parents[1]
IMAGE = {"data": {"name": "fashion_mnist"}, "model": {"name": "resnet", "num_classes": 10}}
BERT = {"data": {"name": "janeausten"}, "model": {"name": "bert"}}
V1, V2 = rules.version(1), rules.version(2)


def _run(root, experiment, name, config, *, accuracy=0.8, losses=(2.3, 1.0, 0.6), steps=64,
         examples=1000, base=IMAGE, metric="accuracy", final=None, scale="cpu",
         status="completed", summary_extra=None, record=True):
  """A finished run's folder as the runner writes it: its summary names the run, metrics.jsonl
  holds the training losses and the final evaluation the summary reports."""
  d = Path(root) / experiment / scale / name
  d.mkdir(parents=True, exist_ok=True)
  (d / "config.json").write_text(json.dumps({**base, **config, "name": experiment,
                                             "scale": scale}))
  final = {metric: accuracy, "examples": examples, "loss": 1 - accuracy, **(final or {})}
  summary = {"status": status, "steps": steps, "total_steps": steps, "run": name,
             "experiment": experiment, "scale": scale, "final": final, **(summary_extra or {})}
  (d / "summary.json").write_text(json.dumps(summary))
  lines = [{"split": "train", "step": s + 1, "loss": l} for s, l in enumerate(losses)]
  if record:
    lines.append({"split": "eval", "step": steps, **final})
  (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
  return d


def _grid(root, name, rates: dict):
  """Table 7-like runs: {learning rate: [accuracy per seed]} for optimizer `name`."""
  for lr, values in rates.items():
    for seed, acc in enumerate(values):
      _run(root, "table7", f"{name}_lr{lr}_seed{seed}",
           {"seed": seed, "optimizer": {"name": name, "learning_rate": lr}}, accuracy=acc)


def _load(root, rule_set=None):
  return runs.load(root, rules=rule_set).set_index("run")


# --- divergence as the paper means it, under each rule set -----------------------------------

def test_a_spike_that_ends_at_chance_is_diverged_under_v2_only(tmp_path):
  _run(tmp_path, "table3", "spiked", {"seed": 0}, accuracy=0.101,
       losses=(2.30, 3.5, 2.9, 2.31, 2.30))
  v1, v2 = _load(tmp_path, V1).loc["spiked"], _load(tmp_path, V2).loc["spiked"]
  assert v1.status == vocab.COMPLETED and v1.diverged_because == ""
  assert v2.status == vocab.DIVERGED and v2.runner_status == vocab.COMPLETED
  assert v2.diverged_because == ("training loss peaked at 1.52x its start and ended at the "
                                 "chance level (0.1010 against 0.1000)")
  assert v2.loss_peak == 3.5 and v2.peak_ratio == pytest.approx(3.5 / 2.3)
  assert v2.at_chance == True  # noqa: E712


def test_a_spike_then_learning_is_not_diverged(tmp_path):
  _run(tmp_path, "table3", "learned", {"seed": 0}, accuracy=0.8, losses=(2.3, 3.5, 1.0, 0.5))
  for rule_set in (V1, V2):
    row = _load(tmp_path, rule_set).loc["learned"]
    assert row.status == vocab.COMPLETED and row.at_chance == False  # noqa: E712
    assert row.peak_ratio == pytest.approx(3.5 / 2.3)


def test_a_classifier_that_left_chance_and_came_back_is_diverged_under_v2(tmp_path):
  _run(tmp_path, "table3", "collapsed", {"seed": 0}, accuracy=0.1,
       losses=(2.30, 1.2, 0.8, 2.29, 2.30))
  assert _load(tmp_path, V1).loc["collapsed", "status"] == vocab.COMPLETED
  row = _load(tmp_path, V2).loc["collapsed"]
  assert row.status == vocab.DIVERGED
  assert "went down to 0.8" in row.diverged_because and "came back" in row.diverged_because
  assert "chance level (0.1000 against 0.1000)" in row.diverged_because


def test_a_run_that_never_left_chance_is_not_diverged(tmp_path):
  _run(tmp_path, "table3", "stalled", {"seed": 0}, accuracy=0.1,
       losses=(2.31, 2.30, 2.33, 2.30, 2.32))
  for rule_set in (V1, V2):
    row = _load(tmp_path, rule_set).loc["stalled"]
    assert row.status == vocab.COMPLETED and row.at_chance == True  # noqa: E712


def test_a_loss_that_left_chance_and_stayed_below_is_not_diverged(tmp_path):
  # Its evaluation sits at chance but its training loss never came back: whatever went wrong,
  # it is not the paper's divergence (the claims see it at chance).
  _run(tmp_path, "table3", "slow", {"seed": 0}, accuracy=0.11,
       losses=(2.32, 2.2, 2.1, 2.02, 2.02))
  assert _load(tmp_path, V2).loc["slow", "status"] == vocab.COMPLETED


def test_a_bert_spike_onto_the_unigram_plateau_is_diverged_under_v2(tmp_path):
  unigram = {"unigram_masked_lm_accuracy": 0.0608}
  _run(tmp_path, "table2", "lars_32K_seed1", {"seed": 1}, base=BERT, metric="masked_lm_accuracy",
       accuracy=0.0612, examples=1024, final=unigram, losses=(9.7, 37.0, 8.0, 7.0, 7.03))
  _run(tmp_path, "table2", "lars_4K_seed0", {"seed": 0}, base=BERT, metric="masked_lm_accuracy",
       accuracy=0.105, examples=1024, final=unigram, losses=(9.7, 10.2, 8.0, 6.7, 6.69))
  assert (_load(tmp_path, V1).status == vocab.COMPLETED).all()
  frame = _load(tmp_path, V2)
  assert frame.loc["lars_32K_seed1", "diverged_because"] == (
      "training loss peaked at 3.81x its start and ended at the unigram level (0.0612 against "
      "0.0608)")
  assert frame.loc["lars_4K_seed0", "status"] == vocab.COMPLETED


def test_chance_counts_bert_by_sequence_with_or_without_records(tmp_path):
  # 0.07 against a unigram level of 0.0608 is chance over 1024 sequences. A newer run records
  # 20,000 masked tokens as its denominator, but tokens of one sequence are not independent: the
  # same model is judged the same way, by sequence, whether or not it recorded its tokens.
  unigram = {"unigram_masked_lm_accuracy": 0.0608}
  spike = dict(base=BERT, metric="masked_lm_accuracy", accuracy=0.07, examples=1024,
               losses=(9.7, 20.0, 7.0, 7.0))
  _run(tmp_path, "table2", "old", {"seed": 0}, final=unigram, **spike)
  _run(tmp_path, "table2", "new", {"seed": 1}, **spike,
       final={**unigram, "eval_unit": "masked tokens", "eval_units": 20_000})
  frame = _load(tmp_path, V2)
  assert frame.loc["old", "status"] == frame.loc["new", "status"] == vocab.DIVERGED
  # Images are independent units: a recorded count of 9000 is the n, and 0.107 is above
  # chance there (0.1 + 1.96 x 0.0032 = 0.1062), where 1000 examples would not tell it (0.1186).
  _run(tmp_path, "table3", "images", {"seed": 0}, accuracy=0.107, examples=1000,
       losses=(2.3, 9.0, 2.3), final={"eval_unit": "images", "eval_units": 9000})
  frame = _load(tmp_path, V2)
  assert bool(frame.loc["images", "at_chance"]) is False


def test_what_diverged_means_follows_the_rule_set():
  assert runs.diverged_means(V1) == (
      "the runner stopped at a non-finite value, or the training loss ended (mean of the last 5% "
      "of steps) more than 5% above where it started or above the chance level ln(classes); a "
      "run that never left its start is not diverged but sits at chance")
  assert "1.2x its start" in runs.diverged_means(V2)
  assert runs.DIVERGED_MEANS == runs.diverged_means(rules.current())


# --- a join that names what it cannot place --------------------------------------------------

def test_a_backup_copy_is_renamed_and_duplicate_and_names_the_original(tmp_path):
  d = _run(tmp_path, "table7", "lamb_lr0.01_seed0",
           {"seed": 0, "optimizer": {"name": "lamb", "learning_rate": 0.01}})
  shutil.copytree(d, d.with_name("lamb_lr0.01_seed0.bak"))  # cp -a
  frame = _load(tmp_path)
  copy, original = frame.loc["lamb_lr0.01_seed0.bak"], frame.loc["lamb_lr0.01_seed0"]
  assert copy.status == vocab.RENAMED
  assert "'lamb_lr0.01_seed0'" in copy.error and "'lamb_lr0.01_seed0.bak'" in copy.error
  assert "move it back" in copy.error and "or remove it" in copy.error
  assert "also duplicate" in copy.error and "as lamb_lr0.01_seed0 in" in copy.error
  assert original.status == vocab.DUPLICATE and "lamb_lr0.01_seed0.bak" in original.error


def test_a_moved_run_is_renamed(tmp_path):
  d = _run(tmp_path, "table7", "lamb_lr0.01_seed0",
           {"seed": 0, "optimizer": {"name": "lamb", "learning_rate": 0.01}})
  d.rename(d.with_name("lamb_lr0.1_seed0"))  # mv
  row = _load(tmp_path).loc["lamb_lr0.1_seed0"]
  assert row.status == vocab.RENAMED and "lamb_lr0.01_seed0" in row.error
  assert "duplicate" not in row.error


def test_the_same_run_in_two_folders_is_duplicate_and_each_names_the_other(tmp_path):
  config = {"seed": 0, "optimizer": {"name": "adam", "learning_rate": 0.01}}
  _run(tmp_path, "table7", "adam_lr0.01_seed0", config)
  _run(tmp_path, "table7", "adam_0.01_seed0", config)  # the same run under an older label
  _run(tmp_path, "table7", "adam_lr0.01_seed1", {**config, "seed": 1})  # another seed
  # The grid around a run is no part of it: a grown sweep is still the same run.
  _run(tmp_path, "table7", "adam_lr0.01_seed0_grid", {**config, "sweep": [["seed", [0, 1]]]})
  frame = _load(tmp_path)
  assert frame.loc["adam_lr0.01_seed1", "status"] == vocab.COMPLETED
  for name in ("adam_lr0.01_seed0", "adam_0.01_seed0", "adam_lr0.01_seed0_grid"):
    assert frame.loc[name, "status"] == vocab.DUPLICATE
    others = {"adam_lr0.01_seed0", "adam_0.01_seed0", "adam_lr0.01_seed0_grid"} - {name}
    assert all(o in frame.loc[name, "error"] for o in others)
  # The same config in another scale's folder is another run.
  _run(tmp_path, "table7", "adam_lr0.01_seed1", {**config, "seed": 1}, scale="tpu")
  assert (runs.load(tmp_path, "table7").query("run == 'adam_lr0.01_seed1'").status
          == vocab.COMPLETED).all()


def test_a_config_edited_after_the_run_is_edited(tmp_path):
  d = _run(tmp_path, "table7", "lamb_lr0.01_seed0",
           {"seed": 0, "optimizer": {"name": "lamb", "learning_rate": 0.01}})
  summary = json.loads((d / "summary.json").read_text())
  summary[join.CONFIG_SHA256] = hashlib.sha256((d / "config.json").read_bytes()).hexdigest()
  (d / "summary.json").write_text(json.dumps(summary))
  _run(tmp_path, "table7", "lamb_lr0.01_seed1",
       {"seed": 1, "optimizer": {"name": "lamb", "learning_rate": 0.01}})  # predates the field
  frame = _load(tmp_path)
  assert frame.loc["lamb_lr0.01_seed0", "status"] == vocab.COMPLETED
  assert frame.loc["lamb_lr0.01_seed0", "config_unchecked"] == False  # noqa: E712
  assert frame.loc["lamb_lr0.01_seed1", "status"] == vocab.COMPLETED
  assert frame.loc["lamb_lr0.01_seed1", "config_unchecked"] == True  # noqa: E712
  config = json.loads((d / "config.json").read_text())
  config["optimizer"]["learning_rate"] = 0.02
  (d / "config.json").write_text(json.dumps(config))
  row = _load(tmp_path).loc["lamb_lr0.01_seed0"]
  assert row.status == vocab.EDITED and "config.json's sha256" in row.error


def test_a_summary_whose_final_numbers_were_changed_is_edited(tmp_path):
  d = _run(tmp_path, "table7", "lamb_lr0.01_seed0",
           {"seed": 0, "optimizer": {"name": "lamb", "learning_rate": 0.01}}, accuracy=0.91)
  summary = json.loads((d / "summary.json").read_text())
  summary["final"]["accuracy"] = 0.97
  (d / "summary.json").write_text(json.dumps(summary))
  row = _load(tmp_path).loc["lamb_lr0.01_seed0"]
  assert row.status == vocab.EDITED
  assert "metrics.jsonl" in row.error and "accuracy 0.97 against 0.91" in row.error


def test_a_summary_without_its_final_evaluation_on_record_is_edited(tmp_path):
  d = _run(tmp_path, "table7", "lamb_lr0.01_seed0",
           {"seed": 0, "optimizer": {"name": "lamb", "learning_rate": 0.01}}, steps=64)
  summary = json.loads((d / "summary.json").read_text())
  summary["steps"] = 128
  (d / "summary.json").write_text(json.dumps(summary))
  row = _load(tmp_path).loc["lamb_lr0.01_seed0"]
  assert row.status == vocab.EDITED and "step 128" in row.error


def _records(d, correct, metric="accuracy", unit="images", step=64, **extra):
  n = len(correct)
  np.savez_compressed(d / "eval_examples.npz", unit=np.asarray(unit), metric=np.asarray(metric),
                      step=np.asarray(step, np.int64), eval_set=np.asarray("0123456789abcdef"),
                      index=np.arange(n, dtype=np.int32), correct=np.asarray(correct, bool),
                      **extra)


def test_per_example_records_that_disagree_with_the_summary_are_edited(tmp_path):
  good = _run(tmp_path, "table7", "lamb_lr0.01_seed0",
              {"seed": 0, "optimizer": {"name": "lamb", "learning_rate": 0.01}}, accuracy=0.75,
              final={"eval_unit": "images", "eval_units": 4})
  _records(good, [1, 1, 1, 0])
  bad = _run(tmp_path, "table7", "lamb_lr0.01_seed1",
             {"seed": 1, "optimizer": {"name": "lamb", "learning_rate": 0.01}}, accuracy=0.75)
  _records(bad, [1, 0, 0, 0])
  squad = _run(tmp_path, "table7", "squad", {"seed": 2}, metric="f1", accuracy=62.5)
  _records(squad, [1, 0], metric="f1", unit="questions",
           score=np.asarray([1.0, 0.25], np.float32))  # the summary's f1 is in percent
  frame = _load(tmp_path)
  assert frame.loc["lamb_lr0.01_seed0", "status"] == vocab.COMPLETED
  assert frame.loc["squad", "status"] == vocab.COMPLETED
  row = frame.loc["lamb_lr0.01_seed1"]
  assert row.status == vocab.EDITED
  assert "eval_examples.npz" in row.error and "0.25 against summary.json's 0.75" in row.error
  _records(good, [1, 1, 1, 0, 1])  # a unit more than the summary counted
  row = _load(tmp_path).loc["lamb_lr0.01_seed0"]
  assert row.status == vocab.EDITED and "5 units against" in row.error


def test_damaged_per_example_records_make_the_run_unreadable(tmp_path):
  d = _run(tmp_path, "table7", "lamb_lr0.01_seed0",
           {"seed": 0, "optimizer": {"name": "lamb", "learning_rate": 0.01}})
  (d / "eval_examples.npz").write_bytes(b"PK\x03\x04 torn")
  row = _load(tmp_path).loc["lamb_lr0.01_seed0"]
  assert row.status == vocab.UNREADABLE and "eval_examples.npz" in row.error


def test_a_backup_of_the_best_run_holds_the_row_back_and_is_named(tmp_path):
  _grid(tmp_path, "lamb", {0.01: [0.96, 0.97], 0.1: [0.90, 0.91]})
  _grid(tmp_path, "adam", {0.01: [0.95, 0.95]})
  best = tmp_path / "table7" / "cpu" / "lamb_lr0.01_seed0"
  shutil.copytree(best, best.with_name("lamb_lr0.01_seed0.bak"))
  frame = runs.load(tmp_path)
  lamb = frame[frame["config.optimizer.name"] == "lamb"]
  choice = select.choose(lamb, select.SETTINGS, "final.accuracy")
  assert choice.best is None  # never the 0.1 rate in its place
  assert choice.status == vocab.RENAMED
  assert "lamb_lr0.01_seed0.bak renamed" in choice.text
  assert "lamb_lr0.01_seed0 duplicate" in choice.text
  adam = select.choose(frame[frame["config.optimizer.name"] == "adam"], select.SETTINGS,
                       "final.accuracy")
  assert adam.best.key[0] == 0.01 and not adam.partial
  shutil.rmtree(best.with_name("lamb_lr0.01_seed0.bak"))
  choice = select.choose(runs.load(tmp_path).query("`config.optimizer.name` == 'lamb'"),
                         select.SETTINGS, "final.accuracy")
  assert choice.best.key[0] == 0.01 and choice.best.mean == pytest.approx(0.965)


# --- the committed results -------------------------------------------------------------------

def _committed():
  results = ROOT / "results"
  if not any(results.glob("*/*/*/summary.json")):
    pytest.skip("no committed results")
  return results


def test_the_committed_results_load_with_no_run_flagged():
  frame = runs.load(_committed())
  flagged = frame[frame.status.isin(vocab.BLOCKING)]
  assert not len(flagged), flagged[["experiment", "scale", "run", "status", "error"]].to_string()


def test_v2_changes_only_runs_that_end_at_chance_after_a_spike_or_a_collapse():
  v1, v2 = runs.load(_committed(), rules=V1), runs.load(_committed(), rules=V2)
  assert list(v1.path) == list(v2.path)
  changed = v1.status != v2.status
  assert (v1.status[changed] == vocab.COMPLETED).all()
  assert (v2.status[changed] == vocab.DIVERGED).all()
  assert v2.diverged_because[changed].str.contains("ended at the (?:chance|unigram) level").all()
  assert (v1.diverged_because[~changed] == v2.diverged_because[~changed]).all()


def test_each_unplaceable_run_is_named_in_the_tables_the_figures_and_the_report(tmp_path):
  """A duplicated run, a renamed run, an edited config and an edited summary, each in its own
  Table 7 setting: every one holds its row back and is named by the table, the figure and the
  report; the settings without a fault keep their numbers."""
  from analysis import figures, report, tables  # pylint: disable=import-outside-toplevel
  for name, rates in (("lamb", {0.01: [0.96, 0.97]}), ("adam", {0.01: [0.95, 0.95]}),
                      ("adamw", {0.01: [0.94, 0.95]}), ("adagrad", {0.01: [0.93, 0.92]}),
                      ("momentum", {0.01: [0.90, 0.91]})):
    _grid(tmp_path, name, rates)
  folder = tmp_path / "table7" / "cpu"
  clean = tables.to_csv(tables.TABLES["table7"](tmp_path, "cpu"))
  # A duplicate: LAMB's seed 0 copied (renamed and duplicate).
  shutil.copytree(folder / "lamb_lr0.01_seed0", folder / "lamb_lr0.01_seed0.bak")
  # A rename: Adam's seed 1 moved.
  (folder / "adam_lr0.01_seed1").rename(folder / "adam_lr0.01_seed1_old")
  # An edited config: AdamW's seed 0 records the hash of the config it wrote, then it changes.
  d = folder / "adamw_lr0.01_seed0"
  summary = json.loads((d / "summary.json").read_text())
  summary["config_sha256"] = hashlib.sha256((d / "config.json").read_bytes()).hexdigest()
  (d / "summary.json").write_text(json.dumps(summary))
  config = json.loads((d / "config.json").read_text())
  config["optimizer"]["learning_rate"] = 0.02
  (d / "config.json").write_text(json.dumps(config))
  # An edited summary: Adagrad's seed 1 claims a better score than its evaluation recorded.
  d = folder / "adagrad_lr0.01_seed1"
  summary = json.loads((d / "summary.json").read_text())
  summary["final"]["accuracy"] = 0.99
  (d / "summary.json").write_text(json.dumps(summary))
  faults = {"lamb_lr0.01_seed0.bak": vocab.RENAMED, "lamb_lr0.01_seed0": vocab.DUPLICATE,
            "adam_lr0.01_seed1_old": vocab.RENAMED, "adamw_lr0.01_seed0": vocab.EDITED,
            "adagrad_lr0.01_seed1": vocab.EDITED}
  frame = runs.load(tmp_path).set_index("run")
  for run, status in faults.items():
    assert frame.loc[run, "status"] == status, (run, frame.loc[run, "error"])
  table = tables.to_markdown(tables.TABLES["table7"](tmp_path, "cpu"))
  for run in faults:
    assert run in table, run
  import io  # pylint: disable=import-outside-toplevel
  import pandas as pd  # pylint: disable=import-outside-toplevel
  before = pd.read_csv(io.StringIO(clean)).set_index("row_keys")
  after = pd.read_csv(io.StringIO(tables.to_csv(
      tables.TABLES["table7"](tmp_path, "cpu")))).set_index("row_keys")
  assert after.loc["optimizer=Momentum"].equals(before.loc["optimizer=Momentum"])
  for optimizer, run in (("LAMB", "lamb_lr0.01_seed0"), ("Adam", "adam_lr0.01_seed1_old"),
                         ("AdamW", "adamw_lr0.01_seed0"), ("Adagrad", "adagrad_lr0.01_seed1")):
    row = after.loc[f"optimizer={optimizer}"]
    assert pd.isna(row.measured) and run in row.measured_text, (optimizer, row.measured_text)
  text = report.build(tmp_path, "cpu", tmp_path / "figures")
  problems = text.split("## Runs that could not be used")[1].split("\n## ")[0]
  for run, status in faults.items():
    assert f"`table7/cpu/{run}`: {status}" in problems, run
  row18 = next(line for line in text.splitlines() if line.startswith("| 18 |"))
  assert "not run" in row18 and "lamb_lr0.01_seed0" in row18
  # The figures: a tuning grid's heat map marks such a cell with its short status.
  grid = tmp_path / "table9" / "cpu"
  for lr in (0.01, 0.1):
    _run(tmp_path, "table9", f"lr{lr}", {"optimizer": {"name": "adagrad", "learning_rate": lr}})
  shutil.copytree(grid / "lr0.01", grid / "lr0.01.bak")
  figure = figures.FIGURES["table9_grid"](tmp_path, "cpu")
  texts = [t.get_text() for ax in figure.axes for t in ax.texts]
  figures.plt.close(figure)
  assert "ren" in texts and "0.800" in texts, texts  # the copied cell named, the other drawn


def test_a_run_resumed_under_other_code_is_counted_and_named(tmp_path):
  from analysis import report  # pylint: disable=import-outside-toplevel
  _run(tmp_path, "table7", "lamb_lr0.01_seed0",
       {"seed": 0, "optimizer": {"name": "lamb", "learning_rate": 0.01}},
       summary_extra={"resumed_from_step": 100, "resumed_from_commit": "a" * 40,
                      "git_commit": "b" * 40})
  _run(tmp_path, "table7", "lamb_lr0.01_seed1",
       {"seed": 1, "optimizer": {"name": "lamb", "learning_rate": 0.01}},
       summary_extra={"resumed_from_step": 100, "resumed_from_commit": "c" * 40,
                      "git_commit": "c" * 40})
  frame = _load(tmp_path)
  assert (frame.status == vocab.COMPLETED).all()
  problems = "\n".join(report.problems_section(tmp_path, "cpu"))
  assert "`table7/cpu/lamb_lr0.01_seed0`: trained to step 100 by commit aaaaaaaaaa" in problems
  assert "lamb_lr0.01_seed1" not in problems


def test_the_manifest_names_an_edit_of_a_run_that_records_no_config_hash(tmp_path):
  from analysis import manifest  # pylint: disable=import-outside-toplevel
  d = _run(tmp_path, "table3", "momentum_seed0", {"variant": "momentum", "seed": 0})
  _run(tmp_path, "table3", "momentum_seed1", {"variant": "momentum", "seed": 1})
  assert _load(tmp_path).config_unchecked.all()  # no hash recorded, no manifest yet
  assert manifest.main([f"--results_dir={tmp_path}"]) == 0
  frame = _load(tmp_path)
  assert not frame.config_unchecked.any() and (frame.status == vocab.COMPLETED).all()
  config = json.loads((d / "config.json").read_text())
  config["optimizer"] = {"learning_rate": 0.05}
  (d / "config.json").write_text(json.dumps(config))
  row = _load(tmp_path).loc["momentum_seed0"]
  assert row.status == vocab.EDITED and "config.json differ" in row.error
  assert _load(tmp_path).loc["momentum_seed1", "status"] == vocab.COMPLETED
