"""Google's released BERT checkpoints (TensorFlow, google-research/bert) as Flax parameters.

Table 1's baseline row is BERT-Large as Devlin et al. released it (`bert_model.ckpt` of
`uncased_L-24_H-1024_A-16`); `squad --config.init_from=.../bert_model.ckpt` fine-tunes it
like any of our pre-training runs. Our BERT (lamb.models.bert) names its parameters after the
TF ones, so the map is short:

    LayerNorm/gamma, LayerNorm/beta           -> LayerNorm/scale, LayerNorm/bias
    bert/embeddings/<name>_embeddings          -> bert/embeddings/<name>_embeddings/embedding
    cls/seq_relationship/output_weights [2, H] -> cls/seq_relationship/kernel [H, 2]
    cls/seq_relationship/output_bias           -> cls/seq_relationship/bias
    everything else (dense kernels [in, out], biases, cls/predictions/output_bias) unchanged

and what is not a model weight (Adam's `adam_m`/`adam_v` slots, `global_step`) is skipped.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

SKIPPED_SUFFIXES = ("/adam_m", "/adam_v")
SKIPPED = ("global_step",)


def is_tf_checkpoint(path) -> bool:
  """Whether `path` is a TF checkpoint prefix (`bert_model.ckpt`, next to its `.index`)."""
  path = Path(path).expanduser()
  return Path(f"{path}.index").is_file()


def flax_path(tf_name: str):
  """The Flax parameter path (a tuple) of a TF variable name, or None for a non-weight."""
  if tf_name in SKIPPED or tf_name.endswith(SKIPPED_SUFFIXES):
    return None
  parts = tf_name.split("/")
  if parts[-1] == "gamma" and parts[-2] == "LayerNorm":
    parts[-1] = "scale"
  elif parts[-1] == "beta" and parts[-2] == "LayerNorm":
    parts[-1] = "bias"
  elif parts[:2] == ["bert", "embeddings"] and parts[-1].endswith("_embeddings"):
    parts.append("embedding")
  elif parts[:2] == ["cls", "seq_relationship"]:
    parts[-1] = {"output_weights": "kernel", "output_bias": "bias"}[parts[-1]]
  return tuple(parts)


def load(path) -> dict:
  """The nested Flax parameters ({"bert": ..., "cls": ...}) of the TF checkpoint `path`."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel  (slow import)
  path = str(Path(path).expanduser())
  try:
    reader = tf.train.load_checkpoint(path)
  except (tf.errors.OpError, ValueError) as e:  # a truncated or damaged file
    raise ValueError(f"{path} is not a readable TF checkpoint "
                     f"({' '.join(str(e).split())[:200]})") from None
  params: dict = {}
  for name in sorted(reader.get_variable_to_shape_map()):
    target = flax_path(name)
    if target is None:
      continue
    value = np.asarray(reader.get_tensor(name), np.float32)
    if target[-2:] == ("seq_relationship", "kernel"):
      value = value.T  # TF multiplies by output_weights transposed
    node = params
    for key in target[:-1]:
      node = node.setdefault(key, {})
    if target[-1] in node:
      raise ValueError(f"{path}: two TF variables map onto {'/'.join(target)}")
    node[target[-1]] = value
  if "bert" not in params:
    raise ValueError(f"{path} holds no bert/... variables: not a BERT checkpoint")
  return params
