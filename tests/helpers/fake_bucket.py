"""A fake `gs://test-bucket/` for the tests: etils.epath's calls on it go to a local folder.

`fake_bucket(root)` is a context manager (in-process tests); run as a script,
`fake_bucket.py SCRIPT ARGS...` runs SCRIPT (experiments/run.py, or the instrumented runner)
with the bucket mapped to $LAMB_TEST_BUCKET. Only etils.epath is faked: orbax's tensorstore
would still go to Google, so the tests keep checkpoints in a local --checkpoint_dir.
"""
import contextlib
import os
import runpy
import sys
from unittest import mock

BUCKET = "gs://test-bucket"


@contextlib.contextmanager
def fake_bucket(root):
  from etils.epath import gpath, testing  # pylint: disable=import-outside-toplevel
  root = os.fspath(root)
  to_local = lambda p: root + os.fspath(p)[len(BUCKET):] if os.fspath(p).startswith(BUCKET) \
      else os.fspath(p)
  to_bucket = lambda p: BUCKET + p[len(root):] if p.startswith(root) else p
  one = lambda fn, path, *a, **k: fn(to_local(path), *a, **k)
  two = lambda fn, path, dst, *a, **k: fn(to_local(path), to_local(dst), *a, **k)

  def walk(fn, top, **k):
    for folder, dirs, files in fn(to_local(top), **k):
      yield to_bucket(os.fspath(folder)), dirs, files

  def glob(fn, pattern):
    return [to_bucket(os.fspath(p)) for p in fn(to_local(pattern))]

  fns = dict(exists=one, isdir=one, listdir=one, makedirs=one, mkdir=one, open=one, remove=one,
             rmtree=one, stat=one, rename=two, replace=two, copy=two, walk=walk, glob=glob)
  # With TensorFlow installed, epath sends gs:// to tf.io.gfile without asking its backend map,
  # which is what mock_epath replaces.
  with mock.patch.object(gpath, "_is_tf_installed", lambda: False), testing.mock_epath(**fns):
    yield


if __name__ == "__main__":
  script = sys.argv[1]
  sys.argv = sys.argv[1:]
  with fake_bucket(os.environ["LAMB_TEST_BUCKET"]):
    runpy.run_path(script, run_name="__main__")
