"""Joining a job, stopping every process on a failure, and resuming after a preemption
(lamb.train.cluster).

Each launcher's environment is simulated (its variables, and for a Cloud TPU VM jax's probes:
`running_in_cloud_tpu_vm` and the metadata server) with `jax.distributed.initialize` mocked:
the tests assert what it is called with, and what jax itself derives from that environment
(the coordinator, the job's size, this process). Failures and preemptions run the tiny
LeNet-5 sweep through the command line, on one process and on two joined over localhost.
"""
from __future__ import annotations

import re
import signal
import time

import pytest

from conftest import (INSTRUMENTED_RUN, ROOT, RUN, RUN_PY, TINY_STEPS, assert_close_losses,
                      assert_valid_run, cli_env, eval_records, finish, free_port, read_json,
                      run_cli, run_dir, start_cli, stop, tiny_args, train_losses, train_records,
                      wait_for)

LAUNCHER_VARIABLES = (
    "SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_NPROCS", "SLURM_PROCID",
    "SLURM_LOCALID", "OMPI_MCA_orte_hnp_uri", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK",
    "OMPI_COMM_WORLD_LOCAL_RANK", "TPU_WORKER_HOSTNAMES", "TPU_PROCESS_ADDRESSES",
    "TPU_WORKER_ID", "TPU_SKIP_MDS_QUERY", "MEGASCALE_COORDINATOR_ADDRESS",
    "MEGASCALE_NUM_SLICES", "MEGASCALE_SLICE_ID", "JAX_COORDINATOR_PORT",
    "JAX_COORDINATOR_ADDRESS", "KUBERNETES_SERVICE_HOST")


class Launcher:
  """A simulated launcher: its variables, a Cloud TPU VM or not, and the metadata server's
  answers; `calls` records each jax.distributed.initialize, `derived` what jax made of it."""

  def __init__(self, monkeypatch):
    from jax._src.clusters import cloud_tpu_cluster  # pylint: disable=import-outside-toplevel
    from lamb.train import cluster  # pylint: disable=import-outside-toplevel
    self.monkeypatch, self.tpu, self.cluster = monkeypatch, cloud_tpu_cluster, cluster
    self.metadata, self.metadata_reads, self.calls, self.derived, self.lines = {}, [], [], [], []
    for name in LAUNCHER_VARIABLES:
      monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(cloud_tpu_cluster, "running_in_cloud_tpu_vm", False)
    monkeypatch.setattr(cloud_tpu_cluster, "get_metadata", self._get_metadata)
    monkeypatch.setattr(cluster.jax.distributed, "initialize", self._initialize)
    monkeypatch.setattr(cluster.jax.config, "update", lambda *args: None)

  def env(self, **variables):
    for name, value in variables.items():
      self.monkeypatch.setenv(name, str(value))
    return self

  def tpu_vm(self, **metadata):
    """A Cloud TPU VM whose metadata server answers `metadata`."""
    self.monkeypatch.setattr(self.tpu, "running_in_cloud_tpu_vm", True)
    self.metadata = {"tpu-env": "ACCELERATOR_TYPE: 'v3-32'\n", **metadata}
    return self

  def _get_metadata(self, key):
    self.metadata_reads.append(key)
    if key not in self.metadata:
      return "", 404
    return self.metadata[key], 200

  def _initialize(self, **kwargs):
    from jax._src import clusters  # pylint: disable=import-outside-toplevel
    self.calls.append(kwargs)
    self.derived.append(clusters.ClusterEnv.auto_detect_unset_distributed_params(
        kwargs.get("coordinator_address"), kwargs.get("num_processes"),
        kwargs.get("process_id"), None, kwargs.get("cluster_detection_method"), 5))

  def join(self, mode="auto", *flags):
    return self.cluster.join(mode, *flags, say=self.lines.append)


@pytest.fixture
def launcher(monkeypatch):
  return Launcher(monkeypatch)


# --------------------------------------------------------------------------------------------
# Joining: what jax.distributed.initialize is called with, in each launcher's environment.


def test_a_lone_process_joins_nothing_and_says_nothing(launcher):
  assert launcher.join() is None
  assert launcher.calls == [] and launcher.lines == []
  assert launcher.metadata_reads == [], "no metadata server is asked off a TPU VM"


