"""Shared pieces of the runner / training-loop tests: the tiny command line, subprocess helpers,
result-file readers, and one baseline run that several test files compare against.

Every training here is a few steps of LeNet-5 on a 2048-example slice of real MNIST; one such
run costs ~10-15 s on 2 CPU cores, almost all of it start-up (TensorFlow via clu) and XLA
compilation, so runs are shared through fixtures wherever a test only reads them.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import jax
import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")  # in-process jax tests, before jax is imported
# The command-line runs of the suite share one persistent compilation cache of their own (not
# the user's), so each program of the tiny runs is compiled once per session.
os.environ.setdefault("LAMB_COMPILATION_CACHE", tempfile.mkdtemp(prefix="lamb-test-jax-cache-"))

ROOT = Path(__file__).resolve().parents[1]
RUN_PY = ROOT / "experiments" / "run.py"
HELPERS = Path(__file__).resolve().parent / "helpers"
INSTRUMENTED_RUN = HELPERS / "instrumented_run.py"



def _jane_austen() -> str:
  """'' when the Jane Austen novels are there or could be fetched (apt-get download, 1.6 MB,
  once per machine, as the first BERT run would), else why not: the BERT tests skip with it."""
  from lamb.data import janeausten  # pylint: disable=import-outside-toplevel
  from lamb.data.errors import DatasetNotFoundError  # pylint: disable=import-outside-toplevel
  if janeausten._package_dir(None) is not None:  # pylint: disable=protected-access
    return ""
  try:
    janeausten.fetch()
    return ""
  except (DatasetNotFoundError, OSError) as e:
    return f"Jane Austen novels ({janeausten.PACKAGE}) not installed and not fetchable: {e}"


JANE_AUSTEN_MISSING = _jane_austen()

RUN = "lamb_lr0.01_seed0"  # the one run of table7's sweep that most tests train
# 12 steps of batch 128 on 2048 examples (16 steps/epoch): checkpoints every 4 steps
# (0.25 epoch), one evaluation at the end on 1000 test images, trust ratios at steps 1 and 12.
TINY = {"num_steps": 12, "batch_size": 128, "checkpoint_every_epochs": 0.25,
        "data.train_examples": 2048, "data.eval_examples": 1000}
TINY_STEPS = 12


def tiny_table7_config(**changes):
  """table7's LeNet-5 on MNIST (its cpu config, no sweep) cut to TINY, with `changes` (dotted
  paths) on top: one run's config for tests that call the trainer directly."""
  import importlib  # pylint: disable=import-outside-toplevel
  config = importlib.import_module("experiments.configs.table7").get_config("cpu")
  with config.unlocked():
    for key, value in {**TINY, **changes}.items():
      node = config
      *parents, leaf = key.split(".")
      for part in parents:
        node = node[part]
      node[leaf] = value
    del config["sweep"]
  return config


def tiny_args(only: str | None = f"^{RUN}$", **overrides) -> list:
  """`--config=table7` and the tiny overrides (plus `overrides`, dots as `__`), `--only`."""
  values = dict(TINY)
  values.update({k.replace("__", "."): v for k, v in overrides.items()})
  args = ["--config=table7"] + [f"--config.{k}={v}" for k, v in values.items()]
  return args + ([f"--only={only}"] if only else [])


def cli_env(devices: int | None = None, **extra) -> dict:
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1")
  env.pop("XLA_FLAGS", None)
  if devices:
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  env.update({k: str(v) for k, v in extra.items()})
  return env


def run_cli(args, *, results_dir=None, env=None, script=RUN_PY, timeout=240, module=None):
  """`python experiments/run.py ARGS [--results_dir=...]`, captured, as a CompletedProcess."""
  cmd = [sys.executable] + (["-m", module] if module else [str(script)]) + [str(a) for a in args]
  if results_dir is not None:
    cmd.append(f"--results_dir={results_dir}")
  return subprocess.run(cmd, cwd=ROOT, env=env or cli_env(), capture_output=True, text=True,
                        timeout=timeout)


def start_cli(args, *, results_dir=None, env=None, script=RUN_PY, log: Path):
  """Like run_cli but in the background; stdout and stderr go to `log` (no pipe to fill)."""
  cmd = [sys.executable, str(script)] + [str(a) for a in args]
  if results_dir is not None:
    cmd.append(f"--results_dir={results_dir}")
  out = open(log, "w")
  proc = subprocess.Popen(cmd, cwd=ROOT, env=env or cli_env(), stdout=out,
                          stderr=subprocess.STDOUT, text=True)
  proc.log_path, proc.log_file = Path(log), out
  return proc


