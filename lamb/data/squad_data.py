"""SQuAD v1.1 for BERT fine-tuning: the data set, its features, and predictions back to text.

The paper's accuracy metric is the F1 on SQuAD v1.1's dev set after Devlin et al.'s
fine-tuning. Two sources give the same SQuAD-format dataset (``{"version", "data": [articles]}``,
what ``lamb.data.squad_metric.evaluate`` scores):

* :func:`tfds_squad`: TFDS ``squad/v1.1`` read from a prepared data_dir (paper scale; never
  downloaded, DatasetNotFoundError otherwise);
* :func:`cloze_squad`: a small set generated from any documents (cpu scale and tests): the
  context is a few consecutive sentences, the question is one of them with a span of one to
  three words blanked out ("_____"), the answer is that span. A model answers it by finding the
  sentence in the context, so the whole fine-tuning path (features, span head, greedy decoding,
  the official normalisation) is exercised on real text.

:func:`featurize` is run_squad's convert_examples_to_features: [CLS] question [SEP] context
window [SEP], windows of the context `doc_stride` tokens apart when it does not fit, answer
positions in the window (0, the [CLS], when the answer is outside it). Tokens carry their
character span in the context (the `tokenizers` offsets), so a predicted token span is cut
from the original context text.
"""
from __future__ import annotations

import dataclasses
import random
import re

import numpy as np

from lamb.data.errors import DatasetNotFoundError

BLANK = "_____"
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*[A-Za-z]|[A-Za-z]")


def cloze_squad(documents, *, seed: int = 0, sentences_per_context: int = 3,
                max_questions: int = 0, title: str = "generated") -> dict:
  """A SQuAD v1.1-format dataset of blanked-span questions about `documents` (sentence lists)."""
  rng = random.Random(seed)
  paragraphs = []
  k = sentences_per_context
  for d, doc in enumerate(documents):
    for c in range(0, len(doc) - k + 1, k):
      sentences = doc[c:c + k]
      qi = rng.randrange(k)
      sentence = sentences[qi]
      words = [m.span() for m in _WORD.finditer(sentence)]
      if len(words) < 4:
        continue
      n = min(rng.choice((1, 1, 2, 3)), len(words))
      i = rng.randrange(len(words) - n + 1)
      a, b = words[i][0], words[i + n - 1][1]
      context = " ".join(sentences)
      offset = sum(len(s) + 1 for s in sentences[:qi])
      qid = f"{title}-{d}-{c}"
      paragraphs.append({"context": context, "qas": [{
          "id": qid, "question": sentence[:a] + BLANK + sentence[b:],
          "answers": [{"text": sentence[a:b], "answer_start": offset + a}]}]})
      if max_questions and len(paragraphs) >= max_questions:
        return {"version": "1.1", "data": [{"title": title, "paragraphs": paragraphs}]}
  return {"version": "1.1", "data": [{"title": title, "paragraphs": paragraphs}]}


def tfds_squad(split: str, data_dir=None, tfds_name: str = "squad/v1.1") -> dict:
  """TFDS SQuAD as a SQuAD-format dataset (one article per example; reading only)."""
  try:
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel  (slow import)
    builder = tfds.builder(tfds_name, data_dir=data_dir)
    prepared = builder.is_prepared()
  except Exception as e:  # pylint: disable=broad-except
    raise DatasetNotFoundError(f"TFDS {tfds_name!r} is not available in "
                               f"{data_dir or '~/tensorflow_datasets'} ({type(e).__name__}: {e})"
                               ) from None
  if not prepared:
    raise DatasetNotFoundError(f"TFDS {tfds_name!r} is not prepared in {builder.data_dir}; "
                               f"prepare it elsewhere with `tfds build {tfds_name}` and copy the "
                               "folder here (nothing is downloaded)")
  articles = []
  for ex in tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)):
    text = lambda v: v.decode("utf-8")
    answers = [{"text": text(t), "answer_start": int(s)}
               for t, s in zip(ex["answers"]["text"], ex["answers"]["answer_start"])]
    articles.append({"title": text(ex["title"]), "paragraphs": [{
        "context": text(ex["context"]),
        "qas": [{"id": text(ex["id"]), "question": text(ex["question"]), "answers": answers}]}]})
  return {"version": "1.1", "data": articles}


