"""BERT's pre-training instances written offline in shards and streamed back (Section 4.1 at
paper scale, tested on the Jane Austen corpus): the writer's output does not depend on how many
workers write it, a killed writer resumes, the reader refuses what it cannot trust, training
batches are a pure function of (seed, step), and two training processes killed and resumed
train like one uninterrupted process."""
from __future__ import annotations

import signal

import numpy as np
import pytest

from conftest import (INSTRUMENTED_RUN, JANE_AUSTEN_MISSING, ROOT, cli_env, finish, free_port,
                      read_json, run_cli, start_cli, stop, train_losses, wait_for)
from helpers import tiny_bert_config
from lamb.data import pretraining, pretraining_records, pretraining_shards
from lamb.data.errors import DatasetNotFoundError
from lamb.train import phases

pytestmark = pytest.mark.skipif(bool(JANE_AUSTEN_MISSING), reason=JANE_AUSTEN_MISSING)
WRITER = ROOT / "experiments" / "write_pretraining_data.py"
TINY = ROOT / "tests" / "helpers" / "tiny_bert_config.py"
SHARDS = 3


def tiny_data(shards: int = SHARDS, phase: int = 0):
  config = tiny_bert_config.get_config()
  with config.unlocked():
    config.data.instance_shards = shards
  return phases.configs(config)[phase][1].data


def folder_bytes(path) -> dict:
  return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
  """The tiny config's phase-1 instances, written by one worker."""
  data_dir = tmp_path_factory.mktemp("one_worker")
  path = pretraining_shards.write(tiny_data(), data_dir=data_dir, say=lambda _: None)
  return data_dir, path


def test_records_round_trip_exactly():
  rng = np.random.default_rng(0)
  arrays = {"input_ids": rng.integers(0, 30522, (5, 8)), "input_mask": rng.integers(0, 2, (5, 8)),
            "segment_ids": rng.integers(0, 2, (5, 8)),
            "masked_lm_positions": rng.integers(0, 8, (5, 3)),
            "masked_lm_ids": rng.integers(0, 30522, (5, 3)),
            "masked_lm_weights": rng.random((5, 3)).astype(np.float32),
            "next_sentence_labels": rng.integers(0, 2, (5,))}
  rows = pretraining_records.encode(arrays, 8, 3)
  assert len(rows) == 5 and {len(r) for r in rows} == {4 * (3 * 8 + 3 * 3 + 1)}
  back = pretraining_records.decode(rows, 8, 3)
  for feature in pretraining.FEATURES:
    np.testing.assert_array_equal(back[feature], arrays[feature], err_msg=feature)
    assert back[feature].dtype == (np.float32 if feature == "masked_lm_weights" else np.int32)


def test_two_workers_write_the_bytes_of_one(written, tmp_path):
  _, one = written
  data = tiny_data()
  for worker in (1, 0):  # order does not matter either
    two = pretraining_shards.write(data, worker=worker, num_workers=2, data_dir=tmp_path,
                                   say=lambda _: None)
  assert two.name == one.name
  assert folder_bytes(two) == folder_bytes(one)


def test_each_shard_is_the_reference_recipe_on_its_documents(written):
  data_dir, path = written
  data = tiny_data()
  instances = pretraining_records.Instances(data, data_dir)
  train_docs, eval_docs = pretraining_shards.shard_documents(data, 0, 1)
  p = pretraining_records.params(data)
  offset = 0
  source = instances._source("train")  # pylint: disable=protected-access
  for s in range(SHARDS):
    # independently: the in-memory recipe on every third training chapter, with shard s's seed
    want = pretraining.create_pretraining_arrays(
        train_docs[s::SHARDS], instances.vocab,
        **dict(p, random_seed=pretraining_shards.shard_seed(p["random_seed"], s)))
    n = len(want["input_ids"])
    assert n == instances.shard_examples["train"][s] > 100
    got = pretraining_records.decode([source[i] for i in range(offset, offset + n)],
                                     p["max_seq_length"], p["max_predictions_per_seq"])
    offset += n
    for feature in pretraining.FEATURES:
      np.testing.assert_array_equal(got[feature], want[feature], err_msg=f"shard {s} {feature}")
  assert sum(len(d) for d in eval_docs) and instances.num_examples("eval") > 0
  # the masked-token counts behind the unigram level are those of the training records
  train_counts = instances.train_counts()
  every = pretraining_records.decode([source[i] for i in range(len(source))],
                                     p["max_seq_length"], p["max_predictions_per_seq"])
  want_counts = np.bincount(every["masked_lm_ids"].ravel(),
                            weights=every["masked_lm_weights"].ravel(), minlength=len(train_counts))
  np.testing.assert_array_equal(train_counts, want_counts)


