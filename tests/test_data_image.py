"""Image data: real Fashion-MNIST from the Debian package, IDX parsing, the TFDS pipelines of
CIFAR-10 and ImageNet (through tfds.testing.mock_data only: nothing is read from or written to a
real data folder, nothing is downloaded), and the NumPy augmentation of the CPU scale."""
from __future__ import annotations

import gzip
import hashlib
import os
import struct

import numpy as np
import pytest

from lamb.data import fashion_mnist as fm
from lamb.data import image_pipelines as ip
from lamb.data.errors import DatasetNotFoundError

INSTALLED = all((fm.DEBIAN_DIR / name).is_file() for name in fm.ALL_FILES)
needs_package = pytest.mark.skipif(
    not INSTALLED, reason=f"Fashion-MNIST is not installed in {fm.DEBIAN_DIR}: run `apt-get "
                          f"install {fm.DEBIAN_PACKAGE}` (Debian/Ubuntu) to test the real data")

# First labels of the original files (zalandoresearch/fashion-mnist): the Debian copy keeps the
# example order. MD5 of the decompressed IDX files of dataset-fashion-mnist 0.0~git20200523.
FIRST_LABELS = {"train": [9, 0, 0, 3, 0, 2, 7, 2, 5, 5], "test": [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]}
IDX_MD5 = {"train-images-idx3-ubyte.gz": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
           "train-labels-idx1-ubyte.gz": "9018921c3c673c538a1fc5bad174d6f9",
           "t10k-images-idx3-ubyte.gz": "8181f5470baa50b63fa0f6fddb340f0a",
           "t10k-labels-idx1-ubyte.gz": "15d484375f8d13e6eb1aabb0c3f46965"}


# ---------------------------------------------------------------------------------------------
# Fashion-MNIST, real (Debian package dataset-fashion-mnist)


@needs_package
@pytest.mark.parametrize("split,per_class", [("train", 6000), ("test", 1000)])
def test_fashion_mnist_shapes_and_label_counts(split, per_class):
  images, labels = fm.load(split)
  n = 10 * per_class
  assert images.shape == (n, 28, 28, 1) and images.dtype == np.uint8
  assert labels.shape == (n,) and labels.dtype == np.int32
  assert np.bincount(labels, minlength=10).tolist() == [per_class] * 10
  assert labels[:10].tolist() == FIRST_LABELS[split]
  assert images.max() == 255 and images.min() == 0
  assert len(fm.CLASS_NAMES) == fm.NUM_CLASSES == 10 and fm.SPLITS[split] == n


@needs_package
def test_fashion_mnist_files_are_the_original_ones():
  for name, md5 in IDX_MD5.items():
    with gzip.open(fm.DEBIAN_DIR / name, "rb") as f:
      assert hashlib.md5(f.read()).hexdigest() == md5, name


@needs_package
def test_fashion_mnist_cached_read_only_and_padded_rgb():
  a, la = fm.load("test")
  b, lb = fm.load("test")
  assert a is b and la is lb
  assert not a.flags.writeable and not la.flags.writeable
  rgb, labels = fm.load("test", image_size=32, channels=3)
  assert rgb.shape == (10_000, 32, 32, 3) and rgb.dtype == np.uint8
  assert rgb is fm.load("test", image_size=32, channels=3)[0] and not rgb.flags.writeable
  np.testing.assert_array_equal(labels, la)
  for c in range(3):  # The 28x28 image, centred, in every channel; black borders.
    np.testing.assert_array_equal(rgb[:, 2:30, 2:30, c], a[..., 0])
  assert not rgb[:, :2].any() and not rgb[:, 30:].any() and not rgb[:, :, :2].any()
  assert fm.load("test", image_size=32)[0].shape == (10_000, 32, 32, 1)
  assert fm.load("test", channels=3)[0].shape == (10_000, 28, 28, 3)


