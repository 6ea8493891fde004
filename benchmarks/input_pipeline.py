"""Input pipeline throughput per host, against the rate a host must sustain at paper scale.

BERT: sequences/s of pre-training instances of length 128 and 512, written small (the Jane
Austen novels, dupe_factor 1, 2 shards) by the project's writer (lamb.data.pretraining_shards)
into a temporary folder and streamed back by lamb.data.pretraining_records. ImageNet: images/s
of lamb.data.image_pipelines.imagenet2012's training stream (Inception crop from the JPEG,
resize to 224, flip, normalise) on synthetic 500x375 JPEGs held in memory.

Each at local batches 64 ... 1024, four ways, alternating within each repeat:
  - "2x batch": grain's per-example prefetch with a buffer of 2 x batch examples (the pipelines
    until now, rebuilt here),
  - "fixed 64": the same with a buffer of 64 examples,
  - "0 workers": the pipelines now (whole batches, a fixed number ahead) in this process,
  - "N workers": the same in N worker processes.
A figure is a median over repeats of the rate over a window of batches, timed after start-up
and after the batches made ahead meanwhile have been taken (the worker way first waits for all
its workers' buffers to fill, so that none is left holding some); "cpu" is this process's CPU
time per example (the workers' own is not in it). Ratios are of medians measured in this one
process. Beside them, what each host must deliver for the paper's fastest runs
(analysis/reported/) on 1024 TPU v3 chips = 256 hosts of 4 chips (lamb.train.cost_model).

    python -m benchmarks.input_pipeline [--batches 64,256,1024] [--workers 2] [--repeats 3]
                                        [--quick] [--append]

`--append` adds the tables to benchmarks/RESULTS.md; `--quick` is a smoke run (one repeat, two
batch sizes) that is never appended.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # pylint: disable=wrong-import-position

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
SEQUENCES = {128: 20, 512: 80}  # length -> max predictions (the paper's two phases)
BERT_WINDOW = 16384  # sequences timed per window (at least 4 batches)
IMAGE_WINDOW = 1024  # images timed per window (at least 2 batches)
SYNTHETIC_IMAGES = 256
READY_S = 1e-3  # a batch handed over faster than this was made before it was asked for
WAYS = ("2x batch", "fixed 64", "0 workers", "N workers")
SECTION = "## Input pipeline"
SECTION_INTRO = f"""{SECTION}