def test_a_killed_writer_is_refused_then_resumes(written, tmp_path, monkeypatch):
  _, one = written
  data = tiny_data()
  real = pretraining_shards.np.savez

  def crash_in_shard_1(f, **arrays):
    if "00001-of" in str(f.name):
      raise KeyboardInterrupt("killed while writing shard 1")
    return real(f, **arrays)

  monkeypatch.setattr(pretraining_shards.np, "savez", crash_in_shard_1)
  with pytest.raises(KeyboardInterrupt):
    pretraining_shards.write(data, data_dir=tmp_path, say=lambda _: None)
  with pytest.raises(DatasetNotFoundError, match=r"2 of the 3 shards .* not finished \(e.g. "
                                                 r"shard 1\); run the writer again"):
    pretraining_records.Instances(data, tmp_path)
  monkeypatch.setattr(pretraining_shards.np, "savez", real)
  folder = pretraining_records.folder(data, tmp_path)
  assert [p.name for p in folder.iterdir() if ".tmp-" in p.name], "the kill left a temporary"
  lines = []
  path = pretraining_shards.write(data, data_dir=tmp_path, say=lines.append)
  assert "1 already finished" in lines[0] and len(lines) == 4  # shards 1 and 2, then the tally
  assert "3 of 3 shards finished (complete" in lines[-1]
  assert folder_bytes(path) == folder_bytes(one)  # the killed shard's temporaries removed too


def test_the_reader_refuses_what_it_cannot_trust(written, tmp_path):
  data_dir, path = written
  data = tiny_data()
  with pytest.raises(DatasetNotFoundError, match="no BERT pre-training instances of length 32 "
                                                 ".* write them first: python experiments/"
                                                 "write_pretraining_data.py"):
    pretraining_records.Instances(data, tmp_path)
  other = tiny_data(shards=2)  # another spec: another folder, never this one
  assert pretraining_records.folder(other, data_dir) != path
  with pytest.raises(DatasetNotFoundError):
    pretraining_records.Instances(other, data_dir)
  copy = tmp_path / "copy"
  copy.mkdir()
  target = pretraining_records.folder(data, copy)
  target.mkdir(parents=True)
  for name, content in folder_bytes(path).items():
    (target / name).write_bytes(content)
  marker = target / pretraining_records.shard_name("shard", 2, SHARDS, "json")
  marker.write_text(marker.read_text().replace('"train": ', '"train": 1'))
  with pytest.raises(ValueError, match="the train files hold .* records, the shards' markers say"):
    pretraining_records.Instances(data, copy).train_batches(8, seed=0)
  manifest = target / "manifest.json"
  manifest.write_text(manifest.read_text().replace('"dupe_factor": 1', '"dupe_factor": 2'))
  with pytest.raises(ValueError, match="was written for other data"):
    pretraining_records.Instances(data, copy)


def test_training_batches_are_a_function_of_seed_and_step(written):
  data_dir, _ = written
  instances = pretraining_records.Instances(tiny_data(), data_dir)
  take = lambda it, n: [next(it) for _ in range(n)]
  whole = take(instances.train_batches(8, seed=3), 6)
  resumed = take(instances.train_batches(8, seed=3, start_step=4), 2)
  shares = [take(instances.train_batches(4, seed=3, process_index=p, process_count=2), 6)
            for p in range(2)]
  for step in range(6):
    for feature in pretraining.FEATURES:
      joined = np.concatenate([shares[0][step][feature], shares[1][step][feature]])
      np.testing.assert_array_equal(joined, whole[step][feature])
      if step >= 4:
        np.testing.assert_array_equal(resumed[step - 4][feature], whole[step][feature])
  other_seed = take(instances.train_batches(8, seed=4), 1)[0]
  assert not np.array_equal(other_seed["input_ids"], whole[0]["input_ids"])
  # with `limit`, an epoch reads each of the first `limit` instances exactly once
  limited = take(instances.train_batches(8, seed=3, limit=32), 4)
  source = instances._source("train")  # pylint: disable=protected-access
  first = pretraining_records.decode([source[i] for i in range(32)], instances.max_seq_length,
                                     instances.max_predictions)["input_ids"]
  seen = np.concatenate([b["input_ids"] for b in limited])
  assert sorted(map(bytes, seen)) == sorted(map(bytes, first))


