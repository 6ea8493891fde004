"""BERT pre-training as a task of the generic loop (Section 4.1's runs).

The examples are whole arrays in host memory (lamb.data.bert_corpus), batched by the same
deterministic machinery as the image sets; the model is lamb.models.bert's BertPretraining at a
named size (`config.model.preset`: large, base, mini, tiny, with any BertConfig field
overridden); the loss is the reference's masked-LM plus next-sentence loss with dropout drawn
from the step's key. Evaluation sums the masked-LM and next-sentence losses and hits over the
held-out examples, so padded batches count each example once; the final evaluation also keeps
each real masked token's hit and loss, tagged with its sequence (results.write_eval_examples:
the per-token evidence of the comparisons' intervals, clustered by sequence). It also reports
the unigram level: the held-out masked-LM accuracy of always guessing the most frequent masked
token of the training set, what a model that learned only token frequencies scores (a run at it
has learned nothing a verdict could rest on).

With `load_data=False` the task knows its example shapes and an estimate of the training-set
size from the config alone, so the cost model can lower BERT-Large's step without any text.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lamb.data import bert_corpus, pretraining_records
from lamb.models import bert
from lamb.train.task import EvalRecords, Task, real_rows

MODEL_FIELDS = ("name", "preset", "attention_probs_dtype")


def bert_config(model) -> bert.BertConfig:
  """The BertConfig of a `config.model` section {name: bert, preset, field overrides...}."""
  if model.name != "bert":
    raise ValueError(f"a BERT task needs model.name 'bert', got {model.name!r}")
  overrides = {k: v for k, v in model.items() if k not in MODEL_FIELDS}
  return bert.BertConfig.preset(model.get("preset", "large"), **overrides)


def model_options(config) -> dict:
  """The module options of a BERT model beyond its BertConfig: the attention probabilities'
  dtype (numerics, `model.attention_probs_dtype`) and the encoder's remat policy (`remat`, the
  memory layout)."""
  return dict(dtype=jnp.dtype(config.compute_dtype),
              attention_probs_dtype=jnp.dtype(config.model.get("attention_probs_dtype",
                                                               "float32")),
              remat=config.get("remat") or "none")


def unigram_accuracy(train: dict, evals: dict, train_counts=None):
  """Held-out masked-LM accuracy of guessing the training set's most frequent masked token
  (counted from `train`'s arrays, or given as `train_counts` per token id)."""
  if train_counts is None:
    ids, weights = train["masked_lm_ids"], train["masked_lm_weights"]
    train_counts = np.bincount(ids.ravel(), weights=weights.ravel()) if ids.size else None
  if train_counts is None or not np.sum(train_counts) or not evals["masked_lm_ids"].size:
    return None
  top = int(np.argmax(train_counts))
  held_out = evals["masked_lm_weights"]
  return float((held_out * (evals["masked_lm_ids"] == top)).sum() / max(held_out.sum(), 1e-5))


def masked_token_records(rows: dict, sums: dict) -> EvalRecords:
  """One record per real masked token (weight > 0) of the held-out sequences, sequence by
  sequence, with its sequence's index as `cluster`: the tokens of one sequence are not
  independent evidence. The reference's weights are 1 on every real prediction, so the
  records' mean hit equals the weighted masked_lm_accuracy."""
  del sums
  rows = real_rows(rows)
  real = rows["weight"] > 0
  cluster = np.broadcast_to(rows["index"][:, None], real.shape)[real]
  targets = rows["target"][real]
  index = np.arange(len(targets), dtype=np.int32)
  return EvalRecords("masked tokens", "masked_lm_accuracy",
                     {"index": index, "correct": rows["correct"][real],
                      "loss": rows["loss"][real], "cluster": cluster},
                     identity={"index": index, "cluster": cluster, "target": targets})


def pretraining_task(config, data_dir=None, load_data: bool = True):
  data = config.data
  model_config = bert_config(config.model)
  model = bert.BertPretraining(model_config, **model_options(config))
  shapes = bert_corpus.example_shapes(data)
  if shapes["input_ids"][0][0] > model_config.max_position_embeddings:
    raise ValueError(f"max_seq_length {shapes['input_ids'][0][0]} exceeds the model's "
                     f"{model_config.max_position_embeddings} positions")
  train_counts, train_source = None, None
  if load_data and data.get("instance_shards"):  # written beforehand, streamed from disk
    instances = pretraining_records.Instances(
        data, data_dir, config_name=f"{config.get('name', 'CONFIG')}:{config.get('scale', 'cpu')}")
    train, evals, vocab = {}, instances.eval_arrays(data.get("eval_examples") or 0), instances.vocab
    limit = int(data.get("train_examples") or 0)
    num_train = min(limit, instances.num_examples()) if limit else instances.num_examples()
    train_counts = instances.train_counts()
    description = instances.description

    def stream(batch_size, *, seed, start_step, process_index, process_count):
      # `batch_size` is the global batch; the stream takes this process's share of it
      return instances.train_batches(batch_size // process_count, seed=seed, start_step=start_step,
                                     process_index=process_index, process_count=process_count,
                                     limit=limit, workers=int(config.get("input_workers") or 0))
    train_source = stream
  elif load_data:
    train, evals, vocab, description = bert_corpus.load(data, data_dir)
  if load_data:
    if len(vocab) > model_config.vocab_size:
      raise ValueError(f"the vocabulary has {len(vocab)} tokens but the model only "
                       f"{model_config.vocab_size} embeddings (model.vocab_size)")
    num_train = len(train["input_ids"]) if train_source is None else num_train
  else:  # shapes only: nothing is read
    train = {k: np.zeros((0,) + shape, dtype) for k, (shape, dtype) in shapes.items()}
    evals = dict(train)
    num_train = bert_corpus.estimated_examples(data, "train")
    description = f"{data.name} (not loaded)"

  unigram = unigram_accuracy(train, evals, train_counts) if load_data else None

  def init(rng):
    length, predictions = shapes["input_ids"][0][0], shapes["masked_lm_positions"][0][0]
    ids = jnp.zeros((1, length), jnp.int32)
    variables = model.init({"params": rng}, ids, ids, ids,
                           jnp.zeros((1, predictions), jnp.int32), deterministic=True)
    return variables["params"], {}

  def outputs(params, batch, rng, train):
    rngs = {"dropout": rng} if train else {}
    return model.apply({"params": params}, *(batch[k] for k in bert.PRETRAINING_INPUTS),
                       deterministic=not train, rngs=rngs)

  def loss_fn(params, model_state, batch, rng, train, axis_name=None):
    m = bert.pretraining_loss(outputs(params, batch, rng, train), batch, axis_name)
    metrics = {"masked_lm_accuracy": m["mlm_accuracy"], "masked_lm_loss": m["mlm_loss"],
               "next_sentence_accuracy": m["nsp_accuracy"], "next_sentence_loss": m["nsp_loss"]}
    return m["loss"], (metrics, model_state)

  def eval_fn(params, model_state, batch):
    del model_state
    out = outputs(params, batch, None, False)
    ids = jnp.asarray(batch["masked_lm_ids"], jnp.int32)
    rows = {"correct": jnp.argmax(out["mlm_logits"], -1) == ids,
            "loss": optax.softmax_cross_entropy_with_integer_labels(out["mlm_logits"], ids),
            "weight": jnp.asarray(batch["masked_lm_weights"], jnp.float32), "target": ids,
            "index": batch["index"], "mask": batch["mask"]}
    return bert.pretraining_sums(out, batch), rows

  def finalize_eval(sums):
    weight = max(float(sums["mlm_weight"]), 1e-5)
    count = max(float(sums["count"]), 1.0)
    mlm_loss, nsp_loss = float(sums["mlm_loss"]) / weight, float(sums["nsp_loss"]) / count
    return {"masked_lm_accuracy": float(sums["mlm_correct"]) / weight,
            "next_sentence_accuracy": float(sums["nsp_correct"]) / count,
            "masked_lm_loss": mlm_loss, "next_sentence_loss": nsp_loss,
            "loss": mlm_loss + nsp_loss, "examples": int(sums["count"]),
            **({"unigram_masked_lm_accuracy": unigram} if unigram is not None else {})}

  return Task(train, evals, init, loss_fn, eval_fn, finalize_eval, description, "held-out",
              eval_records=masked_token_records,
              better={"masked_lm_accuracy": max, "next_sentence_accuracy": max,
                      "masked_lm_loss": min, "loss": min},
              example={k: jax.ShapeDtypeStruct(shape, dtype)
                       for k, (shape, dtype) in shapes.items()},
              num_train_examples=num_train, train_source=train_source)
