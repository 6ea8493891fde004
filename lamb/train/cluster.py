"""Which job this process is one of, and how the processes of a job stop together.

At the paper's scale every host of a pod slice or a cluster runs the same command (Table 1's
runs: up to 1024 TPU v3 chips). This module owns what one process of such a job does apart
from training:

* Joining the job (`join`, `--distributed=auto|tpu|slurm|mpi|none`). The launcher's
  environment is read by jax's own cluster environments (jax._src.clusters, the code behind
  `jax.distributed.initialize()` without arguments): a Cloud TPU VM slice (its metadata
  server), a GKE TPU node pool (TPU_WORKER_HOSTNAMES), a SLURM job step, an Open MPI job.
  `jax.distributed.initialize` is called only for a job of more than one process: a
  single-host slice (a v3-8) or a one-task SLURM job trains alone.
* A failure (`stop_every_process`, `watch_for_failures`). A run that crashes on one process
  leaves the others waiting in a collective; jax's coordination service notices a dead process
  only after its heartbeat timeout (100 s), and not at all while the process lives. So the
  failing process posts the failure in the coordination service's key-value store and exits;
  every other process waits on its own key there in a thread, says the same one line and
  exits too.
* A preemption (`watch_for_preemption`, `preemption_reached`, `Preempted`). Cloud TPU, SLURM and
  GKE send SIGTERM before they kill. Training stops at a step boundary every process agrees on
  (jax's preemption sync manager, which catches SIGTERM itself once jax.distributed is up; a
  lone process catches it here), after a checkpoint of that step; the same command resumes it
  and ends as an uninterrupted run would (bit for bit on one process: tests/test_cluster.py).

Restoring is not single-replica: every host reads the whole checkpoint. orbax 0.12.8's
SingleReplicaArrayHandler reads on the hosts of one replica and broadcasts to the others, but
(1) replicas are slices of the mesh along a replica axis: orbax counts a 1-D mesh as one
replica (multislice.replica_count) yet takes device 0 alone as its devices
(multislice.replica_devices), so our 1-D `data` mesh gives it no replica axis to work on; it
would need a second mesh, (hosts x local devices), for restoring alone, and a reshard onto the
training mesh after; (2) it takes
SingleReplicaArrayRestoreArgs through PyTreeRestore and a global type-handler override
(register_type_handler(jax.Array, ..., override=True)), while checkpoints are written and read
through StandardSave/StandardRestore, which builds plain ArrayRestoreArgs itself; (3) under
`sharding="fsdp"` (lamb.train.mesh) each host already reads only its own shards. What it would
save: BERT-Large has 336,226,108 parameters (`python experiments/run.py --config=table4:paper
--estimate --only=32`); with LAMB's two moments that is 3 x 4 bytes each, 4.0 GB read by every
host at each resume: once per resume, against hours of training.
"""
from __future__ import annotations

import atexit
import dataclasses
import json
import os
import signal
import sys
import threading
import time
from typing import Callable, Optional

import jax

MODES = ("auto", "tpu", "slurm", "mpi", "none")
PREEMPTED_EXIT = 143  # 128 + SIGTERM: what a scheduler sees of a process SIGTERM ended
# Process 0 hosts the coordination service: after posting a failure it stays this long, so that
# the service can answer the other processes' waits before it goes.
COORDINATOR_GRACE_S = 3.0
_WAIT_MS = 600_000  # one wait of the failure watcher; it waits again when one times out


class ClusterError(ValueError):
  """A --distributed value this process's environment cannot honour (one line, how to go on)."""


class Preempted(Exception):
  """Training stopped at a preemption notice, after the checkpoint of `step`."""

  def __init__(self, step: int):
    super().__init__(f"preempted at step {step}")
    self.step = step


# --- joining the job ---------------------------------------------------------------------------

def _environments() -> dict:
  """{mode: [(what it is called, jax's ClusterEnv)]}, in jax's own order of detection."""
  from jax._src import clusters  # pylint: disable=import-outside-toplevel  (no public name)
  return {"mpi": [("an Open MPI job", clusters.OmpiCluster)],
          "slurm": [("a SLURM job step", clusters.SlurmCluster)],
          "tpu": [("a GKE TPU slice", clusters.GkeTpuCluster),
                  ("a Cloud TPU VM slice", clusters.GceTpuCluster)]}


ABSENT = {
    "tpu": "jax finds no Cloud TPU VM slice or GKE TPU node here (no TPU chips, or no "
           "TPU_WORKER_HOSTNAMES on GKE): run it on the slice's TPU VMs",
    "slurm": "this is not a SLURM job step (jax reads SLURM_JOB_ID, SLURM_STEP_NODELIST, "
             "SLURM_NTASKS, SLURM_PROCID and SLURM_LOCALID, which srun sets): launch it with srun",
    "mpi": "this is not an Open MPI job (OMPI_MCA_orte_hnp_uri, which mpirun sets, is unset): "
           "launch it with mpirun",
}


