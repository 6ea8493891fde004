"""The image experiments' configs carry the paper's settings exactly as printed.

Every grid, ladder, warmup, epoch count and batch size of Tables 3, 5, 6 and 9-25 and of
Figures 1-3 is checked against `analysis/reported/` (the paper's numbers as data) or, for the
values only the paper's text prints, against that text where it is available.
"""
from __future__ import annotations

import importlib
import math
import re
from pathlib import Path

import pytest

from analysis import reported
from experiments import sweep
from experiments.configs import _imagenet, common
from lamb.data import splits
from lamb.train import tasks
from lamb.train import plan as plan_lib

PAPER = Path(__file__).resolve().parents[2] / "shared" / "paper" / "000_9517fb6331474ddb.txt"


def config(name, arg="paper"):
  return importlib.import_module(f"experiments.configs.{name}").get_config(arg)


def runs(cfg):
  return [sweep.run_config(cfg, values) for _, values in sweep.expand_sweep(cfg)]


def settings(table: int) -> set:
  """The distinct (learning rate, weight decay, L2 regularization) settings a table prints."""
  df = reported.load(table)
  df = df[df.metric == "top1_accuracy"]
  out = set()
  for _, r in df.iterrows():
    wd = r.get("weight_decay")
    l2 = r.get("l2_regularization") or None
    out.add((round(float(r.learning_rate), 8),
             None if wd is None or (isinstance(wd, float) and math.isnan(wd)) else float(wd),
             {"default (0.01)": 0.01, "disable": 0.0, None: None}[l2]))
  return out


@pytest.mark.parametrize("table", range(9, 26))
def test_tuning_grids_are_the_printed_ones(table):
  cfg = config(f"table{table}")
  assert cfg.batch_size == 16384 and cfg.num_epochs == 90
  assert cfg.model.to_dict() == dict(name="resnet", depth=50, width=1.0, stem="imagenet",
                                     num_classes=1000, bn_group_size=_imagenet.PAPER_BN_GROUP,
                                     conv="xla")
  assert cfg.data.name == "imagenet2012"
  got = set()
  for run in runs(cfg):
    kwargs = run.optimizer.kwargs.to_dict()
    wd = run.optimizer.get("weight_decay")
    got.add((round(run.optimizer.learning_rate, 8), None if wd is None else float(wd),
             kwargs.get("l2_regularization")))
  want = settings(table)
  assert got == want
  names = {run.optimizer.name for run in runs(cfg)}
  optimizer = reported.load(table).optimizer.iloc[0]
  assert names == {optimizer.rstrip("+").lower()}
  schedule = cfg.optimizer.schedule
  if optimizer.endswith("+"):  # Goyal et al.: 5-epoch warmup, x0.1 at 30, 60, 80
    assert schedule.name == "goyal" and schedule.warmup_epochs == 5.0
    assert tuple(schedule.decay_epochs) == (30.0, 60.0, 80.0) and schedule.decay_factor == 0.1
  else:
    assert schedule.name == "warmup_polynomial_decay" and schedule.warmup_ratio == 0.0


@pytest.mark.parametrize("table", range(9, 26))
def test_imagenet_runs_take_the_printed_7038_iterations(table):
  cfg = config(f"table{table}")
  steps_per_epoch, total = plan_lib.run_length(cfg, tasks.build(cfg, load_data=False))
  assert total == 7038 == reported.load(table).steps.iloc[0]


