"""The walk-through notebook runs top to bottom on the committed results."""
import json
from pathlib import Path

import matplotlib
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "table7_walkthrough.ipynb"


def test_walkthrough_notebook_executes(monkeypatch, tmp_path):
  if not any((ROOT / "results" / "table7" / "cpu").glob("*/summary.json")):
    pytest.skip("no committed table7 results")
  matplotlib.use("Agg")
  monkeypatch.chdir(ROOT / "notebooks")
  cells = json.loads(NOTEBOOK.read_text())["cells"]
  namespace = {}
  for cell in cells:
    if cell["cell_type"] == "code":
      exec(compile("".join(cell["source"]), str(NOTEBOOK), "exec"), namespace)
  assert len(namespace["frame"]) > 0
  assert set(namespace["grid"].columns) >= {"lamb", "adam"}
  assert namespace["ratios"].ratio.gt(0).all()
  namespace["fig"].savefig(tmp_path / "walkthrough.png")