@needs_package
def test_fashion_mnist_preprocess_uses_train_statistics():
  images, _ = fm.load("train")
  pixels = images.astype(np.float64) / 255.0
  assert abs(pixels.mean() - fm.MEAN) < 1e-5  # 0.2860406
  assert abs(pixels.std() - fm.STD) < 1e-5  # 0.3530242
  x = fm.preprocess(images)
  assert x.dtype == np.float32 and x.shape == images.shape
  assert abs(float(x.mean(dtype=np.float64))) < 1e-3
  assert abs(float(x.std(dtype=np.float64)) - 1.0) < 1e-3
  with pytest.raises(TypeError):
    fm.preprocess(x)  # Already normalised.


@needs_package
def test_fashion_mnist_data_dir_and_env(tmp_path, monkeypatch):
  for name in fm.ALL_FILES:
    os.symlink(fm.DEBIAN_DIR / name, tmp_path / name)
  monkeypatch.setenv(fm.ENV_DIR, str(tmp_path))
  assert fm.find_dir() == tmp_path
  assert fm.find_dir(str(tmp_path / "elsewhere")) == tmp_path  # falls through to the env var
  images, labels = fm.load("test", data_dir=str(tmp_path))
  np.testing.assert_array_equal(images, fm.load("test")[0])
  assert str(tmp_path) in fm.describe("debian")
  monkeypatch.delenv(fm.ENV_DIR)
  assert fm.find_dir() == fm.DEBIAN_DIR
  assert "dataset-fashion-mnist" in fm.describe("debian") and "tfds" in fm.describe("tfds")


# ---------------------------------------------------------------------------------------------
# Fashion-MNIST, failures (synthetic files; no package needed)


def _write_idx(path, array, magic=None, extra=b""):
  array = np.asarray(array, np.uint8)
  magic = magic if magic is not None else bytes([0, 0, 8, array.ndim])
  header = magic + struct.pack(f">{array.ndim}I", *array.shape)
  with gzip.open(path, "wb") as f:
    f.write(header + array.tobytes() + extra)


def test_read_idx_valid_and_corrupt(tmp_path):
  images = np.arange(2 * 3 * 4).reshape(2, 3, 4)
  _write_idx(tmp_path / "ok.gz", images)
  np.testing.assert_array_equal(fm.read_idx(tmp_path / "ok.gz", "images"), images)
  _write_idx(tmp_path / "labels.gz", [1, 2, 3])
  with pytest.raises(ValueError, match="magic"):  # labels file read as images
    fm.read_idx(tmp_path / "labels.gz", "images")
  _write_idx(tmp_path / "float.gz", images, magic=bytes([0, 0, 0x0D, 3]))
  with pytest.raises(ValueError, match="magic"):
    fm.read_idx(tmp_path / "float.gz", "images")
  _write_idx(tmp_path / "long.gz", images, extra=b"\0")
  with pytest.raises(ValueError, match="payload"):
    fm.read_idx(tmp_path / "long.gz", "images")
  with gzip.open(tmp_path / "short.gz", "wb") as f:
    f.write(bytes([0, 0, 8, 3]) + struct.pack(">3I", 2, 3, 4) + b"\1" * 5)
  with pytest.raises(ValueError, match="payload"):
    fm.read_idx(tmp_path / "short.gz", "images")
  (tmp_path / "plain.gz").write_bytes(b"not gzip at all")
  with pytest.raises(ValueError, match="gzip"):
    fm.read_idx(tmp_path / "plain.gz", "images")
  with gzip.open(tmp_path / "tiny.gz", "wb") as f:
    f.write(b"\0\0")
  with pytest.raises(ValueError, match="header"):
    fm.read_idx(tmp_path / "tiny.gz", "labels")


def test_corrupt_or_wrong_size_files_in_data_dir(tmp_path):
  for split, (images_file, labels_file) in fm.FILES.items():
    _write_idx(tmp_path / images_file, np.zeros((3, 28, 28)))
    _write_idx(tmp_path / labels_file, [0, 1, 2])
  with pytest.raises(ValueError, match="expected 60000"):
    fm.load("train", data_dir=str(tmp_path))
  _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", [0, 1])
  with pytest.raises(ValueError, match="3 images but 2 labels"):
    fm.load("test", data_dir=str(tmp_path))


