"""The BERT configs carry the paper's settings exactly as printed (Tables 1, 2, 4, 8; Section
4.1), every new config dry-runs, and `--estimate` gives BERT-Large's size and Figure 8's
comparison."""
from __future__ import annotations

import importlib

import pytest

from analysis import claims, reported
from conftest import run_cli
from experiments import sweep
from experiments.configs import _bert, common
from lamb.optim import schedules

NEW_CONFIGS = ("table1", "table2", "table4", "table8", "figure6", "figure7", "squad")


def config(name, arg="paper"):
  return importlib.import_module(f"experiments.configs.{name}").get_config(arg)


def runs(cfg) -> dict:
  return {name: sweep.run_config(cfg, values) for name, values in sweep.expand_sweep(cfg)}


def steps(run) -> tuple:
  return tuple(p["overrides"]["num_steps"] for p in run.phases)


def batches(run) -> tuple:
  return tuple(p["overrides"]["batch_size"] for p in run.phases)


def _figure(figure, quantity):
  frame = reported.figures()
  return frame[(frame.figure == figure) & (frame.quantity == quantity)].value.iloc[0]


def test_bert_large_two_phases_as_section_4_1():
  for name in ("table1", "table2", "table4", "table8", "figure6", "figure7"):
    cfg = config(name)
    for run in runs(cfg).values():
      assert run.model.to_dict() == dict(name="bert", preset="large", vocab_size=30522,
                                       attention_probs_dtype="float32")
      assert run.compute_dtype == "bfloat16"
      lengths = [(p["overrides"]["data.max_seq_length"],
                  p["overrides"]["data.max_predictions_per_seq"]) for p in run.phases]
      assert lengths == [(128, 20), (512, 80)], name
      assert run.data.masked_lm_prob == 0.15 and run.data.short_seq_prob == 0.1
      kwargs = run.optimizer.kwargs
      assert kwargs.weight_decay_mask == "exclude_bias_and_norm"
      if run.optimizer.name in ("lamb", "lars"):
        assert kwargs.adaptation_mask == "exclude_bias_and_norm"


def test_table1_steps_batches_and_chips_are_the_printed_ones():
  """Table 1's rows: the baseline and mixed batch in table1, the LAMB rows in table4 (one ladder,
  many views)."""
  paper = reported.load(1)
  got = runs(config("table1"))
  ladder = {r.variant: r for r in runs(config("table4")).values()}
  assert set(got) == {"baseline", "lamb_64K-32K"}
  for _, rep in paper[paper.metric == "steps"].iterrows():
    tpus = int(rep.tpus)
    if rep.optimizer == "Baseline":
      run = got["baseline"]
      assert run.optimizer.name == "adamw" and run.optimizer.learning_rate == 1e-4
    elif str(rep.batch_size).isdigit():
      run = ladder[_bert.label(int(rep.batch_size))]
      assert batches(run) == (rep.batch_size,) * 2
      assert sum(steps(run)) == int(rep.value)
    else:  # 64k/32k: the fixed-epoch rule gives 7032 + 1562 = 8594, printed 8599
      run = got["lamb_64K-32K"]
      assert batches(run) == (65536, 32768)
      assert steps(run) == (7032, 1562)
      assert abs(sum(steps(run)) - rep.value) / rep.value < 1e-3
      assert run.optimizer.schedule.name == "mixed_batch_rewarmup"
      assert run.hardware.reported_efficiency == ("Figure 8",
                                                  "mixed_batch_scaling_efficiency_percent")
    if rep.optimizer == "Baseline" or str(rep.batch_size).isdigit():
      assert sum(steps(run)) == int(rep.value)
    assert run.hardware.chips == tpus and run.hardware.baseline_chips == 16
  # Section 4.1: 14063 iterations at length 128 and 1562 at 512 for 32K; baseline 900k + 100k
  assert steps(ladder["32K"]) == (_figure("Section 4.1", "lamb_32k_steps_seq128"),
                                  _figure("Section 4.1", "lamb_32k_steps_seq512"))
  assert steps(got["baseline"]) == (_figure("Section 4.1", "baseline_steps_seq128"),
                                    _figure("Section 4.1", "baseline_steps_seq512"))


