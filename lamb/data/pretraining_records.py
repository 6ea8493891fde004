"""BERT pre-training instances on disk: where they live, their record format, and the reader.

The paper-scale corpus (Wikipedia and BooksCorpus, 3.3B words) is too big to turn into
examples in every process at start-up, so ``experiments/write_pretraining_data.py``
(lamb.data.pretraining_shards) writes them once, offline and sharded, and training streams them
from here. A data section with ``instance_shards`` S > 0 reads this way; without it the examples
are made in memory (lamb.data.bert_corpus; the cpu scale).

Where: ``{data_dir}/bert_pretraining/{corpus}-len{L}-{key}/`` (data_dir: run.py's
``--data_dir``, else ~/tensorflow_datasets), ``key`` a digest of everything the instances
depend on (:func:`spec`: the corpus fields and the book files' names and sizes, the
vocabulary file's content, every create_pretraining_data flag, the number of shards), so each
phase's sequence length has its own folder and a config never reads instances made for another.
The folder holds ``manifest.json``, ``vocab.txt`` and, for each shard s of S,
``train-s-of-S.array_record`` and ``eval-s-of-S.array_record`` (the held-out instances),
``shard-s-of-S.counts.npz`` (the masked-token counts behind the unigram level) and
``shard-s-of-S.json``, written last: a shard is finished when its .json exists, and a writer
killed mid-shard leaves only temporary files.

Format: ArrayRecord, one record per instance, the seven features of lamb.data.pretraining
(``input_ids``, ``input_mask``, ``segment_ids`` [L], ``masked_lm_positions``, ``masked_lm_ids``,
``masked_lm_weights`` [P], ``next_sentence_labels``) as little-endian 4-byte values, in that
order (the weights float32, the rest int32): fixed-size records decode as one reshape per
batch.

Reading (:class:`Instances`): training batches come from the S training files as one
random-access source through grain (lamb.data.streams): each batch a pure function of
(seed, step), a resumed run reads only the records of its steps, process p of P reads its rows
of each global batch, and the global batch does not depend on P. A batch is read whole
(:class:`RecordBatches`: its records in one batched ArrayRecord read, decoded with one reshape
per feature), a fixed number of batches ahead, optionally in worker processes (`workers`): the
same batches either way. The held-out instances are few (from 10,000 held-out documents at
paper scale): `eval_examples` of them, drawn at random across the shards, are read into memory.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from lamb.data import pretraining, streams
from lamb.data.errors import DatasetNotFoundError

RECORD_FORMAT = 1
ROOT_NAME = "bert_pretraining"
FLOAT_FEATURES = ("masked_lm_weights",)
WRITER_COMMAND = "python experiments/write_pretraining_data.py"


# ---------------------------------------------------------------------------------------------
# What the instances depend on, and where they live


def params(data) -> dict:
  """Every create_pretraining_data flag of a data section (the reference's defaults filled in)."""
  return dict(pretraining.DEFAULTS, **{k: data[k] for k in pretraining.DEFAULTS
                                       if data.get(k) is not None})


def vocab_spec(data) -> str:
  """The vocabulary as it enters the key: the content of `vocab_file`, or how it is trained."""
  vocab_file = data.get("vocab_file") or None
  if vocab_file:
    if not Path(vocab_file).is_file():
      raise DatasetNotFoundError(f"vocabulary file {vocab_file} does not exist (BERT's uncased "
                                 "vocab.txt, from the pre-trained BERT release)")
    return "sha256:" + hashlib.sha256(Path(vocab_file).read_bytes()).hexdigest()
  return f"trained WordPiece, {int(data.get('vocab_size') or 30522)} tokens"


def spec(data) -> dict:
  """Everything the written instances depend on; equal specs give byte-equal folders."""
  if data.name == "janeausten":
    corpus = dict(name="janeausten", held_out=data.get("held_out") or "sensesensibility")
  else:
    corpus = dict(name=data.name, tfds_name=data.get("tfds_name"),
                  text_glob=data.get("text_glob") or "", text_files=_files_digest(data),
                  max_documents=int(data.get("max_documents") or 0),
                  eval_documents=int(data.get("eval_documents") or 0))
  return dict(format=RECORD_FORMAT, corpus=corpus, vocab=vocab_spec(data), params=params(data),
              eval_dupe_factor=int(data.get("eval_dupe_factor") or 1),
              shards=int(data.get("instance_shards") or 0))


def _files_digest(data) -> str:
  """The book files `text_glob` names, by name and size: adding, removing or changing a book
  makes other instances (and which shard reads which book)."""
  if not data.get("text_glob"):
    return ""
  from lamb.data import janeausten  # pylint: disable=import-outside-toplevel
  try:
    files = janeausten.text_files(os.path.expanduser(data.text_glob))
  except DatasetNotFoundError:
    return "no files"
  listing = "".join(f"{f}\t{os.path.getsize(f)}\n" for f in files)
  return f"{len(files)} files, sha256:{hashlib.sha256(listing.encode()).hexdigest()[:16]}"


def folder(data, data_dir=None) -> Path:
  s = spec(data)
  key = hashlib.sha256(json.dumps(s, sort_keys=True).encode()).hexdigest()[:12]
  if "://" in str(data_dir or ""):
    raise ValueError(f"--data_dir={data_dir}: BERT's pre-training instances are read from a "
                     "local or shared file system, not a bucket URI")
  root = Path(data_dir).expanduser() if data_dir else Path.home() / "tensorflow_datasets"
  return root / ROOT_NAME / f"{data.name}-len{s['params']['max_seq_length']}-{key}"


def shard_name(kind: str, shard: int, shards: int, suffix: str) -> str:
  return f"{kind}-{shard:05d}-of-{shards:05d}.{suffix}"


def finished_shards(path: Path, shards: int) -> list[int]:
  return [s for s in range(shards) if (path / shard_name("shard", s, shards, "json")).is_file()]


# ---------------------------------------------------------------------------------------------
# Record format


def layout(max_seq_length: int, max_predictions_per_seq: int) -> list[tuple[str, int]]:
  """[(feature, width in 4-byte values)] in record order."""
  widths = dict(input_ids=max_seq_length, input_mask=max_seq_length,
                segment_ids=max_seq_length, masked_lm_positions=max_predictions_per_seq,
                masked_lm_ids=max_predictions_per_seq, masked_lm_weights=max_predictions_per_seq,
                next_sentence_labels=1)
  return [(f, widths[f]) for f in pretraining.FEATURES]


def encode(arrays: dict, max_seq_length: int, max_predictions_per_seq: int) -> list[bytes]:
  """One record per row of lamb.data.pretraining's feature arrays."""
  columns = []
  for feature, width in layout(max_seq_length, max_predictions_per_seq):
    a = np.asarray(arrays[feature])
    a = a.astype("<f4").view("<i4") if feature in FLOAT_FEATURES else a.astype("<i4")
    columns.append(a.reshape(len(a), width))
  rows = np.concatenate(columns, axis=1) if columns else np.zeros((0, 0), "<i4")
  return [row.tobytes() for row in rows]


def decode(rows: np.ndarray, max_seq_length: int, max_predictions_per_seq: int) -> dict:
  """Feature arrays of a batch of records (uint8 [N, record bytes], or a list of bytes)."""
  if not isinstance(rows, np.ndarray):
    rows = np.stack([np.frombuffer(r, np.uint8) for r in rows]) if len(rows) else np.zeros(
        (0, 4 * sum(w for _, w in layout(max_seq_length, max_predictions_per_seq))), np.uint8)
  values = np.ascontiguousarray(rows).view("<i4")
  out, start = {}, 0
  for feature, width in layout(max_seq_length, max_predictions_per_seq):
    column = values[:, start:start + width]
    start += width
    column = column.view("<f4").astype(np.float32) if feature in FLOAT_FEATURES else (
        column.astype(np.int32))
    out[feature] = column[:, 0] if feature == "next_sentence_labels" else column
  return out


# ---------------------------------------------------------------------------------------------
# Reading


class Instances:
  """The finished instance folder of a data section: the training stream, the held-out arrays,
  the vocabulary and the unigram level. Refuses, in one line, a folder that is missing, not
  finished, or written for something else."""

  def __init__(self, data, data_dir=None, *, config_name: str = "CONFIG"):
    self.path = folder(data, data_dir)
    self.spec = spec(data)
    self.shards = self.spec["shards"]
    p = self.spec["params"]
    self.max_seq_length, self.max_predictions = p["max_seq_length"], p["max_predictions_per_seq"]
    write = (f"{WRITER_COMMAND} --config={config_name}"
             f"{f' --data_dir={data_dir}' if data_dir else ''} (N machines: --worker=i "
             "--num_workers=N each)")
    manifest_path = self.path / "manifest.json"
    if not manifest_path.is_file():
      raise DatasetNotFoundError(f"no BERT pre-training instances of length {self.max_seq_length} "
                                 f"in {self.path}; write them first: {write}")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("spec") != self.spec:
      raise ValueError(f"{manifest_path} was written for other data than this config's (its spec "
                       "differs); delete the folder and write it again")
    done = finished_shards(self.path, self.shards)
    if len(done) < self.shards:
      missing = sorted(set(range(self.shards)) - set(done))
      raise DatasetNotFoundError(
          f"{len(missing)} of the {self.shards} shards in {self.path} are not finished (e.g. "
          f"shard {missing[0]}); run the writer again, finished shards are kept: {write}")
    markers = [json.loads((self.path / shard_name("shard", s, self.shards, "json")).read_text())
               for s in range(self.shards)]
    wrong = [s for s, m in enumerate(markers) if (m.get("shard"), m.get("shards")) !=
             (s, self.shards)]
    if wrong:
      raise ValueError(f"{self.path}: the marker of shard {wrong[0]} names another shard; "
                       "delete the folder and write it again")
    self.shard_examples = {kind: [m["examples"][kind] for m in markers]
                           for kind in ("train", "eval")}
    self.vocab = pretraining.Vocab.load(self.path / "vocab.txt",
                                        manifest.get("lowercase", True))
    if self.vocab.fingerprint() != manifest.get("vocab_fingerprint"):
      raise ValueError(f"{self.path}/vocab.txt is not the vocabulary its instances were written "
                       "with; delete the folder and write it again")
    self.description = manifest.get("description", "")
    self._train_counts = None

  def files(self, kind: str) -> list[str]:
    """The shard files of `kind` that hold records, in shard order."""
    return [os.fspath(self.path / shard_name(kind, s, self.shards, "array_record"))
            for s in range(self.shards) if self.shard_examples[kind][s]]

  def _data_source(self, kind: str):
    """grain's ArrayRecordDataSource over the `kind` files (picklable: worker processes open
    their own readers)."""
    import grain  # pylint: disable=import-outside-toplevel
    paths = self.files(kind)
    if not paths:
      raise ValueError(f"{self.path} holds no {kind} instances")
    source = grain.sources.ArrayRecordDataSource(paths)
    if len(source) != sum(self.shard_examples[kind]):
      raise ValueError(f"{self.path}: the {kind} files hold {len(source)} records, the shards' "
                       f"markers say {sum(self.shard_examples[kind])}; delete the folder and "
                       "write it again")
    return source

  def _source(self, kind: str):
    import grain  # pylint: disable=import-outside-toplevel
    return grain.MapDataset.source(self._data_source(kind))

  def num_examples(self, kind: str = "train") -> int:
    return sum(self.shard_examples[kind])

  def eval_arrays(self, limit: int = 0) -> dict:
    """The held-out instances as in-memory feature arrays: all of them, or with `limit` > 0 that
    many drawn at random (seeded by the data's random_seed) from every shard, in file order."""
    records = self._source("eval")
    rows = range(len(records))
    if limit and limit < len(records):
      rng = np.random.default_rng([self.spec["params"]["random_seed"], 1])
      rows = np.sort(rng.choice(len(records), size=limit, replace=False))
    return decode([records[int(i)] for i in rows], self.max_seq_length, self.max_predictions)

  def train_counts(self) -> np.ndarray:
    """How often each token id is a masked-LM target in the training instances."""
    if self._train_counts is None:
      total = np.zeros(len(self.vocab), np.float64)
      for s in range(self.shards):
        with np.load(self.path / shard_name("shard", s, self.shards, "counts.npz")) as f:
          total += f["train"]
      self._train_counts = total
    return self._train_counts

  def train_batches(self, batch_size: int, *, seed: int, start_step: int = 0,
                    process_index: int = 0, process_count: int = 1, limit: int = 0,
                    workers: int = 0):
    """This process's share of every global training batch from `start_step` on (endless);
    `limit` > 0 uses only the first `limit` training instances; `workers` > 0 reads in that
    many worker processes (the same batches). Close the iterator when done."""
    streams.check_stream_args(batch_size, seed, start_step, process_index, process_count,
                              workers)
    source = self._data_source("train")
    num_records = min(limit, len(source)) if limit else len(source)
    if num_records < batch_size * process_count:
      raise ValueError(f"{self.path} holds {num_records} training instances, fewer than one "
                       f"global batch of {batch_size * process_count}")
    make_batch = RecordBatches(source, num_records, batch_size, seed=seed,
                               process_index=process_index, process_count=process_count,
                               max_seq_length=self.max_seq_length,
                               max_predictions=self.max_predictions)
    return streams.batches(make_batch, start_step, workers=workers)


class RecordBatches:
  """make_batch of the training stream (lamb.data.streams.batches): the local batch of a step,
  its records read in one batched ArrayRecord read and decoded. Picklable (worker processes)."""

  def __init__(self, source, num_records: int, batch_size: int, *, seed: int,
               process_index: int, process_count: int, max_seq_length: int,
               max_predictions: int):
    self.source, self.order = source, streams.epoch_order(num_records, seed)
    self.batch_size, self.process_index, self.process_count = (batch_size, process_index,
                                                               process_count)
    self.max_seq_length, self.max_predictions = max_seq_length, max_predictions

  def __call__(self, step: int) -> dict:
    stream = streams.positions(step, self.batch_size, self.process_index, self.process_count)
    keys = [self.order[int(g)] for g in stream]
    return decode(self.source.__getitems__(keys), self.max_seq_length, self.max_predictions)
