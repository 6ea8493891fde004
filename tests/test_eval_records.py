"""Per-example records of the final evaluation (eval_examples.npz): one per evaluated image,
real masked token or SQuAD question, padding removed, averaging to the summary's metric;
written deterministically, so a killed and resumed run ends with the same bytes; a damaged
file is refused in one line."""
from __future__ import annotations

import importlib
import importlib.util
import shutil
import zipfile

import numpy as np
import pytest

from conftest import HELPERS, JANE_AUSTEN_MISSING, TINY_STEPS, tiny_table7_config
from lamb.train import checkpoint, programs, results, tasks, trainer

needs_jane_austen = pytest.mark.skipif(bool(JANE_AUSTEN_MISSING), reason=JANE_AUSTEN_MISSING)


def image_config(**changes):
  """table7's LeNet-5 on MNIST, cut to conftest's TINY run (eval on 1000 test images), in
  evaluation batches of 256: the last one padded."""
  return tiny_table7_config(**{"eval_batch_size": 256, **changes})


@pytest.fixture(scope="module")
def image_task():
  programs.enable_persistent_cache()  # the suite's own cache (conftest): compile once
  return tasks.build(image_config())


@pytest.fixture(scope="module")
def image_run(image_task, tmp_path_factory):
  run_dir = tmp_path_factory.mktemp("image") / "run"
  summary = trainer.train_and_evaluate(image_config(), run_dir, task=image_task)
  return run_dir, summary


def test_image_run_records_every_evaluated_image_once(image_run, image_task):
  run_dir, summary = image_run
  records = results.read_eval_examples(run_dir / results.EVAL_EXAMPLES)
  final = summary["final"]
  assert final["eval_unit"] == records["unit"] == "images"
  assert final["eval_units"] == final["examples"] == len(records["index"]) == 1000
  assert records["metric"] == "accuracy" and records["step"] == TINY_STEPS
  np.testing.assert_array_equal(records["index"], np.arange(1000))
  assert abs(records["correct"].mean() - final["accuracy"]) <= 1e-6
  assert records["loss"].dtype == np.float16
  assert records["loss"].astype(np.float64).mean() == pytest.approx(final["loss"], rel=1e-3)
  assert "cluster" not in records and "score" not in records
  labels = image_task.eval_arrays["label"]
  assert records["eval_set"] == results.eval_set_fingerprint(
      {"index": np.arange(1000), "label": labels})
  # another evaluation split is another fingerprint
  assert records["eval_set"] != results.eval_set_fingerprint(
      {"index": np.arange(1000), "label": np.roll(labels, 1)})
  on_disk = results.read_json(run_dir / results.SUMMARY)["final"]
  assert (on_disk["eval_unit"], on_disk["eval_units"]) == ("images", 1000)


class _Stop(Exception):
  pass


def test_killed_and_resumed_run_writes_the_same_bytes(image_run, image_task, tmp_path,
                                                      monkeypatch):
  reference = (image_run[0] / results.EVAL_EXAMPLES).read_bytes()
  save = checkpoint.Checkpointer.save

  def save_then_stop(self, step, state):
    save(self, step, state)
    if int(step) == 8:  # checkpoints at 4, 8, 12: stop like a killed process after 8
      self.manager.wait_until_finished()
      raise _Stop()

  run_dir = tmp_path / "run"
  monkeypatch.setattr(checkpoint.Checkpointer, "save", save_then_stop)
  with pytest.raises(_Stop):
    trainer.train_and_evaluate(image_config(), run_dir, task=image_task)
  monkeypatch.setattr(checkpoint.Checkpointer, "save", save)
  assert not (run_dir / results.EVAL_EXAMPLES).exists()
  summary = trainer.train_and_evaluate(image_config(), run_dir, task=image_task)
  assert summary["resumed_from_step"] == 8
  # The code that trained the first steps is recorded: here the same code resumed.
  assert summary["resumed_from_commit"] == summary["git_commit"]
  assert (run_dir / results.EVAL_EXAMPLES).read_bytes() == reference

  # Resumed at the end with its final evaluation lost (metrics and records gone): evaluated
  # again, the same file.
  lost = tmp_path / "lost"
  shutil.copytree(run_dir, lost)
  lines = (lost / results.METRICS).read_text().splitlines(keepends=True)
  (lost / results.METRICS).write_text("".join(l for l in lines if '"eval"' not in l))
  (lost / results.EVAL_EXAMPLES).unlink()
  (lost / results.SUMMARY).unlink()
  again = trainer.train_and_evaluate(image_config(), lost, task=image_task)
  assert again["resumed_from_step"] == TINY_STEPS
  assert again["final"] == summary["final"]
  assert (lost / results.EVAL_EXAMPLES).read_bytes() == reference


