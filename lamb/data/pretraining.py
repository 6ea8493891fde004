"""BERT pre-training examples, Devlin et al.'s create_pretraining_data recipe, cached as .npz.

This ports google-research/bert ``create_pretraining_data.py`` (create_training_instances,
create_instances_from_document, create_masked_lm_predictions, truncate_seq_pair) call for
call, with the same ``random.Random(seed)`` draws in the same order, so that for the same
documents, vocabulary and flags it makes the same instances as the reference. It works on
token ids instead of token strings (the reference draws a random replacement as
``vocab_words[randint(0, len(vocab_words) - 1)]``, i.e. a uniformly random id, and treats
tokens starting with "##" as word continuations for whole-word masking; both are the same
on ids).

* Sentence pairs: each document is cut into chunks of up to ``max_seq_length - 3`` tokens
  (with probability ``short_seq_prob`` = 0.1 a shorter random target length in [2, max]),
  segment A is the first 1..n-1 sentences of the chunk, and segment B is the rest of the
  chunk or, with probability 0.5 (always for one-sentence chunks), sentences from a random
  other document (label 1 = random next sentence). Over-long pairs lose tokens from the longer
  segment, from its front or back at random. Documents are visited ``dupe_factor`` times with
  fresh masks and pairs.
* Masking: ``min(max_predictions_per_seq, max(1, round(len * masked_lm_prob)))`` positions
  (never [CLS]/[SEP]); 80% become [MASK], 10% a random token, 10% stay unchanged. Defaults
  are the reference's: length 128 with 20 predictions (use 512 / 80 for phase 2), 15%,
  whole-word masking off, seed 12345.

Tokenisation is BERT's: the `tokenizers` library with BERT's normaliser (clean text,
lower-case and strip accents by default, Chinese characters split), BERT's pre-tokeniser
(white space and punctuation) and a WordPiece model with "##" continuations and
max_input_chars_per_word 100. The vocabulary is either an existing ``vocab.txt`` (the paper
scale: Google's uncased 30,522-token vocabulary) or trained here on the training text with the
`tokenizers` WordPiece trainer, with [PAD] [UNK] [CLS] [SEP] [MASK] as ids 0-4
(:func:`train_vocab`; see there for why a trained vocabulary is cached and kept).
Special tokens are looked up by name, never assumed to have fixed ids.

Output (:func:`create_pretraining_arrays`): numpy arrays with the reference's feature names,
``input_ids``, ``input_mask``, ``segment_ids`` int32 [N, max_seq_length];
``masked_lm_positions``, ``masked_lm_ids`` int32 and ``masked_lm_weights`` float32
[N, max_predictions_per_seq] (zero padded, weight 0 on padding); ``next_sentence_labels`` int32
[N]. :func:`load_or_create` writes them once to .npz shards in a folder named by a fingerprint
of the text, the vocabulary, the tokenizers version and every parameter, and reads them back
on later calls. Each file is written to a temporary name and moved in with os.replace, and
``meta.json`` is written last, so a reader never sees a partial cache.

The examples of a whole corpus are built in memory, which is right for corpora the size of
Jane Austen's novels: the five training novels (598k words, 751k WordPiece tokens with an
8,192-token vocabulary) give 77,015 examples of length 128 with dupe_factor 10 in about 12 s
on one core (18 MB of shards, read back in 0.5 s). The paper's 3.3B-word corpus needs the
reference's approach of many input shards processed in parallel.
"""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import os
import random
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)
FEATURES = ("input_ids", "input_mask", "segment_ids", "masked_lm_positions", "masked_lm_ids",
            "masked_lm_weights", "next_sentence_labels")
CACHE_FORMAT = 1


# ---------------------------------------------------------------------------------------------
# Vocabulary and WordPiece tokenisation


def _tokenizers():
  try:
    import tokenizers  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise ImportError("BERT pre-training data needs the `tokenizers` library: "
                      "pip install tokenizers") from e
  return tokenizers