def test_table3_uses_each_grid_best_setting():
  cfg = config("table3")
  variants = dict(cfg.variants)
  best = {}
  for table in range(9, 26):
    df = reported.load(table)
    df = df[(df.metric == "top1_accuracy") & df.value.notna()]
    row = df.loc[df.value.idxmax()]
    label = row.optimizer.lower()
    if label not in best or row.value > best[label].value:
      best[label] = row
  for label, row in best.items():
    section = dict(variants[label])["optimizer"]
    assert section["learning_rate"] == pytest.approx(row.learning_rate), label
    assert (section["schedule"]["name"] == "goyal") == label.endswith("+")
    if label.startswith("adamw"):
      assert section["weight_decay"] == pytest.approx(row.weight_decay)
      l2 = {"default (0.01)": 0.01, "disable": 0.0}[row.l2_regularization]
      assert section["kwargs"]["l2_regularization"] == l2
  # The best AdamW/AdamW+ of the grids are Table 3's printed AdamW/AdamW+ accuracies.
  t3 = reported.load(3).set_index("optimizer").value
  assert best["adamw"].value == pytest.approx(t3["AdamW"], abs=1e-4)
  assert best["adamw+"].value == pytest.approx(t3["AdamW+"], abs=1e-4)
  momentum = dict(variants["momentum"])["optimizer"]
  assert momentum["learning_rate"] == pytest.approx(0.1 * 16384 / 256)
  assert set(variants) == {"adagrad", "adagrad+", "adam", "adam+", "adamw", "adamw+",
                           "momentum", "lamb"}


def test_table5_ladder_is_the_printed_one():
  cfg = config("table5")
  df = reported.load(5)
  lr = df[df.metric == "learning_rate"].set_index("batch_size").value
  warmup = df[df.metric == "warmup_epochs"].set_index("batch_size").value
  got = {run.batch_size: run for run in runs(cfg)}
  assert sorted(got) == sorted(lr.index)
  for batch, run in got.items():
    assert run.optimizer.learning_rate == pytest.approx(lr[batch])
    assert run.optimizer.schedule.warmup_ratio * 90 == pytest.approx(warmup[batch])
    assert run.num_epochs == 90 and run.optimizer.name == "lamb"
  # cpu scale: the same learning rates and warmup fractions, batches / 64, the top four rungs on
  # three seeds, each run recording the paper row it stands for.
  divisor = _imagenet.IMAGENET_CPU["batch_divisor"]
  cpu_runs = runs(config("table5", "cpu"))
  assert len(cpu_runs) == 4 * 3
  for run in cpu_runs:
    batch = run.batch_size * divisor
    assert run.optimizer.learning_rate == pytest.approx(lr[batch])
    assert run.optimizer.schedule.warmup_ratio * 90 == pytest.approx(warmup[batch])
    assert run.paper.batch_size == batch and run.paper.row == run.variant
    assert run.paper.learning_rate == pytest.approx(lr[batch])
    assert tuple(run.paper.rows_at_scale) == ("4K", "8K", "16K", "32K")
  assert {run.seed for run in cpu_runs} == {0, 1, 2}


def test_imagenet_ladder_is_sized_from_the_top():
  """The cpu ladder's largest batch trains at least the claims' step floor."""
  from analysis import claims  # pylint: disable=import-outside-toplevel
  cpu = config("table5", "cpu")
  top = max(runs(cpu), key=lambda run: run.batch_size)
  steps = cpu.num_epochs * cpu.data.train_examples // top.batch_size
  assert steps >= claims.MIN_STEPS
  assert cpu.noise_scale_every_epochs > 0  # the ladder measures its critical batch


def test_table3_cpu_baselines_follow_their_own_rules():
  variants = dict(config("table3", "cpu").variants)
  momentum = dict(variants["momentum"])["optimizer"]
  assert momentum["learning_rate"] == pytest.approx(0.1 * 256 / 256)  # Goyal et al.'s rule
  lamb_cpu = dict(variants["lamb"])["optimizer"]["learning_rate"]
  lamb_paper = dict(dict(config("table3").variants)["lamb"])["optimizer"]["learning_rate"]
  assert lamb_cpu == pytest.approx(lamb_paper)  # the square-root rule keeps the batch ratio
  assert dict(variants["momentum"])["paper"]["learning_rate"] == pytest.approx(6.4)