def test_table4_rates_and_warmups_are_the_printed_ones():
  paper = reported.load(4)
  lr = paper[paper.metric == "learning_rate"].set_index("batch_size").value
  warmup = paper[paper.metric == "warmup_ratio"].set_index("batch_size").value
  for scale in ("paper", "cpu"):
    got = {b * (_bert.divisor(scale)): r for r in runs(config("table4", scale)).values()
           for b in [r.batch_size]}
    # the cpu scale runs the rungs it names (sized from the top), the paper scale all seven
    expected = lr.index if scale == "paper" else [
        b for b in lr.index if _bert.label(b) in _bert.BERT_CPU_LADDER["rows"]]
    assert sorted(got) == sorted(expected)
    for batch, run in got.items():
      assert run.optimizer.name == "lamb"
      assert run.paper.batch_size == batch and run.paper.table == 4
      assert run.paper.learning_rate == pytest.approx(lr[batch], rel=1e-12)
      # cpu scale: every printed rate times LAMB's multiplier, recorded in the config
      assert run.learning_rate_multiplier == _bert.lr_multiplier(scale, "lamb",
                                                                 _bert.BERT_CPU_LADDER)
      assert run.optimizer.learning_rate == pytest.approx(
          lr[batch] * run.learning_rate_multiplier, rel=1e-12)
      assert run.optimizer.schedule.warmup_ratio == pytest.approx(warmup[batch], rel=1e-12)
      assert run.optimizer.weight_decay == 0.01
      total = sum(steps(run))
      if scale == "paper":
        assert total == schedules.steps_for_batch(1_000_000, 512, batch)
  # the caption: 32K runs 15625 iterations, 0.2 x 15625 = 3125 of them warmup
  run = runs(config("table4"))["batch32K"]
  assert sum(steps(run)) * run.optimizer.schedule.warmup_ratio == pytest.approx(3125)


def test_table2_trains_lars_on_table4s_rungs():
  """Table 2's LAMB column is Table 4's ladder; table2 trains LARS on the same rungs, at LAMB's
  printed rates (times LARS's own multiplier at the cpu scale)."""
  paper = reported.load(2)
  for scale in ("paper", "cpu"):
    got = runs(config("table2", scale))
    lamb = {r.batch_size: r for r in runs(config("table4", scale)).values()}
    assert {r.optimizer.name for r in got.values()} == {"lars"}
    lars_batches = sorted({r.batch_size for r in got.values()})
    if scale == "paper":
      assert lars_batches == sorted(lamb)
      assert sorted(lamb) == sorted(paper[paper.optimizer == "LARS"].batch_size)
      assert sum(steps(got["lars_32K"])) == 15625
    else:  # every LAMB rung, and 16K (batch 256), where the caption says LARS stops scaling
      assert lars_batches == sorted(set(lamb) | {256})
      assert sum(steps(got["lars_16K_seed0"])) == 512
      assert got["lars_16K_seed0"].paper.rows_at_scale == ("lars_4K", "lars_16K", "lars_32K")
    for run in got.values():
      if run.batch_size not in lamb:
        continue
      twin = lamb[run.batch_size]
      ratio = run.learning_rate_multiplier / twin.learning_rate_multiplier
      assert run.optimizer.learning_rate == pytest.approx(twin.optimizer.learning_rate * ratio)
      assert steps(run) == steps(twin) and run.paper.learning_rate == pytest.approx(
          twin.paper.learning_rate)


def test_table8_grid_is_the_printed_one():
  paper = reported.load(8)
  printed = {(round(r.warmup, 6), round(r.learning_rate, 8))
             for _, r in paper[paper.metric == "f1"].iterrows()}
  got = runs(config("table8"))
  assert {(round(r.optimizer.schedule.warmup_ratio, 6), round(r.optimizer.learning_rate, 8))
          for r in got.values()} == printed
  cpu = runs(config("table8", "cpu")).values()
  assert {(round(r.optimizer.schedule.warmup_ratio, 6),
           round(r.optimizer.learning_rate / r.learning_rate_multiplier, 8)) for r in cpu} == printed
  assert {r.learning_rate_multiplier for r in cpu} == {
      _bert.lr_multiplier("cpu", "adamw", _bert.BERT_CPU_LADDER)}  # AdamW's, the baseline's
  for run in got.values():
    assert run.optimizer.name == "adamw" and batches(run) == (16384, 16384)
    assert sum(steps(run)) == int(paper.steps.iloc[0]) == 31250
    assert steps(run)[0] == 28125  # the printed diverged runs stopped at 28126