Examples per second one host's input pipeline delivers (`python -m benchmarks.input_pipeline`,
appended by it with `--append`): BERT pre-training instances written by the project's writer
(Jane Austen, 2 shards) and ImageNet's training pipeline on synthetic 500x375 JPEGs, at each
local batch, four ways: grain's per-example prefetch with a buffer of 2 x batch examples (the
pipelines before this section), the same with 64, the pipelines now (whole batches, a fixed
number ahead) in one process, and in worker processes. Each rate is a median over repeats of
the rate over a window timed after start-up and after what was made ahead meanwhile had been
taken (the worker way waits first for its workers' buffers to fill, so that none still holds
some); the ratios are of medians from the same invocation; cpu is the main process's CPU time
per example (workers' own excluded). The last table is what each host must deliver for the
paper's runs on 1024 TPU v3 chips (256 hosts of 4 chips).
"""


# ---------------------------------------------------------------------------------------------
# What a host must deliver for the paper's runs


def required_rates() -> list[dict]:
  """Per-host rates of Table 1's two fastest BERT rows and of ResNet-50 at 32K."""
  from analysis import reported  # pylint: disable=import-outside-toplevel
  from experiments.configs import _bert  # pylint: disable=import-outside-toplevel
  from lamb.train import cost_model, image_task  # pylint: disable=import-outside-toplevel
  hosts = cost_model.slice_from("tpu_v3", 1024).nodes
  table1, figures = reported.load(1), reported.figures()

  def cell(row, metric):
    return float(table1[(table1.row == row) & (table1.metric == metric)].value.iloc[0])

  def figure(quantity):
    return float(figures[figures.quantity == quantity].value.iloc[0])

  rows = []
  # Row 7: 32K in 15,625 steps, 14,063 at length 128 then 1,562 at 512 (Section 4.1).
  phases_32k = [(32768, figure("lamb_32k_steps_seq128"), 128),
                (32768, figure("lamb_32k_steps_seq512"), 512)]
  rows += _bert_rates("Table 1 row 7: 32K, 15,625 steps", phases_32k, 3600 * cell(7, "time_hours"),
                      hosts)
  # Row 8: 64K then 32K in 8,599 steps (76 minutes); the paper prints no split, the configs'
  # two_phase_steps gives 7,032 + 1,562 (8,594).
  mixed = [(p["overrides"]["batch_size"], p["overrides"]["num_steps"],
            p["overrides"]["data.max_seq_length"]) for p in _bert.phases("paper", 65536, 32768)]
  rows += _bert_rates("Table 1 row 8: 64K/32K, 8,599 steps", mixed, 3600 * cell(8, "time_hours"),
                      hosts)
  # ResNet-50: the paper gives no time of its own; Section 2 cites Ying et al. (2018) training
  # it "on ImageNet in 2.2 minutes" at 32K on a TPUv3 Pod. Table 5's budget is 90 epochs.
  images = image_task.STREAMS["imagenet2012"][1]
  epochs = float(reported.load(5).query("batch_size == 32768").epochs.iloc[0])
  rows.append(dict(run=f"ResNet-50 at 32K: {epochs:.0f} epochs of {images:,} images in 2.2 min "
                       "(the time the paper cites for Ying et al. 2018 at 32K)",
                   data="images 224", at_least=images * epochs / (2.2 * 60) / hosts,
                   by_tokens=None))
  return rows


def _bert_rates(run: str, phases: list, seconds: float, hosts: int) -> list[dict]:
  """Per phase: its sequences over the whole run's time (a floor: the phase had less), and over
  its share of the time if time went by tokens."""
  tokens = sum(b * s * length for b, s, length in phases)
  return [dict(run=run, data=f"BERT {length}", at_least=b * s / seconds / hosts,
               by_tokens=b * s / (seconds * b * s * length / tokens) / hosts)
          for b, s, length in phases]


# ---------------------------------------------------------------------------------------------
# Data


def write_instances(length: int, data_dir: Path):
  """Jane Austen instances of `length` (dupe_factor 1, 2 shards) by the project's writer."""
  # pylint: disable=import-outside-toplevel
  import ml_collections
  from lamb.data import pretraining_records, pretraining_shards
  data = ml_collections.ConfigDict(dict(
      name="janeausten", held_out="sensesensibility", text_dir="", vocab_file="",
      vocab_size=8192, eval_examples=64, train_examples=0, cache_dir="", max_seq_length=length,
      max_predictions_per_seq=SEQUENCES[length], masked_lm_prob=0.15, short_seq_prob=0.1,
      dupe_factor=1, random_seed=12345, do_whole_word_mask=False, instance_shards=2))
  pretraining_shards.write(data, data_dir=data_dir, say=lambda _: None)
  return pretraining_records.Instances(data, data_dir)


def synthetic_jpegs(count: int = SYNTHETIC_IMAGES):
  """grain MapDataset of {"image": JPEG bytes, "label"}: smooth 500x375 pictures with grain
  (ImageNet's typical size; smooth so that they compress like photographs, not noise)."""
  import grain  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  records = []
  for i in range(count):
    coarse = rng.uniform(0, 255, (1, 12, 16, 3)).astype(np.float32)
    image = tf.image.resize(coarse, (375, 500), method="bicubic")[0]
    image = tf.clip_by_value(image + rng.normal(0, 8, image.shape), 0, 255)
    records.append({"image": tf.io.encode_jpeg(tf.cast(image, tf.uint8), quality=90).numpy(),
                    "label": np.int64(i % 1000)})
  return grain.MapDataset.source(records)


# ---------------------------------------------------------------------------------------------
# Pipelines


class _PerExample:
  """The per-example pipeline these benchmarks compare against: grain maps each stream position
  to an example, prefetches `buffer` examples in 16 threads, batches after (as before)."""

  def __init__(self, records, example, batch_size: int, seed: int = 0):
    from lamb.data import streams  # pylint: disable=import-outside-toplevel
    self.records, self.example, self.batch_size = records, example, batch_size
    self.order = streams.epoch_order(len(records), seed)

  def __call__(self, j: int):
    return self.example(self.records[self.order[j]], j)


class per_example:  # pylint: disable=invalid-name  (used as a function)
  """Iterator of `finish(batch)` of that pipeline; close() ends its threads."""

  def __init__(self, records, example, batch_size: int, buffer: int, finish=None):
    import grain  # pylint: disable=import-outside-toplevel
    from lamb.data import streams  # pylint: disable=import-outside-toplevel
    local = grain.MapDataset.range(0, streams.ENDLESS).map(
        _PerExample(records, example, batch_size))
    prefetched = local.to_iter_dataset(grain.ReadOptions(num_threads=16,
                                                         prefetch_buffer_size=buffer))
    self.batches = iter(prefetched.batch(batch_size, drop_remainder=True))
    self.finish = finish or (lambda batch: batch)

  def __iter__(self):
    return self

  def __next__(self):
    return self.finish(next(self.batches))

  def close(self):
    self.batches.close()


def bert_ways(instances, workers: int) -> dict:
  from lamb.data import pretraining_records  # pylint: disable=import-outside-toplevel
  length, predictions = instances.max_seq_length, instances.max_predictions
  records = instances._source("train")  # pylint: disable=protected-access

  def raw(record, g):  # pylint: disable=unused-argument
    return np.frombuffer(record, np.uint8)

  def decode(rows):
    return pretraining_records.decode(rows, length, predictions)

  return {
      "2x batch": lambda b: per_example(records, raw, b, max(2 * b, 16), decode),
      "fixed 64": lambda b: per_example(records, raw, b, 64, decode),
      "0 workers": lambda b: instances.train_batches(b, seed=0),
      "N workers": lambda b: instances.train_batches(b, seed=0, workers=workers),
  }


def image_ways(records, workers: int) -> dict:
  from lamb.data import image_pipelines as ip  # pylint: disable=import-outside-toplevel
  maps = ip.ImageNetMaps(0, "float32")
  return {
      "2x batch": lambda b: per_example(records, maps.train_example, b, max(2 * b, 16)),
      "fixed 64": lambda b: per_example(records, maps.train_example, b, 64),
      "0 workers": lambda b: ip.imagenet2012("train", batch_size=b, records=records),
      "N workers": lambda b: ip.imagenet2012("train", batch_size=b, records=records,
                                             workers=workers),
  }


# ---------------------------------------------------------------------------------------------
# Timing


def time_window(make, batch_size: int, window: int, warmup: int, fill_s: float = 0.0,
                producers: int = 1, ready_s: float = READY_S) -> tuple[float, float, str]:
  """(examples/s, this process's CPU us per example, digest of the first batch) of a fresh
  pipeline over a window of batches, timed once it runs steadily: after `warmup` batches
  (start-up: worker processes, tracing), `fill_s` seconds for every buffer to fill (a worker
  that started late must not still hold made-ahead batches when the clock starts), and the
  batches made ahead meanwhile taken (a batch handed over within `ready_s` was ready). The
  window is at least 2 batches per `producers` (the batches in the making at once)."""
  stream = make(batch_size)
  try:
    first = digest(next(stream))
    for _ in range(warmup - 1):
      next(stream)
    time.sleep(fill_s)
    _drain_made_ahead(stream, ready_s)
    count = max(4, math.ceil(window / batch_size), 2 * producers)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
      next(stream)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
  finally:
    stream.close()
  return count * batch_size / seconds, 1e6 * cpu / (count * batch_size), first


def _drain_made_ahead(stream, ready_s: float, most: int = 64) -> None:
  """Takes batches until one has to be waited for: those before it were made ahead (timing
  them would time nothing)."""
  for _ in range(most):
    start = time.perf_counter()
    next(stream)
    if time.perf_counter() - start > ready_s:
      return


def worker_buffer(workers: int) -> int:
  """Batches the worker way can hold made: per worker its thread prefetch, its queue, one in
  hand and one in the main process's interleave (lamb.data.streams, grain's mp_prefetch)."""
  from lamb.data import streams  # pylint: disable=import-outside-toplevel
  return workers * (streams.BATCHES_AHEAD + streams.WORKER_BUFFER + 2)


def measure(ways: dict, batches: list, repeats: int, window: int, workers: int,
            say=print) -> dict:
  """{(way, batch): (median examples/s, median cpu us/example)}; the first batches of the four
  ways compared for equality at each batch size (they must be the same stream)."""
  from lamb.data import streams  # pylint: disable=import-outside-toplevel
  runs = {(w, b): [] for w in ways for b in batches}
  for b in batches:
    for r in range(repeats):
      firsts = {}
      for way, make in ways.items():
        kw = dict(warmup=1, producers=streams.BATCHES_AHEAD)
        if way == "N workers":  # its buffers fill at about the rate of the way before
          batch_s = b / runs["0 workers", b][-1][0]
          # (a big batch made ahead takes milliseconds to hand over from shared memory)
          kw = dict(warmup=1 + workers, producers=workers * streams.BATCHES_AHEAD,
                    fill_s=min(60.0, 1.5 * worker_buffer(workers) * batch_s),
                    ready_s=max(READY_S, 0.2 * batch_s))
        rate, cpu, firsts[way] = time_window(make, b, window, **kw)
        runs[way, b].append((rate, cpu))
        say(f"  batch {b} repeat {r + 1}: {way:<9} {rate:9.0f}/s  cpu {cpu:7.0f} us")
      _check_same(firsts, b)
  return {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v))
          for k, v in runs.items()}