def test_table3_cpu_baselines_are_the_committed_cpu_grids_best():
  """CPU_TUNED is data read off the committed cpu-scale grids: the selector still agrees."""
  from analysis import runs as runs_lib, select  # pylint: disable=import-outside-toplevel
  module = importlib.import_module("experiments.configs.table3")
  every = runs_lib.load(Path(__file__).resolve().parents[1] / "results")
  for label, tuned in module.CPU_TUNED.items():
    frame = every[(every.experiment == f"table{tuned['table']}") & (every.scale == "cpu")]
    best = select.choose(frame, select.SETTINGS, "final.accuracy").settings[0]
    assert best.key[0] == pytest.approx(tuned["learning_rate"]), label
    if "weight_decay" in tuned:
      assert best.key[1] == pytest.approx(tuned["weight_decay"]), label
    grid = importlib.import_module("experiments.configs._imagenet_tuning").GRIDS[tuned["table"]]
    assert grid[0] == tuned["name"] and grid[1] == tuned["goyal"], label
    assert grid[2] in (None, tuned.get("l2_regularization")), label
  # Each tuned label takes the best of all the grids of its optimizer and recipe.
  for label, tuned in module.CPU_TUNED.items():
    same = [t for t, g in importlib.import_module("experiments.configs._imagenet_tuning")
            .GRIDS.items() if (g[0], g[1]) == (tuned["name"], tuned["goyal"])]
    means = {t: select.choose(every[(every.experiment == f"table{t}") & (every.scale == "cpu")],
                              select.SETTINGS, "final.accuracy").settings[0].mean for t in same}
    assert max(means, key=means.get) == tuned["table"], label


def test_tuned_and_reported_splits_are_disjoint():
  """The grids choose on the first 1000 test images; the runs that report their choice read the
  other 9000."""
  grid, t3 = config("table17", "cpu"), config("table3", "cpu")
  assert (grid.data.eval_split, grid.data.eval_examples) == ("test", 1000)
  assert t3.data.eval_split == "test[1000:]" and not t3.data.eval_examples


def test_lars_imagenet_and_momentum_ladder():
  lars = {run.variant: run for run in runs(config("lars_imagenet"))}
  assert lars["lars_32K"].optimizer.learning_rate == 32.0
  assert lars["lars_32K"].optimizer.schedule.warmup_ratio * 90 == pytest.approx(14.0)
  assert lars["lars_2K"].optimizer.kwargs.form == "you2017"
  assert lars["lamb_2K"].optimizer.learning_rate == pytest.approx(0.01)  # Table 5's 2K row
  momentum = {run.batch_size: run for run in runs(config("momentum_ladder", "cpu"))}
  assert sorted(momentum) == [128, 512]
  assert momentum[512].optimizer.learning_rate == pytest.approx(0.1 * 512 / 256)
  # At the cpu scale its 16K rung is Table 3's momentum row: the same optimizer section.
  table3_momentum = dict(dict(config("table3", "cpu").variants)["momentum"])["optimizer"]
  ladder = config("momentum_ladder", "cpu")
  assert _imagenet.goyal_momentum(ladder, 256) == table3_momentum


def _caption_grid(caption_start: str) -> list:
  text = PAPER.read_text()
  caption = text[text.index(caption_start):]
  grid = re.search(r"\{([\d., ]+)\}", caption).group(1)
  return [float(v) for v in grid.split(",")]


def test_table6_grid_is_the_printed_one():
  cfg = config("table6")
  assert cfg.batch_size == 512 and cfg.num_epochs == 24 and cfg.data.name == "cifar10"
  assert cfg.model.name == "davidnet" and cfg.model.width == 1.0
  by_optimizer = {}
  for run in runs(cfg):
    by_optimizer.setdefault(run.optimizer.name, set()).add(
        (run.optimizer.learning_rate, run.optimizer.weight_decay))
  module = importlib.import_module("experiments.configs.table6")
  for name in ("adagrad", "adam", "lamb"):
    assert sorted(lr for lr, _ in by_optimizer[name]) == list(module.LEARNING_RATES)
  assert by_optimizer["adamw"] == {(lr, wd) for lr in module.LEARNING_RATES
                                   for wd in (0.0001, 0.001, 0.01, 0.1, 1.0)}
  assert len(by_optimizer["momentum"]) == 1
  assert len(module.LEARNING_RATES) == 34
  if PAPER.exists():
    assert list(module.LEARNING_RATES) == _caption_grid("Table 6: CIFAR-10 training")