def _printed(optimizer: dict, multiplier: float) -> dict:
  """An optimizer section with its rates divided back to the printed ones."""
  out = dict(optimizer, learning_rate=round(optimizer["learning_rate"] / multiplier, 12))
  if "peak2" in optimizer.get("schedule", {}):
    out["schedule"] = dict(optimizer["schedule"],
                           peak2=round(optimizer["schedule"]["peak2"] / multiplier, 12))
  return out


def test_cpu_scale_keeps_the_ladder_ratios_and_names_its_stand_in():
  assert _bert.lr_multiplier("cpu") > 1 and _bert.lr_multiplier("paper") == 1
  ladder = _bert.BERT_CPU_LADDER
  for name in ("table1", "table2", "table4", "table8", "figure6"):
    cpu, paper = runs(config(name, "cpu")), runs(config(name, "paper"))
    shape = ladder
    by_position = name == "table8"  # one run per paper run, names carry the rate
    paper_by_variant = {r.get("variant", k): r for k, r in paper.items()}
    if by_position:
      assert len(cpu) == len(paper)
    for key, run in cpu.items():
      # Runs pair up by variant (seeds aside), or by position (table8's names carry the rate).
      paper_run = (list(paper.values())[list(cpu).index(key)] if by_position
                   else paper_by_variant.get(run.variant))
      if paper_run is None:  # a rung only the cpu scale adds (table2's LARS 16K)
        continue
      d = _bert.BERT_CPU["batch_divisor"]
      assert tuple(b * d for b in batches(run)) == batches(paper_run)
      multiplier = _bert.lr_multiplier("cpu", run.optimizer.name, shape)
      assert multiplier > 1
      assert run.learning_rate_multiplier == multiplier
      assert paper_run.learning_rate_multiplier == 1
      assert _printed(run.optimizer.to_dict(), multiplier) == _printed(
          paper_run.optimizer.to_dict(), 1.0)
      assert run.model.preset == "tiny" and run.data.name == "janeausten"
      assert "Jane Austen" in run.shrink_note and "Sense and Sensibility" in run.shrink_note
      assert "SQuAD F1" in run.shrink_note
      if shape is ladder:
        assert f"{run.optimizer.name} x{multiplier:g}" in run.shrink_note
        assert name == "table8" or run.paper.rows_at_scale
      else:
        assert "learning rate x 8" in run.shrink_note


def test_cpu_mixed_batch_is_divided_by_128_and_follows_the_rules_at_its_batches():
  """The cpu mixed batch (mixed_batch, figure7) runs 64K/32K / 128 so that it trains 250+
  steps; its rates and warmups are LAMB's rules at the batches that run (32K then 16K of the
  paper), times LAMB's multiplier chosen at 32K; AdamW runs Devlin et al.'s rate times its own;
  figure7 is mixed_batch's re-warm-up run, logged more."""
  ladder = _bert.BERT_CPU_LADDER
  mixed = runs(config("mixed_batch", "cpu"))
  rewarm = mixed["lamb_rewarmup_seed0"]
  assert batches(rewarm) == (512, 256) and sum(steps(rewarm)) == 282 >= claims.MIN_STEPS
  assert _bert.mixed_rule_batches("cpu", ladder) == (32768, 16384)
  rule = _bert.mixed_lamb_section("cpu", ladder)
  top = ladder["top_multipliers"]
  assert rule["learning_rate"] == pytest.approx(_bert.lamb_section(32768, "paper")[
      "learning_rate"] * top["lamb"])
  assert rule["schedule"]["peak2"] == pytest.approx(_bert.lamb_section(16384, "paper")[
      "learning_rate"] * top["lamb"])
  assert rewarm.optimizer.to_dict() == rule
  assert rewarm.learning_rate_multiplier == top["lamb"] != ladder["lr_multipliers"]["lamb"]
  adamw = next(r for name, r in mixed.items() if name.startswith("adamw") and r.seed == 0)
  assert adamw.optimizer.learning_rate == pytest.approx(1e-4 * top["adamw"])
  assert adamw.learning_rate_multiplier == top["adamw"]
  assert adamw.optimizer.schedule.to_dict() == dict(
      rule["schedule"], peak2=pytest.approx(rule["schedule"]["peak2"] * 1e-4 * top["adamw"]
                                            / rule["learning_rate"]))
  paper = runs(config("mixed_batch", "paper"))["lamb_rewarmup_seed0"]
  assert batches(paper) == _bert.MIXED and _bert.mixed_rule_batches("paper") == _bert.MIXED
  figure7 = next(iter(runs(config("figure7", "cpu")).values()))
  # the same run: the analysis reads mixed_batch's seed 0 as Figure 7 when figure7 has not run
  assert sweep.differences(figure7.to_dict(), rewarm.to_dict()) == ["name", "variant"]
  assert rewarm.log_every_steps == figure7.log_every_steps == 5
  assert {r.seed for r in mixed.values()} == set(_bert.CPU_SEEDS)


