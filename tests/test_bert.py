"""BERT: exact parameter counts, parameter paths and the LAMB mask, initialisation, the tied
masked-LM output, attention masking, dropout only in training, mixed precision, losses."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lamb.models import bert
from lamb.models.bert import BertConfig, BertForSquad, BertModel, BertPretraining
from lamb.models.lenet import num_params
from lamb.optim import masks

# A tiny BERT with a small vocabulary, so that init and forward compile in seconds.
CONFIG = BertConfig.preset("tiny", vocab_size=101, max_position_embeddings=32)
B, S, P = 3, 16, 4


def _ids(shape, seed=0, low=5):
  return jnp.asarray(np.random.default_rng(seed).integers(low, CONFIG.vocab_size, shape),
                     jnp.int32)


def _inputs(seed=0):
  input_ids = _ids((B, S), seed)
  input_mask = jnp.ones((B, S), jnp.int32).at[1, 10:].set(0)  # Example 1 has 6 padding tokens.
  input_ids = input_ids * input_mask
  segment_ids = jnp.zeros((B, S), jnp.int32).at[:, 8:].set(1) * input_mask
  positions = jnp.asarray([[1, 3, 5, 0], [2, 4, 9, 0], [7, 8, 12, 15]], jnp.int32)
  return input_ids, input_mask, segment_ids, positions


def _batch(seed=0):
  input_ids, input_mask, segment_ids, positions = _inputs(seed)
  return {"input_ids": input_ids, "input_mask": input_mask, "segment_ids": segment_ids,
          "masked_lm_positions": positions,
          "masked_lm_ids": _ids((B, P), seed + 1),
          "masked_lm_weights": jnp.asarray([[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 1]],
                                           jnp.float32),
          "next_sentence_labels": jnp.asarray([0, 1, 0], jnp.int32)}


def _apply(model, params, batch, **kwargs):
  return model.apply({"params": params}, *(batch[k] for k in bert.PRETRAINING_INPUTS), **kwargs)


@pytest.fixture(scope="module")
def params():
  return jax.jit(BertPretraining(CONFIG).init)(jax.random.PRNGKey(0), *_inputs())["params"]


@pytest.fixture(scope="module")
def apply_fn():
  return jax.jit(BertPretraining(CONFIG).apply, static_argnames="deterministic")


def _shapes(model, squad=False):
  """Parameter shapes without allocating or running anything."""
  ids = jax.ShapeDtypeStruct((1, 8), jnp.int32)
  if isinstance(model, BertModel):
    args = (ids,)
  elif squad:
    args = (ids, ids, ids)
  else:
    args = (ids, ids, ids, jax.ShapeDtypeStruct((1, 2), jnp.int32))
  return jax.eval_shape(model.init, jax.random.PRNGKey(0), *args)["params"]


@pytest.mark.parametrize("name, pretraining, encoder, squad", [
    ("large", 336_226_108, 335_141_888, 334_094_338),
    ("base", 110_106_428, 109_482_240, 108_893_186),
    ("mini", 11_267_900, 11_170_560, 11_105_282),
    ("tiny", 4_433_468, 4_385_920, 4_369_666),
])
def test_exact_parameter_counts(name, pretraining, encoder, squad):
  config = BertConfig.preset(name)
  assert num_params(_shapes(BertPretraining(config))) == pretraining
  assert num_params(_shapes(BertModel(config))) == encoder
  assert num_params(_shapes(BertForSquad(config), squad=True)) == squad


def test_large_count_derivation():
  """The module docstring's arithmetic, and the often quoted 335,174,458."""
  h, i, v, layers = 1024, 4096, 30522, 24
  embeddings = (v + 512 + 2) * h + 2 * h
  layer = 4 * (h * h + h) + 2 * h + (h * i + i) + (i * h + h) + 2 * h
  pooler, mlm_head, nsp_head = h * h + h, h * h + h + 2 * h + v, 2 * h + 2
  assert (embeddings, layer, mlm_head) == (31_782_912, 12_596_224, 1_082_170)
  assert embeddings + layers * layer + mlm_head == 335_174_458  # no pooler / NSP head
  assert embeddings + layers * layer + pooler == 335_141_888  # BertModel
  total = embeddings + layers * layer + pooler + mlm_head + nsp_head
  assert total == num_params(_shapes(BertPretraining(BertConfig.preset("large"))))


