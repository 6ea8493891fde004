"""BERT (Devlin et al. 2018) in Flax for the LAMB paper's pre-training and SQuAD experiments.

The architecture is the original post-LN Transformer encoder of google-research/bert
``modeling.py``:

    embeddings  word + position + token type, LayerNorm, dropout
    layer x L   self-attention (query/key/value dense, scaled dot product with an additive
                -10000 on padding keys, softmax in float32, attention-prob dropout), output
                dense, dropout, residual, LayerNorm; then intermediate dense + exact (erf) GELU,
                output dense, dropout, residual, LayerNorm
    pooler      tanh dense on the [CLS] (first) position

with every kernel and embedding drawn from a normal(0, 0.02) truncated at two standard
deviations (TF's truncated_normal_initializer(0.02)), biases zero and LayerNorm scale one.
:class:`BertPretraining` adds the masked-LM head, applied only at ``masked_lm_positions``
(dense + GELU + LayerNorm, then the output projection TIED to the word embeddings, plus its
own output bias) and the 2-way next-sentence head on the pooled output;
:func:`pretraining_loss` is the reference's loss (weighted masked-LM cross-entropy plus NSP
cross-entropy). :class:`BertForSquad` is run_squad's span head (dense to start/end logits).

Parameter paths follow the TF checkpoint names, e.g.
``bert/encoder/layer_3/attention/self/query/kernel``,
``bert/encoder/layer_3/attention/output/LayerNorm/scale``,
``cls/predictions/transform/dense/kernel``, ``cls/predictions/output_bias``, so the reference
LAMB exclusion ``(LayerNorm|layer_norm|bias)`` (lamb.optim.masks.exclude_bias_and_norm)
leaves out exactly the LayerNorm parameters and the biases.

Parameter counts (exact, from :func:`lamb.models.lenet.num_params`; vocabulary 30,522, 512
positions, 2 token types; H hidden, L layers, I intermediate = 4H):

    embeddings      (30522 + 512 + 2) H + 2H              Large 31,782,912   Base 23,837,184
    one layer       4(H^2 + H) + 2HI + I + H + 4H         Large 12,596,224   Base  7,087,872
    pooler          H^2 + H                               Large  1,049,600   Base    590,592
    = BertModel                                           Large 335,141,888  Base 109,482,240
    masked-LM head  H^2 + H + 2H + 30522 (tied: no V x H matrix)
                                                          Large  1,082,170   Base    622,650
    NSP head        2H + 2                                Large      2,050   Base      1,538
    = BertPretraining                                     Large 336,226,108  Base 110,106,428

The "335M" of BERT-Large is the encoder with its pooler (335,141,888). The figure
335,174,458 is embeddings + encoder + masked-LM head without the pooler and NSP head
(31,782,912 + 24 x 12,596,224 + 1,082,170); adding them (1,049,600 + 2,050) gives the
pre-training model's 336,226,108. An untied output matrix would add 31,254,528 more.
:class:`BertForSquad` (no pooler, span head 2H + 2) has 334,094,338 (Large) and 108,893,186
(Base). The CPU presets with the full vocabulary: ``mini`` (L 4, H 256, 4 heads, I 1024)
11,267,900 for pre-training, ``tiny`` (L 2, H 128, 2 heads, I 512) 4,433,468; most of both is
the 30,522-row word embedding, so use them with a small trained vocabulary (vocab_size=...).

`dtype` is the compute dtype (bfloat16 for mixed precision); parameters are stored in
`param_dtype` (float32), LayerNorm statistics, attention softmax and all returned logits are
float32.

Two options trade memory at paper scale (BERT-Large's length-512 phase, lamb.train.memory):
`attention_probs_dtype` computes the softmax and keeps the [B, heads, S, S] probabilities the
backward pass needs in that dtype (bfloat16 halves the largest activation; a change of the
numerics, so it is part of a run's identity), and `remat` recomputes each encoder layer's
activations in the backward pass under a named `jax.checkpoint` policy (REMAT_POLICIES: the same
math, so it is part of a run's layout, not its identity).
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

# What each encoder layer keeps for the backward pass (`remat`): "none" keeps everything;
# "minimal" keeps the outputs of the weight matmuls and recomputes the rest (attention scores,
# softmax, GELU, LayerNorm, dropout); "full" keeps only each layer's input.
REMAT_POLICIES = {
    "none": None,
    "minimal": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
    "full": jax.checkpoint_policies.nothing_saveable,
}


@dataclasses.dataclass(frozen=True)
class BertConfig:
  """BERT hyperparameters, named as in the reference ``bert_config.json`` (default: Large)."""
  vocab_size: int = 30522
  hidden_size: int = 1024
  num_hidden_layers: int = 24
  num_attention_heads: int = 16
  intermediate_size: int = 4096
  max_position_embeddings: int = 512
  type_vocab_size: int = 2
  hidden_dropout_prob: float = 0.1
  attention_probs_dropout_prob: float = 0.1
  layer_norm_eps: float = 1e-12
  initializer_range: float = 0.02
  hidden_act: str = "gelu"

  def __post_init__(self):
    if self.hidden_size % self.num_attention_heads:
      raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of "
                       f"num_attention_heads {self.num_attention_heads}")
    if self.hidden_act != "gelu":
      raise ValueError(f"only hidden_act 'gelu' (BERT's exact erf form) is implemented, got "
                       f"{self.hidden_act!r}")

  @classmethod
  def preset(cls, name: str, **overrides) -> "BertConfig":
    """A named size (see PRESETS), fields overridden: ``preset("tiny", vocab_size=8192)``."""
    if name not in PRESETS:
      raise ValueError(f"unknown BERT preset {name!r}; known: {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)

  @classmethod
  def from_dict(cls, d: dict) -> "BertConfig":
    """From a reference ``bert_config.json`` dict (unknown keys are rejected)."""
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - fields)
    if unknown:
      raise ValueError(f"unknown BertConfig keys {unknown}")
    return cls(**d)

  @classmethod
  def from_json_file(cls, path) -> "BertConfig":
    with open(path, encoding="utf-8") as f:
      return cls.from_dict(json.load(f))


PRESETS = {
    "large": BertConfig(),
    "base": BertConfig(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                       intermediate_size=3072),
    # Small sizes for CPU runs and tests (the "mini" and "tiny" of Turc et al. 2019).
    "mini": BertConfig(hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                       intermediate_size=1024),
    "tiny": BertConfig(hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=512),
}


def gelu(x):
  """BERT's GELU, the exact form x * Phi(x) = 0.5 x (1 + erf(x / sqrt(2)))."""
  return jax.nn.gelu(x, approximate=False)


