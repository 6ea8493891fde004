"""SQuAD v1.1 fine-tuning as a task of the generic loop: the F1 of Tables 1, 2, 4 and 8.

BertForSquad (BERT without its pooler, plus run_squad's span head) starts from the ``bert/...``
weights of a pre-training run (`config.init_from`: a run folder or its checkpoints folder; the
newest checkpoint; or Google's released TF checkpoint, `.../bert_model.ckpt`,
lamb.models.bert_checkpoint), trains on run_squad's loss, and is scored by the official SQuAD v1.1 F1
and exact match (lamb.data.squad_metric). Decoding is greedy: for each feature the span
(s, e) of context tokens with e - s < max_answer_length that maximises start_logit[s] +
end_logit[e], computed on the devices; for each question the best-scoring feature's span,
cut from the context by character offsets.

Evaluation fits the loop's masked sums: each feature's best start, end and score are
scattered into vectors indexed by the feature's number, so summing them over the (padded)
evaluation batches assembles every prediction exactly once, and `finalize_eval` turns them
into text and scores. The final evaluation also records each question's F1 (in [0, 1]; the
summary's f1 is their mean in percent) and exact match (results.write_eval_examples: the
per-question evidence of the comparisons' intervals).
"""
from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np

from lamb.data import bert_corpus, janeausten, squad_data, squad_metric
from lamb.models import bert, bert_checkpoint
from lamb.train import checkpoint
from lamb.train.bert_tasks import bert_config, model_options
from lamb.train.task import EvalRecords, Task

SOURCES = ("squad", "janeausten_cloze")
# Sizes known without reading (for the cost model): run_squad's 88,641 training features of
# SQuAD v1.1 at length 384 / stride 128, and about one question per three sentences of the
# five training novels.
TRAIN_FEATURES = {"squad": 88_641, "janeausten_cloze": 8_000}


def _datasets(data, data_dir):
  """(train dataset, eval dataset, vocabulary, description)."""
  if data.name == "squad":
    if not data.get("vocab_file"):
      raise ValueError("SQuAD needs the pre-trained model's vocabulary: --config.data.vocab_file")
    name = data.get("tfds_name") or "squad/v1.1"
    train = squad_data.tfds_squad("train", data_dir, name)
    evals = squad_data.tfds_squad(data.get("eval_split") or "validation", data_dir, name)
    return train, evals, bert_corpus.vocabulary(data, None), f"TFDS {name}"
  if data.name == "janeausten_cloze":
    novels = janeausten.load_novels(data.get("text_dir") or None)
    held_out = data.get("held_out") or janeausten.HELD_OUT
    train_docs, eval_docs = janeausten.split_documents(novels, held_out=held_out)
    vocab = bert_corpus.vocabulary(data, train_docs)  # the pre-training run's, same cache key
    k = int(data.get("sentences_per_context") or 3)
    train = squad_data.cloze_squad(train_docs, seed=1, sentences_per_context=k, title="train")
    evals = squad_data.cloze_squad(eval_docs, seed=2, sentences_per_context=k, title="eval")
    return train, evals, vocab, (
        "SQuAD-format blanked-span questions generated from Jane Austen (Debian "
        f"r-cran-janeaustenr): five novels train, '{janeausten.TITLES[held_out]}' evaluation")
  raise ValueError(f"unknown SQuAD source {data.name!r}; known: {', '.join(SOURCES)}")


def _pretrained_bert(path) -> dict:
  """The ``bert`` parameters of the newest checkpoint of a run folder (or checkpoints folder),
  or of a TensorFlow checkpoint of google-research/bert (`bert_model.ckpt`: Google's release)."""
  import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel
  if bert_checkpoint.is_tf_checkpoint(path):
    return bert_checkpoint.load(path)["bert"]
  folder = checkpoint._path(path)  # pylint: disable=protected-access  (a local folder or a URI)
  if (folder / "checkpoints").is_dir():
    folder = folder / "checkpoints"
  manager = ocp.CheckpointManager(folder)
  step = manager.latest_step()
  if step is None:
    raise ValueError(f"init_from: no checkpoint in {folder}")
  state = manager.restore(step, args=ocp.args.StandardRestore())
  manager.close()
  return jax.tree.map(np.asarray, state["params"]["bert"])


def _warm_start(init_from):
  """params -> params with the encoder and embeddings of the pre-trained run (shapes checked)."""
  pretrained = _pretrained_bert(init_from)

  def warm_start(params):
    params = dict(params)
    fresh = params["bert"]
    missing = sorted(set(fresh) - set(pretrained))
    if missing:
      raise ValueError(f"init_from {init_from} has no bert/{missing}")
    loaded = {k: pretrained[k] for k in fresh}
    for (path, a), b in zip(jax.tree_util.tree_flatten_with_path(fresh)[0],
                            jax.tree.leaves(loaded)):
      if a.shape != b.shape:
        raise ValueError(f"init_from {init_from}: bert{jax.tree_util.keystr(path)} has shape "
                         f"{b.shape}, the model {a.shape} (another model size or vocabulary?)")
    params["bert"] = loaded
    return params
  return warm_start


def best_spans(start_logits, end_logits, context_mask, max_answer_length: int):
  """(start, end, score) [B] of the best span of context tokens no longer than the limit."""
  length = start_logits.shape[-1]
  low = jnp.float32(-1e9)
  s = jnp.where(context_mask > 0, start_logits, low)
  e = jnp.where(context_mask > 0, end_logits, low)
  i, j = jnp.arange(length)[:, None], jnp.arange(length)[None, :]
  valid = (j >= i) & (j - i < max_answer_length)
  scores = jnp.where(valid, s[:, :, None] + e[:, None, :], 2 * low).reshape(s.shape[0], -1)
  best = jnp.argmax(scores, axis=-1)
  return best // length, best % length, jnp.max(scores, axis=-1)