def _bert_pipeline(model, lowercase: bool):
  tk = _tokenizers()
  tokenizer = tk.Tokenizer(model)
  tokenizer.normalizer = tk.normalizers.BertNormalizer(
      clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lowercase)
  tokenizer.pre_tokenizer = tk.pre_tokenizers.BertPreTokenizer()
  return tokenizer


class Vocab:
  """A WordPiece vocabulary (token i has id i) and BERT's tokenisation with it."""

  def __init__(self, tokens: Sequence[str], lowercase: bool = True):
    self.tokens = list(tokens)
    self.ids = {t: i for i, t in enumerate(self.tokens)}
    if len(self.ids) != len(self.tokens):
      dupes = [t for t, n in collections.Counter(self.tokens).items() if n > 1][:5]
      raise ValueError(f"vocabulary has duplicate tokens, e.g. {dupes}")
    missing = [t for t in SPECIAL_TOKENS if t not in self.ids]
    if missing:
      raise ValueError(f"vocabulary lacks the special tokens {missing}")
    self.lowercase = bool(lowercase)
    self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = (
        self.ids[t] for t in SPECIAL_TOKENS)
    self.is_continuation = np.array([t.startswith("##") for t in self.tokens], bool)
    self._tokenizer = None

  def __len__(self) -> int:
    return len(self.tokens)

  @classmethod
  def load(cls, path, lowercase: bool = True) -> "Vocab":
    """A ``vocab.txt``: one token per line, line i is id i (BERT's format)."""
    with open(path, encoding="utf-8") as f:
      tokens = [line.rstrip("\n").rstrip("\r") for line in f]
    while tokens and not tokens[-1]:
      tokens.pop()
    return cls(tokens, lowercase)

  def save(self, path) -> None:
    _atomic_write_text(Path(path), "".join(t + "\n" for t in self.tokens))

  def fingerprint(self) -> str:
    h = hashlib.sha256(f"lowercase={self.lowercase}\n".encode())
    for t in self.tokens:
      h.update(t.encode("utf-8") + b"\n")
    return h.hexdigest()

  def _pipeline(self):
    if self._tokenizer is None:
      tk = _tokenizers()
      self._tokenizer = _bert_pipeline(
          tk.models.WordPiece(self.ids, unk_token=UNK, continuing_subword_prefix="##",
                              max_input_chars_per_word=100), self.lowercase)
    return self._tokenizer

  def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text (no [CLS]/[SEP] added), BERT's FullTokenizer equivalent."""
    return [e.ids for e in self._pipeline().encode_batch(list(texts), add_special_tokens=False)]

  def tokenize_with_offsets(self, texts: Sequence[str]) -> list[tuple]:
    """(token ids, [(start, end) character span of each token in the original text]) of each
    text: what SQuAD needs to turn a predicted token span back into the context's words."""
    return [(e.ids, e.offsets)
            for e in self._pipeline().encode_batch(list(texts), add_special_tokens=False)]

  def decode(self, ids: Iterable[int]) -> list[str]:
    return [self.tokens[int(i)] for i in ids]


def train_vocab(documents: Sequence[Sequence[str]], vocab_size: int = 30522, *,
                lowercase: bool = True, min_frequency: int = 2,
                limit_alphabet: int = 1000) -> Vocab:
  """A WordPiece vocabulary trained on the documents' sentences (`tokenizers` WordPieceTrainer).

  Ids 0-4 are [PAD] [UNK] [CLS] [SEP] [MASK], then the other tokens in sorted order (whole-word
  tokens, then "##" continuations). The result can be smaller than `vocab_size` on a small text.
  The trainer breaks ties between merges of equal count by ids that depend on a hash seed, so
  the token set could in principle differ between runs (it has not on Jane Austen); that is why
  :func:`load_or_train_vocab` caches the vocabulary, and a run that must be reproduced exactly
  should keep its ``vocab.txt``.
  """
  tk = _tokenizers()
  tokenizer = _bert_pipeline(tk.models.WordPiece(unk_token=UNK, continuing_subword_prefix="##"),
                             lowercase)
  trainer = tk.trainers.WordPieceTrainer(
      vocab_size=vocab_size, min_frequency=min_frequency, limit_alphabet=limit_alphabet,
      special_tokens=list(SPECIAL_TOKENS), continuing_subword_prefix="##", show_progress=False)
  tokenizer.train_from_iterator((s for doc in documents for s in doc), trainer=trainer)
  learned = set(tokenizer.get_vocab()) - set(SPECIAL_TOKENS)
  # The trainer numbers its alphabet in the order of a randomly seeded hash map, so its ids
  # change from run to run; canonical ids: the specials, then whole-word tokens, then "##"
  # pieces, each sorted.
  return Vocab(list(SPECIAL_TOKENS) + sorted(learned, key=lambda t: (t.startswith("##"), t)),
               lowercase)


