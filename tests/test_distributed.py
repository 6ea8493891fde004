"""More than one device, more than one process: a data-parallel run on 8 (fake CPU) devices,
two processes joined by jax.distributed, and independent processes sharing a results folder."""
from __future__ import annotations

import re
import shutil

import pytest

from conftest import (INSTRUMENTED_RUN, RUN, TINY_STEPS, assert_close_losses, assert_valid_run,
                      cli_env, eval_records, finish, free_port, read_json, run_cli, run_dir,
                      start_cli, stop, tiny_args, train_losses, train_records, tree_bytes,
                      wait_for)

# Sums over 8 shards instead of one: a different reduction order, so equal only up to float32
# rounding (measured ~1e-7 relative on these runs).
RTOL = 1e-5


@pytest.fixture(scope="module")
def eight_devices(tmp_path_factory):
  results = tmp_path_factory.mktemp("eight_devices")
  proc = run_cli(tiny_args(), results_dir=results, env=cli_env(devices=8))
  assert proc.returncode == 0, proc.stdout + proc.stderr
  return run_dir(results)


def test_eight_devices_give_the_losses_of_one(eight_devices, baseline):
  summary = assert_valid_run(eight_devices)
  assert summary["device_count"] == 8 and summary["process_count"] == 1
  assert_close_losses(train_losses(eight_devices), train_losses(baseline.run_dir), RTOL,
                      "8 devices vs 1")
  got, want = eval_records(eight_devices)[-1], eval_records(baseline.run_dir)[-1]
  assert got["examples"] == want["examples"] == 1000, "every eval example counted once"
  assert got["loss"] == pytest.approx(want["loss"], rel=RTOL)
  assert abs(got["accuracy"] - want["accuracy"]) <= 2e-3  # at most 2 of 1000 argmax ties flip


def test_two_processes_train_like_one_process_with_eight_devices(tmp_path, eight_devices):
  """Two processes x 4 devices, joined over localhost (gloo), against 1 process x 8 devices.

  Both processes run through the instrumented runner, which logs every results file a process
  writes: only process 0 may write any.
  """
  results, port = tmp_path / "results", free_port()
  procs = []
  try:
    for i in range(2):
      env = cli_env(devices=4, LAMB_TEST_WRITE_LOG=tmp_path / f"writes{i}.txt")
      procs.append(start_cli(tiny_args() + [f"--coordinator_address=127.0.0.1:{port}",
                                            "--num_processes=2", f"--process_id={i}"],
                             results_dir=results, env=env, script=INSTRUMENTED_RUN,
                             log=tmp_path / f"process{i}.log"))
    outputs = [finish(p, timeout=300) for p in procs]
  finally:
    stop(*procs)
  for i, (proc, out) in enumerate(zip(procs, outputs)):
    assert proc.returncode == 0, f"process {i} exited {proc.returncode}:\n{out[-4000:]}"
    assert f"{RUN}: completed after {TINY_STEPS} steps" in out, out[-2000:]
  path = run_dir(results)
  summary = assert_valid_run(path)
  assert summary["process_count"] == 2 and summary["device_count"] == 8
  assert_close_losses(train_losses(path), train_losses(eight_devices), RTOL, "2x4 vs 1x8")
  assert eval_records(path)[-1]["examples"] == 1000
  assert eval_records(path)[-1]["loss"] == pytest.approx(eval_records(eight_devices)[-1]["loss"],
                                                         rel=RTOL)
  # only process 0 writes results (checkpoints are written by both, as orbax requires)
  written = {i: (tmp_path / f"writes{i}.txt").read_text().split() if
             (tmp_path / f"writes{i}.txt").exists() else [] for i in range(2)}
  assert written[1] == [], f"process 1 wrote {written[1]}"
  assert {p.rsplit("/", 1)[-1] for p in written[0]} >= {"config.json", "metrics.jsonl",
                                                         "trust_ratios.csv", "summary.json"}
  assert len(list((path / "tensorboard").iterdir())) == 1, "one TensorBoard event file"


# --------------------------------------------------------------------------------------------
# Independent processes, one results folder.


def _concurrently(tmp_path, onlys, results):
  procs = []
  try:
    for i, only in enumerate(onlys):
      procs.append(start_cli(tiny_args(only=only), results_dir=results,
                             log=tmp_path / f"sweep{i}.log"))
    outputs = [finish(p, timeout=300) for p in procs]
  finally:
    stop(*procs)
  for proc, out in zip(procs, outputs):
    assert proc.returncode == 0, out[-4000:]
  return outputs