def _featurized(data, data_dir, vocab_size: int, feature_kwargs: dict) -> tuple:
  """(train arrays, eval features, description): the questions cut into run_squad's features."""
  train_set, eval_set, vocab, description = _datasets(data, data_dir)
  if len(vocab) > vocab_size:
    raise ValueError(f"the vocabulary has {len(vocab)} tokens, the model "
                     f"{vocab_size} (model.vocab_size)")
  train = squad_data.featurize(train_set, vocab, limit=data.get("train_examples") or 0,
                               **feature_kwargs)
  evals = squad_data.featurize(eval_set, vocab, limit=data.get("eval_examples") or 0,
                               **feature_kwargs)
  train_arrays = {k: v for k, v in train.arrays.items() if k != "feature_index"}
  return train_arrays, evals, description


def _eval_fn(outputs, max_answer: int, num_eval: int):
  """Masked sums that assemble each evaluation feature's best span at its own index."""
  def eval_fn(params, model_state, batch):
    del model_state
    out = outputs(params, batch, None, False)
    start, end, score = best_spans(out["start_logits"], out["end_logits"],
                                   batch["context_mask"], max_answer)
    mask = batch["mask"].astype(jnp.int32)
    index = batch["feature_index"]
    scatter = lambda v, dtype: jnp.zeros((num_eval,), dtype).at[index].add(v.astype(dtype) * mask)
    # No rows: a question's record needs all its features' spans, which the sums assemble.
    return {"start": scatter(start, jnp.int32), "end": scatter(end, jnp.int32),
            "score": scatter(score, jnp.float32), "count": jnp.sum(mask)}, {}
  return eval_fn


def _finalize_eval(evals):
  """The assembled spans as text, scored per question by the official F1 and exact match."""
  def finalize_eval(sums):
    predicted = squad_data.predictions(evals, np.asarray(sums["start"]), np.asarray(sums["end"]),
                                       np.asarray(sums["score"]))
    scores = squad_metric.evaluate(evals.answers, predicted, warn=False)
    return {"f1": scores["f1"], "exact_match": scores["exact_match"],
            "examples": len(evals.answers), "features": int(sums["count"])}
  return finalize_eval


def _eval_records(evals):
  """One record per question: its F1 in [0, 1] as `score`, its exact match as `correct`."""
  def eval_records(rows, sums):
    del rows
    predicted = squad_data.predictions(evals, np.asarray(sums["start"]), np.asarray(sums["end"]),
                                       np.asarray(sums["score"]))
    scores = squad_metric.question_scores(evals.answers, predicted, warn=False)
    qids = list(evals.answers)
    answers = ["\x1f".join(a["text"] for a in evals.answers[q]) for q in qids]
    index = np.arange(len(qids), dtype=np.int32)
    return EvalRecords("questions", "f1",
                       {"index": index, "correct": np.asarray([em for em, _ in scores], bool),
                        "score": np.asarray([f1 for _, f1 in scores], np.float32)},
                       identity={"index": index, "question": qids, "answers": answers})
  return eval_records


def squad_task(config, data_dir=None, load_data: bool = True) -> Task:
  data = config.data
  model_config = bert_config(config.model)
  model = bert.BertForSquad(model_config, **model_options(config))
  length = int(data.get("max_seq_length") or 384)
  max_answer = int(data.get("max_answer_length") or 30)
  feature_kwargs = dict(max_seq_length=length, doc_stride=int(data.get("doc_stride") or 128),
                        max_query_length=int(data.get("max_query_length") or 64))
  if load_data:
    train_arrays, evals, description = _featurized(data, data_dir, model_config.vocab_size,
                                                   feature_kwargs)
    eval_arrays = evals.arrays
    num_train = len(train_arrays["input_ids"])
  else:
    evals, description = None, f"{data.name} (not loaded)"
    train_arrays = eval_arrays = {}
    num_train = min(TRAIN_FEATURES.get(data.name, 0), data.get("train_examples") or 10 ** 9)
  num_eval = len(eval_arrays["input_ids"]) if load_data else 1
  warm_start = _warm_start(config.init_from) if load_data and config.get("init_from") \
      else None

  def init(rng):
    ids = jnp.zeros((1, length), jnp.int32)
    return model.init({"params": rng}, ids, ids, ids, deterministic=True)["params"], {}

  def outputs(params, batch, rng, train):
    return model.apply({"params": params}, batch["input_ids"], batch["input_mask"],
                       batch["segment_ids"], deterministic=not train,
                       rngs={"dropout": rng} if train else {})

  def loss_fn(params, model_state, batch, rng, train):
    out = outputs(params, batch, rng, train)
    starts = jnp.argmax(out["start_logits"], -1) == batch["start_positions"]
    return bert.squad_loss(out, batch), ({"start_accuracy": jnp.mean(starts)}, model_state)

  example = {"input_ids": ((length,), np.int32), "input_mask": ((length,), np.int32),
             "segment_ids": ((length,), np.int32), "context_mask": ((length,), np.int32),
             "start_positions": ((), np.int32), "end_positions": ((), np.int32)}
  return Task(train_arrays, eval_arrays, init, loss_fn, _eval_fn(outputs, max_answer, num_eval),
              _finalize_eval(evals), description, "evaluation",
              better={"f1": max, "exact_match": max},
              example={k: jax.ShapeDtypeStruct(s, d) for k, (s, d) in example.items()},
              num_train_examples=num_train, warm_start=warm_start,
              eval_records=_eval_records(evals) if load_data else None)
