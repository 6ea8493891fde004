"""Two-phase BERT pre-training in process (BERT tiny on Jane Austen, 3 + 2 steps): the phase
switch carries weights and optimizer state, one step counter and one schedule run through
both phases, the mixed-batch schedule re-warms from zero at the switch, and a run that stops
in phase 2 resumes to the metrics of an uninterrupted one."""
from __future__ import annotations

import importlib.util
import math

import jax
import numpy as np
import pytest

from conftest import HELPERS, JANE_AUSTEN_MISSING
from lamb import optim
from lamb.train import checkpoint, phases, programs, results, tasks, trainer
from lamb.train import plan as plan_lib

pytestmark = pytest.mark.skipif(bool(JANE_AUSTEN_MISSING), reason=JANE_AUSTEN_MISSING)


def tiny_config(arg="cpu"):
  spec = importlib.util.spec_from_file_location("tiny_bert_config",
                                                HELPERS / "tiny_bert_config.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


@pytest.fixture(scope="module")
def phase_tasks():
  programs.enable_persistent_cache()  # the suite's own cache (conftest): compile once
  config = tiny_config()
  return config, [tasks.build(c) for _, c in phases.configs(config)]


@pytest.fixture(scope="module")
def uninterrupted(phase_tasks, tmp_path_factory):
  config, built = phase_tasks
  seen = {}

  def observer(event, name, state):
    seen[(event, name)] = jax.device_get(state)

  run_dir = tmp_path_factory.mktemp("two_phase") / "run"
  summary = trainer.train_and_evaluate(config, run_dir, task=built, observer=observer)
  return run_dir, summary, seen


def _leaves_equal(a, b):
  la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(la) == len(lb) and la
  return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb))


def test_phase_switch_keeps_weights_and_optimizer_state(uninterrupted):
  run_dir, summary, seen = uninterrupted
  assert summary["status"] == "completed" and summary["steps"] == 5
  assert [p["name"] for p in summary["phases"]] == ["seq32", "seq64"]
  end1, start2 = seen[("end", "seq32")], seen[("start", "seq64")]
  assert int(end1.step) == int(start2.step) == 3
  assert _leaves_equal(end1.params, start2.params)
  assert _leaves_equal(end1.opt_state, start2.opt_state)
  # the moments were really carried (non-zero after 3 updates), not re-initialised
  assert any(np.abs(np.asarray(x)).sum() > 0 for x in jax.tree.leaves(start2.opt_state)
             if np.asarray(x).dtype == np.float32 and np.asarray(x).ndim > 1)
  # and phase 2 trained them on
  assert not _leaves_equal(start2.params, seen[("end", "seq64")].params)


def test_one_step_counter_and_one_schedule_over_both_phases(uninterrupted, phase_tasks):
  run_dir, _, _ = uninterrupted
  config, _ = phase_tasks
  records = results.read_jsonl(run_dir / results.METRICS)
  train = [r for r in records if r["split"] == "train"]
  assert [(r["step"], r["phase"]) for r in train] == [
      (1, "seq32"), (2, "seq32"), (3, "seq32"), (4, "seq64"), (5, "seq64")]
  evals = [(r["step"], r["phase"]) for r in records if r["split"] == "eval"]
  assert evals == [(3, "seq32"), (5, "seq64")]
  assert all("masked_lm_accuracy" in r for r in records if r["split"] == "eval")
  # warmup + linear decay over all 5 steps (BERT's recipe), not restarted at the switch
  schedule = optim.learning_rate(plan_lib.optimizer_section(config, 1, 5, phase_steps=(3, 2)))
  for r in train:
    assert r["learning_rate"] == pytest.approx(float(schedule(r["step"] - 1)), rel=1e-5, abs=1e-9)
  assert train[3]["learning_rate"] < train[1]["learning_rate"]


def test_mixed_batch_schedule_rewarms_from_zero_at_the_switch():
  config = tiny_config("cpu,mixed=1")
  named = phases.configs(config)
  assert [c.batch_size for _, c in named] == [16, 8]
  s1, s2 = (c.num_steps for _, c in named)
  schedule = optim.learning_rate(plan_lib.optimizer_section(config, 1, s1 + s2,
                                                            phase_steps=(s1, s2)))
  lr = [float(schedule(t)) for t in range(s1 + s2)]
  assert lr[0] == 0.0 and max(lr[:s1]) > 0
  assert lr[s1] == 0.0  # re-warm-up from zero at the first step of phase 2
  assert lr[s1 + 1] > 0.0
  # the paper-scale mixed run: the same shape over 7032 + 1562 steps
  paper = importlib.import_module("experiments.configs.table1").get_config("paper")
  from experiments import sweep
  mixed = sweep.run_config(paper, {"variant": "lamb_64K-32K"})
  steps = [p["overrides"]["num_steps"] for p in mixed.phases]
  schedule = optim.learning_rate(plan_lib.optimizer_section(mixed, 1, sum(steps), steps))
  assert float(schedule(steps[0] - 1)) < 1e-5 and float(schedule(steps[0])) == 0.0
  assert float(schedule(steps[0] + 100)) > float(schedule(steps[0]))


class _Stop(Exception):
  pass


def test_stopped_in_phase_two_resumes_to_the_same_metrics(uninterrupted, phase_tasks, tmp_path,
                                                          monkeypatch):
  config, built = phase_tasks
  reference_dir, reference, _ = uninterrupted
  save = checkpoint.Checkpointer.save

  def save_then_stop(self, step, state):
    save(self, step, state)
    if int(step) == 4:  # the first step of phase 2 is on disk: stop like a killed process
      self.manager.wait_until_finished()
      raise _Stop()

  run_dir = tmp_path / "run"
  monkeypatch.setattr(checkpoint.Checkpointer, "save", save_then_stop)
  with pytest.raises(_Stop):
    trainer.train_and_evaluate(config, run_dir, task=built)
  monkeypatch.setattr(checkpoint.Checkpointer, "save", save)
  assert not (run_dir / results.SUMMARY).exists()
  summary = trainer.train_and_evaluate(config, run_dir, task=built)
  assert summary["resumed_from_step"] == 4 and summary["steps"] == 5
  for key, value in reference["final"].items():
    assert summary["final"][key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
  got = results.read_jsonl(run_dir / results.METRICS)
  want = results.read_jsonl(reference_dir / results.METRICS)
  assert [(r["step"], r["split"]) for r in got] == [(r["step"], r["split"]) for r in want]
  for a, b in zip(got, want):
    for key, value in b.items():
      if isinstance(value, float) and math.isfinite(value):
        assert a[key] == pytest.approx(value, rel=1e-5, abs=1e-6), (b["step"], key)