def test_a_multi_host_cloud_tpu_vm_slice_joins_through_its_metadata(launcher):
  """A v3-32 slice: four hosts, no launcher variable at all (what the old detection missed)."""
  launcher.tpu_vm(**{"agent-worker-number": "2",
                     "worker-network-endpoints": "w0:0:10.0.0.1,w1:1:10.0.0.2,w2:2:10.0.0.3,"
                                                 "w3:3:10.0.0.4"})
  job = launcher.join()
  assert (job.environment, job.processes, job.process_id) == ("a Cloud TPU VM slice", 4, 2)
  assert launcher.calls == [{"cluster_detection_method": "gcetpu"}]
  assert launcher.derived == [("10.0.0.1:8482", 4, 2, None)]  # jax's own reading of the slice
  assert launcher.lines == ["a Cloud TPU VM slice: 4 processes, this is process 2; joining "
                            "them through jax.distributed"]


def test_a_single_host_cloud_tpu_vm_trains_alone(launcher):
  """A v3-8: jax's GceTpuCluster is present on every TPU VM, but one host is no job."""
  launcher.tpu_vm(**{"agent-worker-number": "0", "worker-network-endpoints": "w0:0:10.0.0.1"})
  job = launcher.join()
  assert job.processes == 1 and not job.distributed
  assert launcher.calls == []
  assert launcher.lines == ["a Cloud TPU VM slice: 1 process; training alone, jax.distributed "
                            "not started"]


def test_a_multislice_cloud_tpu_job_counts_every_slice(launcher):
  launcher.tpu_vm(**{"agent-worker-number": "1",
                     "worker-network-endpoints": "10.0.0.1,10.0.0.2"}).env(
                         MEGASCALE_NUM_SLICES=2, MEGASCALE_SLICE_ID=1,
                         MEGASCALE_COORDINATOR_ADDRESS="10.0.9.9")
  job = launcher.join("tpu")
  assert (job.processes, job.process_id) == (4, 3)
  assert launcher.derived == [("10.0.9.9:8482", 4, 3, None)]


def test_a_gke_tpu_slice_joins_through_its_worker_hostnames(launcher):
  launcher.tpu_vm().env(TPU_WORKER_HOSTNAMES="10.1.0.1,10.1.0.2", TPU_WORKER_ID=1)
  job = launcher.join()
  assert (job.environment, job.processes, job.process_id) == ("a GKE TPU slice", 2, 1)
  assert launcher.calls == [{"cluster_detection_method": "gketpu"}]
  assert launcher.derived == [("10.1.0.1:8482", 2, 1, None)]


def test_a_single_host_gke_tpu_node_trains_alone(launcher):
  launcher.tpu_vm().env(TPU_WORKER_HOSTNAMES="10.1.0.1")  # no TPU_WORKER_ID on one host
  assert launcher.join().processes == 1
  assert launcher.calls == []


def test_worker_hostnames_off_a_tpu_vm_are_no_job(launcher):
  """jax reads TPU_WORKER_HOSTNAMES only on a TPU VM (the old detection read it anywhere)."""
  launcher.env(TPU_WORKER_HOSTNAMES="10.1.0.1,10.1.0.2", TPU_WORKER_ID=0)
  assert launcher.join() is None and launcher.calls == []


def _slurm(launcher, tasks, proc=1):
  return launcher.env(SLURM_JOB_ID=7, SLURM_STEP_NODELIST="node[001-002]", SLURM_NTASKS=tasks,
                      SLURM_PROCID=proc, SLURM_LOCALID=0)


def test_a_slurm_job_step_of_several_tasks_joins(launcher):
  job = _slurm(launcher, tasks=2).join()
  assert (job.environment, job.processes, job.process_id) == ("a SLURM job step", 2, 1)
  assert launcher.calls == [{"cluster_detection_method": "slurm"}]
  # the first node of the step, on a port from the job id (7 % 4096 + 61440)
  assert launcher.derived == [("node001:61447", 2, 1, [0])]


def test_a_one_task_slurm_job_and_a_slurm_shell_train_alone(launcher):
  _slurm(launcher, tasks=1, proc=0)
  assert launcher.join().processes == 1 and launcher.calls == []
  launcher.monkeypatch.delenv("SLURM_STEP_NODELIST")  # no job step: jax reads no job
  assert launcher.join() is None and launcher.calls == []


def test_an_open_mpi_job_joins(launcher):
  launcher.env(OMPI_MCA_orte_hnp_uri="1531576320.0;tcp://10.96.0.1,10.148.0.1:34911",
               OMPI_COMM_WORLD_SIZE=4, OMPI_COMM_WORLD_RANK=3, OMPI_COMM_WORLD_LOCAL_RANK=1)
  job = launcher.join()
  assert (job.environment, job.processes, job.process_id) == ("an Open MPI job", 4, 3)
  assert launcher.calls == [{"cluster_detection_method": "ompi"}]
  # the launcher's address, on a port from the job id (1531576320 // 4096 % 4096 + 61440)
  assert launcher.derived == [("10.96.0.1:62624", 4, 3, [1])]


