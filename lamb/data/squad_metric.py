"""The official SQuAD v1.1 evaluation (exact match and F1), the paper's BERT accuracy metric.

The LAMB paper reports the F1 score on the SQuAD v1.1 dev set (baseline BERT-Large 90.395).
This is the logic of the official ``evaluate-v1.1.py`` (Rajpurkar et al. 2016), unchanged,
including its edge cases:

* answers are normalised by lower-casing, deleting ASCII punctuation (``string.punctuation``;
  other characters such as "\u2013" or "\u2019" stay), replacing the words "a", "an", "the"
  by a space (after punctuation is removed, so "the-end" becomes "theend" and keeps no
  article), and collapsing white space;
* exact match compares the normalised strings, so a prediction and answer that both normalise
  to "" match (e.g. "The" vs "a.");
* F1 is over normalised tokens with multiplicity (Counter intersection) and is 0 when no token
  is shared, including when both normalise to "" (EM 1 but F1 0);
* each question scores the maximum over its ground-truth answers; a question without a
  prediction scores 0 (the official script prints a warning and still counts it);
* the dataset score is the mean over questions, in percent; `question_scores` gives each
  question's own (the per-question records of a run's final evaluation).
"""
from __future__ import annotations

import collections
import json
import re
import string
import sys
from typing import Iterable, Mapping

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(s: str) -> str:
  """Lower text and remove punctuation, articles and extra whitespace (official order)."""
  s = s.lower()
  s = "".join(ch for ch in s if ch not in _PUNCTUATION)
  s = _ARTICLES.sub(" ", s)
  return " ".join(s.split())


def f1_score(prediction: str, ground_truth: str) -> float:
  prediction_tokens = normalize_answer(prediction).split()
  ground_truth_tokens = normalize_answer(ground_truth).split()
  common = collections.Counter(prediction_tokens) & collections.Counter(ground_truth_tokens)
  num_same = sum(common.values())
  if num_same == 0:
    return 0.0
  precision = num_same / len(prediction_tokens)
  recall = num_same / len(ground_truth_tokens)
  return (2 * precision * recall) / (precision + recall)


def exact_match_score(prediction: str, ground_truth: str) -> bool:
  return normalize_answer(prediction) == normalize_answer(ground_truth)


def metric_max_over_ground_truths(metric_fn, prediction: str, ground_truths) -> float:
  if isinstance(ground_truths, str):
    ground_truths = [ground_truths]
  ground_truths = list(ground_truths)
  if not ground_truths:
    raise ValueError("a question needs at least one ground-truth answer")
  return max(metric_fn(prediction, ground_truth) for ground_truth in ground_truths)


def _questions(dataset) -> Iterable[tuple[str, list[str]]]:
  """(question id, ground-truth answer texts) from a SQuAD dataset or a {qid: answers} map."""
  if isinstance(dataset, Mapping) and "data" in dataset:
    dataset = dataset["data"]  # The whole JSON file ({"version", "data"}).
  if isinstance(dataset, Mapping):
    for qid, answers in dataset.items():
      yield qid, [answers] if isinstance(answers, str) else [
          a["text"] if isinstance(a, Mapping) else a for a in answers]
    return
  for article in dataset:
    for paragraph in article["paragraphs"]:
      for qa in paragraph["qas"]:
        yield qa["id"], [answer["text"] for answer in qa["answers"]]


def evaluate(dataset_or_pairs, predictions: Mapping[str, str] | None = None, *,
             warn=True) -> dict[str, float]:
  """{"exact_match", "f1"} in percent, as the official script.

  Either `dataset_or_pairs` is a SQuAD v1.1 dataset (the JSON file's dict, or its "data" list of
  articles) or a {question id: ground-truth answers} mapping, and `predictions` maps question ids
  to answer strings (missing ones score 0, with a warning on stderr when `warn`); or
  `predictions` is None and `dataset_or_pairs` is an iterable of (prediction, ground truths)
  pairs.
  """
  scores = question_scores(dataset_or_pairs, predictions, warn=warn)
  if not scores:
    raise ValueError("no questions to evaluate")
  exact_match = f1 = 0.0
  for question_exact_match, question_f1 in scores:
    exact_match += question_exact_match
    f1 += question_f1
  return {"exact_match": 100.0 * exact_match / len(scores), "f1": 100.0 * f1 / len(scores)}


def question_scores(dataset_or_pairs, predictions: Mapping[str, str] | None = None, *,
                    warn=True) -> list[tuple[bool, float]]:
  """(exact match, F1 in [0, 1]) of each question, in the dataset's order (arguments as
  `evaluate`, whose scores are their means in percent); an unanswered question scores
  (False, 0.0)."""
  if predictions is None:
    pairs = [(p, gts) for p, gts in dataset_or_pairs]
  else:
    pairs = []
    for qid, ground_truths in _questions(dataset_or_pairs):
      if qid not in predictions:
        if warn:
          print(f"Unanswered question {qid} will receive score 0.", file=sys.stderr)
        pairs.append((None, ground_truths))
      else:
        pairs.append((predictions[qid], ground_truths))
  return [(False, 0.0) if prediction is None else
          (metric_max_over_ground_truths(exact_match_score, prediction, ground_truths),
           metric_max_over_ground_truths(f1_score, prediction, ground_truths))
          for prediction, ground_truths in pairs]


def evaluate_files(dataset_file, prediction_file, *, expected_version: str = "1.1",
                   warn=True) -> dict[str, float]:
  """The official command line: a SQuAD JSON file and a {qid: answer} predictions JSON file."""
  with open(dataset_file, encoding="utf-8") as f:
    dataset_json = json.load(f)
  if dataset_json.get("version") != expected_version and warn:
    print(f"Evaluation expects v-{expected_version}, but got dataset with "
          f"v-{dataset_json.get('version')}", file=sys.stderr)
  with open(prediction_file, encoding="utf-8") as f:
    predictions = json.load(f)
  return evaluate(dataset_json["data"], predictions, warn=warn)