def test_missing_data_gives_one_line_error(tmp_path, monkeypatch):
  monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "usr-share-datasets")
  # A copy fetched earlier on this machine (~/.cache/lamb) must not stand in for the missing one.
  monkeypatch.setattr(fm, "DEFAULT_CACHE_DIR", tmp_path / "cache" / "fashion-mnist")
  monkeypatch.delenv(fm.ENV_DIR, raising=False)
  (tmp_path / "partial").mkdir()
  _write_idx(tmp_path / "partial" / "train-images-idx3-ubyte.gz", np.zeros((1, 28, 28)))
  with pytest.raises(DatasetNotFoundError) as e:
    fm.load("train", data_dir=str(tmp_path / "partial"))
  message = str(e.value)
  assert "\n" not in message
  assert "apt-get install dataset-fashion-mnist" in message
  assert all(name in message for name in fm.ALL_FILES)
  assert fm.ENV_DIR in message and str(tmp_path / "partial") in message
  assert "not found" in fm.describe("debian")


def test_bad_arguments():
  with pytest.raises(ValueError, match="split"):
    fm.load("validation")
  with pytest.raises(ValueError, match="source"):
    fm.load("train", source="nope")
  with pytest.raises(ValueError, match="image_size"):
    fm.load("train", image_size=24)
  with pytest.raises(ValueError, match="channels"):
    fm.load("train", channels=2)
  x = np.ones((2, 28, 28, 1), np.uint8)
  assert fm.pad_to(x, 33).shape == (2, 33, 33, 1) and fm.pad_to(x, 33)[:, 2:30, 2:30].all()
  with pytest.raises(ValueError):
    fm.to_rgb(fm.to_rgb(x))


# ---------------------------------------------------------------------------------------------
# NumPy augmentation (CPU scale)


def _batch(n=6, size=8, channels=3, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (n, size, size, channels), dtype=np.uint8)


def test_augment_deterministic_shapes_and_dtypes():
  x = _batch()
  a = ip.augment(x, seed=1, step=3, cutout_size=4)
  assert a.shape == x.shape and a.dtype == np.uint8
  np.testing.assert_array_equal(a, ip.augment(x, seed=1, step=3, cutout_size=4))
  assert not np.array_equal(a, ip.augment(x, seed=1, step=4, cutout_size=4))
  assert not np.array_equal(a, ip.augment(x, seed=2, step=3, cutout_size=4))
  np.testing.assert_array_equal(x, _batch())  # The input is not modified.
  floats = ip.augment(x.astype(np.float32), seed=1, step=3, cutout_size=4)
  assert floats.dtype == np.float32
  np.testing.assert_array_equal(floats, a.astype(np.float32))


def test_random_crop_is_a_window_of_the_reflect_padded_image():
  x = _batch(n=20)
  out = ip.random_crop(x, 2, seed=0, step=0)
  padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
  offsets = set()
  for i in range(len(x)):
    hits = [(dy, dx) for dy in range(5) for dx in range(5)
            if np.array_equal(padded[i, dy:dy + 8, dx:dx + 8], out[i])]
    assert hits, i
    offsets.add(hits[0])
  assert len(offsets) > 5  # Offsets vary over the batch.
  np.testing.assert_array_equal(ip.random_crop(x, 0, seed=0, step=0), x)
  zero = ip.random_crop(x, 2, seed=0, step=0, mode="constant")
  assert (zero == 0).any()