def test_figure1_settings():
  cfg = config("figure1")
  assert cfg.batch_size == 32768
  variants = dict(cfg.variants)
  for name in ("nlamb_seed0", "nnlamb_seed0"):
    kwargs = dict(variants[name])["optimizer"]["kwargs"]
    assert (kwargs["b1"], kwargs["b2"], kwargs["eps"]) == (0.975, 0.999, 1e-8)
  nadam = sorted(dict(v)["optimizer"]["learning_rate"] for k, v in variants.items()
                 if k.startswith("nadam"))
  assert nadam == pytest.approx(sorted([m * 10.0 ** e for e in (-4, -3) for m in range(1, 10)]
                                       + [0.01]))
  assert dict(variants["nlamb_seed0"])["optimizer"]["learning_rate"] == pytest.approx(0.04)
  # The cpu scale brackets Nadam's best (the paper's grid tops out at it there): 1-2-5 a decade.
  cpu_nadam = [run.optimizer.learning_rate for run in runs(config("figure1", "cpu"))
               if run.optimizer.name == "nadam"]
  assert cpu_nadam == [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1]
  # At the cpu scale the compared optimizers run 3 seeds, Nadam's grid one; LAMB is Table 5's
  # 32K rung (test_shared_arms_train_what_their_source_runs_train).
  seeds = {}
  for run in runs(config("figure1", "cpu")):
    seeds.setdefault(run.optimizer.name, set()).add(run.seed)
  assert seeds == {"nlamb": {0, 1, 2}, "nnlamb": {0, 1, 2}, "momentum": {0, 1, 2},
                   "nadam": {0}}


def test_figure2_and_figure3_ablations():
  variants = dict(config("figure2").variants)
  seen = {(dict(v)["optimizer"]["kwargs"]["bias_correction"],
           dict(v)["optimizer"]["schedule"]["warmup_ratio"] > 0) for v in variants.values()}
  # (True, True), LAMB as it is, is Table 3's LAMB; so is Figure 3's L2.
  assert seen == {(True, False), (False, True), (False, False)}
  norms = {run.optimizer.kwargs.norm for run in runs(config("figure3"))}
  assert norms == {"l1", "linf"}
  # Claims 14-16 compare these runs seed by seed on the test images no grid chose on.
  for name in ("figure2", "figure3"):
    cpu_runs = runs(config(name, "cpu"))
    assert {run.seed for run in cpu_runs} == set(_imagenet.CPU_SEEDS)
    assert {run.data.eval_split for run in cpu_runs} == {"test[1000:]"}


# What a shared arm's source run may differ in from the run the figure would train: names, the
# paper record, how often it evaluates or measures the noise scale (neither changes a step), and
# `momentum`, a shared knob of Table 3's sweep that LAMB does not take (asserted below).
SHARED_ARM_NO_OPS = {"name", "variant", "paper", "eval_every_epochs", "noise_scale_every_epochs",
                     "noise_scale_parts", "optimizer.momentum"}


def _arm(figure: str, scale: str):
  """The run `figure` would train for its shared arm (seed 0): its neighbour with the arm's
  switch put back to LAMB's own."""
  by_name = {r.variant if "variant" in r else r.optimizer.kwargs.norm: r
             for r in runs(config(figure, scale)) if r.seed == 0}
  if figure == "figure1":
    run = by_name["nlamb_seed0"].copy_and_resolve_references()
    run.optimizer.name = "lamb"
    for key in ("b1", "b2", "eps"):
      del run.optimizer.kwargs[key]
  elif figure == "figure2":
    run = by_name["nocorrection_warmup"].copy_and_resolve_references()
    run.optimizer.kwargs.bias_correction = True
  else:
    run = by_name["l1"].copy_and_resolve_references()
    run.optimizer.kwargs.norm = "l2"
  return run


@pytest.mark.parametrize("scale", ["cpu", "paper"])
def test_shared_arms_train_what_their_source_runs_train(scale):
  """Figures 1-3 read one arm from Table 5 or Table 3 (analysis.runs.SHARED_ARMS): only when the
  two configs train the same steps is that a view and not another experiment."""
  import inspect
  from analysis import runs as loader
  from lamb.optim.lamb import lamb
  parameters = inspect.signature(lamb).parameters
  assert "momentum" not in parameters
  assert parameters["bias_correction"].default is True and parameters["norm"].default == "l2"
  for figure, (source, variant, _, _) in loader.SHARED_ARMS.items():
    theirs = next(r for r in runs(config(source, scale)) if r.variant == variant and r.seed == 0)
    mine = _arm(figure, scale).to_dict()
    mine["optimizer"]["kwargs"] = {k: v for k, v in mine["optimizer"]["kwargs"].items()
                                   if not (k == "bias_correction" and v is True)
                                   and not (k == "norm" and v == "l2")}
    assert set(sweep.differences(theirs.to_dict(), mine)) <= SHARED_ARM_NO_OPS, figure