def test_an_explicit_environment_is_used_even_beside_another(launcher):
  """--distributed=slurm inside an Open MPI job reads SLURM's variables, not Open MPI's."""
  _slurm(launcher, tasks=2).env(OMPI_MCA_orte_hnp_uri="1.0;tcp://10.0.0.1:1",
                                OMPI_COMM_WORLD_SIZE=8, OMPI_COMM_WORLD_RANK=0,
                                OMPI_COMM_WORLD_LOCAL_RANK=0)
  assert launcher.join("slurm").processes == 2
  assert launcher.join("mpi").processes == 8
  assert [c["cluster_detection_method"] for c in launcher.calls] == ["slurm", "ompi"]


@pytest.mark.parametrize("mode, needs", [("tpu", "Cloud TPU VM"), ("slurm", "srun"),
                                         ("mpi", "mpirun")])
def test_an_explicit_environment_that_is_absent_is_one_clear_error(launcher, mode, needs):
  with pytest.raises(launcher.cluster.ClusterError) as error:
    launcher.join(mode)
  text = str(error.value)
  assert text.startswith(f"--distributed={mode}, but ") and needs in text, text
  assert "\n" not in text and "--distributed=auto" in text
  assert launcher.calls == []


def test_none_joins_nothing_even_in_a_job(launcher):
  _slurm(launcher, tasks=4)
  assert launcher.join("none") is None
  assert launcher.calls == [] and launcher.lines == []


def test_flags_name_the_job_by_hand(launcher):
  _slurm(launcher, tasks=4)  # ignored: the flags say which job
  job = launcher.join("auto", "10.0.0.5:1234", 2, 1)
  assert (job.processes, job.process_id) == (2, 1)
  assert launcher.calls == [{"coordinator_address": "10.0.0.5:1234", "num_processes": 2,
                             "process_id": 1}]
  with pytest.raises(launcher.cluster.ClusterError, match="give one of them"):
    launcher.join("slurm", "10.0.0.5:1234", 2, 1)


def test_an_unreadable_environment_is_one_clear_error(launcher):
  _slurm(launcher, tasks="many")
  with pytest.raises(launcher.cluster.ClusterError, match=r"^cannot read the job from a SLURM "
                     r"job step's environment \(ValueError: .*--distributed=none"):
    launcher.join()


def test_the_command_line_refuses_an_absent_environment(tmp_path):
  proc = run_cli(tiny_args() + ["--distributed=slurm"], results_dir=tmp_path / "results",
                 timeout=120)
  assert proc.returncode == 2, proc.stdout + proc.stderr
  assert proc.stderr.strip().splitlines()[-1].startswith(
      "error: --distributed=slurm, but this is not a SLURM job step"), proc.stderr
  assert not run_dir(tmp_path / "results").exists()


# --------------------------------------------------------------------------------------------
# A preemption notice in one process.


def test_sigterm_to_a_lone_process_is_a_notice_at_the_next_step_boundary(monkeypatch):
  from lamb.train import cluster  # pylint: disable=import-outside-toplevel
  for name, value in (("signalled", False), ("boundaries", 0), ("reached", False)):
    monkeypatch.setattr(cluster._Notice, name, value)  # pylint: disable=protected-access
  previous = signal.getsignal(signal.SIGTERM)
  try:
    assert cluster.watch_for_preemption() == "signal"
    assert [cluster.preemption_reached() for _ in range(3)] == [False] * 3
    signal.raise_signal(signal.SIGTERM)  # the process lives on: the handler only takes note
    assert cluster.preemption_reached() and cluster.preemption_reached(), "stays stopped"
  finally:
    signal.signal(signal.SIGTERM, previous)


# --------------------------------------------------------------------------------------------
# The command line under a launcher's hand: preemption (SIGTERM) and failure.

PREEMPTED_EXIT = 143


def wrapped_run(tmp_path, name: str, before: str):
  """A script that runs `before` (Python, test-only patches), then experiments/run.py as
  itself: the same flags and code path as the command a user types."""
  script = tmp_path / f"{name}.py"
  script.write_text(f"import runpy, sys\nsys.path.insert(0, {str(ROOT)!r})\n{before}\n"
                    f"sys.argv[0] = {str(RUN_PY)!r}\n"
                    "runpy.run_path(sys.argv[0], run_name='__main__')\n")
  return script