@dataclasses.dataclass(frozen=True)
class Job:
  """The job this process is one of: `environment` says where it was read from, `method` is
  jax's cluster_detection_method for it (None when flags name the job)."""
  environment: str
  method: Optional[str]
  processes: int
  process_id: int

  @property
  def distributed(self) -> bool:
    """Whether jax.distributed is started: for a job of several processes, or one named by
    hand."""
    return self.method is None or self.processes > 1

  def describe(self) -> str:
    if not self.distributed:
      return f"{self.environment}: 1 process; training alone, jax.distributed not started"
    size = f"{self.processes} process{'es' if self.processes != 1 else ''}"
    return (f"{self.environment}: {size}, this is process {self.process_id}; joining them "
            "through jax.distributed")


def detect(mode: str = "auto") -> Optional[Job]:
  """The job the launcher's environment describes (None: none, or `mode` "none"). An explicit
  `mode` whose environment is absent is a ClusterError."""
  if mode not in MODES:
    raise ClusterError(f"--distributed={mode} is not one of {', '.join(MODES)}")
  if mode == "none":
    return None
  environments = _environments()
  candidates = environments[mode] if mode != "auto" else [
      e for m in ("mpi", "slurm", "tpu") for e in environments[m]]
  for label, env in candidates:
    try:
      if env.is_env_present():
        processes = int(env.get_process_count())
        # A single host may name no worker id (GKE's TPU_WORKER_ID): read it only for a job.
        process_id = int(env.get_process_id()) if processes > 1 else 0
        return Job(label, env.name, processes, process_id)
    except Exception as e:  # pylint: disable=broad-except  (a metadata server, a bad variable)
      raise ClusterError(f"cannot read the job from {label}'s environment ({type(e).__name__}: "
                         f"{' '.join(str(e).split())[:200]}); give --distributed=none to train "
                         "alone, or --coordinator_address/--num_processes/--process_id") from e
  if mode != "auto":
    raise ClusterError(f"--distributed={mode}, but {ABSENT[mode]}; or give --distributed=auto")
  return None


def join(mode: str = "auto", coordinator_address: Optional[str] = None,
         num_processes: Optional[int] = None, process_id: Optional[int] = None,
         cpu_collectives: str = "gloo", say: Optional[Callable[[str], None]] = None
         ) -> Optional[Job]:
  """Joins the job this process is one of: the one the flags name (with `mode` "auto"), or the
  one `detect(mode)` reads from the launcher; says which in one line. Returns the Job (None
  when there is none)."""
  say = say or _say
  if coordinator_address:
    if mode != "auto":
      raise ClusterError(f"--coordinator_address names the job by hand; --distributed={mode} "
                         "would read it from the launcher: give one of them")
    job = Job(f"the job at {coordinator_address}", None, num_processes, process_id)
  else:
    job = detect(mode)
  if job is None:
    return None
  say(job.describe())
  if not job.distributed:
    return job  # a single-host slice, a one-task job step: nothing to join
  # Only the CPU backend reads this; it lets processes on CPUs all-reduce over gloo.
  jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
  if job.method is None:
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id)
  else:  # jax reads the coordinator, the size and this process from the same environment
    jax.distributed.initialize(cluster_detection_method=job.method)
  return job


def _say(text: str) -> None:
  print(text, file=sys.stderr, flush=True)


def _client():
  """jax's coordination-service client, None until jax.distributed is initialized."""
  from jax._src import distributed  # pylint: disable=import-outside-toplevel
  return distributed.global_state.client


def process_index() -> int:
  from jax._src import distributed  # pylint: disable=import-outside-toplevel
  return distributed.global_state.process_id if _client() is not None else 0


def is_multi_process() -> bool:
  from jax._src import distributed  # pylint: disable=import-outside-toplevel
  return _client() is not None and (distributed.global_state.num_processes or 1) > 1


# --- one failure stops every process -----------------------------------------------------------

def _stop_key(process: int) -> str:
  """The coordination-service key process `process` waits on: a failure elsewhere, or its own
  end (each process its own key, so that ending one wakes no other)."""
  return f"lamb/stop/{process}"


class _Watch:
  thread: Optional[threading.Thread] = None


def failure_line(failure: dict) -> str:
  """The one line every process says about a failure (`failure` as `stop_every_process`
  posts it)."""
  return (f"error: {failure['what']} failed on process {failure['process']}: "
          f"{failure['error']}; every process stops; {failure['then']}")


