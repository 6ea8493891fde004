"""BERT pre-training data: agreement with google-research/bert's create_pretraining_data logic
(copied below, on token strings), the feature arrays, masking statistics, determinism, the
vocabulary and the .npz cache, on a small synthetic corpus (no download); and instances written
offline streamed back (the Jane Austen novels): each batch the records of its stream positions,
the same with worker processes."""
from __future__ import annotations

import collections
import random

import numpy as np
import pytest

from lamb.data import pretraining as pt

pytest.importorskip("tokenizers")

WORDS = ("the of and to a in was her it he she that not be as had for with his you which "
         "elizabeth darcy bingley pemberley netherfield longbourn wickham collins catherine "
         "marriage fortune acquaintance civility disposition impertinence countenance "
         "extraordinary unaccountable mortification condescension").split()


def _corpus(num_docs=30, seed=0):
  rng = random.Random(seed)
  docs = []
  for _ in range(num_docs):
    doc = []
    for _ in range(rng.randint(1, 14)):
      words = [rng.choice(WORDS) for _ in range(rng.randint(3, 25))]
      doc.append(" ".join(words).capitalize() + rng.choice([".", "!", "?", ", said he."]))
    docs.append(doc)
  return docs


@pytest.fixture(scope="module")
def corpus():
  return _corpus()


@pytest.fixture(scope="module")
def vocab(corpus):
  return pt.train_vocab(corpus, vocab_size=200)


# ---------------------------------------------------------------------------------------------
# google-research/bert create_pretraining_data.py (Apache 2.0), on token strings, verbatim
# apart from formatting and FLAGS.do_whole_word_mask becoming an argument.

_RefInstance = collections.namedtuple(
    "_RefInstance", "tokens segment_ids is_random_next masked_lm_positions masked_lm_labels")
_MaskedLmInstance = collections.namedtuple("_MaskedLmInstance", ["index", "label"])


def _ref_create_training_instances(all_documents, vocab_words, rng, max_seq_length, dupe_factor,
                                   short_seq_prob, masked_lm_prob, max_predictions_per_seq,
                                   do_whole_word_mask):
  all_documents = [x for x in all_documents if x]
  rng.shuffle(all_documents)
  instances = []
  for _ in range(dupe_factor):
    for document_index in range(len(all_documents)):
      instances.extend(_ref_create_instances_from_document(
          all_documents, document_index, max_seq_length, short_seq_prob, masked_lm_prob,
          max_predictions_per_seq, vocab_words, rng, do_whole_word_mask))
  rng.shuffle(instances)
  return instances


def _ref_create_instances_from_document(all_documents, document_index, max_seq_length,
                                        short_seq_prob, masked_lm_prob, max_predictions_per_seq,
                                        vocab_words, rng, do_whole_word_mask):
  document = all_documents[document_index]
  max_num_tokens = max_seq_length - 3
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
        a_end = 1
        if len(current_chunk) >= 2:
          a_end = rng.randint(1, len(current_chunk) - 1)
        tokens_a = []
        for j in range(a_end):
          tokens_a.extend(current_chunk[j])
        tokens_b = []
        is_random_next = False
        if len(current_chunk) == 1 or rng.random() < 0.5:
          is_random_next = True
          target_b_length = target_seq_length - len(tokens_a)
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
          num_unused_segments = len(current_chunk) - a_end
          i -= num_unused_segments
        else:
          is_random_next = False
          for j in range(a_end, len(current_chunk)):
            tokens_b.extend(current_chunk[j])
        _ref_truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, rng)
        assert len(tokens_a) >= 1
        assert len(tokens_b) >= 1
        tokens = []
        segment_ids = []
        tokens.append("[CLS]")
        segment_ids.append(0)
        for token in tokens_a:
          tokens.append(token)
          segment_ids.append(0)
        tokens.append("[SEP]")
        segment_ids.append(0)
        for token in tokens_b:
          tokens.append(token)
          segment_ids.append(1)
        tokens.append("[SEP]")
        segment_ids.append(1)
        (tokens, masked_lm_positions, masked_lm_labels) = _ref_create_masked_lm_predictions(
            tokens, masked_lm_prob, max_predictions_per_seq, vocab_words, rng,
            do_whole_word_mask)
        instances.append(_RefInstance(tokens, segment_ids, is_random_next, masked_lm_positions,
                                      masked_lm_labels))
      current_chunk = []
      current_length = 0
    i += 1
  return instances


