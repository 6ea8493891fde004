"""BERT's create_pretraining_data as an offline, sharded job (the paper-scale corpus, Section 4.1).

The reference ran create_pretraining_data.py once per input file, in parallel; so does this.
The corpus is cut into S input shards, independently of how many workers write them:

* ``wikipedia``: shard s is TFDS's ``even_splits("train", S)[s]`` of the articles (only that
  part is read) plus every S-th BooksCorpus-style text file from s (sorted names), and
  ``eval_documents`` / S of its documents (seeded by ``random_seed`` and s) are held out, so the
  held-out text is a random sample of documents from every source in proportion;
* ``janeausten``: shard s is every S-th training chapter from s, and every S-th chapter of the
  held-out novel.

Each shard's training instances are the reference recipe (lamb.data.pretraining) on its
documents with its own ``random.Random`` (a hash of ``random_seed`` and s), random next sentences
drawn within the shard as the reference's per-file runs do, and its held-out instances the same
with ``eval_dupe_factor`` and the seed + 1. So the folder is a function of the corpus, the flags
and S alone: worker w of N writes the shards s with s % N == w, one worker or eight give the
same bytes, and a worker killed and started again skips its finished shards and rewrites the one
it was in (see lamb.data.pretraining_records for the folder and format).
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Callable

import numpy as np

from lamb.data import bert_corpus, janeausten, pretraining
from lamb.data import pretraining_records as records


# What a second writer must find in an existing manifest to add shards to its folder.
MANIFEST_IDENTITY = ("spec", "lowercase", "vocab_fingerprint", "tokenizers", "layout")


def shard_seed(seed: int, shard: int) -> int:
  return int(np.random.SeedSequence([int(seed), int(shard)]).generate_state(1)[0])


def _check(data) -> int:
  shards = int(data.get("instance_shards") or 0)
  if shards <= 0:
    raise ValueError("data.instance_shards must be positive to write sharded instances "
                     f"(got {shards})")
  if int(data.get("validation_documents") or 0):
    raise ValueError("data.validation_documents carves a validation split in memory; sharded "
                     "instances hold the training and held-out text only")
  if data.name not in bert_corpus.CORPORA:
    raise ValueError(f"unknown pre-training corpus {data.name!r}; known: "
                     f"{', '.join(bert_corpus.CORPORA)}")
  return shards


def shard_documents(data, shard: int, shards: int, data_dir=None, *, _cache: dict = {}) -> tuple:
  """(training documents, held-out documents) of input shard `shard` of `shards`."""
  if data.name == "janeausten":
    key = ("janeausten", data.get("text_dir") or "", data.get("held_out") or "")
    if key not in _cache:  # the novels are small: read once per process
      _cache.clear()
      _cache[key] = bert_corpus.documents(data, data_dir)[:2]
    train, evals = _cache[key]
    return train[shard::shards], evals[shard::shards]
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel  (slow import)
  limit = -(-int(data.get("max_documents") or 0) // shards)
  docs = bert_corpus.wikipedia_documents(data.get("tfds_name") or "wikipedia/20190301.en",
                                         data_dir, limit,
                                         split=tfds.even_splits("train", n=shards)[shard])
  if data.get("text_glob"):
    for path in janeausten.text_files(os.path.expanduser(data.text_glob))[shard::shards]:
      docs += janeausten.read_text_file(path)
  n_eval = int(data.get("eval_documents") or 0)
  n_eval = n_eval // shards + (shard < n_eval % shards)
  if not n_eval:
    return docs, []
  return bert_corpus.held_out_sample(docs, n_eval,
                                     shard_seed(int(data.get("random_seed") or 0), shard))


def _instances(docs, vocab, p: dict, seed: int) -> dict:
  if not docs:
    return pretraining.instances_to_arrays([], p["max_seq_length"],
                                           p["max_predictions_per_seq"], vocab.pad_id)
  tokenized = [vocab.tokenize(doc) for doc in docs]
  instances = pretraining.create_training_instances(
      tokenized, vocab, random.Random(seed), max_seq_length=p["max_seq_length"],
      dupe_factor=p["dupe_factor"], short_seq_prob=p["short_seq_prob"],
      masked_lm_prob=p["masked_lm_prob"], max_predictions_per_seq=p["max_predictions_per_seq"],
      do_whole_word_mask=p["do_whole_word_mask"])
  return pretraining.instances_to_arrays(instances, p["max_seq_length"],
                                         p["max_predictions_per_seq"], vocab.pad_id)


def shard_arrays(data, vocab, shard: int, data_dir=None, spec=None) -> tuple:
  """(training arrays, held-out arrays, document counts) of one shard: what it writes.
  `spec`: records.spec(data), when the caller has it (it reads the vocabulary and lists the
  book files)."""
  spec = spec or records.spec(data)
  p, shards = spec["params"], spec["shards"]
  train_docs, eval_docs = shard_documents(data, shard, shards, data_dir)
  if not train_docs:
    raise ValueError(f"input shard {shard} of {shards} has no training documents: use fewer "
                     "data.instance_shards")
  train = _instances(train_docs, vocab, p, shard_seed(p["random_seed"], shard))
  evals = _instances(eval_docs, vocab, dict(p, dupe_factor=spec["eval_dupe_factor"]),
                     shard_seed(p["random_seed"] + 1, shard))
  return train, evals, {"train": len(train_docs), "eval": len(eval_docs)}


def _write_records(path: Path, rows: list) -> None:
  from array_record.python import array_record_module  # pylint: disable=import-outside-toplevel
  tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
  writer = array_record_module.ArrayRecordWriter(os.fspath(tmp), "group_size:1")
  for row in rows:
    writer.write(row)
  writer.close()
  os.replace(tmp, path)


def _masked_counts(arrays: dict, size: int) -> np.ndarray:
  return np.bincount(arrays["masked_lm_ids"].ravel(), weights=arrays["masked_lm_weights"].ravel(),
                     minlength=size)[:size]


def write_shard(path: Path, data, vocab, shard: int, data_dir=None, spec=None) -> dict:
  """Writes shard `shard` into the folder `path`; its marker .json last."""
  spec = spec or records.spec(data)
  p, shards = spec["params"], spec["shards"]
  train, evals, documents = shard_arrays(data, vocab, shard, data_dir, spec)
  for kind, arrays in (("train", train), ("eval", evals)):
    _write_records(path / records.shard_name(kind, shard, shards, "array_record"),
                   records.encode(arrays, p["max_seq_length"], p["max_predictions_per_seq"]))
  counts = path / records.shard_name("shard", shard, shards, "counts.npz")
  tmp = counts.with_name(f".{counts.name}.tmp-{os.getpid()}")
  with open(tmp, "wb") as f:
    np.savez(f, train=_masked_counts(train, len(vocab)), eval=_masked_counts(evals, len(vocab)))
  os.replace(tmp, counts)
  marker = {"shard": shard, "shards": shards, "documents": documents,
            "examples": {"train": len(train["input_ids"]), "eval": len(evals["input_ids"])}}
  pretraining._atomic_write_text(  # pylint: disable=protected-access
      path / records.shard_name("shard", shard, shards, "json"), json.dumps(marker) + "\n")
  return marker


def _check_inputs(data, data_dir) -> list:
  """DatasetNotFoundError when the paper-scale corpus is not there to be read; else the
  warnings worth saying (as lines)."""
  if data.name != "wikipedia":
    return []
  bert_corpus.wikipedia_dataset(data.get("tfds_name") or "wikipedia/20190301.en", data_dir)
  if not data.get("text_glob"):
    return []
  files = janeausten.text_files(os.path.expanduser(data.text_glob))  # refuses no match
  shards = int(data.get("instance_shards") or 0)
  if len(files) >= shards:
    return []
  return [f"warning: data.text_glob names {len(files)} files for {shards} shards: the books go "
          f"to the first {len(files)} shards only (split them into more files to spread them)"]


def corpus_description(data) -> str:
  if data.name == "janeausten":
    held_out = data.get("held_out") or janeausten.HELD_OUT
    return (f"Jane Austen novels (Debian r-cran-janeaustenr): five train, "
            f"'{janeausten.TITLES[held_out]}' held out for evaluation")
  return (f"TFDS {data.get('tfds_name')} + {data.get('text_glob') or 'no'} text files; "
          f"{data.get('eval_documents')} documents drawn at random (seeded, per shard) held out")


def _vocabulary(data, data_dir):
  if data.name == "janeausten" and not data.get("vocab_file"):
    train_docs = shard_documents(data, 0, 1, data_dir)[0]
  else:
    train_docs = []
  return bert_corpus.vocabulary(data, train_docs)


def write(data, *, worker: int = 0, num_workers: int = 1, data_dir=None,
          say: Callable = print) -> Path:
  """Worker `worker` of `num_workers`: writes its unfinished shards of `data`'s instance folder
  (and the folder's manifest and vocabulary, the same bytes whoever writes them)."""
  shards = _check(data)
  if not 0 <= worker < num_workers:
    raise ValueError(f"--worker={worker} is not in [0, --num_workers={num_workers})")
  path = records.folder(data, data_dir)
  spec = records.spec(data)
  vocab = _vocabulary(data, data_dir)
  for line in _check_inputs(data, data_dir):  # before anything is written
    say(line)
  path.mkdir(parents=True, exist_ok=True)
  manifest = {"spec": spec, "lowercase": vocab.lowercase, "vocab_fingerprint": vocab.fingerprint(),
              "vocab_size": len(vocab), "tokenizers": pretraining._tokenizers().__version__,  # pylint: disable=protected-access
              "layout": records.layout(spec["params"]["max_seq_length"],
                                       spec["params"]["max_predictions_per_seq"]),
              "description": f"{corpus_description(data)}; instances written offline in "
                             f"{shards} shards ({path.name})"}
  manifest_path = path / "manifest.json"
  if manifest_path.is_file():
    old = json.loads(manifest_path.read_text())
    new = json.loads(json.dumps(manifest))
    if {k: old.get(k) for k in MANIFEST_IDENTITY} != {k: new[k] for k in MANIFEST_IDENTITY}:
      raise ValueError(f"{manifest_path} differs from what this writer would write (another "
                       "vocabulary or tokenizers version); delete the folder to start over")
  else:
    vocab.save(path / "vocab.txt")
    pretraining._atomic_write_text(  # pylint: disable=protected-access
        manifest_path, json.dumps(manifest, indent=1) + "\n")
  done = set(records.finished_shards(path, shards))
  mine = [s for s in range(worker, shards, num_workers)]
  _remove_stale_temporaries(path, shards, mine, done)
  say(f"{path}: worker {worker} of {num_workers} owns {len(mine)} of {shards} shards, "
      f"{len(done & set(mine))} already finished")
  for s in mine:
    if s in done:
      continue
    marker = write_shard(path, data, vocab, s, data_dir, spec)
    say(f"  shard {s}: {marker['examples']['train']} training and "
        f"{marker['examples']['eval']} held-out instances from {marker['documents']['train']} + "
        f"{marker['documents']['eval']} documents")
  finished = len(records.finished_shards(path, shards))
  say(f"{path.name}: {finished} of {shards} shards finished" +
      (" (complete: training can read it)" if finished == shards else
       " (the other workers' shards are still to come)"))
  return path


def _remove_stale_temporaries(path: Path, shards: int, mine: list, done: set) -> None:
  """Deletes what a killed run of this worker left of its unfinished shards (a shard is
  rewritten whole, so its temporaries are never resumed)."""
  for s in mine:
    if s in done:
      continue
    tag = f"-{s:05d}-of-{shards:05d}."
    for tmp in path.glob(".*.tmp-*"):
      if tag in tmp.name:
        tmp.unlink(missing_ok=True)
