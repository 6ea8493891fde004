"""What rule set v2 adds to the claims: every arm required, a negative control for every rule,
the floor on every run, decidability against the margin, per-example evidence (no jax).

Synthetic run folders as in test_claims.py; the committed results are read where a check is
about them (each declared control, run on the committed runs).
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from analysis import claims, evidence, rules, runs, select
from analysis import vocabulary as vocab
from tests.test_claims import _grid, _other_arms, _run, _table3

ROOT = Path(__file__).resolve().parents[1]
V2 = rules.version(2)


def _verdict(root, claim_id, rule_set=V2):
  claim = next(c for c in claims.CLAIMS if c.id == claim_id)
  return claims.judge(claims.Context(Path(root), "cpu", rule_set), claim)


def test_the_rule_sets_are_frozen_files_with_a_digest_and_v2_is_current():
  every = rules.every()
  assert [r.version for r in every] == list(range(1, len(every) + 1))
  assert rules.current().version == 2 and len(rules.current().digest) == 12
  assert rules.version(1).min_steps == rules.version(2).min_steps == 250
  assert not rules.version(1).floor_everywhere and rules.version(2).floor_everywhere


@pytest.mark.parametrize("claim_id,experiment,arms", [
    ("18", "table7", ("lamb", "adam", "adagrad", "adamw", "momentum")),
])
def test_removing_any_arm_turns_a_best_of_claim_not_run_naming_it(tmp_path, claim_id,
                                                                   experiment, arms):
  _grid(tmp_path, "lamb", {0.01: [0.99, 0.99]})
  _grid(tmp_path, "adam", {0.01: [0.50, 0.51]})
  _other_arms(tmp_path)
  assert _verdict(tmp_path, claim_id, rules.version(1)).status == vocab.HELD
  for arm in arms:
    moved = tmp_path.parent / f"{tmp_path.name}_moved_{arm}"
    moved.mkdir()
    folder = tmp_path / experiment / "cpu"
    for d in list(folder.glob(f"{arm}_lr*")):
      d.rename(moved / d.name)
    verdict = _verdict(tmp_path, claim_id, rules.version(1))
    assert verdict.status == vocab.NOT_RUN, (arm, verdict.evidence)
    assert vocab.optimizer_label(arm) in verdict.evidence
    for d in list(moved.iterdir()):
      d.rename(folder / d.name)


def test_lamb_alone_is_not_run_not_a_crash(tmp_path):
  _grid(tmp_path, "lamb", {0.01: [0.99, 0.99]})
  verdict = _verdict(tmp_path, "18")
  assert verdict.status == vocab.NOT_RUN and "Adagrad" in verdict.evidence


def test_the_floor_binds_every_run_under_v2_only(tmp_path):
  others = ("adagrad", "adagrad+", "adam", "adam+", "adamw", "adamw+", "momentum")
  _table3(tmp_path, {"lamb": [0.80, 0.81, 0.79], **{o: [0.50, 0.52, 0.49] for o in others}},
          steps=64)
  assert _verdict(tmp_path, "9", rules.version(1)).status == vocab.HELD
  verdict = _verdict(tmp_path, "9")
  assert verdict.status == vocab.NOT_TESTABLE and "64 steps (< 250)" in verdict.evidence
  assert "250+ steps" in verdict.decide


def test_every_rule_but_the_untestable_ones_declares_a_negative_control():
  without = [c.id for c in claims.CLAIMS if c.control is None]
  assert without == ["12b", "23", "T"]


def test_a_rule_that_holds_on_its_control_leaves_the_claim_not_testable(tmp_path):
  """Claim 21's smoothness rule on a LAMB mixed run, with AdamW's mixed run (the control) as
  smooth as LAMB's: the rule cannot tell them apart."""
  bert = {"data": {"name": "janeausten"}, "model": {"name": "bert"}}
  losses = (9.7, 7.0, 6.9, 6.8, 6.7, 6.6)
  for name, variant in (("lamb_rewarmup", "lamb_rewarmup"), ("adamw_lr0.0001", "adamw")):
    for seed in (0, 1, 2):
      d = _run(tmp_path, "mixed_batch", f"{name}_seed{seed}",
               {"variant": variant, "seed": seed, "learning_rate_multiplier": 4.0,
                "optimizer": {"name": name.split("_")[0]}}, accuracy=0.13, steps=282,
               metric="masked_lm_accuracy", base=bert,
               final={"unigram_masked_lm_accuracy": 0.06})
      (d / "metrics.jsonl").write_text("".join(
          json.dumps({"split": "train", "step": k + 1, "loss": l,
                      "phase": "seq32" if k < 2 else "seq64"}) + "\n"
          for k, l in enumerate(losses)))
  assert _verdict(tmp_path, "21", rules.version(1)).status == vocab.HELD
  verdict = _verdict(tmp_path, "21")
  assert verdict.status == vocab.NOT_TESTABLE, verdict.evidence
  assert "negative control" in verdict.evidence and ": held" in verdict.control