@pytest.mark.parametrize("name", ["table3", "table5", "table6", "figure1", "figure2", "figure3",
                                  "figures9_14", "lars_imagenet", "momentum_ladder"]
                         + [f"table{t}" for t in range(9, 26)])
def test_cpu_scale_names_its_stand_in(name):
  cfg = config(name, "cpu")
  assert "Fashion-MNIST" in cfg.shrink_note and "stand-in" in cfg.shrink_note
  assert cfg.data.name == "fashion_mnist"


@pytest.mark.parametrize("table", range(9, 26))
def test_cpu_tuning_grids_shrink_data_not_grid(table):
  """At cpu scale the grids run on fewer images (stated in the note), never on fewer points."""
  cpu, paper = config(f"table{table}", "cpu"), config(f"table{table}")
  assert cpu.data.train_examples == _imagenet.IMAGENET_TUNING_CPU_EXAMPLES
  assert f"{_imagenet.IMAGENET_TUNING_CPU_EXAMPLES} training" in cpu.shrink_note
  assert "the paper's full grid" in cpu.shrink_note
  assert len(runs(cpu)) == len(runs(paper))


@pytest.mark.parametrize("name,shape", [
    ("table3", _imagenet.IMAGENET_CPU), ("table5", _imagenet.IMAGENET_CPU),
    ("lars_imagenet", _imagenet.IMAGENET_CPU), ("momentum_ladder", _imagenet.IMAGENET_CPU),
    ("figure1", _imagenet.IMAGENET_CPU), ("figure2", _imagenet.IMAGENET_CPU),
    ("figure3", _imagenet.IMAGENET_CPU), ("figures9_14", _imagenet.IMAGENET_CPU_SHORT),
    ("noise_scale", _imagenet.IMAGENET_CPU_SHORT)])
def test_each_imagenet_config_runs_its_stand_in_shape(name, shape):
  cfg = config(name, "cpu")
  assert cfg.data.train_examples == shape["train_examples"]
  assert (cfg.data.eval_split, cfg.num_epochs) == (shape["eval_split"], shape["epochs"])
  assert f"{shape['epochs']} epochs instead of 90" in cfg.shrink_note


def test_command_line_overrides_win_over_variants():
  cfg = config("table6", "cpu")
  with cfg.unlocked():
    cfg.optimizer.learning_rate = 0.123
  name, values = next((n, v) for n, v in sweep.expand_sweep(cfg) if n == "adagrad_lr0.0001")
  assert sweep.run_config(cfg, values).optimizer.learning_rate == 0.0001  # the variant's
  pinned = sweep.run_config(cfg, values, {"optimizer.learning_rate"})
  assert pinned.optimizer.learning_rate == 0.123 and pinned.optimizer.name == "adagrad"
  # Table 3's variants replace the whole optimizer section; a pinned field survives that too.
  t3 = config("table3", "cpu")
  with t3.unlocked():
    t3.optimizer.learning_rate = 0.5
  _, values = next((n, v) for n, v in sweep.expand_sweep(t3) if n == "adam_seed0")
  run = sweep.run_config(t3, values, {"optimizer.learning_rate"})
  assert run.optimizer.name == "adam" and run.optimizer.learning_rate == 0.5


def test_growing_a_grid_keeps_finished_runs_the_same_run():
  cfg = config("figure1", "cpu")
  name, values = sweep.expand_sweep(cfg)[0]
  before = sweep.fingerprint(sweep.run_config(cfg, values).to_dict())
  with cfg.unlocked():
    cfg.variants = tuple(cfg.variants) + (("nadam_lr0.5", (("optimizer.learning_rate", 0.5),)),)
  assert sweep.fingerprint(sweep.run_config(cfg, values).to_dict()) == before