def text_fingerprint(documents: Sequence[Sequence[str]]) -> str:
  h = hashlib.sha256()
  for doc in documents:
    for sentence in doc:
      h.update(sentence.encode("utf-8") + b"\n")
    h.update(b"\n")
  return h.hexdigest()


def load_or_train_vocab(documents, cache_dir, vocab_size: int = 30522, *, vocab_file=None,
                        lowercase: bool = True) -> Vocab:
  """`vocab_file` if given; else a vocabulary trained on `documents`, cached in `cache_dir`."""
  if vocab_file is not None:
    return Vocab.load(vocab_file, lowercase)
  key = _digest({"text": text_fingerprint(documents), "vocab_size": vocab_size,
                 "lowercase": lowercase, "tokenizers": _tokenizers().__version__,
                 "trainer": "WordPieceTrainer(min_frequency=2, limit_alphabet=1000)"})
  path = Path(cache_dir) / f"vocab-{key[:16]}.txt"
  if path.is_file():
    return Vocab.load(path, lowercase)
  vocab = train_vocab(documents, vocab_size, lowercase=lowercase)
  vocab.save(path)
  return vocab


# ---------------------------------------------------------------------------------------------
# The reference recipe


@dataclasses.dataclass
class TrainingInstance:
  """One example before padding (token ids), as the reference's TrainingInstance."""
  tokens: list
  segment_ids: list
  masked_lm_positions: list
  masked_lm_labels: list
  is_random_next: bool


def create_training_instances(documents: Sequence[Sequence[Sequence[int]]], vocab: Vocab,
                              rng: random.Random, *, max_seq_length: int = 128,
                              dupe_factor: int = 10, short_seq_prob: float = 0.1,
                              masked_lm_prob: float = 0.15, max_predictions_per_seq: int = 20,
                              do_whole_word_mask: bool = False) -> list[TrainingInstance]:
  """The reference's create_training_instances on already-tokenised documents.

  `documents` are lists of sentences of token ids; empty sentences and documents are dropped
  (the reference skips blank-tokenising lines and empty documents).
  """
  all_documents = [[list(s) for s in doc if len(s)] for doc in documents]
  all_documents = [d for d in all_documents if d]
  if not all_documents:
    raise ValueError("no non-empty documents to make pre-training examples from")
  rng.shuffle(all_documents)
  instances = []
  for _ in range(dupe_factor):
    for document_index in range(len(all_documents)):
      instances.extend(create_instances_from_document(
          all_documents, document_index, max_seq_length, short_seq_prob, masked_lm_prob,
          max_predictions_per_seq, vocab, rng, do_whole_word_mask))
  rng.shuffle(instances)
  return instances