def test_eval_sample_is_seeded_and_spread_over_shards(written):
  data_dir, _ = written
  instances = pretraining_records.Instances(tiny_data(), data_dir)
  full = instances.eval_arrays()
  sample = instances.eval_arrays(64)
  assert len(full["input_ids"]) == instances.num_examples("eval")
  assert len(sample["input_ids"]) == 64
  np.testing.assert_array_equal(sample["input_ids"], instances.eval_arrays(64)["input_ids"])
  rows = {bytes(r): i for i, r in enumerate(full["input_ids"])}
  where = [rows[bytes(r)] for r in sample["input_ids"]]
  assert where == sorted(where) and where[-1] > instances.shard_examples["eval"][0]


def test_writer_command_line_refuses_bad_input_and_writes_nothing(tmp_path, capsys):
  from experiments import write_pretraining_data  # pylint: disable=import-outside-toplevel
  cases = [
      (["--config=table7"], "not a BERT pre-training config"),
      ([f"--config={TINY}"], "has no instance_shards"),
      ([f"--config={TINY}", "--worker=2", "--num_workers=2"],
       "--worker=2 must lie in [0, --num_workers=2)"),
      (["--config=table4:paper"], "needs BERT's uncased vocab.txt"),
      (["--config=table4:paper", "--bogus=1"], "Unknown command line flag 'bogus'"),
  ]
  for args, message in cases:
    code = write_pretraining_data.main([str(WRITER)] + args + [f"--data_dir={tmp_path}"])
    err = capsys.readouterr().err
    assert code == 2, (args, err)
    assert message in err and len(err.strip().splitlines()) == 1, err
  assert not list(tmp_path.iterdir())
  assert write_pretraining_data.main([str(WRITER), "--help"]) == 0
  assert "--worker=i --num_workers=N" in capsys.readouterr().out
  # and as a command, with a --config.* override: the exit status and the one line
  proc = run_cli([f"--config={TINY}", "--config.data.instance_shards=2", "--worker=5",
                  "--num_workers=2", f"--data_dir={tmp_path}"], script=WRITER, timeout=120)
  assert proc.returncode == 2 and "--worker=5 must lie in [0, --num_workers=2)" in proc.stderr
  assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
  assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_two_writers_then_two_trainers_killed_and_resumed(tmp_path):
  """End to end through both command lines: two writer processes (one SIGKILLed after its first
  shard and started again), then two training processes joined by jax.distributed, SIGKILLed
  after the checkpoint of step 4 and started again, against one uninterrupted process with two
  devices."""
  data_dir = tmp_path / "data"
  data_dir.mkdir()
  shards = ["--config.data.instance_shards=4", f"--data_dir={data_dir}"]
  writers = [start_cli([f"--config={TINY}", *shards, f"--worker={w}", "--num_workers=2"],
                       script=WRITER, log=tmp_path / f"writer{w}.log") for w in range(2)]
  try:
    wait_for(lambda: "shard 1:" in writers[1].log_path.read_text(), 180, "worker 1's first shard",
             writers[1])
    writers[1].send_signal(signal.SIGKILL)
    assert finish(writers[0], timeout=300) and writers[0].returncode == 0
  finally:
    stop(*writers)
  again = run_cli([f"--config={TINY}", *shards, "--worker=1", "--num_workers=2"], script=WRITER)
  assert again.returncode == 0, again.stdout + again.stderr
  assert "already finished" in again.stdout

  reference = tmp_path / "reference"
  proc = run_cli([f"--config={TINY}", *shards], results_dir=reference, env=cli_env(devices=2))
  assert proc.returncode == 0, proc.stdout + proc.stderr
  results, port = tmp_path / "results", free_port()

  def start_trainers(tag, **env):
    return [start_cli([f"--config={TINY}", *shards, f"--coordinator_address=127.0.0.1:{port}",
                       "--num_processes=2", f"--process_id={i}"], results_dir=results,
                      env=cli_env(devices=1, **env), script=INSTRUMENTED_RUN,
                      log=tmp_path / f"{tag}{i}.log") for i in range(2)]

  run = results / "tiny_bert" / "cpu" / "run"
  killed = start_trainers("killed", LAMB_TEST_PAUSE_AT_STEP=4)
  try:
    for p in killed:
      wait_for(lambda p=p: "pausing" in p.log_path.read_text()
               and (run / "checkpoints" / "4").is_dir(), 240, "the checkpoint of step 4", p)
    for p in killed:
      p.send_signal(signal.SIGKILL)
  finally:
    stop(*killed)
  assert not (run / "summary.json").exists()
  port = free_port()
  resumed = start_trainers("resumed")
  try:
    outputs = [finish(p, timeout=300) for p in resumed]
  finally:
    stop(*resumed)
  for p, out in zip(resumed, outputs):
    assert p.returncode == 0, out[-3000:]
  summary, want = read_json(run / "summary.json"), read_json(
      reference / "tiny_bert" / "cpu" / "run" / "summary.json")
  assert summary["resumed_from_step"] == 4 and summary["process_count"] == 2
  assert "instances written offline in 4 shards" in summary["data"]
  got, ref = train_losses(run), train_losses(reference / "tiny_bert" / "cpu" / "run")
  assert len(got) == len(ref) == 5
  np.testing.assert_allclose(got, ref, rtol=1e-5)
  for key in ("masked_lm_loss", "next_sentence_loss", "unigram_masked_lm_accuracy"):
    assert summary["final"][key] == pytest.approx(want["final"][key], rel=1e-5), key


