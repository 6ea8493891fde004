"""The image tables: the tuned setting a row shows, runs that diverged or cannot be read, the
tidy CSV and LaTeX outputs; and refusing to mix runs of different configs."""
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis import tables

ROOT = Path(__file__).resolve().parents[1]
NINE = ["table", "row_keys", "column", "reported", "measured", "spread", "seeds", "status", "scale"]


def _fake_run(root, experiment, name, config, summary):
  run_dir = Path(root) / experiment / "cpu" / name
  run_dir.mkdir(parents=True)
  (run_dir / "config.json").write_text(json.dumps(dict(config, name=experiment, scale="cpu")))
  (run_dir / "summary.json").write_text(json.dumps(summary))
  return run_dir


def _done(accuracy):
  return {"status": "completed", "final": {"accuracy": accuracy}}


def _diverged(step=3):
  return {"status": "diverged", "diverged_at_step": step}


def _table7_runs(root, rows):
  """rows: (optimizer, learning rate, seed, summary)."""
  for optimizer, lr, seed, summary in rows:
    _fake_run(root, "table7", f"{optimizer}_lr{lr:g}_seed{seed}",
              {"optimizer": {"name": optimizer, "learning_rate": lr}, "seed": seed,
               "batch_size": 1024}, summary)


def _cell(rendered, row_keys, column=None):
  """The tidy cell of a row (the table's one measured column unless `column` says which)."""
  cells = [c for c in rendered.cells if c["row_keys"] == row_keys
           and (column is None or c["column"] == column)]
  assert len(cells) == 1, cells
  return cells[0]


MEASURED7 = "measured accuracy (mean ± std over seeds)"


def test_best_learning_rate_needs_every_seed_completed(tmp_path):
  _table7_runs(tmp_path, [("lamb", 0.1, 0, _done(0.99)), ("lamb", 0.1, 1, _diverged()),
                          ("lamb", 0.01, 0, _done(0.95)), ("lamb", 0.01, 1, _done(0.97))])
  rendered = tables.table7(tmp_path, "cpu")
  row = rendered.frame.set_index("optimizer").loc["LAMB"]
  assert row["best lr"] == 0.01 and row["seeds"] == 2 and row["runs (diverged)"] == "4 (1)"
  assert row[MEASURED7] == "0.9600 ± 0.0141"
  cell = _cell(rendered, "optimizer=LAMB")
  assert abs(cell["measured"] - 0.96) < 1e-12 and cell["seeds"] == 2
  assert cell["status"] == "completed" and cell["reported"] == 0.9945


def test_optimizer_with_only_diverged_settings_reports_diverge(tmp_path):
  _table7_runs(tmp_path, [("adam", 1.0, 0, _diverged(5)), ("adam", 10.0, 0, _done(0.5)),
                          ("adam", 10.0, 1, _diverged(2))])
  rendered = tables.table7(tmp_path, "cpu")
  row = rendered.frame.set_index("optimizer").loc["Adam"]
  assert row[MEASURED7] == "diverged" and pd.isna(row["best lr"]) and row["seeds"] == 0
  cell = _cell(rendered, "optimizer=Adam")
  assert cell["status"] == "diverged" and pd.isna(cell["measured"])
  assert "a non-finite value at step 5" in cell["measured_text"]
  assert any("adam_lr1_seed0: a non-finite value at step 5" in n for n in rendered.notes)
  for output in (tables.to_markdown, tables.to_csv, tables.to_latex):  # renders, all three
    assert "diverged" in output(rendered)


def test_an_unreadable_run_is_named_and_does_not_change_the_row(tmp_path):
  _table7_runs(tmp_path, [("lamb", 0.01, 0, _done(0.96)), ("lamb", 0.01, 1, _done(0.97)),
                          ("lamb", 0.1, 0, _done(0.57)), ("lamb", 0.1, 1, _done(0.58)),
                          ("adam", 0.01, 0, _done(0.90))])
  before = tables.table7(tmp_path, "cpu").frame.set_index("optimizer")
  assert before.loc["LAMB", "best lr"] == 0.01
  # A damaged summary: the row cannot know whether that setting was the best, so it shows no
  # number, only the run that kept it out; the notes say why it is unreadable.
  for damaged in ("lamb_lr0.1_seed1", "lamb_lr0.01_seed1"):
    (tmp_path / f"table7/cpu/{damaged}/summary.json").write_text("{torn")
    rendered = tables.table7(tmp_path, "cpu")
    row = rendered.frame.set_index("optimizer").loc["LAMB"]
    assert row[MEASURED7] == f"{damaged} unreadable"
    assert _cell(rendered, "optimizer=LAMB")["status"] == "unreadable"
    assert any(f"{damaged} (" in n and "unreadable" in n for n in rendered.notes)
    assert rendered.frame.set_index("optimizer").loc["Adam", MEASURED7].startswith("0.9000")
    (tmp_path / f"table7/cpu/{damaged}/summary.json").write_text(json.dumps(
        _done(0.58 if "0.1_" in damaged else 0.97)))
  # A damaged config: no row can claim the run, so every choosing cell names it.
  (tmp_path / "table7/cpu/adam_lr0.01_seed0/config.json").write_text("")
  frame = tables.table7(tmp_path, "cpu").frame.set_index("optimizer")
  assert frame.loc["Adam", MEASURED7] == "adam_lr0.01_seed0 unreadable"
  assert frame.loc["LAMB", MEASURED7] == "adam_lr0.01_seed0 unreadable"


