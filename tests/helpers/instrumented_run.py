"""`experiments/run.py` with optional test hooks, each switched on by an environment variable.

Same flags, same code path as `python experiments/run.py ...`; the hooks only observe or
delay, so the tests can put a run into a known state:

  LAMB_TEST_PAUSE_AT_STEP=N      after the checkpoint of step N is saved, sleep (default 120 s,
                                 LAMB_TEST_PAUSE_SECONDS), so a SIGKILL lands between that
                                 checkpoint and the next one.
  LAMB_TEST_WRITE_LOG=PATH       append the path of every results file this process writes
                                 to PATH, one per line: replaced whole (results.atomic_write_text:
                                 config, summary; metrics and trust ratios on resume) or, with
                                 " appended" after it, appended to (results._append: metrics,
                                 trust ratios).
  LAMB_TEST_BUILD_WAIT_FOR=PATH  tasks.build (the data loading between the runner's
                                 "is it finished?" check and its run lock) first creates
                                 PATH + ".waiting", then blocks until PATH exists: a slow data
                                 load, made as slow as the test needs.
"""
import os
import runpy
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from lamb.train import checkpoint, results, tasks  # noqa: E402

_pause_at = os.environ.get("LAMB_TEST_PAUSE_AT_STEP")
if _pause_at:
  _save = checkpoint.Checkpointer.save

  def _save_then_pause(self, step, state):
    _save(self, step, state)
    if int(step) == int(_pause_at):
      print(f"[instrumented_run] saved checkpoint {step}; pausing", flush=True)
      time.sleep(float(os.environ.get("LAMB_TEST_PAUSE_SECONDS", "120")))

  checkpoint.Checkpointer.save = _save_then_pause

_write_log = os.environ.get("LAMB_TEST_WRITE_LOG")
if _write_log:
  _atomic_write_text = results.atomic_write_text

  def _logged_write(path, text):
    with open(_write_log, "a") as f:
      f.write(f"{path}\n")
    return _atomic_write_text(path, text)

  results.atomic_write_text = _logged_write
  _append = results._append  # pylint: disable=protected-access

  def _logged_append(path, text):
    with open(_write_log, "a") as f:
      f.write(f"{path} appended\n")
    return _append(path, text)

  results._append = _logged_append  # pylint: disable=protected-access

_wait_for = os.environ.get("LAMB_TEST_BUILD_WAIT_FOR")
if _wait_for:
  _build = tasks.build

  def _slow_build(config, data_dir=None, load_data=True):
    Path(_wait_for + ".waiting").touch()
    deadline = time.time() + 120
    while not Path(_wait_for).exists() and time.time() < deadline:
      time.sleep(0.05)
    return _build(config, data_dir, load_data)

  tasks.build = _slow_build

sys.argv[0] = str(ROOT / "experiments" / "run.py")
runpy.run_path(sys.argv[0], run_name="__main__")