class _Layers(nn.Module):
  """Shared dtype/initialiser plumbing."""
  config: BertConfig
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  attention_probs_dtype: Any = jnp.float32
  remat: str = "none"  # a REMAT_POLICIES name, applied to each encoder layer

  def sub(self) -> dict:
    """The fields every submodule shares."""
    return dict(config=self.config, dtype=self.dtype, param_dtype=self.param_dtype,
                attention_probs_dtype=self.attention_probs_dtype, remat=self.remat)

  def init_fn(self):
    return jax.nn.initializers.truncated_normal(self.config.initializer_range)

  def dense(self, features, name):
    return nn.Dense(features, dtype=self.dtype, param_dtype=self.param_dtype,
                    kernel_init=self.init_fn(), bias_init=nn.initializers.zeros, name=name)

  def layer_norm(self, name="LayerNorm"):
    return nn.LayerNorm(epsilon=self.config.layer_norm_eps, dtype=self.dtype,
                        param_dtype=self.param_dtype, name=name)


class BertEmbeddings(_Layers):
  """Word + position + token-type embeddings, LayerNorm and dropout."""

  def setup(self):
    c = self.config
    embed = dict(dtype=self.dtype, param_dtype=self.param_dtype, embedding_init=self.init_fn())
    self.word_embeddings = nn.Embed(c.vocab_size, c.hidden_size, **embed)
    self.position_embeddings = nn.Embed(c.max_position_embeddings, c.hidden_size, **embed)
    self.token_type_embeddings = nn.Embed(c.type_vocab_size, c.hidden_size, **embed)
    self.LayerNorm = self.layer_norm()  # pylint: disable=invalid-name  (the TF name)
    self.dropout = nn.Dropout(c.hidden_dropout_prob)

  def __call__(self, input_ids, segment_ids, deterministic: bool):
    seq_len = input_ids.shape[-1]
    if seq_len > self.config.max_position_embeddings:
      raise ValueError(f"sequence length {seq_len} exceeds max_position_embeddings "
                       f"{self.config.max_position_embeddings}")
    x = (self.word_embeddings(input_ids) + self.token_type_embeddings(segment_ids)
         + self.position_embeddings(jnp.arange(seq_len))[None])
    return self.dropout(self.LayerNorm(x), deterministic=deterministic)