def test_paths_tie_and_lamb_mask():
  params = _shapes(BertPretraining(BertConfig.preset("tiny")))
  flat = {masks.path_to_str(kp): leaf.shape
          for kp, leaf in jax.tree_util.tree_flatten_with_path(params)[0]}
  assert flat["bert/embeddings/word_embeddings/embedding"] == (30522, 128)
  assert flat["bert/encoder/layer_1/attention/self/query/kernel"] == (128, 128)
  assert flat["bert/encoder/layer_0/attention/output/LayerNorm/scale"] == (128,)
  assert flat["bert/encoder/layer_0/intermediate/dense/kernel"] == (128, 512)
  assert flat["bert/encoder/layer_0/output/dense/kernel"] == (512, 128)
  assert flat["bert/pooler/dense/kernel"] == (128, 128)
  assert flat["cls/predictions/transform/dense/kernel"] == (128, 128)
  assert flat["cls/predictions/output_bias"] == (30522,)
  assert flat["cls/seq_relationship/kernel"] == (128, 2)
  # Tied: the word embedding is the only parameter with a vocabulary-sized matrix.
  assert [p for p, s in flat.items() if len(s) == 2 and 30522 in s] == [
      "bert/embeddings/word_embeddings/embedding"]
  # The reference LAMB exclusion leaves out exactly LayerNorm parameters and biases.
  decayed = dict(zip(flat, masks.resolve(masks.exclude_bias_and_norm, params)))
  excluded = {p for p, d in decayed.items() if not d}
  assert excluded == {p for p in flat if "LayerNorm" in p or p.endswith("bias")}
  # Embedding LayerNorm 2; per layer 2 LayerNorms (4) + 6 biases; pooler bias; cls: transform
  # bias and LayerNorm (3), output_bias, seq_relationship bias.
  assert len(excluded) == 2 + 2 * 10 + 1 + 5
  assert all(decayed[p] for p in flat if p.endswith(("kernel", "embedding")))


def test_initialisation(params):
  flat = {masks.path_to_str(kp): np.asarray(leaf)
          for kp, leaf in jax.tree_util.tree_flatten_with_path(params)[0]}
  weights = np.concatenate([a.ravel() for p, a in flat.items()
                            if p.endswith(("kernel", "embedding"))])
  # normal(0, 0.02) truncated at +-2 sigma: std 0.02 * 0.8796, nothing beyond 0.04.
  assert np.abs(weights).max() <= 0.04 + 1e-7
  assert abs(weights.std() - 0.02 * 0.8796) < 0.0005 and abs(weights.mean()) < 0.0005
  for p, a in flat.items():
    if p.endswith("bias"):
      assert not a.any(), p
    if p.endswith("LayerNorm/scale"):
      assert np.all(a == 1.0), p


def test_output_shapes_and_deterministic_eval(params, apply_fn):
  batch = _batch()
  out = apply_fn({"params": params}, *(batch[k] for k in bert.PRETRAINING_INPUTS))
  assert out["mlm_logits"].shape == (B, P, CONFIG.vocab_size)
  assert out["nsp_logits"].shape == (B, 2)
  assert all(v.dtype == jnp.float32 for v in out.values())
  assert np.all(np.isfinite(np.asarray(out["mlm_logits"])))
  again = apply_fn({"params": params}, *(batch[k] for k in bert.PRETRAINING_INPUTS),
                   deterministic=True)
  np.testing.assert_array_equal(np.asarray(out["mlm_logits"]), np.asarray(again["mlm_logits"]))
  train = [apply_fn({"params": params}, *(batch[k] for k in bert.PRETRAINING_INPUTS),
                    deterministic=False, rngs={"dropout": jax.random.PRNGKey(seed)})
           for seed in (1, 2)]
  assert not np.allclose(np.asarray(train[0]["mlm_logits"]), np.asarray(train[1]["mlm_logits"]))
  assert not np.allclose(np.asarray(train[0]["mlm_logits"]), np.asarray(out["mlm_logits"]))


def test_attention_mask_hides_padding(params, apply_fn):
  batch = _batch()
  out = apply_fn({"params": params}, *(batch[k] for k in bert.PRETRAINING_INPUTS))
  # Different tokens and segment ids at example 1's padding positions (mask 0).
  changed = dict(batch, input_ids=batch["input_ids"].at[1, 10:].set(_ids((6,), seed=7)),
                 segment_ids=batch["segment_ids"].at[1, 10:].set(1))
  out2 = apply_fn({"params": params}, *(changed[k] for k in bert.PRETRAINING_INPUTS))
  # Example 1 gathers positions 2, 4, 9 (not padding) and its [CLS] feeds the NSP head.
  np.testing.assert_allclose(np.asarray(out["mlm_logits"]), np.asarray(out2["mlm_logits"]),
                             atol=1e-5)
  np.testing.assert_allclose(np.asarray(out["nsp_logits"]), np.asarray(out2["nsp_logits"]),
                             atol=1e-5)
  # Without the mask the same change does reach the other positions.
  unmasked = {k: v for k, v in batch.items()}
  unmasked["input_mask"] = jnp.ones_like(batch["input_mask"])
  out3 = apply_fn({"params": params}, *(unmasked[k] for k in bert.PRETRAINING_INPUTS))
  unmasked["input_ids"] = changed["input_ids"]
  out4 = apply_fn({"params": params}, *(unmasked[k] for k in bert.PRETRAINING_INPUTS))
  assert not np.allclose(np.asarray(out3["mlm_logits"][1]), np.asarray(out4["mlm_logits"][1]),
                         atol=1e-5)


