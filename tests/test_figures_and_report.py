"""Figures and the claims report from results files (no jax: analysis reads files only)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from analysis import figures, report, tables

ROOT = Path(__file__).resolve().parents[1]


def _run(root, experiment, name, config, summary, evals=(), trust=None):
  d = Path(root) / experiment / "cpu" / name
  d.mkdir(parents=True)
  (d / "config.json").write_text(json.dumps(dict(config, name=experiment, scale="cpu")))
  (d / "summary.json").write_text(json.dumps(dict(summary, total_steps=10)))
  lines = [json.dumps({"split": "eval", "step": s, "accuracy": a, "loss": 1 - a}) for s, a in evals]
  (d / "metrics.jsonl").write_text("\n".join(lines) + "\n")
  if trust:
    (d / "trust_ratios.csv").write_text("step,path,slice,ratio\n" + "\n".join(
        f"{s},{p},0,{r}" for s, p, r in trust) + "\n")


def _done(acc, loss=None):
  return {"status": "completed", "final": {"accuracy": acc, "loss": 1 - acc if loss is None
                                           else loss}}


@pytest.fixture
def results(tmp_path):
  for name, lr, acc, loss in (("lamb", 0.01, 0.90, 0.40), ("adam", 0.001, 0.85, 0.30),
                              ("adagrad", 0.1, 0.80, 0.50)):
    _run(tmp_path, "table6", f"{name}_lr{lr:g}",
         {"num_epochs": 2, "optimizer": {"name": name, "learning_rate": lr, "weight_decay": 0.0}},
         _done(acc, loss), evals=[(5, acc - 0.1), (10, acc)])
  for variant, acc in (("lamb", 0.70), ("adam", 0.65), ("momentum", 0.68)):
    _run(tmp_path, "table3", f"{variant}_seed0", {"variant": variant, "num_epochs": 2},
         _done(acc))
  for norm, acc in (("l1", 0.7001), ("l2", 0.7003), ("linf", 0.7020)):
    _run(tmp_path, "figure3", f"{norm}_seed0",
         {"num_epochs": 2, "optimizer": {"name": "lamb", "kwargs": {"norm": norm}}}, _done(acc))
  _run(tmp_path, "figures9_14", "run", {"num_epochs": 2, "optimizer": {"name": "lamb"}},
       _done(0.7), trust=[(s, p, r) for s in (1, 5, 10) for p, r in (("a/kernel", 0.1),
                                                                     ("a/bias", 1.0))])
  return tmp_path


def test_claims_are_evaluated_with_their_numbers(results):
  verdicts = {c.source: c.evaluate(results, "cpu") for c in report.CLAIMS}
  assert verdicts["Table 3"].status == report.HELD  # LAMB 0.70 above 0.68 and 0.65
  assert "lamb 0.7000" in verdicts["Table 3"].evidence
  assert verdicts["Figure 3"].status == report.NOT_HELD  # spread 0.0019 >= 0.001
  assert "spread 0.0019" in verdicts["Figure 3"].evidence
  # Table 6 alone decides (no table7 here): LAMB 0.90 is the best tuned accuracy.
  assert verdicts["Tables 6, 7"].status == report.HELD
  # Lowest loss (adam, 0.30) is not the most accurate run (lamb): held.
  assert verdicts["Figure 5"].status == report.HELD
  assert verdicts["Figure 2"].status == report.NOT_RUN
  assert verdicts["Table 2"].status == report.NOT_RUN


def test_report_and_figures_are_written(results):
  out = results / "REPORT.md"
  proc = subprocess.run([sys.executable, "-m", "analysis.report", f"--results_dir={results}"],
                        cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr
  text = out.read_text()
  assert "| LAMB beats the tuned adaptive baselines" in text and "**held**" in text
  assert "### Table 6: CIFAR-10 with DavidNet (cpu scale)" in text
  assert "Not run at cpu scale:" in text and "table9" in text
  for name in ("figure4", "figure5", "figure3", "trust_ratio"):
    assert (results / "figures" / f"{name}_cpu.png").stat().st_size > 1000, name
  assert "figure1: not drawn" in text


def test_figures_cli_names_and_skips(results, tmp_path):
  run = lambda *a: subprocess.run([sys.executable, "-m", "analysis.figures", *a,
                                   f"--results_dir={results}", f"--out_dir={tmp_path / 'f'}"],
                                  cwd=ROOT, capture_output=True, text=True, timeout=120)
  proc = run("figure4")
  assert proc.returncode == 0 and (tmp_path / "f" / "figure4_cpu.pdf").exists()
  proc = run("figure2")
  assert proc.returncode == 1 and "skipped" in proc.stdout
  proc = run("figure99")
  assert proc.returncode == 2 and proc.stderr.startswith("error: unknown figure")


def test_analysis_never_imports_jax():
  code = ("import sys; import analysis.figures, analysis.report, analysis.tables; "
          "print('jax' in sys.modules)")
  out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
  assert out.stdout.strip() == "False", out.stderr


def test_diverged_and_unfinished_runs_never_make_a_claim_hold(tmp_path):
  # LAMB diverged on one seed: it does not "beat" anything.
  _run(tmp_path, "table3", "lamb_seed0", {"variant": "lamb"}, {"status": "diverged"})
  _run(tmp_path, "table3", "lamb_seed1", {"variant": "lamb"}, _done(0.60))
  _run(tmp_path, "table3", "adam_seed0", {"variant": "adam"}, _done(0.50))
  verdict = next(c for c in report.CLAIMS if c.source == "Table 3").evaluate(tmp_path, "cpu")
  assert verdict.status == report.NOT_HELD and "lamb diverged" in verdict.evidence
  # A ladder with a diverged batch is not held; a partial ladder is not run.
  ladder = next(c for c in report.CLAIMS if c.source == "Table 5")
  _run(tmp_path, "table5", "batch512", {"batch_size": 8}, _done(0.7))
  _run(tmp_path, "table5", "batch1K", {"batch_size": 16}, _done(0.7))
  assert ladder.evaluate(tmp_path, "cpu").status == report.NOT_RUN
  _run(tmp_path, "table5", "batch32K", {"batch_size": 512}, {"status": "diverged"})
  assert ladder.evaluate(tmp_path, "cpu").status == report.NOT_HELD
  # Runs still in progress (no summary) neither crash the report nor count.
  d = tmp_path / "figure3" / "cpu" / "l1_seed0"
  d.mkdir(parents=True)
  (d / "config.json").write_text(json.dumps({"name": "figure3", "scale": "cpu"}))
  assert next(c for c in report.CLAIMS if c.source == "Figure 3").evaluate(
      tmp_path, "cpu").status == report.NOT_RUN
  text = report.build(tmp_path, "cpu", tmp_path / "figures")
  assert "figure3: not drawn" in text


def _bert(acc):
  return {"status": "completed", "final": {"masked_lm_accuracy": acc}}


def _claim(source):
  return next(c for c in report.CLAIMS if c.source == source)


LADDER = ("512", "1K", "2K", "4K", "8K", "16K", "32K")


def test_bert_claims_read_masked_lm_accuracy(tmp_path):
  for claim in ("Tables 1, 4", "Table 2", "Table 8"):
    assert _claim(claim).evaluate(tmp_path, "cpu").status == report.NOT_RUN
  accuracy = dict(zip(LADDER, (0.126, 0.121, 0.106, 0.078, 0.070, 0.121, 0.061)))
  for k, label in enumerate(LADDER):
    _run(tmp_path, "table4", f"batch{label}", {"variant": label, "batch_size": 8 * 2 ** k},
         _bert(accuracy[label]))
    if k == 1:  # two of seven batch sizes decide nothing
      assert _claim("Tables 1, 4").evaluate(tmp_path, "cpu").status == report.NOT_RUN
  verdict = _claim("Tables 1, 4").evaluate(tmp_path, "cpu")
  assert verdict.status == report.NOT_HELD and "0.0650" in verdict.evidence  # 0.126 - 0.061
  # Table 2: LARS below LAMB everywhere but not diverged at 32K is not the paper's claim ...
  for k, label in enumerate(LADDER):
    _run(tmp_path, "table2", f"lars_{label}", {"variant": f"lars_{label}"}, _bert(0.05 + k / 100))
    if k < len(LADDER) - 1:
      assert _claim("Table 2").evaluate(tmp_path, "cpu").status == report.NOT_RUN
    _run(tmp_path, "table2", f"lamb_{label}", {"variant": f"lamb_{label}"}, _bert(0.20))
  verdict = _claim("Table 2").evaluate(tmp_path, "cpu")
  assert verdict.status == report.NOT_HELD and "did not diverge" in verdict.evidence
  assert "LARS below LAMB at every batch" in verdict.evidence
  # ... a diverged LARS at 32K makes it hold; one diverged at 1K instead does not.
  summary = lambda run: tmp_path / "table2" / "cpu" / run / "summary.json"
  summary("lars_1K").write_text(json.dumps({"status": "diverged", "total_steps": 10}))
  assert _claim("Table 2").evaluate(tmp_path, "cpu").status == report.NOT_HELD
  summary("lars_32K").write_text(json.dumps({"status": "diverged", "total_steps": 10}))
  assert _claim("Table 2").evaluate(tmp_path, "cpu").status == report.HELD
  # Table 8: all nine AdamW settings against LAMB's 16K rung of Table 4 (0.121).
  settings = [(w, lr) for w in (0.05, 0.1, 0.2) for lr in (0.0008, 0.0016, 0.0024)]
  for k, (warmup, lr) in enumerate(settings):
    _run(tmp_path, "table8", f"warmup{warmup}_lr{lr}", {},
         {"status": "diverged"} if k == 0 else _bert(0.09))
    if k < len(settings) - 1:
      assert _claim("Table 8").evaluate(tmp_path, "cpu").status == report.NOT_RUN
  verdict = _claim("Table 8").evaluate(tmp_path, "cpu")
  assert verdict.status == report.HELD and "0.0900" in verdict.evidence
  summary8 = tmp_path / "table8" / "cpu" / "warmup0.2_lr0.0024" / "summary.json"
  summary8.write_text(json.dumps({**_bert(0.115), "total_steps": 10}))
  assert _claim("Table 8").evaluate(tmp_path, "cpu").status == report.NOT_HELD


def test_ties_are_inconclusive_not_held_or_not(tmp_path):
  """Runs that all score the same (at cpu scale: the unigram guess) show nothing either way."""
  for k, label in enumerate(LADDER):
    _run(tmp_path, "table4", f"batch{label}", {"variant": label, "batch_size": 8 * 2 ** k},
         {"status": "completed", "final": {"masked_lm_accuracy": 0.0608,
                                           "masked_lm_loss": 6.4 + k / 100}})
  verdict = _claim("Tables 1, 4").evaluate(tmp_path, "cpu")
  assert verdict.status == report.INCONCLUSIVE
  for w in (0.05, 0.1, 0.2):
    for lr in (0.0008, 0.0016, 0.0024):
      _run(tmp_path, "table8", f"warmup{w}_lr{lr}", {},
           {"status": "completed", "final": {"masked_lm_accuracy": 0.0608,
                                             "masked_lm_loss": 6.43 + w}})
  verdict = _claim("Table 8").evaluate(tmp_path, "cpu")
  assert verdict.status == report.INCONCLUSIVE
  assert "lowest AdamW held-out masked-LM loss 6.4800, LAMB's 6.4500" in verdict.evidence


def test_bert_claims_survive_runs_without_a_variant(tmp_path):
  _run(tmp_path, "table4", "batch512", {"batch_size": 8}, _bert(0.1))
  _run(tmp_path, "table8", "warmup0.05_lr0.0008", {}, _bert(0.1))
  for claim in ("Tables 1, 4", "Table 8"):
    assert _claim(claim).evaluate(tmp_path, "cpu").status == report.NOT_RUN
  assert "Claims" in report.build(tmp_path, "cpu", tmp_path / "figures")


def test_bert_loss_curves_from_train_records(tmp_path):
  for batch, total in ((8, 40), (512, 4)):
    d = tmp_path / "table4" / "cpu" / f"batch{batch}"
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"name": "table4", "scale": "cpu",
                                               "batch_size": batch}))
    (d / "summary.json").write_text(json.dumps({"status": "completed", "total_steps": total}))
    (d / "metrics.jsonl").write_text("\n".join(
        json.dumps({"split": "train", "step": s, "loss": 10.0 / s}) for s in range(1, total + 1)))
  d = tmp_path / "figure7" / "cpu" / "run"
  d.mkdir(parents=True)
  (d / "config.json").write_text(json.dumps({"name": "figure7", "scale": "cpu"}))
  (d / "summary.json").write_text(json.dumps({"status": "completed", "total_steps": 6}))
  (d / "metrics.jsonl").write_text("\n".join(
      json.dumps({"split": "train", "step": s, "loss": 9.0 - s,
                  "phase": "seq128" if s <= 4 else "seq512"}) for s in range(1, 7)))
  fig6 = figures.figure6(tmp_path, "cpu")  # drawn from table4's runs: figure6 has none
  assert len(fig6.axes[0].lines) == 2 and "table4" in fig6.axes[0].get_title()
  fig7 = figures.figure7(tmp_path, "cpu")
  switch = [l for l in fig7.axes[0].lines if l.get_linestyle() == "--"]
  assert switch and switch[0].get_xdata()[0] == 5


def test_committed_results_regenerate_every_table_figure_and_the_report(tmp_path):
  """A fresh clone regenerates, without training, every table and figure from the committed
  cpu-scale results, and the committed REPORT.md is what those results produce."""
  committed = ROOT / "results"
  if not (committed / "REPORT.md").exists():
    pytest.skip("no committed results")
  for name, render in tables.TABLES.items():
    frame = report._runs(committed, name, "cpu")  # pylint: disable=protected-access
    text = tables.to_markdown(render(committed, "cpu"))
    assert "(cpu scale)" in text, name
    assert len(frame), f"{name} has no committed cpu-scale runs"
  for name, draw in figures.FIGURES.items():
    fig = draw(committed, "cpu")  # NoData here means a figure lost its committed runs
    fig.savefig(tmp_path / f"{name}.png")
    figures.plt.close(fig)
    assert (tmp_path / f"{name}.png").stat().st_size > 1000, name
  regenerated = report.build(committed, "cpu", tmp_path / "figures")
  before_figures = lambda text: text.split("## Figures")[0]
  assert before_figures(regenerated) == before_figures((committed / "REPORT.md").read_text())