class BertSelfAttention(_Layers):
  """Multi-head scaled dot-product self-attention (separate query/key/value kernels [H, H])."""

  @nn.compact
  def __call__(self, x, bias, deterministic: bool):
    c = self.config
    heads, head_dim = c.num_attention_heads, c.hidden_size // c.num_attention_heads
    split = lambda t: t.reshape(t.shape[:-1] + (heads, head_dim))
    q = split(self.dense(c.hidden_size, "query")(x))
    k = split(self.dense(c.hidden_size, "key")(x))
    v = split(self.dense(c.hidden_size, "value")(x))
    q = q * jnp.asarray(head_dim ** -0.5, q.dtype)
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k, preferred_element_type=jnp.float32) + bias
    probs = jax.nn.softmax(scores.astype(self.attention_probs_dtype), axis=-1)
    probs = nn.Dropout(c.attention_probs_dropout_prob)(probs, deterministic=deterministic)
    out = jnp.einsum("bhqk,bkhd->bqhd", probs.astype(self.dtype), v)
    return out.reshape(out.shape[:-2] + (c.hidden_size,))


class BertAttention(_Layers):
  """``attention``: ``self`` (the attention proper) and ``output`` (dense, dropout, residual,
  LayerNorm)."""

  @nn.compact
  def __call__(self, x, bias, deterministic: bool):
    sub = self.sub()
    y = BertSelfAttention(name="self", **sub)(x, bias, deterministic)
    return _AddNorm(name="output", **sub)(y, x, deterministic)


class _AddNorm(_Layers):
  """``output``: dense to H, dropout, add the residual, LayerNorm (post-LN)."""

  @nn.compact
  def __call__(self, y, residual, deterministic: bool):
    y = self.dense(self.config.hidden_size, "dense")(y)
    y = nn.Dropout(self.config.hidden_dropout_prob)(y, deterministic=deterministic)
    return self.layer_norm()(residual + y)


class _Intermediate(_Layers):
  """``intermediate``: dense to I and GELU."""

  @nn.compact
  def __call__(self, x):
    return gelu(self.dense(self.config.intermediate_size, "dense")(x))


class BertLayer(_Layers):
  """One post-LN Transformer block, named as the TF ``layer_i`` scope."""

  @nn.compact
  def __call__(self, x, bias, deterministic: bool):
    sub = self.sub()
    x = BertAttention(name="attention", **sub)(x, bias, deterministic)
    y = _Intermediate(name="intermediate", **sub)(x)
    return _AddNorm(name="output", **sub)(y, x, deterministic)


def attention_bias(input_mask):
  """[B, S] 1 = token / 0 = padding -> additive float32 [B, 1, 1, S] (0 or -10000, as BERT)."""
  return (1.0 - jnp.asarray(input_mask, jnp.float32))[:, None, None, :] * -10000.0


class BertModel(_Layers):
  """Embeddings, encoder and (optionally) pooler.

  ``__call__(input_ids, input_mask, segment_ids, deterministic)`` ->
  ``(sequence_output [B, S, H], pooled_output [B, H] or None)`` in the compute dtype.
  """
  add_pooling_layer: bool = True

  def setup(self):
    sub = self.sub()
    self.embeddings = BertEmbeddings(**sub)
    self.encoder = _Encoder(**sub)
    if self.add_pooling_layer:
      self.pooler = _Pooler(**sub)

  def __call__(self, input_ids, input_mask=None, segment_ids=None, deterministic: bool = True):
    input_ids = jnp.asarray(input_ids)
    if not jnp.issubdtype(input_ids.dtype, jnp.integer):
      raise TypeError(f"BERT takes integer token ids, got {input_ids.dtype}")
    if input_mask is None:
      input_mask = jnp.ones_like(input_ids)
    if segment_ids is None:
      segment_ids = jnp.zeros_like(input_ids)
    x = self.embeddings(input_ids, segment_ids, deterministic)
    x = self.encoder(x, attention_bias(input_mask), deterministic)
    pooled = self.pooler(x) if self.add_pooling_layer else None
    return x, pooled

  def word_embedding_attend(self, x):
    """x [..., H] -> float32 x @ word_embeddings^T [..., V] (the tied output projection).

    Multiplied in the compute dtype and accumulated in float32, so bfloat16 logits over the
    whole vocabulary are not rounded to bfloat16.
    """
    table = jnp.asarray(self.embeddings.word_embeddings.embedding, self.dtype)
    return jnp.einsum("...h,vh->...v", jnp.asarray(x, self.dtype), table,
                      preferred_element_type=jnp.float32)


