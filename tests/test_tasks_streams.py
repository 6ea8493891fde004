"""Paper-scale image tasks stream from TFDS (tested under tfds.testing.mock_data only)."""
from __future__ import annotations

import importlib

import numpy as np
import pytest

from lamb.train import tasks
from lamb.train import plan as plan_lib

tfds = pytest.importorskip("tensorflow_datasets")


def test_cifar10_task_streams_batches_and_padded_eval():
  config = importlib.import_module("experiments.configs.table6").get_config("paper")
  with config.unlocked():
    config.data.augment = dict(cutout_size=8)
  with tfds.testing.mock_data(num_examples=40):
    task = tasks.build(config)
    batch = next(iter(task.train_batches(8, seed=0)))
    assert batch["image"].shape == (8, 32, 32, 3) and batch["image"].dtype == np.float32
    assert batch["label"].shape == (8,)
    evals = list(task.eval_batches(16))
  assert all(b["image"].shape == (16, 32, 32, 3) for b in evals)
  assert sum(int(b["mask"].sum()) for b in evals) == 40
  # 24 epochs of the real 50,000 images at 512: the stream's count, not the mock's.
  assert plan_lib.run_length(config, task)[1] == 2344 == -(-24 * 50_000 // 512)


def test_unprepared_tfds_folder_is_one_line_error(tmp_path):
  from lamb.data.errors import DatasetNotFoundError
  config = importlib.import_module("experiments.configs.table3").get_config("paper")
  with pytest.raises(DatasetNotFoundError) as e:
    tasks.build(config, data_dir=str(tmp_path))
  assert "\n" not in str(e.value) and "tfds build" in str(e.value)