def test_each_declared_control_on_the_committed_runs_fails_or_blocks_its_claim():
  """On the committed runs every control is judged; where one holds (the rule cannot
  discriminate), its claim is not testable, never held or not held."""
  judged = claims.judge_all(ROOT / "results", "cpu")
  seen = 0
  for claim, verdict in judged:
    if claim.control is None:
      continue
    assert verdict.control.startswith(claim.control.text), claim.id
    if verdict.control.endswith(": " + vocab.HELD):
      assert verdict.status == vocab.NOT_TESTABLE, (claim.id, verdict.evidence)
    seen += 1
  assert seen == len(claims.CLAIMS) - 3


def test_a_same_claim_beyond_the_evaluations_reach_is_not_testable_and_says_why(tmp_path):
  """Claim 16 (margin 0.001): on the fallback the verdict stays inconclusive and asks for
  records (its evaluation term is an upper bound); with records whose arms get different images
  right, the evaluation set alone is wider than the margin: not testable, saying why."""
  rng = np.random.default_rng(1)
  arms = {}
  _table3(tmp_path, {"lamb": [0.85, 0.85, 0.85]}, steps=256)
  for seed in range(3):
    arms["lamb", seed] = tmp_path / "table3" / "cpu" / f"lamb_seed{seed}"
  for norm in ("l1", "linf"):
    for seed in range(3):
      arms[norm, seed] = _run(tmp_path, "figure3", f"{norm}_seed{seed}",
                              {"variant": norm, "seed": seed,
                               "optimizer": {"name": "lamb", "kwargs": {"norm": norm}}},
                              accuracy=0.85, examples=2000)
  verdict = _verdict(tmp_path, "16")
  assert verdict.status == vocab.INCONCLUSIVE, verdict.evidence
  assert verdict.method.startswith("fallback") and "per-example records" in verdict.decide
  # Each arm gets its own images right, the same ones on every seed (an arm-specific
  # difficulty, which no number of seeds averages away).
  own = {arm: rng.random(2000) < 0.85 for arm in ("lamb", "l1", "linf")}
  for (arm, seed), d in arms.items():
    _records(d, own[arm] ^ (rng.random(2000) < 0.01))
  verdict = _verdict(tmp_path, "16")
  assert verdict.status == vocab.NOT_TESTABLE, verdict.evidence
  assert "no number of seeds could decide it" in verdict.evidence
  assert "images" in verdict.decide, verdict.decide
  assert verdict.method.startswith("per-example")


def _records(d: Path, correct: np.ndarray, eval_set: str = "abc") -> None:
  """An eval_examples.npz as the runner writes it (deterministic zip of .npy members)."""
  members = {"unit": np.array("images"), "metric": np.array("accuracy"),
             "step": np.array(256), "eval_set": np.array(eval_set),
             "index": np.arange(len(correct), dtype=np.int32),
             "correct": correct.astype(bool),
             "loss": np.zeros(len(correct), np.float16)}
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    for name, value in members.items():
      info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
      out = io.BytesIO()
      np.lib.format.write_array(out, value, allow_pickle=False)
      z.writestr(info, out.getvalue())
  (d / "eval_examples.npz").write_bytes(buf.getvalue())
  summary = json.loads((d / "summary.json").read_text())
  summary["final"]["accuracy"] = float(correct.mean())
  summary["final"].update(eval_units=len(correct), eval_unit="images")
  (d / "summary.json").write_text(json.dumps(summary))


def test_per_example_records_pair_the_arms_and_narrow_the_interval(tmp_path):
  """Two arms scored on the same 2000 images, whose hard images are shared: the per-example
  interval, paired on images, is narrower than the fallback's independent binomial terms."""
  rng = np.random.default_rng(0)
  hard = rng.random(2000) < 0.15
  dirs = {}
  for variant, flip in (("lamb", 0.02), ("adam", 0.03)):
    for seed in range(3):
      d = _run(tmp_path, "table3", f"{variant}_seed{seed}",
               {"variant": variant, "seed": seed, "optimizer": {"name": variant}},
               accuracy=0.5, examples=2000)
      correct = ~hard ^ (rng.random(2000) < flip)
      dirs[variant, seed] = (d, correct)
  frame = runs.load(tmp_path)
  pick = lambda v: select.choose(frame[frame["config.variant"] == v], [], "final.accuracy").best
  fallback = evidence.difference(pick("lamb"), pick("adam"), None, level=0.95)
  for d, correct in dirs.values():
    _records(d, correct)
  frame = runs.load(tmp_path)
  assert not frame.status.isin(vocab.BLOCKING).any(), frame[["run", "status", "error"]]
  paired = evidence.difference(pick("lamb"), pick("adam"), None, level=0.95)
  assert fallback.method.startswith("fallback") and paired.method.startswith("per-example")
  assert paired.hi - paired.lo < 0.6 * (fallback.hi - fallback.lo), (paired, fallback)
  means = {v: np.mean([c.mean() for (var, _), (_, c) in dirs.items() if var == v])
           for v in ("lamb", "adam")}
  assert paired.diff == pytest.approx(means["lamb"] - means["adam"])