class _Encoder(_Layers):

  @nn.compact
  def __call__(self, x, bias, deterministic: bool):
    if self.remat not in REMAT_POLICIES:
      raise ValueError(f"unknown remat policy {self.remat!r}; known: {sorted(REMAT_POLICIES)}")
    layer = BertLayer
    if self.remat != "none":  # `deterministic` (argument 3, counting self) is a Python bool
      layer = nn.remat(BertLayer, policy=REMAT_POLICIES[self.remat], static_argnums=(3,))
    for i in range(self.config.num_hidden_layers):
      x = layer(**self.sub(), name=f"layer_{i}")(x, bias, deterministic)
    return x


class _Pooler(_Layers):

  @nn.compact
  def __call__(self, x):
    return jnp.tanh(self.dense(self.config.hidden_size, "dense")(x[:, 0]))


class _MaskedLMHead(_Layers):
  """cls/predictions: transform (dense, GELU, LayerNorm) and the output bias."""

  @nn.compact
  def __call__(self, x, attend):
    x = _Transform(**self.sub(), name="transform")(x)
    bias = self.param("output_bias", nn.initializers.zeros, (self.config.vocab_size,),
                      self.param_dtype)
    return attend(x) + bias.astype(jnp.float32)


class _Transform(_Layers):
  """``transform``: dense to H, GELU, LayerNorm."""

  @nn.compact
  def __call__(self, x):
    return self.layer_norm()(gelu(self.dense(self.config.hidden_size, "dense")(x)))


class BertPretraining(_Layers):
  """BERT with the masked-LM and next-sentence heads (``bert/...`` and ``cls/...``).

  ``__call__(input_ids, input_mask, segment_ids, masked_lm_positions, deterministic)`` ->
  ``{"mlm_logits": float32 [B, P, V], "nsp_logits": float32 [B, 2]}``, the masked-LM logits
  only at the P gathered positions.
  """

  def setup(self):
    sub = self.sub()
    self.bert = BertModel(**sub)
    self.cls = _PretrainingHeads(**sub)

  def __call__(self, input_ids, input_mask, segment_ids, masked_lm_positions,
               deterministic: bool = True):
    sequence, pooled = self.bert(input_ids, input_mask, segment_ids, deterministic)
    positions = jnp.asarray(masked_lm_positions, jnp.int32)
    gathered = jnp.take_along_axis(sequence, positions[..., None], axis=1)  # [B, P, H]
    mlm_logits, nsp_logits = self.cls(gathered, pooled, self.bert.word_embedding_attend)
    return {"mlm_logits": mlm_logits, "nsp_logits": nsp_logits}


class _PretrainingHeads(_Layers):

  @nn.compact
  def __call__(self, gathered, pooled, attend):
    sub = self.sub()
    mlm_logits = _MaskedLMHead(name="predictions", **sub)(gathered, attend)
    nsp_logits = self.dense(2, "seq_relationship")(pooled).astype(jnp.float32)
    return mlm_logits, nsp_logits


PRETRAINING_INPUTS = ("input_ids", "input_mask", "segment_ids", "masked_lm_positions")