def _ref_create_masked_lm_predictions(tokens, masked_lm_prob, max_predictions_per_seq,
                                      vocab_words, rng, do_whole_word_mask):
  cand_indexes = []
  for (i, token) in enumerate(tokens):
    if token == "[CLS]" or token == "[SEP]":
      continue
    if (do_whole_word_mask and len(cand_indexes) >= 1 and token.startswith("##")):
      cand_indexes[-1].append(i)
    else:
      cand_indexes.append([i])
  rng.shuffle(cand_indexes)
  output_tokens = list(tokens)
  num_to_predict = min(max_predictions_per_seq,
                       max(1, int(round(len(tokens) * masked_lm_prob))))
  masked_lms = []
  covered_indexes = set()
  for index_set in cand_indexes:
    if len(masked_lms) >= num_to_predict:
      break
    if len(masked_lms) + len(index_set) > num_to_predict:
      continue
    is_any_index_covered = False
    for index in index_set:
      if index in covered_indexes:
        is_any_index_covered = True
        break
    if is_any_index_covered:
      continue
    for index in index_set:
      covered_indexes.add(index)
      masked_token = None
      if rng.random() < 0.8:
        masked_token = "[MASK]"
      else:
        if rng.random() < 0.5:
          masked_token = tokens[index]
        else:
          masked_token = vocab_words[rng.randint(0, len(vocab_words) - 1)]
      output_tokens[index] = masked_token
      masked_lms.append(_MaskedLmInstance(index=index, label=tokens[index]))
  assert len(masked_lms) <= num_to_predict
  masked_lms = sorted(masked_lms, key=lambda x: x.index)
  masked_lm_positions = []
  masked_lm_labels = []
  for p in masked_lms:
    masked_lm_positions.append(p.index)
    masked_lm_labels.append(p.label)
  return (output_tokens, masked_lm_positions, masked_lm_labels)


def _ref_truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, rng):
  while True:
    total_length = len(tokens_a) + len(tokens_b)
    if total_length <= max_num_tokens:
      break
    trunc_tokens = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
    assert len(trunc_tokens) >= 1
    if rng.random() < 0.5:
      del trunc_tokens[0]
    else:
      trunc_tokens.pop()


# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("whole_word", [False, True])
def test_same_instances_as_the_reference(corpus, vocab, whole_word):
  params = dict(max_seq_length=48, dupe_factor=2, short_seq_prob=0.1, masked_lm_prob=0.15,
                max_predictions_per_seq=7)
  tokenized = [vocab.tokenize(doc) for doc in corpus]
  ours = pt.create_training_instances(tokenized, vocab, random.Random(12345),
                                      do_whole_word_mask=whole_word, **params)
  as_strings = [[vocab.decode(s) for s in doc if s] for doc in tokenized]
  ref = _ref_create_training_instances(as_strings, vocab.tokens, random.Random(12345),
                                       do_whole_word_mask=whole_word, **params)
  assert len(ours) == len(ref) > 50
  for a, b in zip(ours, ref):
    assert vocab.decode(a.tokens) == b.tokens
    assert a.segment_ids == b.segment_ids and a.is_random_next == b.is_random_next
    assert a.masked_lm_positions == b.masked_lm_positions
    assert vocab.decode(a.masked_lm_labels) == b.masked_lm_labels
  if whole_word:  # A masked "##" piece has the piece before it masked too (unless [SEP]).
    continuations = 0
    for inst in ours:
      original = dict(zip(inst.masked_lm_positions, inst.masked_lm_labels))
      for p, label in original.items():
        if (vocab.is_continuation[label] and p - 1 > 0
            and inst.segment_ids[p - 1] == inst.segment_ids[p]):
          assert p - 1 in original
          continuations += 1
    assert continuations > 20