def test_random_flip_and_cutout():
  x = _batch(n=64)
  flipped = ip.random_flip(x, seed=0, step=0)
  same = np.all(flipped == x, axis=(1, 2, 3))
  mirrored = np.all(flipped == x[:, :, ::-1], axis=(1, 2, 3))
  assert np.all(same | mirrored) and 16 < mirrored.sum() < 48
  x = np.full((16, 12, 12, 3), 200, np.uint8)
  cut = ip.cutout(x, 5, seed=0, step=0, fill=7)
  assert np.all((cut == 7).sum(axis=(1, 2)) == 25)  # 5x5 per image and channel, all inside
  assert np.all((cut == 7).all(-1) == (cut == 7).any(-1))  # Same square in every channel.
  assert len({tuple(np.argwhere(c[..., 0] == 7)[0]) for c in cut}) > 3
  np.testing.assert_array_equal(ip.cutout(x, 0, seed=0, step=0), x)
  with pytest.raises(ValueError, match="exceeds"):
    ip.cutout(x, 13, seed=0, step=0)


def test_augment_process_shares_concatenate():
  x = _batch(n=12)
  whole = ip.augment(x, seed=5, step=7, cutout_size=3)
  shares = [ip.augment(x[i:i + 3], seed=5, step=7, row_offset=i, cutout_size=3)
            for i in range(0, 12, 3)]
  np.testing.assert_array_equal(np.concatenate(shares), whole)


def test_augment_on_padded_fashion_mnist_shapes():
  x = fm.to_rgb(fm.pad_to(np.random.default_rng(0).integers(0, 256, (4, 28, 28, 1), np.uint8)))
  out = ip.augment(x, seed=0, step=0, fill=round(255 * fm.MEAN))
  assert out.shape == (4, 32, 32, 3) and out.dtype == np.uint8
  assert np.all((out == 73).all(-1).sum(axis=(1, 2)) >= 64)


# ---------------------------------------------------------------------------------------------
# TFDS pipelines: mocked data only; nothing may be downloaded


@pytest.fixture
def no_download(monkeypatch):
  tfds = pytest.importorskip("tensorflow_datasets")

  def forbidden(*args, **kwargs):
    raise AssertionError("download_and_prepare must never be called")

  monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", forbidden)
  return tfds


def _take(it, k):
  return [next(it) for _ in range(k)]


def test_cifar10_train_stream(no_download, tmp_path):
  tfds = no_download
  kw = dict(batch_size=4, data_dir=str(tmp_path))
  with tfds.testing.mock_data(num_examples=10):
    a = _take(ip.cifar10("train", seed=1, **kw), 6)
    b = _take(ip.cifar10("train", seed=1, **kw), 6)
    resumed = _take(ip.cifar10("train", seed=1, start_step=3, **kw), 3)
    other_epochs = _take(ip.cifar10("train", seed=2, **kw), 2)
    other = other_epochs[:1]
    plain = _take(ip.cifar10("train", seed=1, cutout_size=0, dtype="bfloat16", **kw), 1)
    # Two processes, each reading its half of every global batch of 4.
    halves = [_take(ip.cifar10("train", seed=1, batch_size=2, data_dir=str(tmp_path),
                               process_index=p, process_count=2), 6) for p in (0, 1)]
    source = tfds.data_source("cifar10", split="train", data_dir=str(tmp_path))
    labels = np.array([source[i]["label"] for i in range(len(source))])
  for batch in a:
    assert batch["image"].shape == (4, 32, 32, 3) and batch["image"].dtype == np.float32
    assert batch["label"].shape == (4,) and batch["label"].dtype == np.int32
    assert set(batch) == {"image", "label"}
    assert np.all((batch["image"] == 0).all(-1).sum(axis=(1, 2)) >= 64)  # 8x8 cutout
  for u, v in zip(a, b):  # Same seed, same stream.
    np.testing.assert_array_equal(u["image"], v["image"])
    np.testing.assert_array_equal(u["label"], v["label"])
  for u, v in zip(a[3:], resumed):  # start_step resumes the same stream.
    np.testing.assert_array_equal(u["image"], v["image"])
    np.testing.assert_array_equal(u["label"], v["label"])
  for step, batch in enumerate(a):  # two processes' shares concatenate to the global batch
    np.testing.assert_array_equal(
        np.concatenate([halves[0][step]["image"], halves[1][step]["image"]]), batch["image"])
  # Each epoch (10 examples = 2.5 batches) holds every example once, in a new order.
  stream = np.concatenate([batch["label"] for batch in a])
  for epoch in (stream[:10], stream[10:20]):
    assert sorted(epoch.tolist()) == sorted(labels.tolist())
  assert not np.array_equal(stream[:10], stream[10:20])  # each epoch in its own order
  # Seed 2's first epoch is not seed 1's second (grain seeds epoch e with seed + e).
  other_stream = np.concatenate([batch["label"] for batch in other_epochs])
  assert not np.array_equal(other_stream[:8], stream[10:18])
  assert not np.array_equal(a[0]["image"], other[0]["image"])
  assert plain[0]["image"].dtype.name == "bfloat16"
  assert np.abs(np.asarray(a[0]["image"])).max() < 10  # normalised