def test_two_sweeps_with_different_runs_share_a_results_folder(tmp_path, baseline):
  results = tmp_path / "results"
  outputs = _concurrently(tmp_path, [f"^{RUN}$", "^lamb_lr0.01_seed1$"], results)
  assert f"{RUN}: completed" in outputs[0] and "lamb_lr0.01_seed1: completed" in outputs[1]
  assert sorted(p.name for p in (results / "table7" / "cpu").iterdir()) == \
      [RUN, "lamb_lr0.01_seed1"]
  for name in (RUN, "lamb_lr0.01_seed1"):
    summary = assert_valid_run(run_dir(results, name))
    assert summary["resumed_from_step"] is None
  # the other process's run changed nothing in this one
  assert train_records(run_dir(results)) == train_records(baseline.run_dir)
  assert train_losses(run_dir(results, "lamb_lr0.01_seed1")) != train_losses(baseline.run_dir)


def test_two_sweeps_with_the_same_runs_run_each_exactly_once(tmp_path):
  results = tmp_path / "results"
  names = [RUN, "lamb_lr0.01_seed1"]
  outputs = _concurrently(tmp_path, ["^lamb_lr0.01_seed[01]$"] * 2, results)
  both = "\n".join(outputs)
  for name in names:
    trained = re.findall(rf"^\[\d/2\] {re.escape(name)}: completed after", both, re.M)
    skipped = re.findall(rf"^\[\d/2\] {re.escape(name)}: "
                         r"(?:running in another process|finished before), skipped", both, re.M)
    assert len(trained) == 1 and len(skipped) == 1, both
    summary = assert_valid_run(run_dir(results, name))
    assert summary["resumed_from_step"] is None, "trained once, from scratch"


def test_run_finished_by_another_process_during_data_loading_is_not_redone(tmp_path, baseline):
  """The runner checks "finished?" before loading the data and takes the run lock after it.

  A second process that passes the check while the first is still training, and takes the
  lock after the first has finished and let it go, must not run (or rewrite) the run again.
  The instrumented runner holds this process in its data loading; meanwhile the run is put
  in place finished, exactly as another process leaves it (a copy of the baseline run).
  """
  results = tmp_path / "results"
  signal_file = tmp_path / "go"
  proc = start_cli(tiny_args(), results_dir=results, script=INSTRUMENTED_RUN,
                   env=cli_env(LAMB_TEST_BUILD_WAIT_FOR=signal_file), log=tmp_path / "late.log")
  try:
    wait_for((tmp_path / "go.waiting").exists, 120, "the runner to reach data loading", proc)
    shutil.copytree(baseline.results_dir / "table7", results / "table7", dirs_exist_ok=True)
    before = tree_bytes(run_dir(results))
    signal_file.touch()
    out = finish(proc, timeout=180)
  finally:
    stop(proc)
  assert proc.returncode == 0, out[-3000:]
  assert f"{RUN}: completed after" not in out, f"the finished run was run again:\n{out[-2000:]}"
  assert re.search(rf"^\[1/1\] {re.escape(RUN)}: .*skipped$", out, re.M), out[-2000:]
  after = tree_bytes(run_dir(results))
  changed = sorted(k for k in set(before) | set(after)
                   if k != ".lock" and before.get(k) != after.get(k))
  summary = read_json(run_dir(results) / "summary.json")
  assert not changed, f"rewrote {changed}; summary.json is now {summary}"


def test_a_launchers_environment_joins_the_job_without_flags(monkeypatch):
  """No --coordinator_address: a SLURM job step of several tasks makes jax read the job from
  SLURM's variables; a lone process (or a one-task step) initializes nothing. Every other
  launcher, the Cloud TPU VM slices included, is in test_cluster.py."""
  from lamb.train import cluster  # pylint: disable=import-outside-toplevel
  calls = []
  monkeypatch.setattr(cluster.jax.distributed, "initialize", lambda **kw: calls.append(kw))
  monkeypatch.setattr(cluster.jax.config, "update", lambda *args: None)
  for var in ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_PROCID",
              "SLURM_LOCALID", "OMPI_MCA_orte_hnp_uri", "TPU_WORKER_HOSTNAMES"):
    monkeypatch.delenv(var, raising=False)
  assert cluster.join("auto", say=lambda _: None) is None
  assert calls == []
  for var, value in (("SLURM_JOB_ID", "7"), ("SLURM_STEP_NODELIST", "node[1-2]"),
                     ("SLURM_NTASKS", "1"), ("SLURM_PROCID", "0"), ("SLURM_LOCALID", "0")):
    monkeypatch.setenv(var, value)
  assert cluster.join("auto", say=lambda _: None).processes == 1
  assert calls == []
  monkeypatch.setenv("SLURM_NTASKS", "2")
  assert cluster.join("auto", say=lambda _: None).processes == 2
  assert calls == [{"cluster_detection_method": "slurm"}]  # jax reads the job from SLURM
