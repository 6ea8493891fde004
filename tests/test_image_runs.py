"""The image experiments train end to end through `experiments/run.py` at cpu scale (a few
steps each, on the Fashion-MNIST stand-in): DavidNet and ResNet-50 with batch norm, the
augmentation, the variants and the Goyal schedule."""
from __future__ import annotations

import json

import pytest

from conftest import read_json, run_cli
from lamb.data import fashion_mnist as fm

INSTALLED = all((fm.DEBIAN_DIR / name).is_file() for name in fm.ALL_FILES)
pytestmark = pytest.mark.skipif(
    not INSTALLED, reason=f"Fashion-MNIST is not installed in {fm.DEBIAN_DIR}: run `apt-get "
                          f"install {fm.DEBIAN_PACKAGE}`")
SMALL = ["--config.num_steps=3", "--config.data.train_examples=512",
         "--config.data.eval_examples=300", "--config.eval_batch_size=300"]


@pytest.mark.parametrize("config,only,batch", [
    ("table6", "^lamb_lr0.01$", 64),        # DavidNet, augmentation with cutout
    # ResNet-50 at width 1/8, Goyal et al.'s schedule: 30 s, most of it compiling; the model
    # and the schedule have fast tests of their own (test_models_image, test_schedules).
    pytest.param("table3", "^adam\\+_seed0$", 32, marks=pytest.mark.slow),
])
def test_image_configs_train_a_few_steps(tmp_path, config, only, batch):
  proc = run_cli([f"--config={config}", f"--only={only}", f"--config.batch_size={batch}"]
                 + SMALL, results_dir=tmp_path, timeout=400)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  (summary_path,) = list(tmp_path.rglob("summary.json"))
  summary = read_json(summary_path)
  assert summary["status"] == "completed" and summary["steps"] == 3
  assert summary["final"]["examples"] == 300
  assert "Fashion-MNIST" in summary["data"]
  records = [json.loads(l) for l in (summary_path.parent / "metrics.jsonl").read_text().splitlines()]
  train = [r for r in records if r["split"] == "train"]
  assert [r["step"] for r in train] == [1, 2, 3]
  stored = read_json(summary_path.parent / "config.json")
  assert stored["variant"] == only.strip("^$").replace("\\", "").rsplit("_seed", 1)[0]