def test_cifar10_eval_normalised_padded_and_masked(no_download, tmp_path):
  tfds = no_download
  with tfds.testing.mock_data(num_examples=10):
    batches = list(ip.cifar10("test", batch_size=4, data_dir=str(tmp_path)))
    source = tfds.data_source("cifar10", split="test", data_dir=str(tmp_path))
    raw = [source[i] for i in range(len(source))]
    tail = list(ip.cifar10("test[6:]", batch_size=4, data_dir=str(tmp_path)))
    shares = [list(ip.cifar10("test", batch_size=4, data_dir=str(tmp_path), process_index=p,
                              process_count=2)) for p in (0, 1)]
    # Shares of 3, 3 and 4 at batch 3: every process yields 2 batches (lockstep).
    uneven = [list(ip.cifar10("test", batch_size=3, data_dir=str(tmp_path), process_index=p,
                              process_count=3)) for p in (0, 1, 2)]
    with pytest.raises(ValueError, match="fewer than the 12 processes"):
      ip.cifar10("test", batch_size=1, data_dir=str(tmp_path), process_index=0,
                 process_count=12)
  assert len(batches) == 3
  assert [b["mask"].tolist() for b in batches][-1] == [True, True, False, False]
  assert all(b["image"].shape == (4, 32, 32, 3) for b in batches)
  images = np.concatenate([b["image"] for b in batches])
  labels = np.concatenate([b["label"] for b in batches])
  assert not images[10:].any() and not labels[10:].any()  # Padding is zeros.
  want = (np.stack([r["image"] for r in raw]).astype(np.float32)
          - np.float32(ip.CIFAR10_MEAN)) / np.float32(ip.CIFAR10_STD)
  np.testing.assert_allclose(images[:10], want, rtol=1e-5, atol=1e-5)  # normalisation only
  np.testing.assert_array_equal(labels[:10], [r["label"] for r in raw])
  assert len(tail) == 1 and tail[0]["mask"].sum() == 4  # a slice of the split
  np.testing.assert_array_equal(tail[0]["label"], labels[6:10])
  assert [len(u) for u in uneven] == [2, 2, 2]
  assert [int(sum(b["mask"].sum() for b in u)) for u in uneven] == [3, 3, 4]
  np.testing.assert_array_equal(
      np.concatenate([b["label"][b["mask"]] for u in uneven for b in u]), labels[:10])
  for p, share in enumerate(shares):  # contiguous shares of 5
    got = np.concatenate([b["label"][b["mask"]] for b in share])
    np.testing.assert_array_equal(got, labels[5 * p:5 * p + 5])