def test_cpu_ladder_is_sized_from_the_top():
  """The ladder's largest batch trains at least MIN_STEPS steps; each optimizer runs the
  multiplier bert_multipliers chose for it."""
  from analysis import claims  # pylint: disable=import-outside-toplevel
  top = max(runs(config("table4", "cpu")).values(), key=lambda r: r.batch_size)
  assert sum(steps(top)) >= claims.MIN_STEPS
  assert len(set(_bert.CPU_SEEDS)) >= 3


def test_every_new_config_dry_runs(capsys, tmp_path):
  from experiments import run  # pylint: disable=import-outside-toplevel  (in process: jax once)
  for name in NEW_CONFIGS:
    for scale in ("cpu", "paper"):
      code = run.cli(["run.py", f"--config={name}:{scale}", "--dry_run",
                      f"--results_dir={tmp_path / 'none'}"])
      out, err = capsys.readouterr()
      assert code == 0, out + err
      assert f"runs of {'table4' if name == 'figure6' else name} ({scale})" in out


def test_estimate_prints_bert_large_and_figure_8():
  proc = run_cli(["--config=table4:paper", "--estimate", "--only=^batch32K$"], timeout=300)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  out = proc.stdout
  assert "336,226,108 parameters" in out
  assert "14,063 steps x batch 32,768" in out and "1,562 steps x batch 32,768" in out
  assert "predicted scaling efficiency 16 -> 1024 chips" in out
  assert "the paper reports 76.8% (Figure 8)" in out


def test_cpu_ladder_multipliers_are_the_committed_grids_choice():
  """BERT_CPU_LADDER's per-optimizer multipliers are data read off committed runs on a
  validation split of the training novels: LAMB's and LARS's off `ladder_multipliers` (at 4K,
  the ladder's smallest rung), AdamW's (the baseline at 512) off `bert_multipliers` (at 512)."""
  from pathlib import Path  # pylint: disable=import-outside-toplevel
  from analysis import runs as runs_lib, select  # pylint: disable=import-outside-toplevel
  every = runs_lib.load(Path(__file__).resolve().parents[1] / "results")
  source = {"lamb": "ladder_multipliers", "lars": "ladder_multipliers",
            "adamw": "bert_multipliers"}
  for name, multiplier in _bert.BERT_CPU_LADDER["lr_multipliers"].items():
    grid = every[(every.experiment == source[name]) & (every.scale == "cpu")]
    group = grid[grid["config.optimizer.name"] == name]
    assert len(group) >= 4, name
    best = select.choose(group, select.SETTINGS, "final.masked_lm_accuracy").best
    assert best is not None, name
    chosen = float(best.runs["config.learning_rate_multiplier"].iloc[0])
    assert chosen == multiplier, (name, chosen)


def test_top_rung_multipliers_are_the_committed_grids_choice():
  """`top_multipliers` (the mixed batch's and nado_bert's rates) are read off the committed
  `top_rung_multipliers` grid at 32K, on the validation split, by `analysis.select`; each
  optimizer had the same number of settings."""
  from pathlib import Path  # pylint: disable=import-outside-toplevel
  from analysis import runs as runs_lib, select  # pylint: disable=import-outside-toplevel
  from experiments.configs import top_rung_multipliers  # pylint: disable=import-outside-toplevel
  every = runs_lib.load(Path(__file__).resolve().parents[1] / "results")
  grid = every[(every.experiment == "top_rung_multipliers") & (every.scale == "cpu")]
  (budget,) = {len(m) for m in top_rung_multipliers.MULTIPLIERS.values()}
  for name, multiplier in _bert.BERT_CPU_LADDER["top_multipliers"].items():
    group = grid[grid["config.optimizer.name"] == name]
    assert len(group) == budget, name
    assert (group["config.data.validation_documents"].astype(float) > 0).all(), name
    best = select.choose(group, select.SETTINGS, "final.masked_lm_accuracy").best
    assert best is not None, name
    assert float(best.runs["config.learning_rate_multiplier"].iloc[0]) == multiplier, name