def pretraining_sums(outputs, batch) -> dict:
  """Sums for the losses and accuracies, over examples with ``batch["mask"]`` (default all).

  ``mlm_loss`` and ``mlm_correct`` are weighted by ``masked_lm_weights`` (sum in
  ``mlm_weight``); ``nsp_loss`` / ``nsp_correct`` are per-example sums (count in ``count``).
  """
  mlm_logits, nsp_logits = outputs["mlm_logits"], outputs["nsp_logits"]
  example = jnp.asarray(batch.get("mask", jnp.ones(nsp_logits.shape[:1])), jnp.float32)
  weights = jnp.asarray(batch["masked_lm_weights"], jnp.float32) * example[:, None]
  ids = jnp.asarray(batch["masked_lm_ids"], jnp.int32)
  mlm_ce = optax.softmax_cross_entropy_with_integer_labels(mlm_logits, ids)
  labels = jnp.asarray(batch["next_sentence_labels"], jnp.int32).reshape(-1)
  nsp_ce = optax.softmax_cross_entropy_with_integer_labels(nsp_logits, labels)
  return {"mlm_loss": jnp.sum(weights * mlm_ce),
          "mlm_correct": jnp.sum(weights * (jnp.argmax(mlm_logits, -1) == ids)),
          "mlm_weight": jnp.sum(weights),
          "nsp_loss": jnp.sum(example * nsp_ce),
          "nsp_correct": jnp.sum(example * (jnp.argmax(nsp_logits, -1) == labels)),
          "count": jnp.sum(example)}


def pretraining_loss(outputs, batch, axis_name=None) -> dict:
  """The reference's pre-training loss and metrics (all float32 scalars).

  ``mlm_loss = sum(w * ce) / (sum(w) + 1e-5)`` over the masked positions (weights
  ``masked_lm_weights``, 0 on padding), ``nsp_loss`` the mean next-sentence cross-entropy,
  ``loss = mlm_loss + nsp_loss``; ``mlm_accuracy`` (weighted) and ``nsp_accuracy``.

  With ``axis_name`` (a device's share of a batch, inside a ``shard_map``: the explicit
  gradient reduction of lamb.train.step) the denominators are summed over that axis and each
  device's value scaled by the axis size, so that the mean over devices is the loss of the
  whole batch, as one device computes it.
  """
  s = pretraining_sums(outputs, batch)
  weight, count, scale = s["mlm_weight"], s["count"], 1.0
  if axis_name is not None:
    weight, count = jax.lax.psum(weight, axis_name), jax.lax.psum(count, axis_name)
    scale = jax.lax.psum(1.0, axis_name)
  mlm_loss = scale * s["mlm_loss"] / (weight + 1e-5)
  nsp_loss = scale * s["nsp_loss"] / jnp.maximum(count, 1.0)
  return {"loss": mlm_loss + nsp_loss, "mlm_loss": mlm_loss, "nsp_loss": nsp_loss,
          "mlm_accuracy": scale * s["mlm_correct"] / jnp.maximum(weight, 1e-5),
          "nsp_accuracy": scale * s["nsp_correct"] / jnp.maximum(count, 1.0)}


class BertForSquad(_Layers):
  """BERT (no pooler) with run_squad's span head ``qa_outputs``: dense to 2 logits per token.

  ``__call__(input_ids, input_mask, segment_ids, deterministic)`` ->
  ``{"start_logits": float32 [B, S], "end_logits": float32 [B, S]}``.
  """

  def setup(self):
    sub = self.sub()
    self.bert = BertModel(add_pooling_layer=False, **sub)
    self.qa_outputs = self.dense(2, "qa_outputs")

  def __call__(self, input_ids, input_mask, segment_ids, deterministic: bool = True):
    sequence, _ = self.bert(input_ids, input_mask, segment_ids, deterministic)
    logits = self.qa_outputs(sequence).astype(jnp.float32)
    return {"start_logits": logits[..., 0], "end_logits": logits[..., 1]}


def squad_loss(outputs, batch):
  """run_squad's loss: the mean of the start and end position cross-entropies (batch mean)."""
  start = optax.softmax_cross_entropy_with_integer_labels(
      outputs["start_logits"], jnp.asarray(batch["start_positions"], jnp.int32).reshape(-1))
  end = optax.softmax_cross_entropy_with_integer_labels(
      outputs["end_logits"], jnp.asarray(batch["end_positions"], jnp.int32).reshape(-1))
  return (jnp.mean(start) + jnp.mean(end)) / 2.0