def test_mlm_output_is_tied_to_word_embeddings(params):
  batch = _batch()
  model = BertPretraining(CONFIG)
  # Labels that never occur in the input: their embedding rows get gradient only through the
  # tied output projection.
  labels = jnp.asarray([[1, 2, 3, 0], [4, 1, 2, 0], [3, 4, 1, 2]], jnp.int32)
  assert not set(np.asarray(batch["input_ids"]).ravel().tolist()) & {1, 2, 3, 4}
  batch = dict(batch, masked_lm_ids=labels)

  def mlm_loss(p):
    return bert.pretraining_loss(_apply(model, p, batch), batch)["mlm_loss"]

  grads = jax.jit(jax.grad(mlm_loss))(params)
  row_norms = np.linalg.norm(np.asarray(grads["bert"]["embeddings"]["word_embeddings"]
                                        ["embedding"]), axis=1)
  assert np.all(row_norms[1:5] > 1e-4)
  # Every row gets some output-projection gradient (softmax over the whole vocabulary).
  assert np.all(row_norms > 0)
  # And the output projection really is x @ E^T + output_bias.
  x = jnp.ones((1, CONFIG.hidden_size))
  emb = params["bert"]["embeddings"]["word_embeddings"]["embedding"]
  logits = BertModel(CONFIG).apply({"params": params["bert"]}, x,
                                   method=BertModel.word_embedding_attend)
  np.testing.assert_allclose(np.asarray(logits), np.asarray(x @ emb.T), rtol=1e-5, atol=1e-6)


def test_bfloat16_compute_returns_float32(params):
  batch = _batch()
  out32 = _apply(BertPretraining(CONFIG), params, batch)
  model16 = BertPretraining(CONFIG, dtype=jnp.bfloat16)
  out16 = jax.jit(lambda p: _apply(model16, p, batch))(params)
  assert all(v.dtype == jnp.float32 for v in out16.values())
  assert all(p.dtype == jnp.float32 for p in jax.tree_util.tree_leaves(params))
  a, b = np.asarray(out16["mlm_logits"]), np.asarray(out32["mlm_logits"])
  assert not np.array_equal(a, b)  # Really computed in bfloat16.
  np.testing.assert_allclose(a, b, atol=0.05)
  squad16 = BertForSquad(CONFIG, dtype=jnp.bfloat16)
  sq_params = {"bert": {k: v for k, v in params["bert"].items() if k != "pooler"},
               "qa_outputs": {"kernel": jnp.ones((CONFIG.hidden_size, 2)) * 0.01,
                              "bias": jnp.zeros(2)}}
  sq = jax.jit(squad16.apply)({"params": sq_params}, *_inputs()[:3])
  assert sq["start_logits"].dtype == sq["end_logits"].dtype == jnp.float32


def test_pretraining_loss_matches_numpy(params):
  batch = _batch()
  out = _apply(BertPretraining(CONFIG), params, batch)
  metrics = bert.pretraining_loss(out, batch)
  logits, w = np.asarray(out["mlm_logits"], np.float64), np.asarray(batch["masked_lm_weights"])
  logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  ids = np.asarray(batch["masked_lm_ids"])
  ce = -np.take_along_axis(logp, ids[..., None], -1)[..., 0]
  mlm = (w * ce).sum() / (w.sum() + 1e-5)
  nsp_logits, labels = np.asarray(out["nsp_logits"], np.float64), np.array([0, 1, 0])
  nsp_logp = nsp_logits - np.log(np.exp(nsp_logits).sum(-1, keepdims=True))
  nsp = -nsp_logp[np.arange(3), labels].mean()
  np.testing.assert_allclose(float(metrics["mlm_loss"]), mlm, rtol=1e-5)
  np.testing.assert_allclose(float(metrics["nsp_loss"]), nsp, rtol=1e-5)
  np.testing.assert_allclose(float(metrics["loss"]), mlm + nsp, rtol=1e-5)
  mlm_acc = (w * (logits.argmax(-1) == ids)).sum() / w.sum()
  np.testing.assert_allclose(float(metrics["mlm_accuracy"]), mlm_acc, rtol=1e-6)
  np.testing.assert_allclose(float(metrics["nsp_accuracy"]),
                             (nsp_logits.argmax(-1) == labels).mean(), rtol=1e-6)
  # Perfect predictions: accuracy 1; padded masked positions (weight 0) do not count.
  perfect = {"mlm_logits": jax.nn.one_hot(batch["masked_lm_ids"], CONFIG.vocab_size) * 50,
             "nsp_logits": jax.nn.one_hot(batch["next_sentence_labels"], 2) * 50}
  perfect["mlm_logits"] = perfect["mlm_logits"].at[0, 3].set(0.0)  # Weight-0 slot: wrong.
  m = bert.pretraining_loss(perfect, batch)
  assert float(m["mlm_accuracy"]) == pytest.approx(1.0) and float(m["nsp_accuracy"]) == 1.0
  assert float(m["loss"]) < 1e-6
  # Eval sums with an example mask count only the real examples.
  sums = bert.pretraining_sums(out, dict(batch, mask=jnp.asarray([1, 1, 0])))
  assert float(sums["count"]) == 2 and float(sums["mlm_weight"]) == 6


