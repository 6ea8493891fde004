"""The analysis core and the verdict logic, on small synthetic results folders (no jax, no training).

Each test writes the files a run leaves (config.json, summary.json, metrics.jsonl) into a temp
folder and checks what the loader, the selector, the interval and the claims make of them. The
claims are judged under rule set v1 here (`analysis/rulesets/v1.toml`), whose floors and
thresholds these fixtures were written for; what rule set v2 adds (the floor on every run,
negative controls, decidability, divergence after a spike) is tested in test_claims_v2.py.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from analysis import claims, evidence, figures, report, rules, runs, select, stats
from analysis import vocabulary as vocab

ROOT = Path(__file__).resolve().parents[1]
IMAGE = {"data": {"name": "fashion_mnist"}, "model": {"name": "resnet", "num_classes": 10}}


def _run(root, experiment, name, config, status="completed", accuracy=None, steps=256,
         losses=(2.3, 1.0, 0.6), examples=1000, metric="accuracy", base=IMAGE, final=None,
         scale="cpu"):
  d = Path(root) / experiment / scale / name
  d.mkdir(parents=True, exist_ok=True)
  (d / "config.json").write_text(json.dumps({**base, **config, "name": experiment,
                                             "scale": scale}))
  summary = {"status": status, "steps": steps, "total_steps": steps}
  if accuracy is not None:
    summary["final"] = {metric: accuracy, "examples": examples, "loss": 1 - accuracy,
                        **(final or {})}
  (d / "summary.json").write_text(json.dumps(summary))
  (d / "metrics.jsonl").write_text("".join(
      json.dumps({"split": "train", "step": s + 1, "loss": l}) + "\n"
      for s, l in enumerate(losses)))
  return d


def _table3(root, scores: dict, steps=64):
  """Table 3 runs: {variant: [accuracy per seed]}."""
  for variant, values in scores.items():
    for seed, acc in enumerate(values):
      _run(root, "table3", f"{variant}_seed{seed}",
           {"variant": variant, "seed": seed, "optimizer": {"name": variant.rstrip("+")}},
           accuracy=acc, steps=steps)


V1 = rules.version(1)


def _verdict(root, claim_id):
  claim = next(c for c in claims.CLAIMS if c.id == claim_id)
  return claims.judge(claims.Context(Path(root), "cpu", V1), claim)


# --- the loader: divergence as the paper means it --------------------------------------------

def test_a_finite_blow_up_is_diverged_and_a_stalled_run_is_not(tmp_path):
  _run(tmp_path, "table3", "blown", {"variant": "adam", "seed": 0}, accuracy=0.1,
       losses=(2.3, 5.0, 8.0))
  _run(tmp_path, "table3", "stalled", {"variant": "adam", "seed": 1}, accuracy=0.1,
       losses=(2.31, 2.33, 2.32))  # 1% above its start, at chance: not diverged
  _run(tmp_path, "table3", "nan", {"variant": "adam", "seed": 2}, status="diverged",
       losses=(2.3,))
  _run(tmp_path, "table3", "learned", {"variant": "adam", "seed": 3}, accuracy=0.8)
  frame = runs.load(tmp_path, rules=V1).set_index("run")
  assert frame.loc["blown", "status"] == vocab.DIVERGED
  assert frame.loc["blown", "runner_status"] == vocab.COMPLETED
  assert "above its start" in frame.loc["blown", "diverged_because"]
  assert frame.loc["stalled", "status"] == vocab.COMPLETED
  assert frame.loc["nan", "status"] == vocab.DIVERGED
  assert "non-finite" in frame.loc["nan", "diverged_because"]
  assert frame.loc["learned", "status"] == vocab.COMPLETED


def test_a_loss_above_chance_is_diverged(tmp_path):
  # Started above chance (a loud initialisation) and never came down to it: ended below its
  # start, but more than 5% above ln(10) = 2.30.
  _run(tmp_path, "table3", "r", {"variant": "adam"}, accuracy=0.1, losses=(2.5, 2.45, 2.45))
  row = runs.load(tmp_path, rules=V1).iloc[0]
  assert row.status == vocab.DIVERGED and "chance" in row.diverged_because


def test_an_unreadable_run_is_a_row_and_is_named(tmp_path):
  d = _run(tmp_path, "table3", "lamb_seed1", {"variant": "lamb", "seed": 1}, accuracy=0.7)
  (d / "summary.json").write_text("{ torn")
  row = runs.load(tmp_path, rules=V1).iloc[0]
  assert row.status == vocab.UNREADABLE and "summary.json" in row.error


# --- the selector -----------------------------------------------------------------------------

def _other_arms(root, experiment="table7", accuracy=0.5, seeds=(0, 1), examples=1000):
  """The optimizers of the paper's table besides LAMB and Adam (a "LAMB is best" claim needs
  every one), at one setting, clearly below the others."""
  for name in ("adagrad", "adamw", "momentum"):
    for seed in seeds:
      _run(root, experiment, f"{name}_lr0.01_seed{seed}",
           {"variant": f"{name}_lr0.01", "seed": seed,
            "optimizer": {"name": name, "learning_rate": 0.01}}, accuracy=accuracy,
           examples=examples)


def _grid(root, name, rates: dict):
  """Table 7-like runs: {learning rate: [accuracy per seed]} for optimizer `name`."""
  for lr, values in rates.items():
    for seed, acc in enumerate(values):
      _run(root, "table7", f"{name}_lr{lr}_seed{seed}",
           {"seed": seed, "optimizer": {"name": name, "learning_rate": lr}}, accuracy=acc)


def test_best_setting_is_the_best_mean_over_complete_seeds(tmp_path):
  _grid(tmp_path, "lamb", {0.01: [0.96, 0.97], 0.1: [0.99, 0.20], 0.001: [0.90, 0.91]})
  choice = select.choose(runs.load(tmp_path, rules=V1), select.SETTINGS, "final.accuracy")
  assert choice.best.key[0] == 0.01 and choice.best.mean == pytest.approx(0.965)
  assert choice.best.seeds == 2 and not choice.partial


def test_an_unreadable_seed_never_silently_changes_the_choice(tmp_path):
  _grid(tmp_path, "lamb", {0.01: [0.96, 0.97], 0.1: [0.57, 0.58]})
  d = tmp_path / "table7" / "cpu" / "lamb_lr0.01_seed1"
  (d / "summary.json").write_text("not json")
  choice = select.choose(runs.load(tmp_path, rules=V1), select.SETTINGS, "final.accuracy")
  assert choice.partial == ["lamb_lr0.01_seed1 unreadable"] and choice.best is None
  assert choice.text == "lamb_lr0.01_seed1 unreadable"
  # A claim does not decide on a partial choice: it waits for the named run.
  _grid(tmp_path, "adam", {0.01: [0.5, 0.5]})
  _other_arms(tmp_path)
  verdict = _verdict(tmp_path, "18")
  assert verdict.status == vocab.NOT_RUN and "lamb_lr0.01_seed1 unreadable" in verdict.evidence


def test_a_diverged_setting_ranks_last_and_all_diverged_is_said(tmp_path):
  _run(tmp_path, "table7", "a", {"optimizer": {"name": "lamb", "learning_rate": 1.0}},
       status="diverged")
  _run(tmp_path, "table7", "b", {"optimizer": {"name": "lamb", "learning_rate": 0.1}},
       accuracy=0.3)
  choice = select.choose(runs.load(tmp_path, rules=V1), select.SETTINGS, "final.accuracy")
  assert choice.best.key[0] == 0.1 and choice.settings[-1].status == vocab.DIVERGED
  (tmp_path / "table7" / "cpu" / "b" / "summary.json").write_text(
      json.dumps({"status": "diverged"}))
  choice = select.choose(runs.load(tmp_path, rules=V1), select.SETTINGS, "final.accuracy")
  assert choice.best is None and choice.status == vocab.DIVERGED and choice.text == "diverged"


# --- the interval -----------------------------------------------------------------------------

def test_paired_interval_matches_a_t_test_written_out(tmp_path):
  a = [0.80, 0.82, 0.79, 0.81]
  b = [0.70, 0.73, 0.71, 0.69]
  _table3(tmp_path, {"lamb": a, "adam": b})
  frame = runs.load(tmp_path, rules=V1)
  pick = lambda v: select.choose(frame[frame["config.variant"] == v], [], "final.accuracy").best
  iv = evidence.difference(pick("lamb"), pick("adam"), None, level=0.95)
  d = np.subtract(a, b)
  seed_var = d.var(ddof=1) / len(d)
  eval_var = np.mean(a) * (1 - np.mean(a)) / 1000 + np.mean(b) * (1 - np.mean(b)) / 1000
  se = math.sqrt(seed_var + eval_var)
  half = (iv.hi - iv.lo) / 2
  assert iv.diff == pytest.approx(d.mean()) and iv.se == pytest.approx(se)
  # The t quantile lies between the normal's (infinite df) and the seeds' own (3 df).
  assert scipy_stats.norm.ppf(0.975) * se <= half <= scipy_stats.t.ppf(0.975, 3) * se
  assert "paired over 4" in iv.how and iv.method.startswith("fallback")


def test_pooled_noise_comes_from_the_chosen_settings_only(tmp_path):
  _grid(tmp_path, "lamb", {0.01: [0.96, 0.98], 0.1: [0.19, 0.94]})
  _grid(tmp_path, "adam", {0.01: [0.95, 0.96]})
  frame = runs.load(tmp_path, rules=V1)
  noise = stats.task_noise(frame, stats.task_key(frame).iloc[0], "final.accuracy")
  expected = math.sqrt((np.var([0.96, 0.98], ddof=1) + np.var([0.95, 0.96], ddof=1)) / 2)
  assert noise.df == 2 and noise.std == pytest.approx(expected)


# --- verdicts ---------------------------------------------------------------------------------

def test_equal_means_with_noise_are_inconclusive(tmp_path):
  _table3(tmp_path, {"lamb": [0.70, 0.74, 0.66], "adagrad": [0.71, 0.69, 0.70]})
  verdict = _verdict(tmp_path, "9")  # the other five optimizers are not run ...
  assert verdict.status == vocab.NOT_RUN
  part = claims.Context(tmp_path, "cpu", V1)
  v = part.compare("better", part.side("table3", "lamb", variant="lamb"),
                   part.side("table3", "adagrad", variant="adagrad"))
  assert v.status == vocab.INCONCLUSIVE and "[" in v.evidence


def test_a_clear_gap_is_held_and_the_reverse_not_held(tmp_path):
  others = ("adagrad", "adagrad+", "adam", "adam+", "adamw", "adamw+", "momentum")
  _table3(tmp_path, {"lamb": [0.80, 0.81, 0.79], **{o: [0.50, 0.52, 0.49] for o in others}})
  verdict = _verdict(tmp_path, "9")
  assert verdict.status == vocab.HELD, verdict.evidence
  assert "paired over 3" in verdict.interval
  for seed in range(3):  # momentum now beats LAMB clearly
    _run(tmp_path, "table3", f"momentum_seed{seed}",
         {"variant": "momentum", "seed": seed, "optimizer": {"name": "momentum"}},
         accuracy=0.90 + seed / 100)
  assert _verdict(tmp_path, "9").status == vocab.NOT_HELD


def _seeds(root, experiment, variant, values, **config):
  for seed, acc in enumerate(values):
    _run(root, experiment, f"{variant}_seed{seed}", {"variant": variant, "seed": seed, **config},
         accuracy=acc, steps=claims.MIN_STEPS)


def test_a_run_at_chance_or_diverged_is_not_testable(tmp_path):
  _table3(tmp_path, {"lamb": [0.80, 0.81, 0.79], "momentum": [0.10, 0.11, 0.09]},
          steps=claims.MIN_STEPS)
  verdict = _verdict(tmp_path, "10")
  assert verdict.status == vocab.NOT_RUN and "32K: not run" in verdict.evidence
  _seeds(tmp_path, "table5", "32K", [0.80, 0.81, 0.79])
  _seeds(tmp_path, "momentum_ladder", "32K", [0.10, 0.11, 0.09])
  verdict = _verdict(tmp_path, "10")
  assert verdict.status == vocab.NOT_TESTABLE and "chance level" in verdict.evidence
  for seed in range(3):
    _run(tmp_path, "table3", f"momentum_seed{seed}",
         {"variant": "momentum", "seed": seed}, accuracy=0.5, losses=(2.3, 4.0, 9.0),
         steps=claims.MIN_STEPS)
  verdict = _verdict(tmp_path, "10")
  assert verdict.status == vocab.NOT_TESTABLE and "diverged" in verdict.evidence


def test_lamb_against_lars_on_imagenet_reads_two_experiments(tmp_path):
  """Claim 11: LAMB's 2K from lars_imagenet, its 32K from Table 5's ladder."""
  _seeds(tmp_path, "lars_imagenet", "lamb_2K", [0.80, 0.81, 0.79])
  _seeds(tmp_path, "lars_imagenet", "lars_2K", [0.70, 0.72, 0.69])
  _seeds(tmp_path, "lars_imagenet", "lars_32K", [0.60, 0.61, 0.62])
  assert _verdict(tmp_path, "11").status == vocab.NOT_RUN  # Table 5's 32K is missing
  _seeds(tmp_path, "table5", "32K", [0.75, 0.76, 0.77])
  verdict = _verdict(tmp_path, "11")
  assert verdict.status == vocab.HELD, verdict.evidence
  _seeds(tmp_path, "table5", "32K", [0.40, 0.41, 0.39])
  assert _verdict(tmp_path, "11").status == vocab.NOT_HELD
  # A LAMB 32K of another task (an older, shorter shape) is never compared with LARS's.
  _run(tmp_path, "table5", "32K_seed0", {"variant": "32K", "seed": 0, "num_epochs": 2},
       accuracy=0.40, steps=claims.MIN_STEPS)
  verdict = _verdict(tmp_path, "11")
  assert verdict.status == vocab.NOT_TESTABLE and "different tasks" in verdict.evidence
  _seeds(tmp_path, "table5", "32K", [0.40, 0.41, 0.39])
  for seed in range(3):  # too short a 32K run is a verdict on the step budget
    _run(tmp_path, "lars_imagenet", f"lars_32K_seed{seed}", {"variant": "lars_32K",
                                                             "seed": seed}, accuracy=0.6, steps=32)
  verdict = _verdict(tmp_path, "11")
  assert verdict.status == vocab.NOT_TESTABLE and "lars 32K trains 32 steps" in verdict.evidence


def test_one_seed_without_any_replicated_setting_is_not_testable(tmp_path):
  _run(tmp_path, "figure2", "correction_nowarmup", {"variant": "correction_nowarmup"},
       accuracy=0.7)
  _run(tmp_path, "figure2", "nocorrection_warmup", {"variant": "nocorrection_warmup"},
       accuracy=0.7)
  verdict = _verdict(tmp_path, "14")
  assert verdict.status == vocab.NOT_TESTABLE and "one seed each" in verdict.evidence
  # Replicated runs of the same model on the same data give the seed spread to judge with.
  _table3(tmp_path, {"lamb": [0.70, 0.71], "adam": [0.60, 0.62]})
  verdict = _verdict(tmp_path, "14")
  assert verdict.status == vocab.INCONCLUSIVE and "pooled" in verdict.interval


def _ladder(root, experiment, labels, steps_top, accuracy=0.7, metric="accuracy"):
  for k, label in enumerate(labels):
    _run(root, experiment, f"batch{label}", {"variant": label, "batch_size": 8 * 2 ** k},
         accuracy=accuracy, steps=max(steps_top, 2048 // 2 ** k), metric=metric)


LADDER = ("512", "1K", "2K", "4K", "8K", "16K", "32K")


def test_a_ladder_whose_top_rung_trains_too_few_steps_is_not_testable(tmp_path):
  _ladder(tmp_path, "table5", LADDER[:3], 32)
  assert _verdict(tmp_path, "12").status == vocab.NOT_RUN  # 3 of 7 batch sizes
  _ladder(tmp_path, "table5", LADDER, 32)
  verdict = _verdict(tmp_path, "12")
  assert verdict.status == vocab.NOT_TESTABLE and "32 steps" in verdict.evidence
  _ladder(tmp_path, "table5", LADDER, claims.MIN_STEPS)
  verdict = _verdict(tmp_path, "12")
  assert verdict.status == vocab.NOT_TESTABLE and "one seed each" in verdict.evidence
  _table3(tmp_path, {"lamb": [0.70, 0.72], "adam": [0.60, 0.61]})  # the task's seed spread
  assert _verdict(tmp_path, "12").status == vocab.INCONCLUSIVE  # equal scores, wide noise
  _run(tmp_path, "table5", "batch32K", {"variant": "32K", "batch_size": 512}, accuracy=0.3,
       steps=claims.MIN_STEPS)
  verdict = _verdict(tmp_path, "12")
  assert verdict.status == vocab.NOT_HELD and "32K 0.3000" in verdict.evidence


def test_a_ladder_run_in_part_at_this_scale_is_tested_on_its_recorded_rows(tmp_path):
  """Runs that record `paper.rows_at_scale` expect only those rungs; the evidence says the claim
  is tested from the smallest of them, and Table 5 marks the rest 'not at this scale'."""
  from analysis import tables  # pylint: disable=import-outside-toplevel
  rows = ("4K", "8K", "16K", "32K")
  for k, label in enumerate(rows):
    for seed, acc in enumerate((0.80, 0.81, 0.79)):
      _run(tmp_path, "table5", f"batch{label}_seed{seed}",
           {"variant": label, "seed": seed, "batch_size": 64 * 2 ** k,
            "paper": {"row": label, "rows_at_scale": list(rows)}},
           accuracy=acc, steps=max(claims.MIN_STEPS, 2048 // 2 ** k))
  verdict = _verdict(tmp_path, "12")
  assert "4 of the paper's 7 rungs (4K-32K)" in verdict.evidence
  assert verdict.status == vocab.INCONCLUSIVE, verdict.evidence  # equal, margin below noise
  rendered = tables.table5(tmp_path, "cpu")
  statuses = {c["row_keys"]: c["status"] for c in rendered.cells if c["column"] == "measured top-1"}
  assert statuses["batch=512"] == vocab.NOT_AT_SCALE
  assert statuses["batch=4K"] == vocab.COMPLETED
  # Runs of an older config (no recorded rows) left in the folder are set aside and named.
  _run(tmp_path, "table5", "batch512", {"variant": "512", "batch_size": 8}, accuracy=0.2,
       steps=2048)
  verdict = _verdict(tmp_path, "12")
  assert "set aside as runs of an older config: batch512" in verdict.evidence
  assert verdict.status == vocab.INCONCLUSIVE
  rendered = tables.table5(tmp_path, "cpu")
  assert any("older config: batch512" in note for note in rendered.notes)
  # A recorded rung that is missing is 'not run', never 'not at this scale'.
  for seed in range(3):
    (tmp_path / "table5" / "cpu" / f"batch8K_seed{seed}" / "summary.json").unlink()
    (tmp_path / "table5" / "cpu" / f"batch8K_seed{seed}" / "config.json").unlink()
  verdict = _verdict(tmp_path, "12")
  assert verdict.status == vocab.NOT_RUN and "missing: 8K" in verdict.evidence


def test_lars_diverging_at_32k_with_a_finite_loss_is_held(tmp_path):
  for k, label in enumerate(LADDER):
    losses = (9.7, 12.0, 14.0) if label == "32K" else (9.7, 7.0, 6.0)
    _run(tmp_path, "table2", f"lars_{label}", {"variant": f"lars_{label}",
                                                "batch_size": 8 * 2 ** k},
         accuracy=0.05, steps=300, losses=losses, metric="masked_lm_accuracy")
  verdict = _verdict(tmp_path, "5b")
  assert verdict.status == vocab.HELD, verdict.evidence


def _bert_ladder(root, accuracy, steps):
  bert = {"data": {"name": "janeausten"}, "model": {"name": "bert"}}
  for k, label in enumerate(LADDER):
    for seed in (0, 1):
      _run(root, "table4", f"batch{label}_seed{seed}",
           {"variant": label, "batch_size": 8 * 2 ** k, "seed": seed},
           accuracy=accuracy(label, seed), steps=steps, base=bert,
           metric="masked_lm_accuracy", final={"unigram_masked_lm_accuracy": 0.0608},
           losses=(9.7, 7.0, 6.5))


def test_a_top_rung_left_at_the_unigram_level_fails_the_ladder_claim(tmp_path):
  # It had the steps to learn (MIN_STEPS) and the smaller batches did: the claim fails, as
  # it would had the run diverged.
  _bert_ladder(tmp_path, lambda label, seed: 0.0608 if label == "32K" else 0.12 + seed / 100,
               steps=300)
  verdict = _verdict(tmp_path, "1")
  assert verdict.status == vocab.NOT_HELD, verdict.evidence
  assert ("32K at the chance level (0.0608) where the other side learned, judged on the "
          "interval: 32K 0.0608 (2 seeds) − 512 0.1250") in verdict.evidence


def test_paper_scale_bert_claims_read_the_squad_f1_of_each_runs_fine_tunes(tmp_path):
  """At paper scale the ladder is judged on SQuAD F1 (the paper's metric), each pre-training
  run's from the fine-tunes that name it: here masked-LM accuracy is level but F1 drops 10
  points at 32K, so the claim fails; a run without a finished fine-tune leaves it unjudged."""
  bert = {"data": {"name": "wikipedia"}, "model": {"name": "bert"}}
  for k, label in enumerate(LADDER):
    for seed in (0, 1):
      name = f"batch{label}_seed{seed}"
      _run(tmp_path, "table4", name, {"variant": label, "batch_size": 512 * 2 ** k, "seed": seed},
           accuracy=0.70 + seed / 100, steps=20000, base=bert, metric="masked_lm_accuracy",
           losses=(9.7, 2.0, 1.6), scale="paper")
      f1 = (80.0 if label == "32K" else 90.0) + seed / 10
      _run(tmp_path, "squad", f"table4_{name}", {"pretrained_run": f"table4/paper/{name}"},
           accuracy=f1, metric="f1", final={"exact_match": f1 - 7}, steps=5000, base=bert,
           losses=(5.0, 1.0, 0.9), scale="paper")
  claim = next(c for c in claims.CLAIMS if c.id == "1")
  context = claims.Context(tmp_path, "paper")
  assert context.bert_metric == claims.SQUAD_F1
  verdict = claim.judge(context)
  assert verdict.status == vocab.NOT_HELD, verdict.evidence
  assert "80.05" in verdict.evidence and "90.05" in verdict.evidence, verdict.evidence
  frame = context.frame("table4")
  assert sorted(frame[claims.SQUAD_EM].round(2).unique()) == [73.0, 73.1, 83.0, 83.1]
  # a fine-tune that has not finished (no summary yet): its pre-training run has no F1
  (tmp_path / "squad" / "paper" / "table4_batch32K_seed1" / "summary.json").unlink()
  verdict = claim.judge(claims.Context(tmp_path, "paper"))
  assert verdict.status not in (vocab.HELD, vocab.NOT_HELD), verdict.evidence


def test_a_top_rung_just_inside_the_chance_band_is_judged_on_its_interval_not_a_cliff(tmp_path):
  # 32K within the binomial band of chance, the others just above it: the interval decides.
  _bert_ladder(tmp_path, lambda label, seed: (0.070, 0.075)[seed] if label == "32K"
               else (0.078, 0.082)[seed], steps=300)
  verdict = _verdict(tmp_path, "1")
  assert verdict.status == vocab.INCONCLUSIVE, verdict.evidence


def test_a_top_rung_at_the_unigram_level_without_the_steps_is_not_testable(tmp_path):
  _bert_ladder(tmp_path, lambda label, seed: 0.0608 if label == "32K" else 0.12 + seed / 100,
               steps=claims.MIN_STEPS - 1)
  verdict = _verdict(tmp_path, "1")
  assert verdict.status == vocab.NOT_TESTABLE and "(< 250)" in verdict.evidence, verdict.evidence


def test_every_rung_at_the_unigram_level_is_not_testable(tmp_path):
  _bert_ladder(tmp_path, lambda label, seed: 0.0608, steps=300)
  verdict = _verdict(tmp_path, "1")
  assert verdict.status == vocab.NOT_TESTABLE, verdict.evidence
  assert "32K at the chance level (0.0608; chance 0.0608): the shrunk setting" in verdict.evidence


def test_the_norm_claim_is_inconclusive_when_the_noise_exceeds_the_paper_margin(tmp_path):
  for norm, values in (("l1", [0.73, 0.745, 0.70]), ("l2", [0.75, 0.74, 0.72]),
                       ("linf", [0.74, 0.76, 0.73])):
    for seed, acc in enumerate(values):
      _run(tmp_path, "figure3", f"{norm}_seed{seed}",
           {"seed": seed, "optimizer": {"name": "lamb", "kwargs": {"norm": norm}}}, accuracy=acc)
  verdict = _verdict(tmp_path, "16")
  assert verdict.status == vocab.INCONCLUSIVE and "margin 0.0010" in verdict.evidence


def test_figure_claims_read_the_arm_that_table3_trains(tmp_path):
  # Figure 2's "warmup + correction" and Figure 3's L2 are Table 3's LAMB (runs.SHARED_ARMS).
  for seed, (no_correction, l1, linf) in enumerate([(0.74, 0.73, 0.74), (0.73, 0.745, 0.76),
                                                    (0.72, 0.70, 0.73)]):
    _run(tmp_path, "figure2", f"nocorrection_warmup_seed{seed}",
         {"variant": "nocorrection_warmup", "seed": seed}, accuracy=no_correction)
    for norm, acc in (("l1", l1), ("linf", linf)):
      _run(tmp_path, "figure3", f"{norm}_seed{seed}",
           {"seed": seed, "optimizer": {"name": "lamb", "kwargs": {"norm": norm}}}, accuracy=acc)
  verdict = _verdict(tmp_path, "15")
  assert verdict.status == vocab.NOT_RUN
  assert "warmup + correction (Table 3's LAMB): not run" in verdict.evidence
  _table3(tmp_path, {"lamb": [0.75, 0.74, 0.72], "adam": [0.60, 0.61, 0.62]})
  verdict = _verdict(tmp_path, "15")
  assert verdict.status == vocab.INCONCLUSIVE, verdict.evidence
  assert "warmup + correction (Table 3's LAMB) 0.7367 (3 seeds)" in verdict.evidence
  assert "paired over 3" in verdict.interval
  verdict = _verdict(tmp_path, "16")
  assert "L1 0.7250 (3 seeds) − L2 (Table 3's LAMB) 0.7367 (3 seeds)" in verdict.evidence
  # The figure's own run of the arm (an older config that trained it) is read instead.
  for seed in range(3):
    _run(tmp_path, "figure2", f"correction_warmup_seed{seed}",
         {"variant": "correction_warmup", "seed": seed}, accuracy=0.80)
  assert "warmup + correction (Table 3's LAMB) 0.8000 (3 seeds)" in _verdict(tmp_path,
                                                                           "15").evidence
  # Table 3's LAMB on another task (here: another evaluation split) is not the same arm.
  for seed in range(3):
    _run(tmp_path, "table3", f"lamb_seed{seed}", {"variant": "lamb", "seed": seed,
                                                  "optimizer": {"name": "lamb"},
                                                  "data": {"name": "fashion_mnist",
                                                           "eval_split": "test[:1000]"}},
         accuracy=0.75)
  verdict = _verdict(tmp_path, "16")
  assert verdict.status == vocab.NOT_TESTABLE and "runs of different tasks" in verdict.evidence


def test_an_unreadable_table3_run_holds_the_shared_arm_back(tmp_path):
  _table3(tmp_path, {"lamb": [0.75, 0.74, 0.72]})
  for seed, acc in enumerate([0.74, 0.73, 0.72]):
    _run(tmp_path, "figure2", f"nocorrection_warmup_seed{seed}",
         {"variant": "nocorrection_warmup", "seed": seed}, accuracy=acc)
  broken = tmp_path / "table3" / "cpu" / "lamb_seed3"
  broken.mkdir(parents=True)
  (broken / "config.json").write_text("{ not json")
  verdict = _verdict(tmp_path, "15")
  assert verdict.status == vocab.NOT_RUN and "lamb_seed3 unreadable" in verdict.evidence


def test_every_claim_is_judged_on_an_empty_folder(tmp_path):
  judged = claims.judge_all(tmp_path, "cpu")
  assert len(judged) >= 23
  assert {v.status for _, v in judged} <= {vocab.NOT_RUN, vocab.NOT_TESTABLE}
  assert all(c.rule and c.source for c, _ in judged)
  ids = [c.id for c, _ in judged]
  assert len(ids) == len(set(ids))


# --- the report -------------------------------------------------------------------------------

def test_report_names_unreadable_runs_and_states_disclosures(tmp_path):
  _table3(tmp_path, {"lamb": [0.80, 0.81, 0.79], "adam": [0.5, 0.5, 0.5]})
  (tmp_path / "table3" / "cpu" / "adam_seed2" / "config.json").write_text("[")
  text = report.build(tmp_path, "cpu", tmp_path / "figures")
  assert "## Runs that could not be used" in text and "table3/cpu/adam_seed2" in text
  assert "waiting for adam_seed2 unreadable" in text
  assert "### Choices made by looking at results" in text and "C1" in text
  assert "## How claims are judged" in text


def test_report_cli_refuses_a_missing_folder_and_writes_nothing(tmp_path):
  proc = subprocess.run([sys.executable, "-m", "analysis.report",
                         f"--results_dir={tmp_path / 'typo'}"], cwd=ROOT, capture_output=True,
                        text=True, timeout=120)
  assert proc.returncode == 2 and proc.stderr.startswith("error: ")
  assert len(proc.stderr.strip().splitlines()) == 1
  assert not (tmp_path / "typo").exists()


# --- what a careless user's folders can hold ------------------------------------------------

def test_a_run_copied_into_another_experiment_or_scale_is_misplaced_and_named(tmp_path):
  _grid(tmp_path, "lamb", {0.01: [0.96, 0.97]})
  _grid(tmp_path, "adam", {0.01: [0.95, 0.95]})
  _other_arms(tmp_path)
  stray = _run(tmp_path, "table3", "lamb_seed0",
               {"variant": "lamb", "optimizer": {"name": "lamb", "learning_rate": 0.01}},
               accuracy=0.999)
  target = tmp_path / "table7" / "cpu" / "lamb_lr0.01_seed9"
  stray.rename(target)  # a Table 3 run dropped into Table 7's folder
  frame = runs.load(tmp_path, rules=V1).set_index("run")
  assert frame.loc["lamb_lr0.01_seed9", "status"] == vocab.MISPLACED
  assert "experiment 'table3'" in frame.loc["lamb_lr0.01_seed9", "error"]
  verdict = _verdict(tmp_path, "18")
  assert verdict.status == vocab.NOT_RUN and "lamb_lr0.01_seed9 misplaced" in verdict.evidence
  d = _run(tmp_path, "table7", "paper_run", {}, accuracy=0.5)
  config = json.loads((d / "config.json").read_text())
  (d / "config.json").write_text(json.dumps({**config, "scale": "paper"}))
  assert runs.load(tmp_path, rules=V1).set_index("run").loc["paper_run", "status"] == vocab.MISPLACED
  text = report.build(tmp_path, "cpu", tmp_path / "figures")
  assert "`table7/cpu/paper_run`: misplaced (its files say scale 'paper'" in text


def test_a_claimed_winner_that_diverged_fails_the_claim(tmp_path):
  _grid(tmp_path, "adam", {0.01: [0.95, 0.96]})
  _other_arms(tmp_path)
  for lr in (0.01, 0.1):
    for seed in (0, 1):
      _run(tmp_path, "table7", f"lamb_lr{lr}_seed{seed}",
           {"seed": seed, "optimizer": {"name": "lamb", "learning_rate": lr}}, status="diverged")
  verdict = _verdict(tmp_path, "18")
  assert verdict.status == vocab.NOT_HELD and "LAMB diverged" in verdict.evidence


def test_a_paired_difference_is_centred_on_the_seeds_it_pairs(tmp_path):
  _table3(tmp_path, {"lamb": [0.80, 0.80, 0.80, 0.60], "adam": [0.79, 0.79, 0.79]})
  frame = runs.load(tmp_path, rules=V1)
  pick = lambda v: select.choose(frame[frame["config.variant"] == v], [], "final.accuracy").best
  iv = evidence.difference(pick("lamb"), pick("adam"), None, level=0.95, metric="final.loss")
  assert iv.diff == pytest.approx(0.01) and "1 unpaired run(s) left out" in iv.how


def test_the_lowest_loss_claim_needs_a_gap_beyond_the_test_sets_error(tmp_path):
  def table6(name, acc, loss):
    d = _run(tmp_path, "table6", name, {"optimizer": {"name": name.split("_")[0]},
                                        "variant": name}, accuracy=acc)
    summary = json.loads((d / "summary.json").read_text())
    summary["final"]["loss"] = loss
    (d / "summary.json").write_text(json.dumps(summary))
  table6("adam_a", 0.42, 1.40)
  table6("lamb_a", 0.44, 2.10)
  assert _verdict(tmp_path, "19").status == vocab.INCONCLUSIVE  # 0.02 apart on 1000 images
  table6("lamb_b", 0.60, 2.50)
  assert _verdict(tmp_path, "19").status == vocab.HELD
  table6("adam_b", 0.70, 1.00)
  assert _verdict(tmp_path, "19").status == vocab.NOT_HELD  # lowest loss, most accurate


def test_damaged_files_give_a_named_verdict_not_a_traceback(tmp_path):
  d = _run(tmp_path, "figures9_14", "run", {"optimizer": {"name": "lamb"}}, accuracy=0.7)
  (d / "trust_ratios.csv").write_text("step,path,slice,ratio\n1,a/kernel,0,0.1\nrubbish\n2,b,0,1\n")
  verdict = _verdict(tmp_path, "22")
  assert verdict.status == vocab.NOT_RUN and "trust_ratios.csv" in verdict.evidence
  (d / "trust_ratios.csv").write_text("step,path,slice,ratio\n")
  assert _verdict(tmp_path, "22").status == vocab.NOT_RUN
  (d / "metrics.jsonl").unlink()
  text = report.build(tmp_path, "cpu", tmp_path / "figures")
  assert "figures9_14/cpu/run`: completed, but its metrics.jsonl is missing" in text


def test_the_mixed_batch_claims_read_the_mixed_batch_runs(tmp_path):
  bert = {"data": {"name": "janeausten"}, "model": {"name": "bert"}}
  assert _verdict(tmp_path, "4").status == vocab.NOT_RUN

  def mixed(variant, optimizer, values, status="completed", losses=(9.7, 7.0, 6.5), lr=0.01):
    for seed, acc in enumerate(values):
      _run(tmp_path, "mixed_batch", f"{variant}_seed{seed}",
           {"variant": variant, "seed": seed,
            "optimizer": {"name": optimizer, "learning_rate": lr}}, status=status,
           accuracy=acc, steps=300, base=bert, metric="masked_lm_accuracy", losses=losses)

  mixed("lamb_rewarmup", "lamb", [0.20, 0.21, 0.19])
  mixed("lamb_no_rewarmup", "lamb", [0.10, 0.12, 0.11])
  verdict = _verdict(tmp_path, "4")
  assert verdict.status == vocab.HELD and "paired over 3" in verdict.interval
  mixed("adamw_lr0.0001", "adamw", [0.0, 0.0, 0.0], losses=(9.7, 12.0, 14.0), lr=1e-4)
  verdict = _verdict(tmp_path, "7")
  assert verdict.status == vocab.HELD and "every AdamW setting diverged" in verdict.evidence
  mixed("adamw_lr0.0002", "adamw", [0.45, 0.46, 0.44], lr=2e-4)  # one setting beats LAMB
  assert _verdict(tmp_path, "7").status == vocab.NOT_HELD


def test_mixed_batch_runs_of_two_multipliers_are_refused_not_pooled(tmp_path):
  """Runs of an older mixed_batch config (another rate multiplier) copied back beside the
  current ones never join AdamW's 'best of its grid' or LAMB's side: claims 3, 4, 7 and 21
  name the conflict instead."""
  bert = {"data": {"name": "janeausten"}, "model": {"name": "bert"}}
  for variant, optimizer, multiplier, values in (
      ("lamb_rewarmup", "lamb", 4.0, [0.20, 0.21, 0.19]),
      ("lamb_no_rewarmup", "lamb", 4.0, [0.10, 0.12, 0.11]),
      ("adamw_lr0.0001", "adamw", 4.0, [0.05, 0.06, 0.04]),
      ("adamw_lr0.0002", "adamw", 8.0, [0.45, 0.46, 0.44])):  # an older config's runs
    for seed, acc in enumerate(values):
      _run(tmp_path, "mixed_batch", f"{variant}_seed{seed}",
           {"variant": variant, "seed": seed, "learning_rate_multiplier": multiplier,
            "optimizer": {"name": optimizer}}, accuracy=acc, steps=300, base=bert,
           metric="masked_lm_accuracy", losses=(9.7, 7.0, 6.5))
  _bert_seeds(tmp_path, "table1", "baseline", [0.15, 0.16, 0.14], 8, ("baseline",),
              steps=16384, optimizer="adamw")  # its 64K/32K row left to mixed_batch
  for claim_id in ("3", "4", "7", "21"):
    verdict = _verdict(tmp_path, claim_id)
    assert verdict.status == vocab.NOT_RUN, (claim_id, verdict.evidence)
    assert "adamw runs of two configs (rate multipliers x4, x8)" in verdict.evidence


def test_the_multiplier_choice_is_shown_per_optimizer_and_held_back_when_unfinished(tmp_path):
  bert = {"data": {"name": "janeausten"}, "model": {"name": "bert"}}
  for name, scores in (("lamb", {4.0: 0.10, 8.0: 0.12}), ("adamw", {4.0: 0.09, 8.0: None}),
                       ("lars", {4.0: 0.08, 8.0: "diverged"})):
    for m, acc in scores.items():
      _run(tmp_path, "bert_multipliers", f"{name}_x{m:g}",
           {"optimizer": {"name": name}, "learning_rate_multiplier": m, "batch_size": 8,
            "data": {"name": "janeausten", "validation_documents": 22}}, base=bert,
           status=acc if isinstance(acc, str) else "completed" if acc else "incomplete",
           accuracy=acc if isinstance(acc, float) else None, metric="masked_lm_accuracy")
  lines = "\n".join(report.multiplier_section(tmp_path, "cpu"))
  assert "at batch 8 on 22 documents" in lines
  assert "| LAMB | 0.1000 | **0.1200** | x8 |" in lines
  assert "| AdamW | 0.0900 | incomplete | held back: not every run finished |" in lines
  assert "| LARS | **0.0800** | diverged | x4 |" in lines  # a diverged multiplier loses


def test_a_task_key_is_the_same_from_any_frame_of_its_runs(tmp_path):
  """A frame mixing tasks stores num_epochs as floats (NaN elsewhere): the key must not change."""
  image = {"data": {"name": "fashion_mnist", "train_examples": 32768}, "num_epochs": 4,
           "model": {"name": "resnet", "num_classes": 10}}
  _run(tmp_path, "table5", "a", {}, base=image, accuracy=0.8)
  _run(tmp_path, "table4", "b", {}, base={"data": {"name": "janeausten"},
                                          "model": {"name": "bert"}}, accuracy=0.1)
  every = runs.load(tmp_path, rules=V1)
  mixed = stats.task_key(every)[every.experiment == "table5"].iloc[0]
  alone = stats.task_key(every[every.experiment == "table5"].iloc[:1]).iloc[0]
  assert mixed == alone == "cpu/fashion_mnist/resnet/32768/-/-/4/-"


BERT = {"data": {"name": "janeausten"}, "model": {"name": "bert"}}


def _bert_seeds(root, experiment, variant, values, batch, rows, steps=claims.MIN_STEPS,
                optimizer="lamb"):
  for seed, acc in enumerate(values):
    _run(root, experiment, f"{variant}_seed{seed}",
         {"variant": variant, "seed": seed, "batch_size": batch,
          "optimizer": {"name": optimizer}, "paper": {"rows_at_scale": list(rows)}},
         accuracy=acc, steps=steps, base=BERT, metric="masked_lm_accuracy",
         losses=(9.7, 7.0, 6.5))


def test_the_bert_claims_read_one_lamb_ladder(tmp_path):
  """Tables 1 and 2's LAMB is Table 4's ladder: claims 2 and 5a pair it with table1's baseline
  and table2's LARS; rows this scale leaves to the paper scale are not testable, not 'not run'."""
  ladder = ("4K", "32K")
  _bert_seeds(tmp_path, "table4", "4K", [0.20, 0.21, 0.19], 64, ladder, steps=2048)
  _bert_seeds(tmp_path, "table4", "32K", [0.18, 0.19, 0.17], 512, ladder)
  assert _verdict(tmp_path, "5a").status == vocab.NOT_RUN  # no LARS yet
  lars = ("lars_4K", "lars_32K")
  _bert_seeds(tmp_path, "table2", "lars_4K", [0.10, 0.11, 0.09], 64, lars, steps=2048,
              optimizer="lars")
  _bert_seeds(tmp_path, "table2", "lars_32K", [0.08, 0.09, 0.07], 512, lars, optimizer="lars")
  verdict = _verdict(tmp_path, "5a")
  assert verdict.status == vocab.HELD, verdict.evidence
  assert "LAMB 4K" in verdict.evidence and "LARS 4K" in verdict.evidence
  verdict = _verdict(tmp_path, "5c")
  assert verdict.status == vocab.NOT_TESTABLE and "lars_16K" in verdict.evidence
  _bert_seeds(tmp_path, "table1", "baseline", [0.15, 0.16, 0.14], 8, ("baseline",),
              steps=16384, optimizer="adamw")
  verdict = _verdict(tmp_path, "2")
  assert verdict.status == vocab.HELD, verdict.evidence
  assert "LAMB 4K" in verdict.evidence and "LAMB 32K" in verdict.evidence
  # table1 leaves its 64K/32K row to the paper scale: claim 3 reads mixed_batch's same recipe
  assert _verdict(tmp_path, "3").status == vocab.NOT_RUN
  _bert_seeds(tmp_path, "mixed_batch", "lamb_rewarmup", [0.10, 0.11, 0.09], 512, (),
              steps=282)
  verdict = _verdict(tmp_path, "3")
  assert verdict.status == vocab.NOT_HELD, verdict.evidence
  assert "LAMB 64K/32K (mixed_batch)" in verdict.evidence, verdict.evidence
  # LARS adds 16K (claim 5c), a rung LAMB's ladder leaves out: it joins 5c, and 5a still pairs
  # the rungs both ladders run
  lars = ("lars_4K", "lars_16K", "lars_32K")
  _bert_seeds(tmp_path, "table2", "lars_16K", [0.09, 0.10, 0.08], 256, lars, steps=512,
              optimizer="lars")
  assert _verdict(tmp_path, "5a").status == vocab.HELD
  verdict = _verdict(tmp_path, "5c")
  assert verdict.status == vocab.HELD and "LARS 16K" in verdict.evidence, verdict.evidence
  _bert_seeds(tmp_path, "table4", "32K", [0.05, 0.06, 0.04], 512, ladder)
  assert _verdict(tmp_path, "2").status == vocab.NOT_HELD


def test_lamb_against_tuned_nesterov_reads_nado_imagenet(tmp_path):
  """Claim 10b: LAMB and Nesterov at 32K, each at the best of the same tuning budget."""
  assert _verdict(tmp_path, "10b").status == vocab.NOT_RUN
  for variant, values in (("lamb_32K", [0.85, 0.86, 0.84]), ("nesterov_32K", [0.80, 0.81, 0.79])):
    for seed, acc in enumerate(values):
      _run(tmp_path, "nado_imagenet", f"{variant}_seed{seed}",
           {"variant": variant, "seed": seed, "batch_size": 512}, accuracy=acc,
           steps=claims.MIN_STEPS)
  verdict = _verdict(tmp_path, "10b")
  assert verdict.status == vocab.HELD, verdict.evidence
  assert "lamb 32K (tuned)" in verdict.evidence


def test_lamb_against_tuned_adamw_reads_nado_bert(tmp_path):
  """Claim 6b: LAMB and AdamW at 32K on BERT, each at the best of one budget; a side that trains
  too few steps leaves it untested."""
  assert _verdict(tmp_path, "6b").status == vocab.NOT_RUN
  for variant, values in (("lamb_32K", [0.12, 0.13, 0.11]), ("adamw_32K", [0.10, 0.11, 0.09])):
    _bert_seeds(tmp_path, "nado_bert", variant, values, 512, (), steps=100,
                optimizer=variant.split("_")[0])
  verdict = _verdict(tmp_path, "6b")
  assert verdict.status == vocab.NOT_TESTABLE and "trains 100 steps" in verdict.evidence
  for variant, values in (("lamb_32K", [0.20, 0.21, 0.19]), ("adamw_32K", [0.10, 0.11, 0.09])):
    _bert_seeds(tmp_path, "nado_bert", variant, values, 512, (), optimizer=variant.split("_")[0])
  verdict = _verdict(tmp_path, "6b")
  assert verdict.status == vocab.HELD, verdict.evidence
  assert "LAMB 32K (tuned)" in verdict.evidence and "AdamW 32K (tuned)" in verdict.evidence
  _bert_seeds(tmp_path, "nado_bert", "adamw_32K", [0.30, 0.31, 0.29], 512, (), optimizer="adamw")
  assert _verdict(tmp_path, "6b").status == vocab.NOT_HELD


def test_bert_without_the_correction_is_judged_against_table4s_rung(tmp_path):
  """Claim 15b pairs bert_correction's rung with Table 4's run of the same rung and seeds."""
  assert _verdict(tmp_path, "15b").status == vocab.NOT_RUN
  _bert_seeds(tmp_path, "table4", "4K", [0.20, 0.21, 0.19], 64, ("4K", "32K"), steps=2048)
  _bert_seeds(tmp_path, "bert_correction", "nocorrection_4K", [0.30, 0.31, 0.29], 64,
              ("nocorrection_4K",), steps=2048)
  verdict = _verdict(tmp_path, "15b")
  assert verdict.status == vocab.HELD, verdict.evidence
  assert "LAMB 4K (Table 4)" in verdict.evidence and "no correction" in verdict.evidence
  _bert_seeds(tmp_path, "bert_correction", "nocorrection_4K", [0.10, 0.11, 0.09], 64,
              ("nocorrection_4K",), steps=2048)
  assert _verdict(tmp_path, "15b").status == vocab.NOT_HELD


def test_the_tuning_budget_table_bolds_each_optimizers_best(tmp_path):
  for variant, acc in (("lamb_x0.5", 0.86), ("lamb_x1", 0.85), ("nesterov_x1", 0.80),
                       ("nesterov_x2", 0.82)):
    rate = float(variant.split("_x")[1]) * (0.04 if variant.startswith("lamb") else 0.2)
    _run(tmp_path, "nado_tuning", variant,
         {"variant": variant, "optimizer": {"name": "lamb" if "lamb" in variant else "momentum",
                                            "learning_rate": rate},
          "data": {"name": "fashion_mnist", "eval_split": "test[:1000]"}}, accuracy=acc)
  lines = "\n".join(report.tuning_budget_section(tmp_path, "cpu"))
  assert "on `test[:1000]`" in lines
  assert "| lamb | **0.8600** | 0.8500 | not run | x0.5 |" in lines
  assert "| nesterov | not run | 0.8000 | **0.8200** | x2 |" in lines


def test_claim_2_needs_every_lamb_row_and_sets_older_runs_aside(tmp_path):
  ladder = ("4K", "32K")
  _bert_seeds(tmp_path, "table4", "4K", [0.20, 0.21, 0.19], 64, ladder, steps=2048)
  _bert_seeds(tmp_path, "table1", "baseline", [0.15, 0.16, 0.14], 8, ("baseline",),
              steps=16384, optimizer="adamw")
  verdict = _verdict(tmp_path, "2")
  assert verdict.status == vocab.NOT_RUN and "missing: 32K" in verdict.evidence
  _bert_seeds(tmp_path, "table4", "32K", [0.18, 0.19, 0.17], 512, ladder)
  # a baseline of an older config (no recorded rows, seed 0) never joins the new seeds
  _run(tmp_path, "table1", "baseline", {"variant": "baseline", "seed": 0, "batch_size": 8,
                                        "optimizer": {"name": "adamw"}},
       accuracy=0.01, steps=2000, base=BERT, metric="masked_lm_accuracy")
  verdict = _verdict(tmp_path, "2")
  assert verdict.status == vocab.HELD, verdict.evidence


def test_runs_of_the_two_bert_cpu_shapes_are_different_tasks(tmp_path):
  """The ladder shape records its budget (`train_sequences`); the shorter shape does not."""
  from analysis import stats as stats_  # pylint: disable=import-outside-toplevel
  _run(tmp_path, "table4", "batch32K_seed0", {"variant": "32K", "train_sequences": 131072},
       accuracy=0.1, base=BERT, metric="masked_lm_accuracy")
  _run(tmp_path, "table8", "warmup0.1_lr0.0002", {"variant": "x"}, accuracy=0.1, base=BERT,
       metric="masked_lm_accuracy")
  keys = stats_.task_key(runs.load(tmp_path, rules=V1)).tolist()
  assert len(set(keys)) == 2


def test_a_multiplier_outside_an_optimizers_grid_is_a_dash_not_a_missing_run(tmp_path):
  """ladder_multipliers gives LAMB and LARS grids of the same size at different factors."""
  for name, scores in (("lamb", {1.0: 0.10, 2.0: 0.12}), ("lars", {8.0: 0.08, 16.0: 0.09})):
    for m, acc in scores.items():
      _run(tmp_path, "ladder_multipliers", f"{name}_x{m:g}",
           {"optimizer": {"name": name}, "learning_rate_multiplier": m, "batch_size": 64,
            "data": {"name": "janeausten", "validation_documents": 22}}, base=BERT,
           accuracy=acc, metric="masked_lm_accuracy")
  lines = "\n".join(report.multiplier_section(tmp_path, "cpu", "ladder_multipliers", "T"))
  assert "| LAMB | 0.1000 | **0.1200** | - | - | x2 |" in lines
  assert "| LARS | - | - | 0.0800 | **0.0900** | x16 |" in lines


def _figure7(root, accuracy, phase2_losses, experiment="figure7", name="run", config=None):
  d = _run(root, experiment, name, {"batch_size": 512, **(config or {})}, accuracy=accuracy,
           steps=282,
           base=BERT, metric="masked_lm_accuracy",
           final={"unigram_masked_lm_accuracy": 0.0608})
  records = [{"split": "train", "step": s, "loss": 9.0 - s / 100, "phase": "seq32"}
             for s in range(1, 231)]
  records += [{"split": "train", "step": 231 + i, "loss": l, "phase": "seq64"}
              for i, l in enumerate(phase2_losses)]
  (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
  return d


def test_the_mixed_batch_curve_claim_reads_phase_two_and_refuses_a_run_at_chance(tmp_path):
  _figure7(tmp_path / "learned", 0.15, [7.0 - i / 100 for i in range(51)])
  verdict = _verdict(tmp_path / "learned", "21")
  assert verdict.status == vocab.HELD, verdict.evidence
  _figure7(tmp_path / "rising", 0.15, [7.0 + i / 100 for i in range(51)])
  assert _verdict(tmp_path / "rising", "21").status == vocab.NOT_HELD
  _figure7(tmp_path / "guess", 0.0608, [7.0 - i / 100 for i in range(51)])
  verdict = _verdict(tmp_path / "guess", "21")
  assert verdict.status == vocab.NOT_TESTABLE and "chance level" in verdict.evidence


def test_the_mixed_batch_curve_is_mixed_batchs_seed_0_when_figure7_has_not_run(tmp_path):
  """One run, two views: without a figure7 run, claim 21 and Figure 7 read mixed_batch's
  re-warm-up run of seed 0 (never another seed or variant); figure7's own run wins when present."""
  for seed, rising in ((0, False), (1, True)):
    _figure7(tmp_path, 0.15, [7.0 + (i if rising else -i) / 100 for i in range(51)],
             experiment="mixed_batch", name=f"lamb_rewarmup_seed{seed}",
             config={"variant": "lamb_rewarmup", "seed": seed})
  _figure7(tmp_path, 0.15, [7.0 + i / 100 for i in range(51)], experiment="mixed_batch",
           name="lamb_no_rewarmup_seed0", config={"variant": "lamb_no_rewarmup", "seed": 0})
  verdict = _verdict(tmp_path, "21")
  assert verdict.status == vocab.HELD and "mixed_batch's 64K/32K run" in verdict.evidence, verdict.evidence
  curve = runs.mixed_curve(runs.of_scale(tmp_path, "figure7", "cpu"),
                           runs.of_scale(tmp_path, "mixed_batch", "cpu"))
  assert [Path(p).name for p in curve.path] == ["lamb_rewarmup_seed0"]
  plotted = figures.figure7(tmp_path, "cpu").axes[0].lines[0].get_ydata()
  assert plotted[-1] == pytest.approx(7.0 - 50 / 100)  # seed 0's falling phase 2, not seed 1's
  unfinished = _figure7(tmp_path, None, [])  # figure7's own run, still training: not yet its view
  (unfinished / "summary.json").write_text(json.dumps({"status": "running", "steps": 10}))
  assert _verdict(tmp_path, "21").status == vocab.HELD
  _figure7(tmp_path, 0.15, [7.0 + i / 100 for i in range(51)])  # figure7's own, rising
  verdict = _verdict(tmp_path, "21")
  assert verdict.status == vocab.NOT_HELD and "figure7's 64K/32K run" in verdict.evidence


def _table8_cell(root, experiment, warmup, lr, seed, accuracy):
  _run(root, experiment, f"warmup{warmup}_lr{lr}_seed{seed}",
       {"seed": seed, "batch_size": 256,
        "optimizer": {"name": "adamw", "learning_rate": lr, "schedule": {"warmup_ratio": warmup}}},
       accuracy=accuracy, steps=512, base=BERT, metric="masked_lm_accuracy",
       losses=(9.7, 7.0, 6.5))


def test_adamw_at_16k_reads_its_best_cell_on_three_seeds_and_refuses_a_stale_rerun(tmp_path):
  """Claim 6 on the grid's best cell (one seed), then on table8_replicates (that cell on seeds
  1-3); a grid rerun that now chooses another cell makes the replicates stale: not judged."""
  _bert_seeds(tmp_path, "table1", "baseline", [0.16, 0.17, 0.15], 8, ("baseline",),
              steps=16384, optimizer="adamw")
  _table8_cell(tmp_path, "table8", 0.2, 0.0008, 0, 0.13)
  _table8_cell(tmp_path, "table8", 0.1, 0.0008, 0, 0.12)
  verdict = _verdict(tmp_path, "6")
  assert "(1 seed)" in verdict.evidence, verdict.evidence
  for seed, acc in zip((1, 2, 3), (0.10, 0.11, 0.09)):
    _table8_cell(tmp_path, "table8_replicates", 0.2, 0.0008, seed, acc)
  verdict = _verdict(tmp_path, "6")
  assert verdict.status == vocab.HELD, verdict.evidence
  assert "seeds 1-3) 0.1000 (3 seeds)" in verdict.evidence, verdict.evidence
  _table8_cell(tmp_path, "table8", 0.1, 0.0008, 0, 0.14)  # the grid rerun: another cell wins
  verdict = _verdict(tmp_path, "6")
  assert verdict.status == vocab.NOT_RUN
  assert "table8's best setting is now" in verdict.evidence, verdict.evidence


def test_replicates_of_a_setting_the_grid_no_longer_chooses_are_refused(tmp_path):
  """Claim 18 reads table7_replicates only while they rerun what table7's grid chooses."""
  _grid(tmp_path, "lamb", {0.01: [0.97, 0.98], 0.1: [0.95, 0.96]})
  _grid(tmp_path, "adam", {0.01: [0.90, 0.91]})
  _other_arms(tmp_path)
  _other_arms(tmp_path, "table7_replicates", seeds=(2, 3, 4), examples=9000)
  for name, lr, values in (("lamb", 0.01, (0.99, 0.985, 0.99)), ("adam", 0.01, (0.9, 0.91, 0.9))):
    for seed, acc in zip((2, 3, 4), values):
      _run(tmp_path, "table7_replicates", f"{name}_lr{lr}_seed{seed}",
           {"variant": f"{name}_lr{lr}", "seed": seed,
            "optimizer": {"name": name, "learning_rate": lr}}, accuracy=acc, examples=9000)
  verdict = _verdict(tmp_path, "18")
  assert verdict.status == vocab.HELD and "(3 seeds)" in verdict.evidence, verdict.evidence
  _grid(tmp_path, "lamb", {0.1: [0.99, 0.995]})  # the grid rerun: LAMB's choice moves to 0.1
  verdict = _verdict(tmp_path, "18")
  assert verdict.status == vocab.NOT_RUN, verdict.evidence
  assert "no longer chooses (lamb ran [(0.01," in verdict.evidence, verdict.evidence


def test_lamb_best_on_cifar_reads_the_replicates_when_they_ran(tmp_path):
  """Claim 17 on the grid (one seed per setting: no spread, not testable), then on
  table6_replicates (the choices on 3 fresh seeds), where LAMB is clearly ahead."""
  for name, acc in (("lamb", 0.40), ("adam", 0.41)):
    _run(tmp_path, "table6", f"{name}_lr0.1", {"variant": f"{name}_lr0.1",
                                                "optimizer": {"name": name,
                                                              "learning_rate": 0.1}},
         accuracy=acc)
  _other_arms(tmp_path, "table6", accuracy=0.3, seeds=(0,))
  assert _verdict(tmp_path, "17").status == vocab.NOT_TESTABLE
  _other_arms(tmp_path, "table6_replicates", accuracy=0.3, seeds=(1, 2, 3))
  for name, values in (("lamb", (0.60, 0.61, 0.62)), ("adam", (0.40, 0.41, 0.42))):
    for seed, acc in zip((1, 2, 3), values):
      _run(tmp_path, "table6_replicates", f"{name}_lr0.1_seed{seed}",
           {"variant": f"{name}_lr0.1", "seed": seed,
            "optimizer": {"name": name, "learning_rate": 0.1}}, accuracy=acc, examples=9000)
  verdict = _verdict(tmp_path, "17")
  assert verdict.status == vocab.HELD, verdict.evidence
  assert "3 seeds" in verdict.evidence, verdict.evidence