def questions(dataset: dict) -> list:
  """[(qid, question, context, answers)] of a SQuAD-format dataset, in order."""
  return [(qa["id"], qa["question"], p["context"], qa["answers"])
          for article in dataset["data"] for p in article["paragraphs"] for qa in p["qas"]]


@dataclasses.dataclass
class Features:
  arrays: dict  # input_ids, input_mask, segment_ids, context_mask, start/end_positions, index
  qids: list  # the question of each feature
  offsets: np.ndarray  # [N, L, 2] character span of each token in its context (-1: not context)
  contexts: dict  # qid -> context text
  answers: dict  # qid -> ground-truth answers (for the metric)


def featurize(dataset: dict, vocab, *, max_seq_length: int = 384, doc_stride: int = 128,
              max_query_length: int = 64, limit: int = 0) -> Features:
  """run_squad's features of every question (the first answer gives the training positions)."""
  qs = questions(dataset)[:limit or None]
  queries = vocab.tokenize([q for _, q, _, _ in qs])
  contexts = vocab.tokenize_with_offsets([c for _, _, c, _ in qs])
  rows, qids, offsets = [], [], []
  for (qid, _, context, answers), query, (ids, spans) in zip(qs, queries, contexts):
    query = query[:max_query_length]
    a_start = answers[0]["answer_start"]
    a_end = a_start + len(answers[0]["text"])
    inside = [t for t, (s, e) in enumerate(spans) if e > a_start and s < a_end]
    tok_start, tok_end = (inside[0], inside[-1]) if inside else (-1, -1)
    room = max_seq_length - len(query) - 3
    if room < 1:
      raise ValueError(f"max_query_length {max_query_length} leaves no room for the context in "
                       f"max_seq_length {max_seq_length}")
    start = 0
    while True:
      length = min(len(ids) - start, room)
      head = 2 + len(query)
      tokens = [vocab.cls_id] + query + [vocab.sep_id] + ids[start:start + length] + [vocab.sep_id]
      pad = max_seq_length - len(tokens)
      segment = [0] * head + [1] * (length + 1)
      context_mask = [0] * head + [1] * length + [0]
      if start <= tok_start and tok_end < start + length:
        positions = (tok_start - start + head, tok_end - start + head)
      else:
        positions = (0, 0)
      rows.append((tokens + [vocab.pad_id] * pad, [1] * len(tokens) + [0] * pad,
                   segment + [0] * pad, context_mask + [0] * pad, positions))
      span = np.full((max_seq_length, 2), -1, np.int64)
      span[head:head + length] = np.asarray(spans[start:start + length]).reshape(-1, 2)
      offsets.append(span)
      qids.append(qid)
      if start + length >= len(ids):
        break
      start += min(length, doc_stride)
  n = len(rows)
  arrays = {
      "input_ids": np.asarray([r[0] for r in rows], np.int32).reshape(n, max_seq_length),
      "input_mask": np.asarray([r[1] for r in rows], np.int32).reshape(n, max_seq_length),
      "segment_ids": np.asarray([r[2] for r in rows], np.int32).reshape(n, max_seq_length),
      "context_mask": np.asarray([r[3] for r in rows], np.int32).reshape(n, max_seq_length),
      "start_positions": np.asarray([r[4][0] for r in rows], np.int32).reshape(n),
      "end_positions": np.asarray([r[4][1] for r in rows], np.int32).reshape(n),
      "feature_index": np.arange(n, dtype=np.int32),
  }
  return Features(arrays, qids, np.asarray(offsets).reshape(n, max_seq_length, 2),
                  {qid: c for qid, _, c, _ in qs}, {qid: a for qid, _, _, a in qs})


def predictions(features: Features, starts, ends, scores) -> dict:
  """{qid: answer text}: for each question the best-scoring feature's span, cut from the
  context by the tokens' character offsets."""
  best = {}
  for i, qid in enumerate(features.qids):
    if qid not in best or scores[i] > scores[best[qid]]:
      best[qid] = i
  out = {}
  for qid, i in best.items():
    s, e = int(starts[i]), int(ends[i])
    a, b = features.offsets[i, s, 0], features.offsets[i, e, 1]
    out[qid] = features.contexts[qid][a:b] if a >= 0 and b >= a else ""
  return out