def test_nado_tuning_gives_both_optimizers_one_budget_on_a_split_never_reported():
  """Nado et al.'s test: the same number of rates for LAMB and Nesterov, each around its own
  rule; the tuning and the reported runs read disjoint parts of the test split."""
  module = importlib.import_module("experiments.configs.nado_tuning")
  tuning = config("nado_tuning", "cpu")
  variants = {name: dict(o) for name, o in tuning.variants}
  budgets = {}
  for name in variants:
    budgets[name.split("_x")[0]] = budgets.get(name.split("_x")[0], 0) + 1
  assert budgets == {"lamb": module.TUNING_BUDGET, "nesterov": module.TUNING_BUDGET}
  # LAMB at x1 is Table 5's 32K rung; Nesterov at x1 Goyal et al.'s 0.1 x B/256
  rung = dict(dict(config("table5", "cpu").variants)["32K"])
  assert variants["lamb_x1"]["optimizer.learning_rate"] == rung["optimizer.learning_rate"]
  assert variants["lamb_x1"]["batch_size"] == rung["batch_size"] == 512
  nesterov = variants["nesterov_x1"]["optimizer"]
  assert nesterov["learning_rate"] == pytest.approx(0.1 * 512 / 256)
  assert nesterov["kwargs"]["nesterov"] is True
  for name, overrides in variants.items():
    assert overrides["paper"]["tuning_budget"] == module.TUNING_BUDGET, name
  final = config("nado_imagenet", "cpu")
  _, tuned = splits.split_and_slice(tuning.data.eval_split)
  _, reported_part = splits.split_and_slice(final.data.eval_split)
  held = set(range(10_000)[tuned]) & set(range(10_000)[reported_part])
  assert not held and tuning.data.eval_split == "test[:1000]"
  seeds = dict((p, v) for p, v, _ in final.sweep)["seed"]
  assert 0 not in seeds and len(seeds) >= 3  # the tuning's seed is not reported
  with pytest.raises(ValueError, match="PAPER_TUNED"):
    config("nado_imagenet", "paper")  # refused until the paper scale's tuning has run


def test_nado_imagenet_runs_the_committed_tuning_grids_best():
  """CPU_TUNED is data read off the committed nado_tuning runs: the selector still agrees."""
  from analysis import runs as runs_lib, select  # pylint: disable=import-outside-toplevel
  module = importlib.import_module("experiments.configs.nado_imagenet")
  every = runs_lib.load(Path(__file__).resolve().parents[1] / "results")
  grid = every[(every.experiment == "nado_tuning") & (every.scale == "cpu")]
  for name, factor in module.CPU_TUNED.items():
    group = grid[grid["config.variant"].str.startswith(f"{name}_x")]
    assert len(group) == importlib.import_module(
        "experiments.configs.nado_tuning").TUNING_BUDGET, name
    best = select.choose(group, select.SETTINGS, "final.accuracy").best
    assert best.runs["config.variant"].iloc[0] == f"{name}_x{factor:g}", name


def test_table6_runs_the_tensorflow_davidnet_the_paper_ran_and_cutout_on_demand():
  """The paper ran the TF TPU port of DavidNet (no Cutout); Page's Cutout is a named variant."""
  assert config("table6").data.augment.cutout_size == 0
  with_cutout = config("table6", "paper,cutout")
  assert with_cutout.data.augment.cutout_size == 8
  assert sweep.identity(with_cutout.to_dict()) != sweep.identity(config("table6").to_dict())
  assert config("figure4", "paper").data.augment.cutout_size == 0
  cpu = config("table6", "cpu")
  assert cpu.data.augment.cutout_size == 8 and "Cutout" in cpu.shrink_note
  with pytest.raises(ValueError, match="paper-scale variant"):
    config("table6", "cpu,cutout")


@pytest.mark.parametrize("arg", ["paper,cutuot", "cpu,fast", "paper,num_epochs=1,cutout2"])
def test_a_word_a_config_does_not_name_is_refused_not_ignored(arg):
  with pytest.raises(ValueError, match="unknown option"):
    config("table6", arg)
  with pytest.raises(ValueError, match="unknown option"):
    config("table5", arg.replace("cutout", "x"))