def digest(batch: dict) -> str:
  h = hashlib.sha256()
  for k in sorted(batch):
    a = np.ascontiguousarray(batch[k])
    h.update(f"{k} {a.dtype} {a.shape}".encode() + a.tobytes())
  return h.hexdigest()


def _check_same(firsts: dict, batch_size: int) -> None:
  different = [way for way, d in firsts.items() if d != firsts["0 workers"]]
  if different:
    raise AssertionError(f"batch {batch_size}: the first batch of {', '.join(different)} "
                         "differs from the current pipeline's")


# ---------------------------------------------------------------------------------------------
# Report


def machine() -> str:
  import grain  # pylint: disable=import-outside-toplevel
  from benchmarks.machine import cpu_model  # pylint: disable=import-outside-toplevel
  return (f"{cpu_model()}, {os.cpu_count()} cores, grain {grain.__version__}, "
          f"Python {platform.python_version()}")


def rate_table(title: str, unit: str, results: dict, batches: list, workers: int) -> list[str]:
  lines = [f"| {title} | local batch | 2x batch {unit} | fixed 64 | 0 workers | {workers} workers "
           "| fixed 64 / 2x batch | 0 workers / 2x batch | workers / 0 workers "
           "| cpu us/example: 2x batch, fixed 64, 0 workers, workers |",
           "|---|---|---|---|---|---|---|---|---|---|"]
  for b in batches:
    rate = {w: results[w, b][0] for w in WAYS}
    cpu = ", ".join(f"{results[w, b][1]:.0f}" for w in WAYS)
    lines.append(f"| | {b} | {rate['2x batch']:,.0f} | {rate['fixed 64']:,.0f} | "
                 f"{rate['0 workers']:,.0f} | {rate['N workers']:,.0f} | "
                 f"{rate['fixed 64'] / rate['2x batch']:.2f} | "
                 f"{rate['0 workers'] / rate['2x batch']:.2f} | "
                 f"{rate['N workers'] / rate['0 workers']:.2f} | {cpu} |")
  return lines