# Sends this process SIGTERM once step STEP is trained (a preemption notice mid-training, at a
# step with no checkpoint of its own), on process PROCESS only; every step after it then takes
# PAUSE seconds more on every process, as a real step does (the tiny one takes milliseconds),
# so that the processes agree on a step before the run's end.
SIGTERM_AT_STEP = """
import os, signal, time
from lamb.train import cluster, progress
_update = progress.Progress.update
def update(self, step):
  _update(self, step)
  if step == {step} and cluster.process_index() == {process}:
    os.kill(os.getpid(), signal.SIGTERM)
  if step >= {step}:
    time.sleep({pause})
progress.Progress.update = update
"""

PREEMPTED_LINE = (rf"^\[1/1\] {re.escape(RUN)}: preempted: stopped after saving the checkpoint "
                  r"of step (\d+); rerun the same command to resume from it$")


def _preempted_at(out: str) -> int:
  match = re.search(PREEMPTED_LINE, out, re.M)
  assert match, out[-3000:]
  return int(match.group(1))


def _assert_bit_identical(resumed, baseline_dir, resumed_from):
  summary = assert_valid_run(resumed)
  reference = read_json(baseline_dir / "summary.json")
  assert summary["resumed_from_step"] == resumed_from
  assert summary["final"] == reference["final"]
  assert train_records(resumed) == train_records(baseline_dir)
  assert eval_records(resumed) == eval_records(baseline_dir)
  assert (resumed / "trust_ratios.csv").read_text() == \
      (baseline_dir / "trust_ratios.csv").read_text()


def test_sigterm_mid_training_saves_that_step_and_the_rerun_matches_uninterrupted(
    tmp_path, baseline):
  """SIGTERM after step 6 (checkpoints are due at 4, 8, 12): the step's checkpoint is written
  at once, the command exits 143 with one line, and the same command ends bit-identical to a
  run never interrupted."""
  results = tmp_path / "results"
  script = wrapped_run(tmp_path, "sigterm_at_6", SIGTERM_AT_STEP.format(step=6, process=0, pause=0))
  proc = run_cli(tiny_args(), results_dir=results, script=script)
  assert proc.returncode == PREEMPTED_EXIT, proc.stdout + proc.stderr
  assert _preempted_at(proc.stdout) == 6
  checkpoints = run_dir(results) / "checkpoints"
  assert sorted(int(p.name) for p in checkpoints.iterdir() if p.name.isdigit()) == [4, 6]
  assert not (run_dir(results) / "summary.json").exists(), "preempted is not finished"
  assert [r["step"] for r in train_records(run_dir(results))] == list(range(1, 7))

  resumed = run_cli(tiny_args(), results_dir=results)
  assert resumed.returncode == 0, resumed.stdout + resumed.stderr
  assert f"{RUN}: completed after {TINY_STEPS} steps" in resumed.stdout
  _assert_bit_identical(run_dir(results), baseline.run_dir, resumed_from=6)


@pytest.mark.slow  # ~55 s on two loaded cores: two runs and a pause
def test_sigterm_from_outside_during_a_checkpoint_stops_at_that_checkpoint(tmp_path, baseline):
  """The notice a scheduler sends: SIGTERM from another process while checkpoint 4 is being
  saved; the run stops at step 4 (its checkpoint already written) and resumes from it."""
  results = tmp_path / "results"
  proc = start_cli(tiny_args(), results_dir=results, script=INSTRUMENTED_RUN,
                   log=tmp_path / "preempted.log",
                   env=cli_env(LAMB_TEST_PAUSE_AT_STEP=4, LAMB_TEST_PAUSE_SECONDS=5))
  try:
    wait_for(lambda: "pausing" in proc.log_path.read_text(), 180, "checkpoint 4", proc)
    proc.send_signal(signal.SIGTERM)
    out = finish(proc, timeout=120)
  finally:
    stop(proc)
  assert proc.returncode == PREEMPTED_EXIT, out[-3000:]
  assert _preempted_at(out) == 4
  resumed = run_cli(tiny_args(), results_dir=results)
  assert resumed.returncode == 0, resumed.stdout + resumed.stderr
  _assert_bit_identical(run_dir(results), baseline.run_dir, resumed_from=4)


# Two processes joined over localhost, one device each.

RTOL = 1e-5  # two processes sum over two shards, one device over one: float32 rounding apart

# Process 1's run raises at step 5 (between checkpoints 4 and 8) while process 0 goes on into
# the next step's all-reduce.
FAIL_AT_STEP = """
from lamb.train import cluster, trainer
_record = trainer.Trainer.record
def record(self, phase, step, metrics):
  if step == 5 and cluster.process_index() == 1:
    raise RuntimeError("disk full on this host")
  return _record(self, phase, step, metrics)
trainer.Trainer.record = record
"""


