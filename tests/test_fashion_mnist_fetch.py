"""Fashion-MNIST installs itself: `load` fetches the Debian package (apt-get download +
dpkg-deb -x, no root) into a per-user cache when no folder holds the files.

The default tests never download: every folder `find_dir` searches is an empty temporary one,
and `apt-get` / `dpkg-deb` are small shell scripts put first on PATH that log their arguments
and unpack synthetic IDX files. The one `slow` test fetches the real package with apt-get.
"""
from __future__ import annotations

import gzip
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from lamb.data import fashion_mnist as fm
from lamb.data.errors import DatasetNotFoundError

TEST_LABELS = np.arange(fm.SPLITS["test"]) % fm.NUM_CLASSES

FAKE_APT_GET = """#!/bin/sh
echo "apt-get $*" >> "$FAKE_LOG"
if [ "$FAKE_APT_FAIL" = 1 ]; then
  echo "E: Unable to locate package $2" >&2
  exit 100
fi
[ "$1" = download ] && [ "$2" = dataset-fashion-mnist ] || exit 1
echo "not a real archive" > "dataset-fashion-mnist_0.0~test-1_all.deb"
"""
FAKE_DPKG_DEB = """#!/bin/sh
echo "dpkg-deb $*" >> "$FAKE_LOG"
[ "$1" = -x ] && [ -f "$2" ] || exit 2
mkdir -p "$3/usr/share/datasets/fashion-mnist" "$3/usr/share/doc/dataset-fashion-mnist"
cp "$FAKE_SRC"/*.gz "$3/usr/share/datasets/fashion-mnist/"
"""


def _write_idx(path: Path, array) -> None:
  array = np.asarray(array, np.uint8)
  header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
  with gzip.open(path, "wb", compresslevel=1) as f:
    f.write(header + array.tobytes())


@pytest.fixture(name="env")
def _env(tmp_path, monkeypatch):
  """Empty search folders, a fake apt on PATH and the files it "fetches" (a valid test split;
  the train files only need to exist, since find_dir checks for all four)."""
  monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "system")
  monkeypatch.setattr(fm, "DEFAULT_CACHE_DIR", tmp_path / "cache")
  monkeypatch.delenv(fm.ENV_DIR, raising=False)
  monkeypatch.delenv(fm.NO_FETCH_ENV, raising=False)
  src = tmp_path / "package-files"
  src.mkdir()
  images = np.zeros((len(TEST_LABELS), 28, 28), np.uint8)
  images[:, 0, 0] = TEST_LABELS  # One pixel tells the examples apart.
  _write_idx(src / "t10k-images-idx3-ubyte.gz", images)
  _write_idx(src / "t10k-labels-idx1-ubyte.gz", TEST_LABELS)
  _write_idx(src / "train-images-idx3-ubyte.gz", np.zeros((1, 28, 28)))
  _write_idx(src / "train-labels-idx1-ubyte.gz", [0])
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  for name, script in (("apt-get", FAKE_APT_GET), ("dpkg-deb", FAKE_DPKG_DEB)):
    (bin_dir / name).write_text(script)
    (bin_dir / name).chmod(0o755)
  log = tmp_path / "apt.log"
  monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
  monkeypatch.setenv("FAKE_LOG", str(log))
  monkeypatch.setenv("FAKE_SRC", str(src))
  monkeypatch.delenv("FAKE_APT_FAIL", raising=False)
  calls = lambda: log.read_text().splitlines() if log.exists() else []
  return tmp_path, calls


def test_load_fetches_into_the_cache_then_finds_it(env, capsys, monkeypatch):
  tmp_path, calls = env
  monkeypatch.setenv(fm.NO_FETCH_ENV, "0")  # 0 leaves fetching on.
  with pytest.raises(DatasetNotFoundError):
    fm.find_dir()  # find_dir itself never fetches.
  assert calls() == []

  images, labels = fm.load("test")
  folder = tmp_path / "cache" / "usr" / "share" / "datasets" / "fashion-mnist"
  assert calls()[0] == "apt-get download dataset-fashion-mnist"
  assert calls()[1].startswith("dpkg-deb -x ") and len(calls()) == 2
  np.testing.assert_array_equal(labels, TEST_LABELS)
  np.testing.assert_array_equal(images[:, 0, 0, 0], TEST_LABELS)
  err = capsys.readouterr().err.strip().splitlines()
  assert err == [f"fetched Fashion-MNIST (Debian dataset-fashion-mnist) into {folder}"]
  assert sorted(p.name for p in folder.iterdir()) == sorted(fm.ALL_FILES)
  assert [p.name for p in (tmp_path / "cache").iterdir()] == ["usr"]  # No temporary left.

  # Found from now on, behind the other folders; nothing is fetched again.
  assert fm.find_dir() == folder and fm.fetch() == folder
  fm.load("test", channels=3)
  assert len(calls()) == 2 and capsys.readouterr().err == ""
  assert str(folder) in fm.describe("debian")
  monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "package-files")
  assert fm.find_dir() == tmp_path / "package-files"