def test_results_of_another_config_are_not_skipped_or_resumed(tmp_path):
  run_dir = tmp_path / "table7" / "cpu" / "lamb_lr0.01_seed0"
  run_dir.mkdir(parents=True)
  (run_dir / "config.json").write_text(json.dumps({"name": "table7", "num_epochs": 99}))
  (run_dir / "summary.json").write_text(json.dumps({"status": "completed"}))
  before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
  out = subprocess.run([sys.executable, "experiments/run.py", "--config=table7",
                        "--only=^lamb_lr0.01_seed0$", f"--results_dir={tmp_path}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=180)
  assert out.returncode == 2
  assert "different config" in out.stderr and len(out.stderr.strip().splitlines()) == 1
  after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
  assert after == before


def test_table6_picks_each_optimizers_best_setting(tmp_path):
  for lr, acc in ((0.01, 0.80), (0.1, 0.85)):
    _fake_run(tmp_path, "table6", f"lamb_lr{lr:g}",
              {"optimizer": {"name": "lamb", "learning_rate": lr, "weight_decay": 0.01}},
              _done(acc))
  for wd, acc in ((0.001, 0.7), (0.1, 0.9)):
    _fake_run(tmp_path, "table6", f"adamw_wd{wd:g}_lr0.01",
              {"optimizer": {"name": "adamw", "learning_rate": 0.01, "weight_decay": wd}},
              _done(acc))
  _fake_run(tmp_path, "table6", "adam_lr50",
            {"optimizer": {"name": "adam", "learning_rate": 50.0, "weight_decay": 0.01}},
            _diverged())
  rendered = tables.table6(tmp_path, "cpu")
  frame = rendered.frame.set_index("optimizer")
  assert frame.loc["LAMB", "best setting"] == "lr 0.1"
  assert frame.loc["LAMB", "measured (best setting)"] == "0.8500 (1 seed)"
  assert abs(frame.loc["LAMB", "difference"] - (0.85 - 0.9408)) < 1e-9
  assert frame.loc["AdamW", "best setting"] == "lr 0.01, wd 0.1"
  assert frame.loc["Adam", "measured (best setting)"] == "diverged"
  assert frame.loc["Adam", "runs (diverged)"] == "1 (1)"
  assert frame.loc["Adagrad", "measured (best setting)"] == "not run"
  assert _cell(rendered, "optimizer=Adagrad")["seeds"] == 0


def test_tuning_grid_rows_follow_the_printed_table(tmp_path):
  _fake_run(tmp_path, "table15", "wd0.001_lr0.0001",
            {"optimizer": {"name": "adamw", "learning_rate": 0.0001, "weight_decay": 0.001}},
            _done(0.5))
  _fake_run(tmp_path, "table15", "wd0.5_lr0.0001",  # a setting the paper does not print
            {"optimizer": {"name": "adamw", "learning_rate": 0.0001, "weight_decay": 0.5}},
            _done(0.6))
  rendered = tables.TABLES["table15"](tmp_path, "cpu")
  frame = rendered.frame
  assert len(frame) == 20  # every printed row, the repeated first setting included
  assert list(frame.iloc[:2]["measured top-1"]) == ["0.5000 (1 seed)"] * 2
  assert (frame.iloc[2:]["measured top-1"] == "not run").all()
  first = rendered.cells[0]
  assert first["row_keys"] == ("learning_rate=0.0001, weight_decay=0.001, "
                               "l2_regularization=default (0.01)")
  assert first["measured"] == 0.5 and abs(first["reported"] - 0.21142578) < 1e-12
  assert any(n == "Runs that match no printed row: wd0.5_lr0.0001." for n in rendered.notes)


def test_runs_without_a_variant_and_empty_results_render(tmp_path, capsys):
  _fake_run(tmp_path, "table3", "lamb_seed0", {"optimizer": {"name": "lamb"}}, _done(0.7))
  rendered = tables.table3(tmp_path, "cpu")
  assert (rendered.frame["measured top-1 (mean ± std over seeds)"] == "not run").all()
  assert "Runs that match no printed row: lamb_seed0." in rendered.notes
  empty = tmp_path / "empty"
  empty.mkdir()
  for fmt in ("markdown", "csv", "latex"):
    assert tables.main(["all", f"--results_dir={empty}", f"--format={fmt}"]) == 0
  assert "No runs found under" in capsys.readouterr().out


def _csv_of_all(results_dir, capsys) -> tuple:
  assert tables.main(["all", f"--results_dir={results_dir}", "--format=csv"]) == 0
  text = capsys.readouterr().out
  return text, pd.read_csv(io.StringIO(text))


def test_tidy_csv_of_all_reads_with_pandas(tmp_path, capsys):
  _table7_runs(tmp_path, [("lamb", 0.01, 0, _done(0.96)), ("lamb", 0.01, 1, _done(0.98)),
                          ("adam", 1.0, 0, _diverged())])
  text, tidy = _csv_of_all(tmp_path, capsys)
  assert list(tidy.columns)[:9] == NINE and text.count("row_keys") == 1
  assert set(tidy.table) == set(range(1, 26))
  for column in ("reported", "measured", "spread"):
    assert pd.api.types.is_float_dtype(tidy[column]), column
  assert pd.api.types.is_integer_dtype(tidy.seeds)
  lamb = tidy[(tidy.table == 7) & (tidy.row_keys == "optimizer=LAMB")].iloc[0]
  assert lamb.measured == pytest.approx(0.97) and lamb.spread == pytest.approx(0.0141421356)
  assert lamb.seeds == 2 and lamb.status == "completed" and lamb.scale == "cpu"
  assert lamb.measured_text == "0.9700 ± 0.0141"
  # the paper's word stays a word: Table 2's LARS at 32K printed 'diverge'
  lars = tidy[(tidy.table == 2) & (tidy.row_keys == "batch=32K")
              & tidy.column.str.startswith("LARS: measured masked-LM accuracy")].iloc[0]
  assert pd.isna(lars.reported) and lars.reported_text == "diverge"


def test_tidy_csv_of_the_committed_results(capsys):
  committed = ROOT / "results"
  if not (committed / "table7").is_dir():
    pytest.skip("no committed results")
  text, tidy = _csv_of_all(committed, capsys)
  assert list(tidy.columns)[:9] == NINE and text.count("row_keys") == 1
  assert set(tidy.table) == set(range(1, 26)) and "±" not in text.split("measured_text")[0]
  assert not tidy[["reported", "measured", "spread"]].astype(str).apply(
      lambda c: c.str.contains("±")).any().any()


def _tabular_rows(latex: str) -> tuple:
  """(number of columns the tabular declares, the rows between its rules)."""
  spec = re.search(r"\\begin\{tabular\}\{([lrcS]+)\}", latex).group(1)
  body = latex.split("\\midrule\n")[1].split("\\bottomrule")[0]
  header = latex.split("\\toprule\n")[1].split("\\midrule")[0]
  return len(spec), [header] + [line for line in body.splitlines() if line.strip()]


def test_latex_has_booktabs_rules_and_escaped_text(tmp_path):
  _table7_runs(tmp_path, [("lamb", 0.01, 0, _done(0.96)), ("lamb", 0.01, 1, _done(0.98)),
                          ("adam", 1.0, 0, _diverged())])
  latex = tables.to_latex(tables.table7(tmp_path, "cpu"))
  for rule in ("\\toprule", "\\midrule", "\\bottomrule"):
    assert latex.count(rule) == 1, rule
  for env in ("table", "tabular"):
    assert latex.count(f"\\begin{{{env}}}") == latex.count(f"\\end{{{env}}}") == 1
  assert latex.count("{") == latex.count("}")
  columns, rows = _tabular_rows(latex)
  assert len(rows) == 6  # the header and the paper's five optimizers
  for row in rows:
    assert len(re.findall(r"(?<!\\)&", row)) == columns - 1, row
    assert row.rstrip().endswith("\\\\")
  assert "0.9700 $\\pm$ 0.0141" in latex and "±" not in latex
  assert "adam\\_lr1\\_seed0" in latex and "5\\%" in latex  # the diverged note, escaped
  assert not re.search(r"(?<!\\)[_%#]", latex.replace("\\_", "").replace("\\%", ""))
  assert "\\begin{tabular}{lrrrrrl}" in latex  # text left, numbers right
  assert "\\caption[{Table 7" in latex and "Measured at scale cpu" in latex