def finish(proc, timeout=240) -> str:
  """Waits for a start_cli process (killing it on timeout) and returns its output."""
  try:
    proc.wait(timeout=timeout)
  except subprocess.TimeoutExpired:
    proc.kill()
    proc.wait()
  proc.log_file.close()
  return proc.log_path.read_text()


def stop(*procs):
  for proc in procs:
    if proc.poll() is None:
      proc.kill()
      proc.wait()
    proc.log_file.close()


def wait_for(predicate, timeout: float, what: str, proc=None):
  deadline = time.time() + timeout
  while time.time() < deadline:
    if predicate():
      return
    if proc is not None and proc.poll() is not None:
      raise AssertionError(f"process exited ({proc.returncode}) before {what}:\n"
                           + proc.log_path.read_text()[-3000:])
    time.sleep(0.05)
  raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def kill_after_checkpoint(proc, ckpt: Path, timeout: float = 180) -> None:
  """SIGKILLs an instrumented run (LAMB_TEST_PAUSE_AT_STEP) once checkpoint folder `ckpt` is on
  disk and the runner says it is pausing after it (save() has returned)."""
  try:
    wait_for(lambda: ckpt.is_dir() and "pausing" in proc.log_path.read_text(), timeout,
             f"checkpoint {ckpt}", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
  finally:
    stop(proc)


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def run_dir(results_dir, name: str = RUN, scale: str = "cpu") -> Path:
  return Path(results_dir) / "table7" / scale / name


def read_json(path) -> dict:
  return json.loads(Path(path).read_text())


def read_metrics(run_path) -> list:
  lines = (Path(run_path) / "metrics.jsonl").read_text().splitlines()
  return [json.loads(line) for line in lines if line.strip()]


def train_records(run_path) -> list:
  return [r for r in read_metrics(run_path) if r["split"] == "train"]


def eval_records(run_path) -> list:
  return [r for r in read_metrics(run_path) if r["split"] == "eval"]


def train_losses(run_path) -> list:
  """[(step, loss)] of the train records, in file order."""
  return [(r["step"], r["loss"]) for r in train_records(run_path)]


def assert_close_losses(got, want, rtol, what=""):
  got_steps, want_steps = [s for s, _ in got], [s for s, _ in want]
  assert got_steps == want_steps, f"{what}: train steps {got_steps} != {want_steps}"
  for (step, a), (_, b) in zip(got, want):
    assert math.isfinite(a) and abs(a - b) <= rtol * abs(b), \
        f"{what}: step {step} loss {a!r} vs {b!r} (rel {abs(a - b) / abs(b):.2e} > {rtol:g})"


def tree_bytes(root) -> dict:
  """{relative path: bytes} of every file under `root`."""
  root = Path(root)
  return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def assert_valid_run(path, steps: int = TINY_STEPS):
  """A completed run: summary says so, metrics hold train steps 1..steps once and an eval."""
  summary = read_json(Path(path) / "summary.json")
  assert summary["status"] == "completed", summary
  assert summary["steps"] == steps and summary["run"] == Path(path).name
  train = train_records(path)
  assert [r["step"] for r in train] == list(range(1, steps + 1)), [r["step"] for r in train]
  assert all(math.isfinite(r["loss"]) for r in train)
  evals = eval_records(path)
  assert evals and evals[-1]["step"] == steps
  assert summary["final"]["accuracy"] == evals[-1]["accuracy"]
  return summary


@pytest.fixture(scope="session")
def baseline(tmp_path_factory):
  """The tiny LAMB run, trained once on one device: the reference of many comparisons.

  Tests must not write under its results_dir (copy it first).
  """
  results_dir = tmp_path_factory.mktemp("baseline")
  start = time.time()
  proc = run_cli(tiny_args(), results_dir=results_dir)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  return SimpleNamespace(results_dir=results_dir, run_dir=run_dir(results_dir), proc=proc,
                         seconds=time.time() - start)


@pytest.fixture
def copy_of_baseline(baseline, tmp_path):
  """A private copy of the baseline's results folder."""
  dest = tmp_path / "results"
  shutil.copytree(baseline.results_dir, dest)
  return dest


@pytest.fixture(params=["float64", "float32"])
def precision(request):
  """Runs a test with jax_enable_x64 on and off, restoring it afterwards."""
  prev = jax.config.jax_enable_x64
  jax.config.update("jax_enable_x64", request.param == "float64")
  yield request.param
  jax.config.update("jax_enable_x64", prev)


@pytest.fixture
def x64():
  prev = jax.config.jax_enable_x64
  jax.config.update("jax_enable_x64", True)
  yield
  jax.config.update("jax_enable_x64", prev)
