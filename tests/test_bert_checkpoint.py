"""Google's TF BERT checkpoints as our Flax parameters, on a tiny TF checkpoint written here
with the release's variable names (and an optimizer slot and global_step, as released files
have)."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lamb.models import bert, bert_checkpoint
from lamb.train import squad_task

CONFIG = dataclasses.replace(bert.PRESETS["tiny"], vocab_size=40, num_hidden_layers=2)


def _flax_params():
  ids = jnp.zeros((1, 8), jnp.int32)
  model = bert.BertPretraining(CONFIG)
  shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), ids, ids, ids,
                                             jnp.zeros((1, 2), jnp.int32),
                                             deterministic=True))["params"]
  rng = np.random.default_rng(0)
  return jax.tree.map(lambda s: rng.normal(size=s.shape).astype(np.float32), shapes)


def _tf_name(path: tuple) -> str:
  """The release's name of one of our parameters (the inverse map, written independently)."""
  name = "/".join(path)
  name = name.replace("LayerNorm/scale", "LayerNorm/gamma").replace("LayerNorm/bias",
                                                                    "LayerNorm/beta")
  name = name.replace("_embeddings/embedding", "_embeddings")
  name = name.replace("seq_relationship/kernel", "seq_relationship/output_weights")
  return name.replace("seq_relationship/bias", "seq_relationship/output_bias")


def _write_tf_checkpoint(prefix, params) -> None:
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  names, tensors = [], []
  for path, value in jax.tree_util.tree_flatten_with_path(params)[0]:
    keys = tuple(p.key for p in path)
    value = np.asarray(value)
    if keys[-2:] == ("seq_relationship", "kernel"):
      value = value.T  # the release stores output_weights as [2, hidden]
    names.append(_tf_name(keys))
    tensors.append(tf.constant(value))
    if keys[-1] == "kernel":
      names.append(_tf_name(keys) + "/adam_m")  # an optimizer slot: not a weight
      tensors.append(tf.zeros_like(tensors[-1]))
  names.append("global_step")
  tensors.append(tf.constant(1000000, tf.int64))
  tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=names, shape_and_slices=[""] * len(names),
                    tensors=tensors)


def test_a_released_checkpoint_loads_onto_our_parameters(tmp_path):
  params = _flax_params()
  prefix = tmp_path / "bert_model.ckpt"
  _write_tf_checkpoint(prefix, params)
  assert bert_checkpoint.is_tf_checkpoint(prefix) and not bert_checkpoint.is_tf_checkpoint(
      tmp_path / "missing.ckpt")
  loaded = bert_checkpoint.load(prefix)
  assert jax.tree.structure(loaded) == jax.tree.structure(params)
  for a, b in zip(jax.tree.leaves(loaded), jax.tree.leaves(params)):
    np.testing.assert_array_equal(a, b)
  # SQuAD fine-tuning reads it as it reads one of our runs: the encoder's weights
  encoder = squad_task._pretrained_bert(prefix)
  np.testing.assert_array_equal(encoder["encoder"]["layer_1"]["output"]["dense"]["kernel"],
                                params["bert"]["encoder"]["layer_1"]["output"]["dense"]["kernel"])


def test_the_name_map_and_a_checkpoint_that_is_not_berts(tmp_path):
  assert bert_checkpoint.flax_path("bert/encoder/layer_3/attention/output/LayerNorm/gamma") == (
      "bert", "encoder", "layer_3", "attention", "output", "LayerNorm", "scale")
  assert bert_checkpoint.flax_path("bert/embeddings/word_embeddings") == (
      "bert", "embeddings", "word_embeddings", "embedding")
  assert bert_checkpoint.flax_path("cls/predictions/output_bias") == (
      "cls", "predictions", "output_bias")
  assert bert_checkpoint.flax_path("bert/pooler/dense/kernel/adam_v") is None
  assert bert_checkpoint.flax_path("global_step") is None
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  prefix = tmp_path / "other.ckpt"
  tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=["resnet/conv1/kernel"],
                    shape_and_slices=[""], tensors=[tf.zeros([3, 3])])
  with pytest.raises(ValueError, match="not a BERT checkpoint"):
    bert_checkpoint.load(prefix)


def test_a_damaged_checkpoint_is_one_clear_error(tmp_path):
  (tmp_path / "bert_model.ckpt.index").write_text("garbage")
  with pytest.raises(ValueError, match="is not a readable TF checkpoint"):
    bert_checkpoint.load(tmp_path / "bert_model.ckpt")
