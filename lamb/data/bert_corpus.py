"""The text a BERT run pre-trains on, as masked-LM / next-sentence example arrays.

A config's `data` section names a corpus and the create_pretraining_data flags; this module turns
it into the arrays of :mod:`lamb.data.pretraining` (input_ids, input_mask, segment_ids,
masked_lm_positions, masked_lm_ids, masked_lm_weights, next_sentence_labels) for a training and
an evaluation split. Two corpora:

* ``janeausten`` (cpu scale): the six novels of Debian's r-cran-janeaustenr
  (:mod:`lamb.data.janeausten`); five train, the `held_out` one ("Sense and Sensibility") is the
  evaluation text. A WordPiece vocabulary of `vocab_size` tokens is trained on the training
  novels once and cached, and the examples are made once per (text, vocabulary, flags) and
  cached as .npz shards (``pretraining.load_or_create``); both are deterministic.
* ``wikipedia`` (paper scale): TFDS `tfds_name` (articles, one paragraph a line) read from a
  prepared data_dir, never downloaded, plus BooksCorpus-like ``.txt`` files (`text_glob`, BERT's
  input format), with Google's uncased ``vocab.txt`` (`vocab_file`). `eval_documents`
  documents drawn at random (seeded by `random_seed`) are held out. Building 3.3B words of
  examples in memory is not practical: at paper scale `instance_shards` S > 0 makes training
  read instances written beforehand by the sharded offline job
  (``experiments/write_pretraining_data.py``; lamb.data.pretraining_shards and
  pretraining_records). In memory, `max_documents` caps what is read (0 = all).

Missing data raises DatasetNotFoundError with a one-line message; nothing is fetched.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lamb.data import janeausten, pretraining
from lamb.data.errors import DatasetNotFoundError

CACHE_ENV = "LAMB_PRETRAINING_CACHE"
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "lamb" / "pretraining"
CORPORA = ("janeausten", "wikipedia")
# The create_pretraining_data flags a data section may set (the rest are the reference's).
FLAGS = tuple(pretraining.DEFAULTS)
# Training-split WordPiece tokens of the five Jane Austen novels with the 8,192-token vocabulary
# (lamb.data.pretraining's docstring); only used to size the split without reading it.
JANEAUSTEN_TRAIN_TOKENS = 751_000
JANEAUSTEN_EVAL_TOKENS = 150_000
# BERT's corpus: 1M steps of 512 sequences are about 40 epochs (Devlin et al. 2018), so an
# epoch is about 12.8M sequences. A nominal size: the paper counts steps, not epochs.
WIKIPEDIA_BOOKS_SEQUENCES = 1_000_000 * 512 // 40


def cache_dir(data) -> Path:
  return Path(data.get("cache_dir") or os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR).expanduser()


def flags(data) -> dict:
  """The create_pretraining_data flags of a data section (defaults: the reference's)."""
  return {k: data[k] for k in FLAGS if data.get(k) is not None}


def estimated_examples(data, split: str = "train") -> int:
  """About how many examples a split gives, known without reading it (for the cost model)."""
  p = dict(pretraining.DEFAULTS, **flags(data))
  if data.name == "wikipedia":
    return WIKIPEDIA_BOOKS_SEQUENCES if split == "train" else 10_000
  tokens = JANEAUSTEN_TRAIN_TOKENS * p["dupe_factor"] if split == "train" else JANEAUSTEN_EVAL_TOKENS
  n = tokens // (p["max_seq_length"] - 3)
  limit = data.get("train_examples" if split == "train" else "eval_examples")
  return min(n, limit) if limit else n


def documents(data, data_dir=None) -> tuple:
  """(train documents, evaluation documents, description); each a list of sentence lists."""
  if data.name == "janeausten":
    # The first run on a machine fetches the Debian package (apt-get download, 1.6 MB).
    novels = janeausten.load_novels(data.get("text_dir") or None, download=True)
    train, evals = janeausten.split_documents(novels, held_out=data.get("held_out")
                                              or janeausten.HELD_OUT)
    title = janeausten.TITLES[data.get("held_out") or janeausten.HELD_OUT]
    return train, evals, (f"Jane Austen novels (Debian r-cran-janeaustenr): five train, "
                          f"'{title}' held out for evaluation")
  if data.name == "wikipedia":
    docs = wikipedia_documents(data.get("tfds_name") or "wikipedia/20190301.en", data_dir,
                               data.get("max_documents") or 0)
    if data.get("text_glob"):
      docs += janeausten.load_text_files(data.text_glob)
    n_eval = int(data.get("eval_documents") or 0)
    seed = int(data.get("random_seed") or 0)
    train, evals = held_out_sample(docs, n_eval, seed)
    return train, evals, (
        f"TFDS {data.get('tfds_name')} + {data.get('text_glob') or 'no'} text files; "
        f"{n_eval} documents drawn at random (seed {seed}) held out")
  raise ValueError(f"unknown pre-training corpus {data.name!r}; known: {', '.join(CORPORA)}")


def held_out_sample(docs: list, n_eval: int, seed: int) -> tuple:
  """(train, held out): `n_eval` documents drawn at random (seeded) from all of them, so that
  the held-out text is every source in proportion (Wikipedia and the books alike), not the
  last files read; both keep the documents' order."""
  if n_eval <= 0 or n_eval >= len(docs):
    raise ValueError(f"eval_documents must be in [1, {len(docs)}), got {n_eval}")
  chosen = set(np.random.default_rng(seed).choice(len(docs), size=n_eval, replace=False).tolist())
  return ([d for i, d in enumerate(docs) if i not in chosen],
          [d for i, d in enumerate(docs) if i in chosen])


def wikipedia_documents(tfds_name: str, data_dir=None, max_documents: int = 0,
                        split="train") -> list:
  """Articles of a prepared TFDS wikipedia config as documents (paragraph lines, then
  sentences); `split` may be a part of "train" (the sharded writer reads one part each).
  Reads only; raises DatasetNotFoundError when `data_dir` does not hold it."""
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel  (slow import)
  docs = []
  for example in tfds.as_numpy(wikipedia_dataset(tfds_name, data_dir, split)):
    text = example["text"].decode("utf-8")
    doc = [s for line in text.split("\n") for s in janeausten.split_sentences(line)]
    if doc:
      docs.append(doc)
    if max_documents and len(docs) >= max_documents:
      break
  return docs


def wikipedia_dataset(tfds_name: str, data_dir=None, split="train"):
  """The tf.data.Dataset of a prepared TFDS text data set's `split`, in order;
  DatasetNotFoundError (with the `tfds build` to run) when `data_dir` does not hold it."""
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel  (slow import)
  try:
    return tfds.builder(tfds_name, data_dir=data_dir).as_dataset(split=split,
                                                                  shuffle_files=False)
  except Exception:  # pylint: disable=broad-except
    prepared_builder(tfds_name, data_dir)  # says why in one line when it can
    raise


def prepared_builder(tfds_name: str, data_dir=None):
  """The TFDS builder of a prepared `tfds_name` in `data_dir`; DatasetNotFoundError if it is not."""
  try:
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel  (slow import)
    builder = tfds.builder(tfds_name, data_dir=data_dir)
    prepared = builder.is_prepared()
  except Exception as e:  # pylint: disable=broad-except  (unknown config, unreadable folder)
    raise DatasetNotFoundError(f"TFDS {tfds_name!r} is not available in "
                               f"{data_dir or '~/tensorflow_datasets'} ({type(e).__name__}: {e}); "
                               "prepare it elsewhere and copy the folder here "
                               "(docs/paper_scale.md: the 2019 dump no longer downloads; its "
                               "routes today)") from None
  if not prepared:
    raise DatasetNotFoundError(f"TFDS {tfds_name!r} is not prepared in {builder.data_dir}; "
                               "prepare it elsewhere and copy the folder here (nothing is "
                               "downloaded; docs/paper_scale.md gives the routes that exist today)")
  return builder


def vocabulary(data, train_documents) -> pretraining.Vocab:
  """`vocab_file` if the section names one, else a WordPiece vocabulary trained (and cached)."""
  vocab_file = data.get("vocab_file") or None
  if data.get("name") == "wikipedia" and not vocab_file:
    raise DatasetNotFoundError("the paper-scale corpus needs BERT's uncased vocab.txt: "
                               "--config.data.vocab_file=PATH (from the pre-trained BERT release)")
  if vocab_file and not Path(vocab_file).is_file():
    raise DatasetNotFoundError(f"vocabulary file {vocab_file} does not exist (BERT's uncased "
                               "vocab.txt, from the pre-trained BERT release)")
  return pretraining.load_or_train_vocab(train_documents, cache_dir(data),
                                         int(data.get("vocab_size") or 30522),
                                         vocab_file=vocab_file)


def _subset(arrays: dict, n) -> dict:
  if not n or n >= len(arrays["input_ids"]):
    return arrays
  return {k: v[:n] for k, v in arrays.items()}


def split_validation(train_docs: list, n: int, seed: int) -> tuple:
  """(train, validation): `n` documents drawn at random (seeded) from the training documents.

  For choosing a setting without looking at the reported text: a run evaluated on these never
  reads the held-out novel.
  """
  if not 0 < n < len(train_docs):
    raise ValueError(f"data.validation_documents={n} must be in [1, {len(train_docs) - 1}] "
                     f"(the training split has {len(train_docs)} documents)")
  chosen = set(np.random.default_rng(seed).choice(len(train_docs), n, replace=False).tolist())
  return ([d for i, d in enumerate(train_docs) if i not in chosen],
          [d for i, d in enumerate(train_docs) if i in chosen])


def load(data, data_dir=None) -> tuple:
  """(train arrays, eval arrays, vocabulary, description) of a data section.

  The evaluation examples use the same flags with `eval_dupe_factor` (default 1) and the
  seed + 1, so they are fixed whatever the training split's duplication. With
  `validation_documents` N > 0 the evaluation split is N documents drawn from the training
  documents (which then train without them) instead of the held-out text; the vocabulary is
  still the one of the whole training split, so that a setting chosen there transfers as is.
  """
  train_docs, eval_docs, description = documents(data, data_dir)
  vocab = vocabulary(data, train_docs)
  n_validation = int(data.get("validation_documents") or 0)
  if n_validation:
    seed = int(flags(data).get("random_seed", pretraining.DEFAULTS["random_seed"]))
    train_docs, eval_docs = split_validation(train_docs, n_validation, seed)
    description += (f"; evaluated on {n_validation} documents drawn from the training text "
                    "(a validation split), not on the held-out text")
  p = flags(data)
  folder = cache_dir(data)
  train = pretraining.load_or_create(train_docs, vocab, folder, **p)
  eval_p = dict(p, dupe_factor=int(data.get("eval_dupe_factor") or 1),
                random_seed=int(p.get("random_seed", pretraining.DEFAULTS["random_seed"])) + 1)
  evals = pretraining.load_or_create(eval_docs, vocab, folder, **eval_p)
  return (_subset(train, data.get("train_examples")), _subset(evals, data.get("eval_examples")),
          vocab, description)


def example_shapes(data) -> dict:
  """{feature: (shape, dtype)} of one example, from the flags alone."""
  p = dict(pretraining.DEFAULTS, **flags(data))
  length, predictions = p["max_seq_length"], p["max_predictions_per_seq"]
  return {"input_ids": ((length,), np.int32), "input_mask": ((length,), np.int32),
          "segment_ids": ((length,), np.int32),
          "masked_lm_positions": ((predictions,), np.int32),
          "masked_lm_ids": ((predictions,), np.int32),
          "masked_lm_weights": ((predictions,), np.float32),
          "next_sentence_labels": ((), np.int32)}
