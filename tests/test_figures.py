"""The figures (analysis.figures) from small synthetic results folders: layer order, diverged runs
marked and never plotted at their blown-up values, means over seeds, NoData instead of crashes,
the CLI's exit statuses and small PNGs from `render` (no jax: analysis reads files only)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from analysis import figures

ROOT = Path(__file__).resolve().parents[1]


def _run(root, experiment, name, config, summary, evals=(), train=(), trust=None):
  """One run folder as the runner leaves it: evals are (step, accuracy), train (step, loss),
  trust (step, path, ratio)."""
  d = Path(root) / experiment / "cpu" / name
  d.mkdir(parents=True)
  (d / "config.json").write_text(json.dumps(dict(config, name=experiment, scale="cpu")))
  (d / "summary.json").write_text(json.dumps(dict({"total_steps": 10}, **summary)))
  lines = [{"split": "eval", "step": s, "accuracy": a, "loss": 1 - a} for s, a in evals]
  if lines and summary.get("final"):  # the summary's final numbers are its last evaluation's
    lines[-1].update(summary["final"])
  lines += [{"split": "train", "step": s, "loss": l} for s, l in train]
  (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
  if trust:
    (d / "trust_ratios.csv").write_text("step,path,slice,ratio\n" + "".join(
        f"{s},{p},0,{r}\n" for s, p, r in trust))
  return d


def _done(acc, loss=None):
  return {"status": "completed", "final": {"accuracy": acc, "loss": 1 - acc if loss is None
                                           else loss}}


def _opt(name, lr, seed=0, wd=0.0, **optimizer):
  return {"num_epochs": 2, "seed": seed,
          "optimizer": {"name": name, "learning_rate": lr, "weight_decay": wd, **optimizer}}


def _line(ax, prefix):
  lines = [l for l in ax.get_lines() if str(l.get_label()).startswith(prefix)]
  assert len(lines) == 1, [l.get_label() for l in ax.get_lines()]
  return lines[0]


@pytest.fixture(autouse=True)
def _close_figures():
  yield
  figures.plt.close("all")


# --- layer order --------------------------------------------------------------------------------

def test_network_order_puts_layers_input_to_output():
  resnet = ["fc/kernel", "layer10/block0/conv1/kernel", "layer2/block10/conv1/kernel",
            "layer2/block2/conv1/kernel", "stem/conv/kernel", "layer1/block0/proj_conv/kernel",
            "layer1/block0/conv2/kernel"]
  assert figures.network_order(resnet) == [
      "stem/conv/kernel", "layer1/block0/conv2/kernel", "layer1/block0/proj_conv/kernel",
      "layer2/block2/conv1/kernel", "layer2/block10/conv1/kernel",
      "layer10/block0/conv1/kernel", "fc/kernel"]
  assert figures.network_order(["fc3/kernel", "fc1/kernel", "conv2/kernel", "conv1/kernel",
                                "fc2/kernel"]) == ["conv1/kernel", "conv2/kernel", "fc1/kernel",
                                                   "fc2/kernel", "fc3/kernel"]  # LeNet
  assert figures.network_order(["linear/kernel", "layer1/res1/conv/kernel", "prep/conv/kernel",
                                "layer1/conv/kernel"]) == [
      "prep/conv/kernel", "layer1/conv/kernel", "layer1/res1/conv/kernel", "linear/kernel"]
  bert = ["cls/predictions/transform/dense/kernel", "bert/pooler/dense/kernel",
          "bert/encoder/layer_10/output/dense/kernel", "bert/encoder/layer_2/output/dense/kernel",
          "bert/embeddings/word_embeddings/embedding"]
  assert figures.network_order(bert) == [bert[4], bert[3], bert[2], bert[1], bert[0]]


def test_short_names_are_readable():
  assert figures.short_name("layer1/block0/conv1/kernel") == "L1/b0/conv1"
  assert figures.short_name("stem/conv/kernel") == "stem/conv"
  assert figures.short_name("bert/encoder/layer_3/attention/self/query/kernel") == \
      "L3/attn/self/query"
  assert figures.short_name("bert/embeddings/word_embeddings/embedding") == "emb/word"


def test_trust_ratios_in_network_order_without_unadapted_layers(tmp_path):
  paths = ["fc/kernel", "layer2/block0/conv1/kernel", "layer10/block0/conv1/kernel",
           "stem/conv/kernel", "layer2/block0/bn1/scale"]
  trust = [(s, p, 1.0 if "bn" in p else 0.1 * (i + 1)) for s in range(1, 9)
           for i, p in enumerate(paths)]
  _run(tmp_path, "figures9_14", "run", _opt("lamb", 0.01), _done(0.7), trust=trust)
  fig = figures.trust_ratio(tmp_path, "cpu")
  labels = [t.get_text() for t in fig.axes[-1].get_xticklabels()]
  assert labels == ["stem/conv", "L2/b0/conv1", "L10/b0/conv1", "fc"]
  assert len(fig.axes) == 6  # six of the eight recorded iterations
  assert "1 layers outside the adaptation mask" in fig._suptitle.get_text()


def test_trust_ratios_fall_back_to_table7s_chosen_lamb_setting(tmp_path):
  trust = [(s, "conv1/kernel", 0.5) for s in range(1, 4)]
  # lr 0.1 has the best single seed (0.95) but the worse mean: lr 0.01's first seed is drawn
  for lr, accs in ((0.1, (0.95, 0.3)), (0.01, (0.8, 0.8))):
    for seed, acc in enumerate(accs):
      _run(tmp_path, "table7", f"lamb_lr{lr}_seed{seed}", _opt("lamb", lr, seed), _done(acc),
           trust=trust)
  _run(tmp_path, "table7", "adam_lr0.1_seed0", _opt("adam", 0.1), _done(0.99), trust=trust)
  title = " ".join(figures.trust_ratio(tmp_path, "cpu")._suptitle.get_text().split())
  assert "table7 (LAMB) run 'lamb_lr0.01_seed0'" in title


# --- diverged runs are marked, not plotted -------------------------------------------------------

def test_figure5_keeps_its_axis_on_the_completed_runs(tmp_path):
  for lr, acc, loss in ((0.01, 0.9, 0.3), (0.02, 0.85, 0.5), (0.04, 0.8, 0.4)):
    _run(tmp_path, "table6", f"lamb_lr{lr}", _opt("lamb", lr), _done(acc, loss))
  _run(tmp_path, "table6", "adam_lr10", _opt("adam", 10.0), _done(0.1, 1e6))  # absurd loss
  _run(tmp_path, "table6", "adam_lr20", _opt("adam", 20.0),
       {"status": "diverged", "final": {"accuracy": 0.1, "loss": 4e16}})
  _run(tmp_path, "table6", "adam_lr30", _opt("adam", 30.0), {"status": "diverged"})
  # a "completed" run whose training loss blew up: diverged in the paper's sense
  _run(tmp_path, "table6", "adam_lr40", _opt("adam", 40.0), _done(0.1, 1e12),
       train=[(s, 2.3 * s) for s in range(1, 11)])
  fig = figures.figure5(tmp_path, "cpu")
  ax, strip = fig.axes[0], fig.axes[1]
  lo, hi = ax.get_xlim()
  assert 0.2 < lo and hi < 10, (lo, hi)  # around 0.3-0.5, not 1e16
  on_axis = sum(len(c.get_offsets()) for c in ax.collections)
  assert on_axis == 3
  beside = [c.get_offsets() for c in strip.collections]
  assert sum(len(o) for o in beside) == 3  # 1 off-scale completed + 2 diverged with accuracy
  assert max(o[:, 1].max() for o in beside if len(o)) <= 1.0
  legend = " ".join(" ".join(t.get_text().split()) for t in strip.get_legend().get_texts())
  assert "diverged: 3 (1 without a final evaluation" in legend
  assert "validation loss > 4.5 (10x the median): 1" in legend


def test_figure1_draws_the_chosen_settings_mean_not_the_best_seed(tmp_path):
  # lr 0.01 has the best single seed (0.9) but the worse mean (0.7); lr 0.02's mean is 0.75.
  for lr, accs in ((0.01, (0.9, 0.5)), (0.02, (0.74, 0.76))):
    for seed, acc in enumerate(accs):
      _run(tmp_path, "figure1", f"lamb_lr{lr}_seed{seed}", _opt("lamb", lr, seed),
           _done(acc), evals=[(5, acc - 0.2), (10, acc)])
  _run(tmp_path, "figure1", "momentum", _opt("momentum", 12.8), {"status": "diverged"},
       evals=[(5, 0.1), (10, 0.1)])
  fig = figures.figure1(tmp_path, "cpu")
  ax = fig.axes[0]
  line = _line(ax, "LAMB")
  assert "best of 2: lr 0.02" in line.get_label() and "mean of 2 seeds" in line.get_label()
  np.testing.assert_allclose(line.get_ydata(), [0.55, 0.75])
  np.testing.assert_allclose(line.get_xdata(), [1.0, 2.0])  # epochs: 10 steps are 2 epochs
  band = ax.collections[0].get_paths()[0].vertices[:, 1]
  assert np.isclose(band.min(), 0.54) and np.isclose(band.max(), 0.76)  # min-max over seeds
  momentum = _line(ax, "Momentum")
  assert "diverged" in momentum.get_label() and len(momentum.get_xdata()) == 0


def test_figure2_and_figure4_curves_are_means_with_a_marker_at_every_evaluation(tmp_path):
  for seed, accs in enumerate(((0.2, 0.4, 0.6), (0.4, 0.6, 0.8))):
    _run(tmp_path, "figure2", f"correction_warmup_seed{seed}",
         {**_opt("lamb", 0.01, seed), "variant": "correction_warmup"}, _done(accs[-1]),
         evals=list(zip((3, 6, 10), accs)))
  fig = figures.figure2(tmp_path, "cpu")
  line = _line(fig.axes[0], "adam-correction + warmup")
  np.testing.assert_allclose(line.get_ydata(), [0.3, 0.5, 0.7])
  for name, accs in (("lamb", (0.5, 0.6, 0.7, 0.8)), ("adam", (0.4, 0.5, 0.6, 0.7))):
    _run(tmp_path, "table6", name, _opt(name, 0.01), _done(accs[-1]),
         evals=list(zip((2, 5, 7, 10), accs)))
  ax = figures.figure4(tmp_path, "cpu").axes[0]
  lamb = _line(ax, "LAMB")
  assert lamb.get_marker() == "o" and len(lamb.get_xdata()) == 4


def test_figures_1_to_3_draw_the_arm_another_experiment_trains(tmp_path):
  # Figure 2's "warmup + correction" is Table 3's LAMB (analysis.runs.SHARED_ARMS).
  _run(tmp_path, "figure2", "nocorrection_warmup_seed0",
       {**_opt("lamb", 0.01), "variant": "nocorrection_warmup"}, _done(0.6),
       evals=[(5, 0.5), (10, 0.6)])
  ax = figures.figure2(tmp_path, "cpu").axes[0]
  missing = _line(ax, "adam-correction + warmup")
  assert len(missing.get_xdata()) == 0
  assert "not run (its correction_warmup arm is table3's lamb runs: python experiments/run.py " \
         "--config=table3 --only=lamb)" in missing.get_label().replace("\n", " ")
  _run(tmp_path, "table3", "lamb_seed0", {**_opt("lamb", 0.01), "variant": "lamb"},
       _done(0.7), evals=[(10, 0.7)])
  _run(tmp_path, "table3", "adam_seed0", {**_opt("adam", 0.01), "variant": "adam"},
       _done(0.5), evals=[(10, 0.5)])
  ax = figures.figure2(tmp_path, "cpu").axes[0]
  lamb = _line(ax, "adam-correction + warmup (table3's lamb runs)")
  np.testing.assert_allclose(lamb.get_ydata(), [0.7])
  assert not any(l.get_label().startswith("adam (") for l in ax.get_lines())  # only LAMB comes
  # Figure 3's L2 and Figure 1's LAMB likewise.
  _run(tmp_path, "figure3", "l1_seed0", _opt("lamb", 0.01, kwargs={"norm": "l1"}), _done(0.6),
       evals=[(10, 0.6)])
  _line(figures.figure3(tmp_path, "cpu").axes[0], "L2 (table3's lamb runs)")
  _run(tmp_path, "figure1", "nlamb_seed0", _opt("nlamb", 0.01), _done(0.6), evals=[(10, 0.6)])
  _run(tmp_path, "table5", "batch32K_seed0", {**_opt("lamb", 0.01), "variant": "32K"},
       _done(0.7), evals=[(10, 0.7)])
  _line(figures.figure1(tmp_path, "cpu").axes[0], "LAMB (table5's 32K runs)")


# --- nothing to draw is NoData, never a crash ----------------------------------------------------

def test_every_run_diverged_is_no_data(tmp_path):
  for name in ("lamb", "adam"):
    _run(tmp_path, "table6", name, _opt(name, 50.0), {"status": "diverged"})
    _run(tmp_path, "figure1", name, _opt(name, 50.0), {"status": "diverged"})
  for draw in (figures.figure1, figures.figure4, figures.figure5):
    with pytest.raises(figures.NoData) as e:
      draw(tmp_path, "cpu")
    assert "\n" not in str(e.value) and "diverged" in str(e.value)


def test_unreadable_runs_and_missing_files_are_no_data(tmp_path):
  for experiment in ("figure1", "figure3", "table6", "figures9_14", "figure7", "table4"):
    d = tmp_path / experiment / "cpu" / "run"
    d.mkdir(parents=True)
    (d / "config.json").write_text("{not json")
    (d / "summary.json").write_text(json.dumps({"status": "completed"}))
  for name in ("figure1", "figure3", "figure4", "figure5", "trust_ratio", "figure6", "figure7"):
    with pytest.raises(figures.NoData):
      figures.FIGURES[name](tmp_path, "cpu")
  with pytest.raises(figures.NoData):
    figures.FIGURES["table9_grid"](tmp_path, "cpu")  # no table9 runs at all


def test_damaged_files_are_skipped_not_fatal(tmp_path):
  # a completed run whose metrics.jsonl has a damaged line, beside a good seed
  good = _run(tmp_path, "figure3", "l2_seed0", _opt("lamb", 0.01, 0, kwargs={"norm": "l2"}),
              _done(0.7), evals=[(5, 0.5), (10, 0.7)])
  bad = _run(tmp_path, "figure3", "l1_seed0", _opt("lamb", 0.01, 0, kwargs={"norm": "l1"}),
             _done(0.7))
  (bad / "metrics.jsonl").write_text('{"split": "eval"}\nnot json\n{"split": "eval"}\n')
  fig = figures.figure3(tmp_path, "cpu")
  labels = [l.get_label() for l in fig.axes[0].get_lines()]
  assert any(l.startswith("L2") for l in labels)
  assert any("L1" in l and "no evaluation records" in l for l in labels)
  # a LAMB run without trust ratios, and one whose file is damaged
  _run(tmp_path, "figures9_14", "run", _opt("lamb", 0.01), _done(0.7))
  with pytest.raises(figures.NoData, match="trust_ratios.csv"):
    figures.trust_ratio(tmp_path, "cpu")
  (tmp_path / "figures9_14" / "cpu" / "run" / "trust_ratios.csv").write_text(
      "step,path,slice,ratio\nx,y\n1,a/kernel,0,0.5\n")
  with pytest.raises(figures.NoData):
    figures.trust_ratio(tmp_path, "cpu")
  assert good.exists()


# --- tuning grids ---------------------------------------------------------------------------------

def test_grid_writes_values_marks_diverged_and_leaves_not_run_blank(tmp_path):
  _run(tmp_path, "table9", "lr0.1", _opt("adagrad", 0.1), _done(0.5))
  _run(tmp_path, "table9", "lr0.2", _opt("adagrad", 0.2), {"status": "diverged"})
  fig = figures.FIGURES["table9_grid"](tmp_path, "cpu")
  paper, measured = fig.axes[0], fig.axes[1]
  assert [t.get_text() for t in measured.texts] == ["0.500", "div"]
  assert len(paper.texts) == 27 and "0.554" in [t.get_text() for t in paper.texts]
  assert measured.patches  # the diverged cell is hatched
  lrs = [t.get_text() for t in measured.get_xticklabels()]
  assert lrs[0] == "0.0001" and lrs[-1] == "50"
  assert "Table 9" in fig._suptitle.get_text() and "cpu scale" in fig._suptitle.get_text()


# --- render and the CLI ---------------------------------------------------------------------------

@pytest.fixture
def results(tmp_path):
  root = tmp_path / "results"
  for name, lr, acc, loss in (("lamb", 0.01, 0.90, 0.40), ("adam", 0.001, 0.85, 0.30)):
    _run(root, "table6", f"{name}_lr{lr:g}", _opt(name, lr), _done(acc, loss),
         evals=[(5, acc - 0.1), (10, acc)])
  _run(root, "table9", "lr0.1", _opt("adagrad", 0.1), _done(0.5))
  paths = ["stem/conv/kernel", "layer1/block0/conv1/kernel", "fc/kernel", "fc/bias"]
  _run(root, "figures9_14", "run", _opt("lamb", 0.01), _done(0.7),
       trust=[(s, p, 1.0 if p.endswith("bias") else 0.5) for s in range(1, 7) for p in paths])
  return root


def test_render_writes_small_pngs_and_says_why_the_rest_is_skipped(results, tmp_path):
  out = tmp_path / "figures"
  rendered = figures.render(results, "cpu", out, formats=("png",))
  assert [name for name, _, _ in rendered] == list(figures.FIGURES)
  drawn = {name: path for name, path, _ in rendered if path}
  assert {"figure4", "figure5", "trust_ratio", "figure8", "table9_grid"} <= set(drawn)
  for name, path in drawn.items():
    assert path == out / f"{name}_cpu.png" and 1000 < path.stat().st_size < 120_000, name
  for name, path, reason in rendered:
    assert (path is None) == bool(reason) and "\n" not in reason, name
  assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}_cpu.png" for n in drawn)
  assert not figures.plt.get_fignums()  # every figure closed


def _cli(*args):
  return subprocess.run([sys.executable, "-m", "analysis.figures", *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=300)


def test_cli_exit_statuses(results, tmp_path):
  out = f"--out_dir={tmp_path / 'f'}"
  proc = _cli("figure4", f"--results_dir={results}", out)
  assert proc.returncode == 0, proc.stderr
  assert {p.name for p in (tmp_path / "f").iterdir()} == {"figure4_cpu.png", "figure4_cpu.pdf"}
  proc = _cli("figure1", f"--results_dir={results}", out)
  assert proc.returncode == 1 and proc.stdout.startswith("figure1: skipped (")
  proc = _cli("grids", f"--results_dir={results}", out)
  assert proc.returncode == 0 and "table9_grid: " in proc.stdout
  assert "table10_grid: skipped" in proc.stdout
  proc = _cli("figure99", f"--results_dir={results}", out)
  assert proc.returncode == 2 and proc.stderr.startswith("error: unknown figure")
  proc = _cli("all", f"--results_dir={tmp_path / 'missing'}", out)
  assert proc.returncode == 2 and proc.stderr.startswith("error: ")
  assert len(proc.stderr.strip().splitlines()) == 1
  proc = _cli("all", f"--results_dir={results}", out)
  assert proc.returncode == 0, proc.stderr
  lines = proc.stdout.strip().splitlines()
  assert len(lines) == len(figures.FIGURES) and "figure7: skipped (" in proc.stdout


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