def test_imagenet_train_and_eval_shapes(no_download, tmp_path):
  tfds = no_download
  with tfds.testing.mock_data(num_examples=5):
    train = _take(ip.imagenet2012("train", batch_size=2, seed=0, data_dir=str(tmp_path),
                                  image_size=64), 2)
    again = _take(ip.imagenet2012("train", batch_size=2, seed=0, data_dir=str(tmp_path),
                                  image_size=64, start_step=1), 1)
    evals = list(ip.imagenet2012("validation", batch_size=4, data_dir=str(tmp_path),
                                 dtype="bfloat16"))
    held = list(ip.imagenet2012("validation[:3]", batch_size=4, data_dir=str(tmp_path)))
  assert train[0]["image"].shape == (2, 64, 64, 3) and train[0]["image"].dtype == np.float32
  assert train[0]["label"].dtype == np.int32 and np.all(train[0]["label"] < 1000)
  np.testing.assert_array_equal(train[1]["image"], again[0]["image"])
  assert len(evals) == 2 and evals[0]["image"].shape == (4, 224, 224, 3)
  assert evals[0]["image"].dtype.name == "bfloat16"
  assert evals[1]["mask"].tolist() == [True, False, False, False]
  assert len(held) == 1 and held[0]["mask"].tolist() == [True, True, True, False]


def test_tfds_unprepared_data_dir_raises_without_download(no_download, tmp_path):
  with pytest.raises(DatasetNotFoundError) as e:
    ip.cifar10("train", batch_size=4, data_dir=str(tmp_path))
  message = str(e.value)
  assert "\n" not in message and "tfds build cifar10" in message and str(tmp_path) in message
  assert "--file_format=array_record" in message
  with pytest.raises(DatasetNotFoundError, match="manual_dir"):
    ip.imagenet2012("validation", batch_size=4, data_dir=str(tmp_path))
  assert list(tmp_path.iterdir()) == []  # Nothing was written either.
  with pytest.raises(ValueError, match="split"):
    ip.cifar10("validation", batch_size=4, data_dir=str(tmp_path))


def test_fashion_mnist_tfds_mock(no_download, tmp_path):
  tfds = no_download
  with tfds.testing.mock_data(num_examples=12):
    images, labels = fm.load("train", source="tfds", data_dir=str(tmp_path), image_size=32,
                             channels=3)
  assert images.shape == (12, 32, 32, 3) and images.dtype == np.uint8
  assert labels.shape == (12,) and labels.dtype == np.int32 and labels.max() < 10
  with pytest.raises(DatasetNotFoundError, match="tfds build fashion_mnist"):
    fm.load("test", source="tfds", data_dir=str(tmp_path))


def test_eval_split_slices_name_the_held_out_part():
  """`eval_split="test[1000:]"` (TFDS's slice syntax) evaluates on the test images after the
  first 1000, the ones the cpu tuning grids never chose on."""
  from experiments.configs import table3  # pylint: disable=import-outside-toplevel
  from lamb.data import splits  # pylint: disable=import-outside-toplevel
  from lamb.train import plan, tasks  # pylint: disable=import-outside-toplevel
  assert splits.split_and_slice("test") == ("test", slice(None))
  assert splits.split_and_slice("test[1000:]") == ("test", slice(1000, None))
  assert splits.split_and_slice("train[:50]") == ("train", slice(None, 50))
  with pytest.raises(ValueError, match="only slices of example counts"):
    splits.split_and_slice("test[10%:]")
  # A config with a slice it cannot read is refused before any run starts (dry runs included),
  # and one that selects nothing when its data loads.
  bad = table3.get_config("cpu")
  bad.data.eval_split = "test[10%:]"
  with pytest.raises(ValueError, match="data.eval_split"):
    plan.check_config(bad)
  empty = table3.get_config("cpu,num_epochs=1")
  empty.data.eval_split = "test[20000:]"
  with pytest.raises(ValueError, match="selects no example"):
    tasks.build(empty)
  config = table3.get_config("cpu,num_epochs=1")
  task = tasks.build(config)
  images, labels = fm.load("test", image_size=32, channels=3)
  assert len(task.eval_arrays["label"]) == 9000
  np.testing.assert_array_equal(task.eval_arrays["label"], labels[1000:])
