"""BERT end to end through `experiments/run.py`: a few-step two-phase pre-training run of
BERT tiny on Jane Austen, SQuAD fine-tuning from its checkpoint on questions generated from
the held-out novel, and the paper scale's one-line error when its data is absent."""
from __future__ import annotations

import pytest

from conftest import HELPERS, JANE_AUSTEN_MISSING, read_json, run_cli
from lamb.data import janeausten, squad_data, squad_metric
from lamb.data.pretraining import Vocab

pytestmark = pytest.mark.skipif(bool(JANE_AUSTEN_MISSING), reason=JANE_AUSTEN_MISSING)
TINY = HELPERS / "tiny_bert_config.py"


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
  results = tmp_path_factory.mktemp("bert")
  proc = run_cli([f"--config={TINY}"], results_dir=results)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  return results / "tiny_bert" / "cpu" / "run", proc


def test_two_phase_pretraining_completes_and_reports_masked_lm_accuracy(pretrained):
  run_dir, proc = pretrained
  assert "run: completed after 5 steps, masked_lm_accuracy" in proc.stdout
  summary = read_json(run_dir / "summary.json")
  assert summary["status"] == "completed" and summary["total_steps"] == 5
  assert [(p["name"], p["steps"]) for p in summary["phases"]] == [("seq32", 3), ("seq64", 2)]
  for key in ("masked_lm_accuracy", "next_sentence_accuracy", "masked_lm_loss", "loss"):
    assert key in summary["final"]
  assert summary["final"]["examples"] == 64
  assert 0 < summary["final"]["unigram_masked_lm_accuracy"] < 0.5
  assert "Jane Austen" in summary["data"]


def test_squad_fine_tuning_from_the_pretraining_checkpoint(pretrained, tmp_path):
  run_dir, _ = pretrained
  proc = run_cli(["--config=squad", f"--config.init_from={run_dir}", "--config.batch_size=16",
                  "--config.num_epochs=1", "--config.data.train_examples=64",
                  "--config.data.eval_examples=24", "--config.data.max_seq_length=64",
                  "--config.data.doc_stride=32", "--config.data.max_query_length=24",
                  "--config.eval_batch_size=32"], results_dir=tmp_path)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  summary = read_json(tmp_path / "squad" / "cpu" / "run" / "summary.json")
  assert summary["status"] == "completed" and summary["steps"] >= 4
  final = summary["final"]
  assert final["examples"] == 24 and final["features"] >= 24
  assert 0.0 <= final["f1"] <= 100.0 and 0.0 <= final["exact_match"] <= 100.0
  assert "generated from Jane Austen" in summary["data"]


def test_cloze_questions_and_oracle_decoding_score_100():
  _, evals = janeausten.split_documents()
  dataset = squad_data.cloze_squad(evals[:3], seed=2)
  questions = squad_data.questions(dataset)
  assert questions
  for _, question, context, answers in questions:
    answer = answers[0]
    assert squad_data.BLANK in question
    assert context[answer["answer_start"]:answer["answer_start"] + len(answer["text"])] \
        == answer["text"]
    assert question.replace(squad_data.BLANK, answer["text"]) in context
  vocab = Vocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
                + sorted({w.lower() for q in questions for w in q[2].split()}))
  features = squad_data.featurize(dataset, vocab, max_seq_length=96, doc_stride=32,
                                  max_query_length=24)
  a = features.arrays
  predicted = squad_data.predictions(features, a["start_positions"], a["end_positions"],
                                     (a["start_positions"] > 0).astype(float))
  scores = squad_metric.evaluate(features.answers, predicted, warn=False)
  assert scores["exact_match"] == 100.0


@pytest.mark.parametrize("name", ["table4", "squad"])
def test_paper_scale_without_data_is_a_one_line_error(name, tmp_path):
  (tmp_path / "none").mkdir()  # a data_dir without the data sets (a missing one is refused first)
  proc = run_cli([f"--config={name}:paper", f"--data_dir={tmp_path / 'none'}", "--only=."]
                 + (["--config.data.vocab_file=/nonexistent/vocab.txt"] if name == "squad"
                    else []), results_dir=tmp_path / "results")
  assert proc.returncode == 2, proc.stdout + proc.stderr
  lines = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert len(lines) == 1, proc.stderr
  if name == "table4":  # training reads instances written beforehand, and says how to write them
    assert "no BERT pre-training instances of length 128" in lines[0], lines[0]
    assert "write them first: python experiments/write_pretraining_data.py --config=table4:paper" \
        in lines[0]
  else:
    assert "not prepared" in lines[0] or "not available" in lines[0], lines[0]
  assert not (tmp_path / "results").exists()