def test_squad_head_and_loss():
  model = BertForSquad(CONFIG)
  input_ids, input_mask, segment_ids, _ = _inputs()
  params = _shapes(model, squad=True)
  assert set(params) == {"bert", "qa_outputs"} and "pooler" not in params["bert"]
  assert params["qa_outputs"]["kernel"].shape == (CONFIG.hidden_size, 2)
  outputs = {"start_logits": jnp.asarray([[0.0, 2.0, 1.0]]),
             "end_logits": jnp.asarray([[3.0, 0.0, 0.0]])}
  loss = bert.squad_loss(outputs, {"start_positions": jnp.asarray([1]),
                                   "end_positions": jnp.asarray([2])})
  start = optax.softmax_cross_entropy_with_integer_labels(outputs["start_logits"],
                                                          jnp.asarray([1]))[0]
  end = optax.softmax_cross_entropy_with_integer_labels(outputs["end_logits"],
                                                        jnp.asarray([2]))[0]
  np.testing.assert_allclose(float(loss), float(start + end) / 2, rtol=1e-6)
  shapes = jax.eval_shape(lambda p: model.apply({"params": p}, input_ids, input_mask,
                                                segment_ids), params)
  assert shapes["start_logits"].shape == shapes["end_logits"].shape == (B, S)
  assert shapes["start_logits"].dtype == jnp.float32


def test_gelu_is_exact_erf_form():
  x = jnp.asarray([-2.0, -0.5, 0.0, 1.0, 3.0])
  erf = np.vectorize(__import__("math").erf)
  expected = 0.5 * np.asarray(x) * (1 + erf(np.asarray(x) / np.sqrt(2)))
  np.testing.assert_allclose(np.asarray(bert.gelu(x)), expected, rtol=1e-6, atol=1e-7)
  assert float(bert.gelu(jnp.asarray(1.0))) == pytest.approx(0.8413447, abs=1e-6)


def test_config_presets_and_validation():
  assert BertConfig() == BertConfig.preset("large")
  large = BertConfig()
  assert (large.vocab_size, large.hidden_size, large.num_hidden_layers,
          large.num_attention_heads, large.intermediate_size, large.max_position_embeddings,
          large.type_vocab_size, large.hidden_dropout_prob, large.attention_probs_dropout_prob,
          large.layer_norm_eps, large.initializer_range) == (
              30522, 1024, 24, 16, 4096, 512, 2, 0.1, 0.1, 1e-12, 0.02)
  base = BertConfig.preset("base")
  assert (base.hidden_size, base.num_hidden_layers, base.num_attention_heads,
          base.intermediate_size) == (768, 12, 12, 3072)
  assert BertConfig.preset("mini").num_hidden_layers == 4
  assert BertConfig.preset("tiny", vocab_size=8192).vocab_size == 8192
  assert BertConfig.from_dict(dataclasses.asdict(base)) == base
  with pytest.raises(ValueError, match="preset"):
    BertConfig.preset("huge")
  with pytest.raises(ValueError, match="multiple"):
    BertConfig(hidden_size=100, num_attention_heads=16)
  with pytest.raises(ValueError, match="max_position_embeddings"):
    _shapes(BertModel(dataclasses.replace(CONFIG, max_position_embeddings=4)))


def test_unigram_level_is_the_most_frequent_training_token_scored_on_held_out():
  from lamb.train.bert_tasks import unigram_accuracy  # pylint: disable=import-outside-toplevel
  train = {"masked_lm_ids": np.array([[7, 7, 3], [7, 0, 0]]),
           "masked_lm_weights": np.array([[1, 1, 1], [1, 0, 0]], np.float32)}  # padded 0s ignored
  held_out = {"masked_lm_ids": np.array([[7, 3, 0], [3, 3, 0]]),
              "masked_lm_weights": np.array([[1, 1, 0], [1, 1, 0]], np.float32)}
  assert unigram_accuracy(train, held_out) == pytest.approx(1 / 4)  # token 7: one of 4 hits
  assert unigram_accuracy({k: v[:0] for k, v in train.items()}, held_out) is None