def test_feature_arrays(corpus, vocab):
  arrays = pt.create_pretraining_arrays(corpus, vocab, max_seq_length=64,
                                        max_predictions_per_seq=10, dupe_factor=5)
  n = len(arrays["input_ids"])
  assert n > 200
  assert {k: (v.shape, v.dtype.name) for k, v in arrays.items()} == {
      "input_ids": ((n, 64), "int32"), "input_mask": ((n, 64), "int32"),
      "segment_ids": ((n, 64), "int32"), "masked_lm_positions": ((n, 10), "int32"),
      "masked_lm_ids": ((n, 10), "int32"), "masked_lm_weights": ((n, 10), "float32"),
      "next_sentence_labels": ((n,), "int32")}
  kept = masked = randomised = total = 0
  for k in range(n):
    ids, mask, seg = arrays["input_ids"][k], arrays["input_mask"][k], arrays["segment_ids"][k]
    length = int(mask.sum())
    assert np.all(mask[:length] == 1) and np.all(ids[length:] == vocab.pad_id)
    assert np.all(seg[length:] == 0)
    assert ids[0] == vocab.cls_id and ids[length - 1] == vocab.sep_id
    # (A randomly replaced masked token can be [SEP] too: find the boundary from segment_ids.)
    first_sep = int(np.argmax(seg == 1)) - 1
    assert ids[first_sep] == vocab.sep_id
    assert np.all(seg[:first_sep + 1] == 0) and np.all(seg[first_sep + 1:length] == 1)
    assert 1 <= first_sep - 1 and first_sep + 1 < length - 1  # both segments non-empty
    seps = [first_sep, length - 1]
    w = arrays["masked_lm_weights"][k]
    p = int(w.sum())
    assert np.all(w[:p] == 1) and np.all(w[p:] == 0)
    assert p == min(10, max(1, round(length * 0.15)))  # no whole-word masking: exact
    pos, labels = arrays["masked_lm_positions"][k, :p], arrays["masked_lm_ids"][k, :p]
    assert np.all(np.diff(pos) > 0) and pos[0] > 0 and pos[-1] < length - 1
    assert not np.isin(pos, seps).any()
    assert np.all(arrays["masked_lm_positions"][k, p:] == 0)
    assert np.all(arrays["masked_lm_ids"][k, p:] == 0)
    assert not np.isin(labels, [vocab.cls_id, vocab.sep_id, vocab.pad_id, vocab.mask_id]).any()
    shown = ids[pos]
    masked += np.sum(shown == vocab.mask_id)
    kept += np.sum(shown == labels)
    randomised += np.sum((shown != vocab.mask_id) & (shown != labels))
    total += p
  # 80% [MASK], 10% unchanged, 10% random (a random id can equal the label: counted as kept).
  assert abs(masked / total - 0.8) < 0.02
  assert abs(kept / total - 0.1) < 0.02 and abs(randomised / total - 0.1) < 0.02
  # Half the pairs have a random next sentence, plus the one-sentence chunks (always random).
  assert 0.45 < arrays["next_sentence_labels"].mean() < 0.7
  # short_seq_prob: more sequences much shorter than the maximum than without it.
  no_short = pt.create_pretraining_arrays(corpus, vocab, max_seq_length=64,
                                          max_predictions_per_seq=10, dupe_factor=5,
                                          short_seq_prob=0.0)
  assert np.mean(arrays["input_mask"].sum(1) < 32) > np.mean(no_short["input_mask"].sum(1) < 32)


def test_truncate_seq_pair():
  rng = random.Random(0)
  fronts = backs = 0
  for _ in range(200):
    a, b = list(range(30)), list(range(100, 110))
    pt.truncate_seq_pair(a, b, 25, rng)
    assert len(a) + len(b) == 25 and b == list(range(100, 110))  # only the longer is cut
    assert a == list(range(a[0], a[0] + 15))  # a contiguous slice: cut at the front or back
    fronts += a[0] > 0
    backs += a[-1] < 29
  assert fronts > 50 and backs > 50
  a, b = [1] * 5, [2] * 5
  pt.truncate_seq_pair(a, b, 6, random.Random(1))
  assert (len(a), len(b)) == (3, 3)