def create_instances_from_document(all_documents, document_index, max_seq_length, short_seq_prob,
                                   masked_lm_prob, max_predictions_per_seq, vocab: Vocab,
                                   rng: random.Random, do_whole_word_mask: bool = False):
  """Creates `TrainingInstance`s for a single document (the reference's steps and random draws)."""
  document = all_documents[document_index]
  # Account for [CLS], [SEP], [SEP]
  max_num_tokens = max_seq_length - 3
  # Usually fill the whole sequence; sometimes (short_seq_prob) a shorter one, to reduce the
  # mismatch between pre-training and fine-tuning.
  target_seq_length = max_num_tokens
  if rng.random() < short_seq_prob:
    target_seq_length = rng.randint(2, max_num_tokens)
  instances = []
  current_chunk = []
  current_length = 0
  i = 0
  while i < len(document):
    segment = document[i]
    current_chunk.append(segment)
    current_length += len(segment)
    if i == len(document) - 1 or current_length >= target_seq_length:
      if current_chunk:
        # `a_end` is how many segments from `current_chunk` go into the `A` sentence.
        a_end = 1
        if len(current_chunk) >= 2:
          a_end = rng.randint(1, len(current_chunk) - 1)
        tokens_a = []
        for j in range(a_end):
          tokens_a.extend(current_chunk[j])
        tokens_b = []
        # Random next
        if len(current_chunk) == 1 or rng.random() < 0.5:
          is_random_next = True
          tokens_b = _random_next_tokens(all_documents, document_index,
                                         target_seq_length - len(tokens_a), rng)
          # The random segment replaced the rest of the chunk: put those segments back.
          num_unused_segments = len(current_chunk) - a_end
          i -= num_unused_segments
        # Actual next
        else:
          is_random_next = False
          for j in range(a_end, len(current_chunk)):
            tokens_b.extend(current_chunk[j])
        instances.append(_training_instance(
            tokens_a, tokens_b, is_random_next, max_num_tokens, masked_lm_prob,
            max_predictions_per_seq, vocab, rng, do_whole_word_mask))
      current_chunk = []
      current_length = 0
    i += 1
  return instances


def _random_next_tokens(all_documents, document_index, target_b_length, rng: random.Random):
  """The `B` sentence of a random-next example: segments from another document's random start."""
  tokens_b = []
  # (The reference tries 10 times to pick another document; with a single document it ends up
  # using the same one.)
  for _ in range(10):
    random_document_index = rng.randint(0, len(all_documents) - 1)
    if random_document_index != document_index:
      break
  random_document = all_documents[random_document_index]
  random_start = rng.randint(0, len(random_document) - 1)
  for j in range(random_start, len(random_document)):
    tokens_b.extend(random_document[j])
    if len(tokens_b) >= target_b_length:
      break
  return tokens_b


def _training_instance(tokens_a, tokens_b, is_random_next, max_num_tokens, masked_lm_prob,
                       max_predictions_per_seq, vocab: Vocab, rng: random.Random,
                       do_whole_word_mask: bool) -> TrainingInstance:
  """[CLS] A [SEP] B [SEP], truncated to fit and masked, as the reference builds it."""
  truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, rng)
  assert len(tokens_a) >= 1
  assert len(tokens_b) >= 1
  tokens = [vocab.cls_id] + tokens_a + [vocab.sep_id] + tokens_b + [vocab.sep_id]
  segment_ids = [0] * (len(tokens_a) + 2) + [1] * (len(tokens_b) + 1)
  tokens, masked_lm_positions, masked_lm_labels = create_masked_lm_predictions(
      tokens, masked_lm_prob, max_predictions_per_seq, vocab, rng, do_whole_word_mask)
  return TrainingInstance(tokens, segment_ids, masked_lm_positions, masked_lm_labels,
                          is_random_next)


def create_masked_lm_predictions(tokens, masked_lm_prob, max_predictions_per_seq, vocab: Vocab,
                                 rng: random.Random, do_whole_word_mask: bool = False):
  """(output tokens, masked positions, original ids at them): the reference's masking."""
  cand_indexes = []
  for i, token in enumerate(tokens):
    if token == vocab.cls_id or token == vocab.sep_id:
      continue
    # Whole word masking: a "##" piece joins the candidate of the piece before it.
    if do_whole_word_mask and len(cand_indexes) >= 1 and vocab.is_continuation[token]:
      cand_indexes[-1].append(i)
    else:
      cand_indexes.append([i])
  rng.shuffle(cand_indexes)
  output_tokens = list(tokens)
  num_to_predict = min(max_predictions_per_seq, max(1, int(round(len(tokens) * masked_lm_prob))))
  masked_lms = []
  covered_indexes = set()
  for index_set in cand_indexes:
    if len(masked_lms) >= num_to_predict:
      break
    # If adding a whole-word mask would exceed the maximum number of predictions, skip it.
    if len(masked_lms) + len(index_set) > num_to_predict:
      continue
    if any(index in covered_indexes for index in index_set):
      continue
    for index in index_set:
      covered_indexes.add(index)
      # 80% of the time, replace with [MASK]
      if rng.random() < 0.8:
        masked_token = vocab.mask_id
      else:
        # 10% of the time, keep original
        if rng.random() < 0.5:
          masked_token = tokens[index]
        # 10% of the time, replace with random word
        else:
          masked_token = rng.randint(0, len(vocab) - 1)
      output_tokens[index] = masked_token
      masked_lms.append((index, tokens[index]))
  assert len(masked_lms) <= num_to_predict
  masked_lms.sort(key=lambda x: x[0])
  return output_tokens, [p for p, _ in masked_lms], [label for _, label in masked_lms]


def truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, rng: random.Random) -> None:
  """Truncates a pair of sequences (in place) to a maximum sequence length."""
  while True:
    total_length = len(tokens_a) + len(tokens_b)
    if total_length <= max_num_tokens:
      break
    trunc_tokens = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
    assert len(trunc_tokens) >= 1
    # Truncate from the front or the back at random, to add more randomness and avoid biases.
    if rng.random() < 0.5:
      del trunc_tokens[0]
    else:
      trunc_tokens.pop()


def instances_to_arrays(instances: Sequence[TrainingInstance], max_seq_length: int,
                        max_predictions_per_seq: int, pad_id: int = 0) -> dict[str, np.ndarray]:
  """Zero-padded feature arrays, as the reference's write_instance_to_example_files."""
  n = len(instances)
  out = {
      "input_ids": np.full((n, max_seq_length), pad_id, np.int32),
      "input_mask": np.zeros((n, max_seq_length), np.int32),
      "segment_ids": np.zeros((n, max_seq_length), np.int32),
      "masked_lm_positions": np.zeros((n, max_predictions_per_seq), np.int32),
      "masked_lm_ids": np.zeros((n, max_predictions_per_seq), np.int32),
      "masked_lm_weights": np.zeros((n, max_predictions_per_seq), np.float32),
      "next_sentence_labels": np.zeros((n,), np.int32),
  }
  for k, inst in enumerate(instances):
    length, predictions = len(inst.tokens), len(inst.masked_lm_positions)
    if length > max_seq_length or predictions > max_predictions_per_seq:
      raise ValueError(f"instance {k} has {length} tokens / {predictions} predictions, more "
                       f"than {max_seq_length} / {max_predictions_per_seq}")
    out["input_ids"][k, :length] = inst.tokens
    out["input_mask"][k, :length] = 1
    out["segment_ids"][k, :length] = inst.segment_ids
    out["masked_lm_positions"][k, :predictions] = inst.masked_lm_positions
    out["masked_lm_ids"][k, :predictions] = inst.masked_lm_labels
    out["masked_lm_weights"][k, :predictions] = 1.0
    out["next_sentence_labels"][k] = int(inst.is_random_next)
  return out


DEFAULTS = dict(max_seq_length=128, max_predictions_per_seq=20, masked_lm_prob=0.15,
                short_seq_prob=0.1, dupe_factor=10, random_seed=12345, do_whole_word_mask=False)


def create_pretraining_arrays(documents: Sequence[Sequence[str]], vocab: Vocab,
                              **params) -> dict[str, np.ndarray]:
  """Feature arrays from text documents (lists of sentences); `params` override DEFAULTS."""
  p = _params(params)
  tokenized = [vocab.tokenize(doc) for doc in documents]
  rng = random.Random(p["random_seed"])
  instances = create_training_instances(
      tokenized, vocab, rng, max_seq_length=p["max_seq_length"], dupe_factor=p["dupe_factor"],
      short_seq_prob=p["short_seq_prob"], masked_lm_prob=p["masked_lm_prob"],
      max_predictions_per_seq=p["max_predictions_per_seq"],
      do_whole_word_mask=p["do_whole_word_mask"])
  return instances_to_arrays(instances, p["max_seq_length"], p["max_predictions_per_seq"],
                             vocab.pad_id)