def stop_every_process(what: str, error: BaseException, traceback_text: str = "",
                       then: str = "rerun the same command to resume", code: int = 1,
                       run: Optional[str] = None) -> None:
  """Ends this process, and through the coordination service every other one of the job, after
  one line naming `what` failed here and why (`run`: the run's name, for process 0 to record
  it as failed). Never returns."""
  from jax._src import distributed  # pylint: disable=import-outside-toplevel
  me = process_index()
  failure = {"what": what, "run": run, "process": me,
             "error": f"{type(error).__name__}: {' '.join(str(error).split())}"[:2000],
             "traceback": traceback_text[-4000:], "then": then}
  _say(failure_line(failure))
  client = _client()
  if client is not None:
    posted = json.dumps(failure)
    for other in range(distributed.global_state.num_processes or 1):
      if other != me:
        try:
          client.key_value_set(_stop_key(other), posted)
        except Exception:  # pylint: disable=broad-except  (it ended, or another posted first)
          pass
    if me == 0:
      time.sleep(COORDINATOR_GRACE_S)
  _exit(code)


def watch_for_failures(on_failure: Optional[Callable[[dict], None]] = None) -> bool:
  """Starts the thread that ends this process when another process posts a failure, after
  `on_failure(failure)` (process 0 writes the failed run's summary with it) and the failure's
  line. False (nothing started) without jax.distributed."""
  client = _client()
  if client is None or _Watch.thread is not None:
    return False
  _Watch.thread = threading.Thread(target=_watch, args=(client, process_index(), on_failure),
                                   name="lamb-failure-watch", daemon=True)
  _Watch.thread.start()
  # Before jax's own exit handler (registered at import, so run after this one): a thread
  # still blocked in the client's call when the interpreter finalizes aborts the process.
  atexit.register(_end_watch, client, process_index())
  return True


def _watch(client, me: int, on_failure) -> None:
  while True:
    try:
      posted = client.blocking_key_value_get(_stop_key(me), _WAIT_MS)
      break
    except Exception as e:  # pylint: disable=broad-except
      if "DEADLINE_EXCEEDED" in str(e):
        continue
      return  # the client shut down, or the service went (jax ends the process itself)
  failure = json.loads(posted)
  if not failure:  # this process's own end (_end_watch)
    return
  try:
    if on_failure is not None:
      on_failure(failure)
  finally:
    _say(failure_line(failure))
    _exit(1)


def _end_watch(client, me: int) -> None:
  """Wakes this process's watcher with its own end ("{}") and waits for it to return."""
  try:
    client.key_value_set(_stop_key(me), "{}")
  except Exception:  # pylint: disable=broad-except  (a failure was posted: the watcher acts)
    pass
  _Watch.thread.join(timeout=30)


def _exit(code: int) -> None:
  """Exits at once, without atexit's jax.distributed shutdown (a barrier the others never
  reach) and without waiting for other threads."""
  for stream in (sys.stdout, sys.stderr):
    try:
      stream.flush()
    except (OSError, ValueError):
      pass
  os._exit(code)  # pylint: disable=protected-access


# --- preemption: stop at a step every process agrees on ----------------------------------------

class _Notice:
  signalled = False  # SIGTERM reached this process (lone processes: our handler)
  boundaries = 0  # step boundaries passed by this command, the same count on every process
  reached = False  # the agreed step boundary was reached: every later one stops too


def _sync_manager():
  from jax._src import distributed  # pylint: disable=import-outside-toplevel
  return distributed.global_state.preemption_sync_manager


def watch_for_preemption() -> str:
  """Makes SIGTERM a preemption notice: "jax" when jax's preemption sync manager catches it
  (jax.distributed is up), "signal" when this process's handler does, "" when neither can
  (jax.distributed without its preemption service, or not the main thread)."""
  if _client() is not None:
    return "jax" if _sync_manager() is not None else ""
  if threading.current_thread() is not threading.main_thread():
    return ""
  signal.signal(signal.SIGTERM, _on_sigterm)
  return "signal"


def _on_sigterm(signum, frame) -> None:  # pylint: disable=unused-argument
  _Notice.signalled = True


def preemption_reached() -> bool:
  """Called by every process at every step boundary: True at the boundary where training must
  stop for a preemption notice (the same one on every process: jax's sync manager takes the
  largest boundary count any process reported and adds one), and at every one after it."""
  _Notice.boundaries += 1
  if not _Notice.reached:
    manager = _sync_manager() if _client() is not None else None
    if manager is not None:
      _Notice.reached = bool(manager.reached_sync_point(_Notice.boundaries))
    else:
      _Notice.reached = _Notice.signalled
  return _Notice.reached
