"""Every config builds at both scales, and the `paper` configs carry the paper's settings."""
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from experiments import sweep  # noqa: E402

CONFIGS = sorted(sweep.available_configs())


# Figures drawn from another experiment's runs: their configs are that experiment's sweep.
RUNS_OF = {"figure4": "table6", "figure5": "table6", "figure6": "table4"}


def _config(name, arg):
  spec = importlib.util.spec_from_file_location(f"cfg_{name}", sweep.available_configs()[name])
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("scale", ["cpu", "paper"])
def test_every_config_builds_and_expands(name, scale):
  module = importlib.import_module(f"experiments.configs.{name}")
  if scale == "paper" and getattr(module, "CPU_ONLY", False):
    with pytest.raises(ValueError, match="cpu scale"):  # refused with a reason, never a guess
      _config(name, scale)
    return
  if scale == "paper" and getattr(module, "PAPER_NEEDS", None):  # a choice not yet made
    with pytest.raises(ValueError, match=module.PAPER_NEEDS):
      _config(name, scale)
    return
  config = _config(name, scale)
  assert config.scale == scale and config.name == RUNS_OF.get(name, name)
  runs = sweep.expand_sweep(config)
  names = [r[0] for r in runs]
  assert len(names) == len(set(names)), "run names must be unique"
  if scale == "cpu":
    assert config.shrink_note, "a cpu-scale config says how it shrinks the paper's setting"


def test_table7_paper_scale_is_the_papers_setting():
  config = _config("table7", "paper")
  assert config.batch_size == 1024 and config.num_epochs == 30
  assert config.model.name == "lenet5" and config.data.name == "mnist"
  assert config.data.source == "tfds"
  axes = {path: values for path, values, _ in config.sweep}
  assert axes["optimizer.name"] == ("momentum", "adagrad", "adam", "adamw", "lamb")
  assert axes["optimizer.learning_rate"] == (0.0001, 0.001, 0.01, 0.1)
  assert len(axes["seed"]) == 5
  assert len(sweep.expand_sweep(config)) == 5 * 4 * 5


def test_table7_cpu_scale_keeps_batch_grid_and_schedule():
  cpu, paper = _config("table7", "cpu"), _config("table7", "paper")
  assert cpu.batch_size == paper.batch_size
  assert cpu.optimizer.schedule.to_dict() == paper.optimizer.schedule.to_dict()
  assert dict((p, v) for p, v, _ in cpu.sweep)["optimizer.learning_rate"] == \
      dict((p, v) for p, v, _ in paper.sweep)["optimizer.learning_rate"]
  assert cpu.data.source == "pureml"


def test_variant_options_and_bad_scale():
  assert _config("table7", "cpu,num_epochs=1").num_epochs == 1
  with pytest.raises(ValueError):
    _config("table7", "tpu")


@pytest.mark.parametrize("name", CONFIGS)
def test_every_config_dry_runs(name, tmp_path, capsys):
  """In process (jax imported once; `test_runner_door` runs the entry points as processes)."""
  from experiments import run  # pylint: disable=import-outside-toplevel
  code = run.cli(["run.py", f"--config={name}", "--dry_run", f"--results_dir={tmp_path}"])
  out, err = capsys.readouterr()
  assert code == 0, err
  assert f"runs of {RUNS_OF.get(name, name)}" in out
  assert not any(tmp_path.iterdir()), "a dry run writes nothing"


def test_committed_results_are_still_the_current_configs_runs(capsys):
  """A config edit that changes what its committed runs trained must come with new results:
  `--dry_run` over `results/` shows every committed run as done, none as a conflict."""
  from experiments import run  # pylint: disable=import-outside-toplevel  (in process: jax once)
  results = ROOT / "results"
  for name in sorted(p.name for p in results.iterdir() if (p / "cpu").is_dir()):
    if name not in CONFIGS:
      continue
    code = run.cli(["run.py", f"--config={name}", "--dry_run", f"--results_dir={results}"])
    out, err = capsys.readouterr()
    assert code == 0, err
    statuses = [line.split()[1] for line in out.splitlines()[:-1]]
    assert statuses and set(statuses) == {"done"}, f"{name}: {sorted(set(statuses))}"

