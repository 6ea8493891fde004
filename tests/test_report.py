"""The claims report end to end: the command, what it writes, and the committed REPORT.md."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis import claims, report, runs, tables

ROOT = Path(__file__).resolve().parents[1]


def _run(root, experiment, name, config, summary, metrics=()):
  d = Path(root) / experiment / "cpu" / name
  d.mkdir(parents=True)
  (d / "config.json").write_text(json.dumps(dict(config, name=experiment, scale="cpu")))
  (d / "summary.json").write_text(json.dumps(dict(summary, total_steps=10, steps=10)))
  (d / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics))


def test_analysis_never_imports_jax():
  code = ("import sys; import analysis.figures, analysis.report, analysis.tables, "
          "analysis.claims; print('jax' in sys.modules)")
  out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
  assert out.stdout.strip() == "False", out.stderr


def test_report_survives_what_runs_can_produce(tmp_path):
  """All diverged, partial sweeps, runs without summary, no trust ratios: a report, no crash."""
  image = {"model": {"num_classes": 10, "name": "resnet"}, "data": {"name": "fashion_mnist"}}
  for name in ("lamb", "adam"):  # every run of Table 6 diverged
    _run(tmp_path, "table6", f"{name}_lr1", {**image, "optimizer": {"name": name,
                                                                    "learning_rate": 1.0}},
         {"status": "diverged"})
  _run(tmp_path, "table3", "lamb_seed0", {**image, "variant": "lamb"},
       {"status": "completed", "final": {"accuracy": 0.7, "examples": 1000}})
  d = tmp_path / "figure3" / "cpu" / "l1_seed0"  # still running: no summary
  d.mkdir(parents=True)
  (d / "config.json").write_text(json.dumps({"name": "figure3", "scale": "cpu"}))
  _run(tmp_path, "figures9_14", "run", {**image, "optimizer": {"name": "lamb"}},
       {"status": "completed", "final": {"accuracy": 0.7}})  # no trust_ratios.csv
  proc = subprocess.run([sys.executable, "-m", "analysis.report", f"--results_dir={tmp_path}"],
                        cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr
  text = (tmp_path / "REPORT.md").read_text()
  assert "## Claims" in text and "| 17 |" in text
  row17 = next(line for line in text.splitlines() if line.startswith("| 17 |"))
  # Table 6 compares five optimizers: with two of them present the claim waits for the others.
  assert "not run" in row17 and "Adagrad, AdamW, Momentum" in row17
  assert "### Table 6: CIFAR-10" in text and "Not run at cpu scale:" in text
  for match in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
    assert (tmp_path / match).stat().st_size > 1000, match


def test_report_cli_errors_are_one_line_and_write_nothing(tmp_path):
  run = lambda *a: subprocess.run([sys.executable, "-m", "analysis.report", *a], cwd=ROOT,
                                  capture_output=True, text=True, timeout=120)
  proc = run(f"--results_dir={tmp_path / 'typo'}")
  assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
  assert not (tmp_path / "typo").exists()
  proc = run(f"--results_dir={tmp_path}", f"--out={tmp_path / 'no' / 'REPORT.md'}")
  assert proc.returncode == 2 and proc.stderr.startswith("error: --out=")
  assert not list(tmp_path.iterdir())


def test_committed_results_regenerate_every_table_figure_and_the_report(tmp_path):
  """A fresh clone regenerates, without training, every table from the committed cpu-scale
  results; the committed REPORT.md is what they produce, and every image it embeds is in the
  repository."""
  committed = ROOT / "results"
  if not (committed / "REPORT.md").exists():
    pytest.skip("no committed results")
  for name, render in tables.TABLES.items():
    assert len(runs.of_scale(committed, name, "cpu")), f"{name} has no committed runs"
    assert "(cpu scale)" in tables.to_markdown(render(committed, "cpu")), name
  text = (committed / "REPORT.md").read_text()
  regenerated = report.build(committed, "cpu", tmp_path / "figures")
  before_figures = lambda t: t.split("## Figures")[0]
  assert before_figures(regenerated) == before_figures(text)
  embedded = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
  assert len(embedded) >= 10
  tracked = subprocess.run(["git", "ls-files", "results/figures"], cwd=ROOT,
                           capture_output=True, text=True).stdout.split()
  for path in embedded:
    assert (committed / path).exists(), path
    if tracked:  # in a git checkout, the images are committed, not just generated
      assert f"results/{path}" in tracked, path
  assert f"| {claims.CLAIMS[0].id} |" in text


def test_bert_runs_without_the_unigram_level_are_counted_but_a_run_still_training_is_not(tmp_path):
  bert = {"model": {"name": "bert"}, "data": {"name": "janeausten"}}
  _run(tmp_path, "table4", "new", bert, {"status": "completed", "final": {
      "masked_lm_accuracy": 0.2, "unigram_masked_lm_accuracy": 0.06, "examples": 1000}})
  _run(tmp_path, "table4", "training", bert, {"status": "running"})
  assert report._unchecked_unigram(tmp_path, "cpu") == []  # pylint: disable=protected-access
  _run(tmp_path, "table4", "old", bert, {"status": "completed", "final": {
      "masked_lm_accuracy": 0.2, "examples": 1000}})
  (line,) = report._unchecked_unigram(tmp_path, "cpu")  # pylint: disable=protected-access
  assert line.startswith("- 1 of 2 BERT runs were evaluated before")


def test_compute_spent_sums_each_runs_wall_time_and_the_decided_claims_share(tmp_path):
  image = {"model": {"num_classes": 10, "name": "resnet"}, "data": {"name": "fashion_mnist"}}
  for name, seconds in (("a", 600), ("b", 1200)):
    _run(tmp_path, "table7", name, image, {"status": "completed", "wall_time_s": seconds})
  _run(tmp_path, "table6", "c", image, {"status": "completed", "wall_time_s": 1800})
  claim7 = next(c for c in claims.CLAIMS if c.id == "18")  # reads table7
  held = claims.v.Verdict(claims.vocab.HELD, "")
  text = "\n".join(report.compute_section(tmp_path, "cpu", [(claim7, held)]))
  assert "3 committed cpu-scale runs" in text and "**1.0 h**" in text
  assert "named by a claim that is decided (held, not held or inconclusive): **0.5 h**" in text
  assert "| table6 | 1 | 30 | no |" in text and "| table7 | 2 | 30 | yes |" in text
  assert report.compute_section(tmp_path / "none", "cpu", []) == []


def test_each_decided_claims_cost_cheapest_first_with_the_union_so_far():
  minutes = pd.Series({"table6": 30.0, "table6_replicates": 5.0, "table7": 20.0,
                              "table3": 40.0})
  by_id = {c.id: c for c in claims.CLAIMS}
  held = claims.v.Verdict(claims.vocab.HELD, "")
  judged = [(by_id["17"], held),  # table6 + table6_replicates: 35
            (by_id["18"], held),  # table7: 20
            (by_id["19"], held),  # table6 again: 30, nothing new in the union
            (by_id["9"], claims.v.not_testable("why"))]  # undecided: left out
  lines = report.claim_costs(minutes, judged)
  rows = [line for line in lines if line.startswith("| ") and line[2].isdigit()]
  assert rows == ["| 18 | held | `table7` | 20 | 20 |",
                  "| 19 | held | `table6` | 30 | 50 |",
                  "| 17 | held | `table6`, `table6_replicates` | 35 | 55 |"]
  assert report.claim_costs(minutes, [(by_id["9"], claims.v.not_testable("why"))]) == []