def test_fetch_into_a_given_folder(env, capsys):
  tmp_path, calls = env
  folder = fm.fetch(tmp_path / "elsewhere")
  assert folder == tmp_path.joinpath("elsewhere", "usr", "share", "datasets", "fashion-mnist")
  assert str(folder) in capsys.readouterr().err
  assert fm.load("test", data_dir=str(folder))[1].tolist() == TEST_LABELS.tolist()
  assert not (tmp_path / "cache").exists() and len(calls()) == 2


def _assert_one_line_naming_both_ways(message: str, tmp_path: Path | None) -> None:
  """Both ways: the Debian package (installed or unpacked anywhere) and TFDS; with `tmp_path`,
  also the folders searched (load's message; fetch's own has no search to report)."""
  assert "\n" not in message and message == " ".join(message.split())
  for part in ("apt-get install dataset-fashion-mnist", "apt-get download dataset-fashion-mnist",
               "dpkg-deb -x", "--data_dir=DIR/usr/share/datasets/fashion-mnist", fm.ENV_DIR,
               "tfds build fashion_mnist --data_dir=", "--config.data.source=tfds"):
    assert part in message, part
  if tmp_path is not None:
    assert str(tmp_path / "system") in message and str(tmp_path / "cache") in message
    assert all(name in message for name in fm.ALL_FILES)


def test_failed_fetch_is_one_line_naming_both_ways(env, monkeypatch):
  tmp_path, calls = env
  monkeypatch.setenv("FAKE_APT_FAIL", "1")
  with pytest.raises(DatasetNotFoundError) as e:
    fm.load("train")
  message = str(e.value)
  _assert_one_line_naming_both_ways(message, tmp_path)
  assert ("cannot fetch it: `apt-get download dataset-fashion-mnist` failed: E: Unable to "
          "locate package dataset-fashion-mnist") in message
  assert calls() == ["apt-get download dataset-fashion-mnist"]  # Tried once.
  assert [p.name for p in (tmp_path / "cache").iterdir()] == []  # Nothing half-written.
  with pytest.raises(DatasetNotFoundError) as direct:
    fm.fetch()
  _assert_one_line_naming_both_ways(str(direct.value), None)
  assert "E: Unable to locate" in str(direct.value)


def test_no_apt_get_is_one_line_naming_both_ways(env, monkeypatch):
  tmp_path, _ = env
  (tmp_path / "empty-bin").mkdir()
  monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
  with pytest.raises(DatasetNotFoundError) as e:
    fm.load("test")
  _assert_one_line_naming_both_ways(str(e.value), tmp_path)
  assert "`apt-get` is not available" in str(e.value)


def test_no_fetch_env_skips_the_fetch(env, monkeypatch):
  tmp_path, calls = env
  monkeypatch.setenv(fm.NO_FETCH_ENV, "1")
  with pytest.raises(DatasetNotFoundError) as e:
    fm.load("test")
  _assert_one_line_naming_both_ways(str(e.value), tmp_path)
  assert "not fetched, since $LAMB_NO_FETCH=1" in str(e.value)
  with pytest.raises(DatasetNotFoundError, match="LAMB_NO_FETCH"):
    fm.fetch()
  assert calls() == [] and not (tmp_path / "cache").exists()


def test_no_fetch_for_an_explicit_incomplete_data_dir(env):
  tmp_path, calls = env
  (tmp_path / "mine").mkdir()
  with pytest.raises(DatasetNotFoundError) as e:
    fm.load("test", data_dir=str(tmp_path / "mine"))
  _assert_one_line_naming_both_ways(str(e.value), tmp_path)
  assert str(tmp_path / "mine") in str(e.value) and "data_dir was given" in str(e.value)
  assert calls() == []


@pytest.mark.slow
def test_real_fetch_with_apt_get(tmp_path, monkeypatch, capsys):
  """Downloads dataset-fashion-mnist (31 MB) from the Debian archive into a temporary folder."""
  if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
    pytest.skip("apt-get and dpkg-deb are needed to fetch the Debian package")
  monkeypatch.delenv(fm.NO_FETCH_ENV, raising=False)
  folder = fm.fetch(tmp_path)
  assert folder == tmp_path.joinpath("usr", "share", "datasets", "fashion-mnist")
  assert "fetched Fashion-MNIST (Debian dataset-fashion-mnist) into" in capsys.readouterr().err
  images, labels = fm.load("test", data_dir=str(folder))
  assert images.shape == (10_000, 28, 28, 1)
  assert labels[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]  # The original file order.
  assert np.bincount(labels).tolist() == [1000] * 10
  assert len(fm.load("train", data_dir=str(folder))[1]) == 60_000