def test_nado_bert_runs_each_optimizers_top_rung_choice_on_fresh_seeds():
  """Nado et al.'s BERT test: LAMB and AdamW at the ladder's 32K rung (its batch, steps and
  LAMB's schedule), each at its top-rung choice, on seeds the tuning did not use; the paper
  scale refuses until Nado et al.'s settings are recorded."""
  got = runs(config("nado_bert", "cpu"))
  top = _bert.BERT_CPU_LADDER["top_multipliers"]
  rung = runs(config("table4", "cpu"))["batch32K_seed0"]
  assert sorted(got) == sorted(f"{o}_32K_seed{s}" for o in ("lamb", "adamw") for s in (1, 2, 3))
  for name, run in got.items():
    optimizer = name.split("_")[0]
    assert run.phases == rung.phases and run.num_steps == rung.num_steps >= 250
    assert run.optimizer.schedule.to_dict() == rung.optimizer.schedule.to_dict()
    assert run.learning_rate_multiplier == top[optimizer] == run.paper.tuned_factor
    assert run.paper.tuning_budget == 4 and run.optimizer.name == optimizer
  assert got["lamb_32K_seed1"].optimizer.learning_rate == pytest.approx(
      rung.optimizer.learning_rate / _bert.BERT_CPU_LADDER["lr_multipliers"]["lamb"] * top["lamb"])
  assert got["adamw_32K_seed1"].optimizer.learning_rate == pytest.approx(1e-4 * top["adamw"])
  assert got["adamw_32K_seed1"].optimizer.kwargs.bias_correction is False
  with pytest.raises(ValueError, match="Nado et al.'s tuned BERT-Large settings"):
    config("nado_bert", "paper")


def test_bert_correction_is_table4s_rung_without_the_adam_correction():
  """Appendix E's BERT half changes one thing of Table 4's rung (4K at cpu, 32K at paper): the
  bias correction; the other side is table4's own run of the same seed."""
  for scale, batch in (("cpu", "4K"), ("paper", "32K")):
    mine = runs(config("bert_correction", scale))
    ladder = runs(config("table4", scale))
    for name, run in mine.items():
      other = ladder[name.replace(f"nocorrection_{batch}", f"batch{batch}")]
      assert run.optimizer.kwargs.bias_correction is False
      assert other.optimizer.to_dict().get("kwargs", {}).get("bias_correction", True) is True
      differ = sweep.differences(run.to_dict(), other.to_dict())
      assert {d.split(".")[0] for d in differ} <= {
          "name", "variant", "optimizer", "paper", "noise_scale_every_steps", "shrink_note"}, differ
      assert [d for d in differ if d.startswith("optimizer")] == [
          "optimizer.kwargs.bias_correction"]
      assert run.optimizer.to_dict() == dict(other.optimizer.to_dict(), kwargs=dict(
          other.optimizer.kwargs.to_dict(), bias_correction=False))
      assert run.phases == other.phases and run.seed == other.seed
    assert len(mine) == (3 if scale == "cpu" else 1)


def test_squad_fine_tunes_every_run_of_a_pretraining_config_each_in_its_own_folder(tmp_path):
  from experiments import launch  # pylint: disable=import-outside-toplevel
  cfg = config("squad", "cpu,pretrained=table4")
  got = runs(cfg)
  table4_runs = runs(config("table4", "cpu"))
  assert sorted(got) == sorted(f"table4_{name}" for name in table4_runs)
  run = got["table4_batch32K_seed1"]
  assert run.pretrained_run == "table4/cpu/batch32K_seed1"
  assert run.init_from == "{results_dir}/table4/cpu/batch32K_seed1"
  resolved = launch.resolved_init_from(run, tmp_path)
  assert resolved.init_from == f"{tmp_path}/table4/cpu/batch32K_seed1"
  assert run.init_from.startswith("{results_dir}")  # the run's own config keeps the placeholder
  paper = runs(config("squad", "paper,pretrained=table4"))
  assert paper["table4_batch32K"].pretrained_run == "table4/paper/batch32K"
  with pytest.raises(ValueError, match="not a BERT pre-training config"):
    config("squad", "cpu,pretrained=table7")
  assert list(runs(config("squad", "cpu"))) == ["run"]
