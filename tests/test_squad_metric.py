"""SQuAD v1.1 metric: hand-computed cases, the official script's edge cases, and agreement
with the official evaluate-v1.1.py functions (copied below) on random answers."""
from __future__ import annotations

import json
import random
import re
import string
from collections import Counter

import pytest

from lamb.data import squad_metric as sm


# The official evaluate-v1.1.py (Rajpurkar et al. 2016), verbatim apart from formatting.
def _official_normalize_answer(s):
  def remove_articles(text):
    return re.sub(r'\b(a|an|the)\b', ' ', text)

  def white_space_fix(text):
    return ' '.join(text.split())

  def remove_punc(text):
    exclude = set(string.punctuation)
    return ''.join(ch for ch in text if ch not in exclude)

  def lower(text):
    return text.lower()

  return white_space_fix(remove_articles(remove_punc(lower(s))))


def _official_f1_score(prediction, ground_truth):
  prediction_tokens = _official_normalize_answer(prediction).split()
  ground_truth_tokens = _official_normalize_answer(ground_truth).split()
  common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
  num_same = sum(common.values())
  if num_same == 0:
    return 0
  precision = 1.0 * num_same / len(prediction_tokens)
  recall = 1.0 * num_same / len(ground_truth_tokens)
  f1 = (2 * precision * recall) / (precision + recall)
  return f1


def _official_exact_match_score(prediction, ground_truth):
  return (_official_normalize_answer(prediction) == _official_normalize_answer(ground_truth))


@pytest.mark.parametrize("text, expected", [
    ("The Cat!", "cat"),
    ("A  an   THE apple.", "apple"),
    ("\tNew\nYork ", "new york"),
    ("Theater and Anne", "theater and anne"),  # articles only as whole words
    ("the-end", "theend"),  # punctuation goes first, so no article is left
    ("a.b", "ab"),
    ("U.S.", "us"),
    ("1,000", "1000"),
    ("don't", "dont"),
    ("don\u2019t \u2013 yes", "don\u2019t \u2013 yes"),  # non-ASCII punctuation stays
    ("The", ""),
    ("", ""),
])
def test_normalize_answer(text, expected):
  assert sm.normalize_answer(text) == expected
  assert _official_normalize_answer(text) == expected


def test_hand_computed_scores():
  # [cat, sat] vs [cat, sat, on, mat]: precision 1, recall 1/2.
  assert sm.f1_score("the cat sat", "a cat sat on the mat") == pytest.approx(2 / 3)
  assert not sm.exact_match_score("the cat sat", "a cat sat on the mat")
  # Multiplicity: [cat, cat] vs [cat]: 1 shared, precision 1/2, recall 1.
  assert sm.f1_score("the the cat cat", "cat") == pytest.approx(2 / 3)
  assert sm.f1_score("Denver Broncos", "denver broncos.") == 1.0
  assert sm.exact_match_score("Denver Broncos", "The Denver Broncos!")
  assert sm.f1_score("Broncos", "Denver Broncos") == pytest.approx(2 * 0.5 / 1.5)
  assert sm.f1_score("Carolina Panthers", "Denver Broncos") == 0.0
  # Both normalise to "": exact match, but F1 0 (num_same == 0), as the official script.
  assert sm.exact_match_score("The", "a.")
  assert sm.f1_score("The", "a.") == 0.0
  assert sm.f1_score("", "Denver") == 0.0
  # Maximum over ground truths.
  assert sm.metric_max_over_ground_truths(
      sm.f1_score, "Santa Clara", ["Levi's Stadium", "Santa Clara, California", "Santa Clara"]
  ) == 1.0
  assert sm.metric_max_over_ground_truths(
      sm.f1_score, "Santa Clara", ["Levi's Stadium", "Santa Clara, California"]
  ) == pytest.approx(0.8)
  assert sm.metric_max_over_ground_truths(sm.exact_match_score, "x", "x") == 1


def _dataset():
  return {"version": "1.1", "data": [
      {"title": "Super_Bowl_50", "paragraphs": [
          {"context": "...", "qas": [
              {"id": "q1", "question": "?", "answers": [
                  {"answer_start": 0, "text": "Denver Broncos"},
                  {"answer_start": 0, "text": "Denver Broncos"}]},
              {"id": "q2", "question": "?", "answers": [
                  {"answer_start": 0, "text": "Santa Clara, California"},
                  {"answer_start": 0, "text": "Levi's Stadium"}]}]}]},
      {"title": "Other", "paragraphs": [
          {"context": "...", "qas": [
              {"id": "q3", "question": "?", "answers": [{"answer_start": 0, "text": "1,000"}]},
              {"id": "q4", "question": "?", "answers": [{"answer_start": 0, "text": "gold"}]}]}]},
  ]}


def test_dataset_evaluation(tmp_path, capsys):
  predictions = {"q1": "the Denver Broncos", "q2": "Santa Clara", "q3": "about 1000"}
  # q1: EM 1, F1 1; q2: EM 0, F1 0.8 (vs "Santa Clara, California"); q3: EM 0, F1 2/3;
  # q4 unanswered: 0 and a warning.
  expected_f1 = 100 * (1 + 0.8 + 2 / 3 + 0) / 4
  for dataset in (_dataset(), _dataset()["data"]):
    result = sm.evaluate(dataset, predictions)
    assert result["exact_match"] == pytest.approx(25.0)
    assert result["f1"] == pytest.approx(expected_f1)
  assert "Unanswered question q4 will receive score 0." in capsys.readouterr().err
  # The same from a {qid: answers} map, from pairs, and from files.
  answers = {"q1": ["Denver Broncos"], "q2": ["Santa Clara, California", "Levi's Stadium"],
             "q3": "1,000", "q4": ["gold"]}
  assert sm.evaluate(answers, predictions, warn=False)["f1"] == pytest.approx(expected_f1)
  pairs = [(predictions.get(q, ""), a) for q, a in answers.items()]
  assert sm.evaluate(pairs) == pytest.approx({"exact_match": 25.0, "f1": expected_f1})
  (tmp_path / "dev.json").write_text(json.dumps(_dataset()))
  (tmp_path / "pred.json").write_text(json.dumps(predictions))
  assert sm.evaluate_files(tmp_path / "dev.json", tmp_path / "pred.json", warn=False) == \
      pytest.approx({"exact_match": 25.0, "f1": expected_f1})
  with pytest.raises(ValueError):
    sm.evaluate([])


def test_agrees_with_official_script_on_random_answers():
  rng = random.Random(0)
  words = ["the", "a", "an", "The", "A.", "cat", "Cat", "cat,", "sat", "on", "mat", "1,000",
           "1000", "U.S.", "us", "the-end", "theend", "\u2013", "don't", "dont", "", "an)"]
  for _ in range(2000):
    pred = " ".join(rng.choice(words) for _ in range(rng.randint(0, 5)))
    truth = " ".join(rng.choice(words) for _ in range(rng.randint(1, 5)))
    assert sm.normalize_answer(pred) == _official_normalize_answer(pred)
    assert sm.exact_match_score(pred, truth) == _official_exact_match_score(pred, truth)
    assert sm.f1_score(pred, truth) == pytest.approx(_official_f1_score(pred, truth), abs=1e-12)