def test_a_diverged_run_writes_no_records(image_task, tmp_path):
  run_dir = tmp_path / "run"
  summary = trainer.train_and_evaluate(
      image_config(num_steps=4, **{"optimizer.learning_rate": 1e30}), run_dir, task=image_task)
  assert summary["status"] == results.DIVERGED
  assert not (run_dir / results.EVAL_EXAMPLES).exists()


def test_writing_is_deterministic_and_a_truncated_file_is_refused(tmp_path):
  rng = np.random.default_rng(0)
  arrays = {"index": np.arange(50), "correct": rng.random(50) < 0.5,
            "loss": rng.random(50).astype(np.float32), "cluster": np.arange(50) // 7}
  meta = {"unit": "masked tokens", "metric": "masked_lm_accuracy", "step": 7,
          "eval_set": results.eval_set_fingerprint({"index": arrays["index"]})}
  a = results.write_eval_examples(tmp_path / "a", arrays, meta)
  b = results.write_eval_examples(tmp_path / "b", dict(reversed(arrays.items())), meta)
  assert a.read_bytes() == b.read_bytes()
  with zipfile.ZipFile(a) as archive:
    assert [i.filename for i in archive.infolist()] == [
        "unit.npy", "metric.npy", "step.npy", "eval_set.npy", "index.npy", "correct.npy",
        "loss.npy", "cluster.npy"]
    assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
  with np.load(a) as plain:  # an ordinary .npz
    assert str(plain["unit"]) == "masked tokens" and plain["index"].dtype == np.int32
  back = results.read_eval_examples(a)
  assert back["step"] == 7 and back["unit"] == "masked tokens"
  np.testing.assert_array_equal(back["correct"], arrays["correct"])
  assert back["loss"].dtype == np.float16 and back["cluster"].dtype == np.int32
  assert results.read_eval_examples(tmp_path / "none.npz") is None
  data = a.read_bytes()
  for cut in (len(data) // 2, len(data) - 10, 20):
    a.write_bytes(data[:cut])
    with pytest.raises(results.UnreadableError) as e:
      results.read_eval_examples(a)
    assert "\n" not in str(e.value) and str(a) in str(e.value)
  with pytest.raises(ValueError, match="different lengths"):
    results.write_eval_examples(tmp_path / "c", dict(arrays, loss=np.zeros(3)), meta)


# --------------------------------------------------------------------------------------------
# BERT: one record per real masked token, clustered by sequence.


def _tiny_bert_config():
  """test_two_phase's run (BERT tiny on Jane Austen, 3 + 2 steps), unchanged: in the suite its
  programs come from the shared compilation cache."""
  spec = importlib.util.spec_from_file_location("tiny_bert_config",
                                                HELPERS / "tiny_bert_config.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config("cpu")


@needs_jane_austen
def test_bert_records_every_real_masked_token(tmp_path):
  from lamb.train import phases  # pylint: disable=import-outside-toplevel
  programs.enable_persistent_cache()
  config = _tiny_bert_config()
  built = [tasks.build(c) for _, c in phases.configs(config)]
  summary = trainer.train_and_evaluate(config, tmp_path / "run", task=built)
  records = results.read_eval_examples(tmp_path / "run" / results.EVAL_EXAMPLES)
  final = summary["final"]
  evals = built[-1].eval_arrays  # the final evaluation is the last phase's
  weights = evals["masked_lm_weights"]
  assert records["unit"] == final["eval_unit"] == "masked tokens"
  assert records["metric"] == "masked_lm_accuracy" and records["step"] == 5
  assert len(records["index"]) == final["eval_units"] == int((weights > 0).sum())
  np.testing.assert_array_equal(records["cluster"],
                                np.nonzero(weights > 0)[0])  # sequence by sequence
  assert 0 <= records["cluster"].min() and records["cluster"].max() < final["examples"]
  assert abs(records["correct"].mean() - final["masked_lm_accuracy"]) <= 1e-6
  assert records["loss"].astype(np.float64).mean() == pytest.approx(final["masked_lm_loss"],
                                                                    rel=1e-3)
  assert records["eval_set"] == results.eval_set_fingerprint(
      {"index": records["index"], "cluster": records["cluster"],
       "target": evals["masked_lm_ids"][weights > 0]})
  # the phase-1 evaluation (not the summary's) left no unit count
  evals_logged = [r for r in results.read_jsonl(tmp_path / "run" / results.METRICS)
                  if r["split"] == "eval"]
  assert ["eval_units" in r for r in evals_logged] == [False, True]


# --------------------------------------------------------------------------------------------
# SQuAD: one record per question, from the spans the evaluation assembles (no model needed).


@needs_jane_austen
def test_squad_records_average_to_the_summary_f1():
  from lamb.data import janeausten, squad_data  # pylint: disable=import-outside-toplevel
  from lamb.data.pretraining import Vocab  # pylint: disable=import-outside-toplevel
  from lamb.train import squad_task  # pylint: disable=import-outside-toplevel
  _, docs = janeausten.split_documents()
  dataset = squad_data.cloze_squad(docs[:3], seed=2)
  questions = squad_data.questions(dataset)
  vocab = Vocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
                + sorted({w.lower() for q in questions for w in q[2].split()}))
  features = squad_data.featurize(dataset, vocab, max_seq_length=96, doc_stride=32,
                                  max_query_length=24)
  a = features.arrays
  # the oracle span, then every third feature one token short: some partial F1, some misses
  end = np.where(np.arange(len(a["end_positions"])) % 3 == 0,
                 np.maximum(a["start_positions"], a["end_positions"] - 1), a["end_positions"])
  sums = {"start": a["start_positions"], "end": end,
          "score": (a["start_positions"] > 0).astype(np.float32),
          "count": np.int32(len(end))}
  metrics = squad_task._finalize_eval(features)(sums)  # pylint: disable=protected-access
  eval_records = squad_task._eval_records(features)  # pylint: disable=protected-access
  records = eval_records({}, sums)
  assert (records.unit, records.metric) == ("questions", "f1")
  assert len(records) == metrics["examples"] == len(questions)
  score, correct = records.arrays["score"], records.arrays["correct"]
  assert score.dtype == np.float32 and correct.dtype == bool
  assert 0 < score.mean() < 1 and 0 < correct.mean() < 1
  # the summary's f1 and exact_match are percentages
  assert 100 * score.astype(np.float64).mean() == pytest.approx(metrics["f1"], rel=1e-6)
  assert 100 * correct.mean() == pytest.approx(metrics["exact_match"], rel=1e-12)
  # the questions and their answers are the evaluation set, not the predictions
  fingerprint = results.eval_set_fingerprint(records.identity)
  assert len(fingerprint) == 16 and int(fingerprint, 16) >= 0
  assert fingerprint == results.eval_set_fingerprint(
      eval_records({}, dict(sums, end=a["end_positions"])).identity)