def required_table(rows: list[dict]) -> list[str]:
  lines = ["| paper run (1024 TPU v3 chips = 256 hosts) | data | per host, at least | "
           "per host, if time went by tokens |", "|---|---|---|---|"]
  for r in rows:
    tokens = f"{r['by_tokens']:,.0f}/s" if r["by_tokens"] is not None else "-"
    lines.append(f"| {r['run']} | {r['data']} | {r['at_least']:,.0f}/s | {tokens} |")
  return lines


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batches", default="64,256,1024", help="local batch sizes")
  parser.add_argument("--workers", type=int, default=2, help="worker processes of the N way")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--quick", action="store_true", help="a smoke run, never appended")
  parser.add_argument("--append", action="store_true", help="add the tables to RESULTS.md")
  args = parser.parse_args(argv)
  batches = [int(b) for b in args.batches.split(",")]
  repeats = args.repeats
  if args.quick:
    batches, repeats = batches[:2], 1
  if args.workers < 1 or repeats < 1 or min(batches) < 1:
    parser.error("--workers, --repeats and every batch must be positive")
  from absl import flags  # pylint: disable=import-outside-toplevel
  flags.FLAGS.mark_as_parsed()  # grain's workers read its flags; this is not an absl program

  load = os.getloadavg()[0]  # the machine is shared: say how busy it was
  required = required_rates()
  tables = []
  with tempfile.TemporaryDirectory(prefix="input_pipeline-") as tmp:
    for length in SEQUENCES:
      print(f"BERT, length {length}: writing instances ...", flush=True)
      instances = write_instances(length, Path(tmp))
      usable = [b for b in batches if b <= instances.num_examples()]
      print(f"  {instances.num_examples()} training instances", flush=True)
      results = measure(bert_ways(instances, args.workers), usable, repeats, BERT_WINDOW,
                        args.workers)
      tables.append(rate_table(f"BERT {length}", "seq/s", results, usable, args.workers))
  print("ImageNet pipeline on synthetic JPEGs ...", flush=True)
  records = synthetic_jpegs()
  results = measure(image_ways(records, args.workers), batches, repeats, IMAGE_WINDOW,
                    args.workers)
  tables.append(rate_table("ImageNet train", "img/s", results, batches, args.workers))

  command = "python -m benchmarks.input_pipeline " + " ".join(
      (argv if argv is not None else sys.argv[1:]))
  text = [f"### {datetime.date.today().isoformat()}: `{command.strip()}`", "",
          f"Machine: {machine()}; load average {load:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end; {repeats} repeats, medians.", ""]
  for table in tables:
    text += table + [""]
  text += required_table(required) + [""]
  print()
  print("\n".join(text))
  if args.append and not args.quick:
    existing = RESULTS.read_text() if RESULTS.exists() else ""
    with open(RESULTS, "a") as f:
      f.write(("" if SECTION in existing else "\n" + SECTION_INTRO) + "\n" + "\n".join(text))
  return 0


if __name__ == "__main__":
  sys.exit(main())