def _params(params: dict) -> dict:
  unknown = sorted(set(params) - set(DEFAULTS))
  if unknown:
    raise TypeError(f"unknown pre-training data parameters {unknown}; known: {sorted(DEFAULTS)}")
  p = dict(DEFAULTS, **params)
  if p["max_seq_length"] < 5:
    raise ValueError(f"max_seq_length {p['max_seq_length']} is too short for a sentence pair")
  return p


# ---------------------------------------------------------------------------------------------
# Cache


def fingerprint(documents: Sequence[Sequence[str]], vocab: Vocab, **params) -> str:
  """What the examples depend on: text, vocabulary, tokenizers version, every parameter."""
  return _digest({"format": CACHE_FORMAT, "text": text_fingerprint(documents),
                  "vocab": vocab.fingerprint(), "tokenizers": _tokenizers().__version__,
                  "params": _params(params)})


def load_or_create(documents: Sequence[Sequence[str]], vocab: Vocab, cache_dir, *,
                   examples_per_shard: int = 65536, **params) -> dict[str, np.ndarray]:
  """The examples of :func:`create_pretraining_arrays`, made once and cached as .npz shards.

  They live in ``cache_dir/pretraining-<fingerprint>/`` (``shard-00000.npz``, ...,
  ``meta.json``); a later call with the same text, vocabulary and parameters reads them back.
  """
  fp = fingerprint(documents, vocab, **params)
  folder = Path(cache_dir) / f"pretraining-{fp[:16]}"
  cached = _read_cache(folder, fp)
  if cached is not None:
    return cached
  arrays = create_pretraining_arrays(documents, vocab, **params)
  folder.mkdir(parents=True, exist_ok=True)
  n = len(arrays["input_ids"])
  shards = []
  for k, start in enumerate(range(0, max(n, 1), examples_per_shard)):
    name = f"shard-{k:05d}.npz"
    _atomic_savez(folder / name, {f: a[start:start + examples_per_shard]
                                  for f, a in arrays.items()})
    shards.append(name)
  meta = {"fingerprint": fp, "format": CACHE_FORMAT, "examples": n, "shards": shards,
          "params": _params(params), "vocab_size": len(vocab),
          "tokenizers": _tokenizers().__version__,
          "documents": len(documents), "sentences": sum(len(d) for d in documents)}
  _atomic_write_text(folder / "meta.json", json.dumps(meta, indent=1) + "\n")
  return arrays


def cache_meta(documents, vocab: Vocab, cache_dir, **params) -> dict | None:
  """The cache's meta.json for these inputs, or None when the examples are not cached yet."""
  fp = fingerprint(documents, vocab, **params)
  path = Path(cache_dir) / f"pretraining-{fp[:16]}" / "meta.json"
  if not path.is_file():
    return None
  meta = json.loads(path.read_text())
  return meta if meta.get("fingerprint") == fp else None


def _read_cache(folder: Path, fp: str) -> dict[str, np.ndarray] | None:
  meta_path = folder / "meta.json"
  if not meta_path.is_file():
    return None
  meta = json.loads(meta_path.read_text())
  if meta.get("fingerprint") != fp or meta.get("format") != CACHE_FORMAT:
    return None
  parts = collections.defaultdict(list)
  for name in meta["shards"]:
    with np.load(folder / name) as shard:
      for f in FEATURES:
        parts[f].append(shard[f])
  arrays = {f: np.concatenate(parts[f]) for f in FEATURES}
  if len(arrays["input_ids"]) != meta["examples"]:
    raise ValueError(f"{folder}: {len(arrays['input_ids'])} cached examples, meta.json says "
                     f"{meta['examples']}; delete the folder to rebuild it")
  return arrays


def _digest(obj) -> str:
  return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def _atomic_write_text(path: Path, text: str) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
  tmp.write_text(text, encoding="utf-8")
  os.replace(tmp, path)


def _atomic_savez(path: Path, arrays: dict) -> None:
  tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
  with open(tmp, "wb") as f:
    np.savez_compressed(f, **arrays)
  os.replace(tmp, path)