def test_deterministic_from_the_seed(corpus, vocab):
  kw = dict(max_seq_length=32, max_predictions_per_seq=5, dupe_factor=1)
  one = pt.create_pretraining_arrays(corpus, vocab, **kw)
  two = pt.create_pretraining_arrays(corpus, vocab, **kw)
  other = pt.create_pretraining_arrays(corpus, vocab, random_seed=1, **kw)
  for k in pt.FEATURES:
    np.testing.assert_array_equal(one[k], two[k])
  assert not np.array_equal(one["input_ids"][:10], other["input_ids"][:10])
  with pytest.raises(TypeError, match="unknown"):
    pt.create_pretraining_arrays(corpus, vocab, max_seq_len=32)


def test_vocabulary(corpus, vocab, tmp_path, monkeypatch):
  assert vocab.tokens[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
  assert (vocab.pad_id, vocab.unk_id, vocab.cls_id, vocab.sep_id, vocab.mask_id) == (0, 1, 2, 3, 4)
  assert 100 < len(vocab) <= 200 and any(t.startswith("##") for t in vocab.tokens)
  # BERT tokenisation: lower-cased, accents stripped, punctuation split, "##" pieces, [UNK].
  (ids,) = vocab.tokenize(["Elizabeth, DARCY! Caf\u00e9 \u4e2d"])
  pieces = vocab.decode(ids)
  assert pieces[:4] == ["elizabeth", ",", "darcy", "!"]
  assert pieces[-1] == "[UNK]"  # a character outside the trained alphabet
  assert pieces[4] == "c" and all(p.startswith("##") for p in pieces[5:-1])
  assert "".join(p.lstrip("#") for p in pieces[4:-1]) == "cafe"  # accent stripped
  assert "".join(p.lstrip("#") for p in vocab.decode(vocab.tokenize(["Unaccountable"])[0])) == \
      "unaccountable"
  # Ids are canonical: the specials, then sorted words, then sorted "##" pieces. (The token set
  # itself can differ between trainings by a few ties; see train_vocab.)
  assert vocab.tokens[5:] == sorted(vocab.tokens[5:], key=lambda t: (t.startswith("##"), t))
  path = tmp_path / "vocab.txt"
  vocab.save(path)
  assert pt.Vocab.load(path).tokens == vocab.tokens
  assert path.read_text().splitlines()[:2] == ["[PAD]", "[UNK]"]
  trained = pt.load_or_train_vocab(corpus, tmp_path, vocab_size=200)
  assert len(list(tmp_path.glob("vocab-*.txt"))) == 1
  monkeypatch.setattr(pt, "train_vocab", lambda *a, **k: pytest.fail("vocabulary not cached"))
  assert pt.load_or_train_vocab(corpus, tmp_path, vocab_size=200).tokens == trained.tokens
  assert pt.load_or_train_vocab(corpus, tmp_path, vocab_file=path).tokens == vocab.tokens
  with pytest.raises(ValueError, match="special"):
    pt.Vocab(["a", "b"])


def test_special_ids_are_looked_up_by_name(corpus, vocab):
  """A Google-style vocab.txt ([PAD] 0, [unused0..], [UNK] 100, [CLS] 101, [SEP] 102, ...)."""
  rest = [t for t in vocab.tokens if t not in pt.SPECIAL_TOKENS]
  google = pt.Vocab(["[PAD]"] + [f"[unused{i}]" for i in range(99)]
                    + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"] + rest)
  assert (google.unk_id, google.cls_id, google.sep_id, google.mask_id) == (100, 101, 102, 103)
  arrays = pt.create_pretraining_arrays(corpus[:10], google, max_seq_length=32,
                                        max_predictions_per_seq=5, dupe_factor=1)
  assert np.all(arrays["input_ids"][:, 0] == 101)
  assert np.all((arrays["input_ids"] == 102).sum(1) == 2)
  assert np.any(arrays["input_ids"] == 103)


def test_cache(corpus, vocab, tmp_path, monkeypatch):
  kw = dict(max_seq_length=32, max_predictions_per_seq=5, dupe_factor=2)
  assert pt.cache_meta(corpus, vocab, tmp_path, **kw) is None
  made = pt.load_or_create(corpus, vocab, tmp_path, examples_per_shard=100, **kw)
  meta = pt.cache_meta(corpus, vocab, tmp_path, **kw)
  assert meta["examples"] == len(made["input_ids"]) and len(meta["shards"]) > 1
  (folder,) = tmp_path.glob("pretraining-*")
  assert sorted(p.name for p in folder.iterdir()) == sorted(meta["shards"] + ["meta.json"])

  def fail(*args, **kwargs):
    raise AssertionError("examples were made again instead of read from the cache")

  monkeypatch.setattr(pt, "create_pretraining_arrays", fail)
  again = pt.load_or_create(corpus, vocab, tmp_path, examples_per_shard=100, **kw)
  for k in pt.FEATURES:
    np.testing.assert_array_equal(made[k], again[k])
    assert made[k].dtype == again[k].dtype
  # Any change of text, vocabulary or parameter is a different cache entry.
  fp = pt.fingerprint(corpus, vocab, **kw)
  assert pt.fingerprint(corpus, vocab, **dict(kw, dupe_factor=3)) != fp
  assert pt.fingerprint(corpus, vocab, **dict(kw, do_whole_word_mask=True)) != fp
  assert pt.fingerprint(corpus[:-1], vocab, **kw) != fp
  assert pt.fingerprint(corpus, pt.Vocab(vocab.tokens[:-1]), **kw) != fp
  assert pt.fingerprint(corpus, pt.Vocab(vocab.tokens, lowercase=False), **kw) != fp
  assert pt.fingerprint(corpus, vocab, **dict(kw, random_seed=12345)) == fp  # the default
  with pytest.raises(AssertionError, match="made again"):
    pt.load_or_create(corpus, vocab, tmp_path, **dict(kw, random_seed=7))


def test_validation_documents_are_a_seeded_disjoint_sample_of_the_training_text():
  from lamb.data import bert_corpus  # pylint: disable=import-outside-toplevel
  docs = [[f"doc {i} sentence."] for i in range(50)]
  train, validation = bert_corpus.split_validation(docs, 5, seed=12345)
  assert len(train) == 45 and len(validation) == 5
  assert not {d[0] for d in train} & {d[0] for d in validation}
  assert bert_corpus.split_validation(docs, 5, seed=12345) == (train, validation)
  assert bert_corpus.split_validation(docs, 5, seed=1)[1] != validation
  with pytest.raises(ValueError, match="validation_documents=50"):
    bert_corpus.split_validation(docs, 50, seed=0)


def test_the_multiplier_choice_never_reads_the_reported_novel():
  """bert_multipliers evaluates on chapters of the training novels, each a chapter the runs do
  not train on; the reported novel ("Sense and Sensibility") is not part of it."""
  from experiments.configs import bert_multipliers  # pylint: disable=import-outside-toplevel
  from lamb.data import bert_corpus, janeausten  # pylint: disable=import-outside-toplevel
  config = bert_multipliers.get_config("cpu")
  assert config.data.validation_documents == bert_multipliers.VALIDATION_DOCUMENTS
  train_docs, held_out, _ = bert_corpus.documents(config.data)
  train, validation = bert_corpus.split_validation(
      train_docs, config.data.validation_documents, config.data.random_seed)
  assert not {tuple(d) for d in held_out} & {tuple(d) for d in validation}
  assert {tuple(d) for d in validation} <= {tuple(d) for d in train_docs}
  assert len(train) + len(validation) == len(train_docs)
  assert janeausten.HELD_OUT == config.data.held_out


def test_the_paper_scale_holds_out_a_seeded_random_sample_of_documents():
  from lamb.data import bert_corpus  # pylint: disable=import-outside-toplevel
  docs = [[f"document {i}."] for i in range(100)]  # say Wikipedia, then the books at the end
  train, held = bert_corpus.held_out_sample(docs, 10, seed=12345)
  assert len(train) == 90 and len(held) == 10
  assert sorted(train + held) == sorted(docs) and not set(map(tuple, train)) & set(map(tuple, held))
  positions = [docs.index(d) for d in held]
  assert positions == sorted(positions) and positions != list(range(90, 100))  # not the last
  assert bert_corpus.held_out_sample(docs, 10, seed=12345) == (train, held)
  assert bert_corpus.held_out_sample(docs, 10, seed=1)[1] != held
  for bad in (0, 100):
    with pytest.raises(ValueError, match="eval_documents"):
      bert_corpus.held_out_sample(docs, bad, seed=0)


# ---------------------------------------------------------------------------------------------
# Instances written offline and streamed back (lamb.data.pretraining_records): each batch the
# records at its stream positions, read whole; the same batches with worker processes.


@pytest.fixture(scope="module")
def instances(tmp_path_factory):
  """The tiny config's phase-1 instances (length 32) in 2 shards, written by the project's
  writer (lamb.data.pretraining_shards) from the Jane Austen novels."""
  from conftest import JANE_AUSTEN_MISSING  # pylint: disable=import-outside-toplevel
  if JANE_AUSTEN_MISSING:
    pytest.skip(JANE_AUSTEN_MISSING)
  from helpers import tiny_bert_config  # pylint: disable=import-outside-toplevel
  # pylint: disable=import-outside-toplevel
  from lamb.data import pretraining_records, pretraining_shards
  from lamb.train import phases
  config = tiny_bert_config.get_config()
  with config.unlocked():
    config.data.instance_shards = 2
  data = phases.configs(config)[0][1].data
  data_dir = tmp_path_factory.mktemp("instances")
  pretraining_shards.write(data, data_dir=data_dir, say=lambda _: None)
  return pretraining_records.Instances(data, data_dir)


def _reference_batch(instances, batch_size, *, seed, step, process_index, process_count, limit):
  """Batch `step` from its definition: global positions g of the process's rows, each epoch
  of `limit` records a grain index shuffle seeded shuffle_seed(seed) + epoch (4 rounds)."""
  from grain.experimental import index_shuffle  # pylint: disable=import-outside-toplevel
  from lamb.data import pretraining_records, streams  # pylint: disable=import-outside-toplevel
  source = instances._source("train")  # pylint: disable=protected-access
  first = (step * process_count + process_index) * batch_size
  rows = []
  for g in range(first, first + batch_size):
    epoch, i = divmod(g, limit)
    seed_e = (streams.shuffle_seed(seed) + epoch) % 2 ** 32
    rows.append(source[index_shuffle(i, max_index=limit - 1, seed=seed_e, rounds=4)])
  return pretraining_records.decode(rows, instances.max_seq_length, instances.max_predictions)


def _take(stream, n):
  try:
    return [next(stream) for _ in range(n)]
  finally:
    stream.close()


def test_streamed_batches_are_the_records_at_their_positions(instances):
  """Across epochs (40 records, 16 a global step), for a resumed share of two processes."""
  kw = dict(seed=3, process_index=1, process_count=2)
  got = _take(instances.train_batches(8, start_step=2, limit=40, **kw), 4)
  for k, batch in enumerate(got):
    want = _reference_batch(instances, 8, step=2 + k, limit=40, **kw)
    assert set(batch) == set(want)
    for feature in want:
      np.testing.assert_array_equal(batch[feature], want[feature], err_msg=feature)
      assert batch[feature].dtype == want[feature].dtype
  other = _reference_batch(instances, 8, step=2, limit=40, **dict(kw, seed=4))
  assert not np.array_equal(other["input_ids"], got[0]["input_ids"])  # the seed matters


def test_the_same_batches_with_0_and_2_worker_processes(instances):
  import multiprocessing  # pylint: disable=import-outside-toplevel
  kw = dict(seed=1, start_step=3, process_index=0, process_count=2, limit=40)
  threads = _take(instances.train_batches(8, **kw), 5)
  workers = instances.train_batches(8, workers=2, **kw)
  processes = _take(workers, 5)
  assert not multiprocessing.active_children()  # closing the stream ended its workers
  for a, b in zip(threads, processes):
    for feature in pt.FEATURES:
      np.testing.assert_array_equal(a[feature], b[feature], err_msg=feature)
  assert not np.array_equal(threads[0]["input_ids"], threads[1]["input_ids"])
  with pytest.raises(ValueError, match="input workers must be 0 .* got -1"):
    instances.train_batches(8, seed=0, workers=-1)