def test_the_task_streams_each_process_its_share_of_the_global_batch(written):
  """bert_tasks over written instances: Task.train_batches takes the global batch, and the
  shares of two processes are its rows (the runner's contract, as for in-memory data)."""
  from lamb.train import tasks  # pylint: disable=import-outside-toplevel
  data_dir, _ = written
  config = tiny_bert_config.get_config()
  with config.unlocked():
    config.data.instance_shards = SHARDS
  task = tasks.build(phases.configs(config)[0][1], data_dir)
  assert task.train_arrays == {} and task.num_train_examples == 512  # data.train_examples
  assert len(task.eval_arrays["input_ids"]) == 64 and task.eval_split == "held-out"
  whole = next(task.train_batches(16, seed=1, start_step=2))
  shares = [next(task.train_batches(16, seed=1, start_step=2, process_index=p, process_count=2))
            for p in range(2)]
  assert len(shares[0]["input_ids"]) == 8
  np.testing.assert_array_equal(np.concatenate([s["input_ids"] for s in shares]),
                                whole["input_ids"])


@pytest.mark.slow
def test_sharded_instances_train_through_the_runner(written):
  """run.py reads the written instances of both phases (one process; the two-process test
  above is the thorough one)."""
  data_dir, _ = written
  for phase in (0, 1):  # the runner needs both phases' instances (the module's are phase 1's)
    pretraining_shards.write(tiny_data(phase=phase), data_dir=data_dir, say=lambda _: None)
  results = data_dir / "results"
  proc = run_cli([f"--config={TINY}", f"--config.data.instance_shards={SHARDS}",
                  f"--data_dir={data_dir}"], results_dir=results)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  summary = read_json(results / "tiny_bert" / "cpu" / "run" / "summary.json")
  assert summary["status"] == "completed" and summary["total_steps"] == 5
  assert summary["final"]["examples"] == 64
  assert 0 < summary["final"]["unigram_masked_lm_accuracy"] < 0.5
  assert f"instances written offline in {SHARDS} shards" in summary["data"]


def test_paper_corpus_from_tfds_and_book_files(written, tmp_path):
  """The paper's corpus path (TFDS Wikipedia, mocked, plus BERT-format book files): each shard
  reads its part of both, and eval_documents are held out across the shards."""
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  from experiments.configs import table4  # pylint: disable=import-outside-toplevel
  from lamb.data import janeausten  # pylint: disable=import-outside-toplevel
  _, one = written
  train_docs, _ = pretraining_shards.shard_documents(tiny_data(), 0, 1)
  for i in range(3):
    janeausten.write_text_file(train_docs[10 * i:10 * (i + 1)], tmp_path / f"book{i}.txt")
  (tmp_path / "vocab.txt").write_bytes((one / "vocab.txt").read_bytes())
  config = table4.get_config("paper")
  with config.unlocked():
    config.data.update(vocab_file=str(tmp_path / "vocab.txt"), text_glob=f"{tmp_path}/book*.txt",
                       instance_shards=3, eval_documents=6, dupe_factor=1)
  data = phases.configs(config)[0][1].data
  with tfds.testing.mock_data(num_examples=12):
    articles = [len(pretraining_shards.shard_documents(data, s, 3, tmp_path)[0]) for s in range(3)]
    path = pretraining_shards.write(data, data_dir=tmp_path, say=lambda _: None)
  markers = [read_json(path / pretraining_records.shard_name("shard", s, 3, "json"))
             for s in range(3)]
  assert [m["documents"]["eval"] for m in markers] == [2, 2, 2]
  assert [m["documents"]["train"] for m in markers] == articles
  instances = pretraining_records.Instances(data, tmp_path)
  assert instances.max_seq_length == 128 and instances.num_examples() > 0
  assert "TFDS wikipedia/20190301.en" in instances.description
  batch = next(instances.train_batches(4, seed=0))
  assert batch["input_ids"].shape == (4, 128) and (batch["input_ids"][:, 0] == 2).all()  # [CLS]