def _two_processes(tmp_path, name, results, script=RUN_PY, timeout=300):
  """Runs the tiny sweep as a job of two processes; [(returncode, output, exit time)]."""
  port, procs = free_port(), []
  try:
    for i in range(2):
      procs.append(start_cli(tiny_args() + [f"--coordinator_address=127.0.0.1:{port}",
                                            "--num_processes=2", f"--process_id={i}"],
                             results_dir=results, script=script,
                             log=tmp_path / f"{name}{i}.log"))
    ended, deadline = {}, time.time() + timeout
    while len(ended) < 2 and time.time() < deadline:
      for i, proc in enumerate(procs):
        if i not in ended and proc.poll() is not None:
          ended[i] = time.time()
      time.sleep(0.1)
    outputs = [finish(p, timeout=1) for p in procs]
  finally:
    stop(*procs)
  return [(p.returncode, out, ended.get(i)) for i, (p, out) in enumerate(zip(procs, outputs))]


@pytest.mark.slow  # two jobs of two processes: ~2 min on two loaded cores
def test_a_run_failing_on_one_process_stops_every_process_and_the_rerun_resumes(
    tmp_path, baseline):
  results = tmp_path / "results"
  script = wrapped_run(tmp_path, "fail_on_1", FAIL_AT_STEP)
  (rc0, out0, end0), (rc1, out1, end1) = _two_processes(tmp_path, "failing", results, script)
  line = (f"error: run {RUN} failed on process 1: RuntimeError: disk full on this host; every "
          "process stops; rerun the same command to resume")
  assert rc1 == 1 and line in out1.splitlines(), out1[-3000:]
  assert rc0 == 1 and line in out0.splitlines(), out0[-3000:]
  # process 0 was waiting for process 1 in a collective: it stops at once, not after jax's
  # 100 s heartbeat timeout
  assert end0 is not None and end1 is not None and abs(end0 - end1) < 30, (end0, end1)
  summary = read_json(run_dir(results) / "summary.json")
  assert summary["status"] == "failed", summary
  assert summary["error"] == "RuntimeError: disk full on this host (on process 1)"
  assert "disk full on this host" in summary["traceback"]

  again = _two_processes(tmp_path, "rerun", results)
  for i, (rc, out, _) in enumerate(again):
    assert rc == 0, f"process {i}: {out[-3000:]}"
    assert f"{RUN}: completed after {TINY_STEPS} steps" in out
  summary = assert_valid_run(run_dir(results))
  assert summary["process_count"] == 2 and summary["resumed_from_step"] == 4
  assert_close_losses(train_losses(run_dir(results)), train_losses(baseline.run_dir), RTOL,
                      "failed, rerun on 2 processes vs 1 uninterrupted")


@pytest.mark.slow  # two jobs of two processes: ~2 min on two loaded cores
def test_sigterm_to_one_process_stops_both_at_one_step_and_the_rerun_resumes(tmp_path,
                                                                               baseline):
  """Only process 1 is sent SIGTERM (after step 6); jax's preemption sync manager makes both
  stop at one step boundary, both save its checkpoint (orbax writes on every process) and
  exit 143; the same command resumes from it."""
  results = tmp_path / "results"
  script = wrapped_run(tmp_path, "sigterm_1", SIGTERM_AT_STEP.format(step=6, process=1, pause=0.5))
  stopped = _two_processes(tmp_path, "preempted", results, script)
  steps = []
  for i, (rc, out, _) in enumerate(stopped):
    assert rc == PREEMPTED_EXIT, f"process {i} exited {rc}:\n{out[-3000:]}"
    steps.append(_preempted_at(out))
  assert steps[0] == steps[1] and 6 <= steps[0] < TINY_STEPS, steps
  at = steps[0]
  assert (run_dir(results) / "checkpoints" / str(at)).is_dir()
  assert [r["step"] for r in train_records(run_dir(results))] == list(range(1, at + 1))

  again = _two_processes(tmp_path, "rerun", results)
  for i, (rc, out, _) in enumerate(again):
    assert rc == 0, f"process {i}: {out[-3000:]}"
  summary = assert_valid_run(run_dir(results))
  assert summary["process_count"] == 2 and summary["resumed_from_step"] == at
  assert_close_losses(train_losses(run_dir(results)), train_losses(baseline.run_dir), RTOL,
                      "preempted, rerun on 2 processes vs 1 uninterrupted")
