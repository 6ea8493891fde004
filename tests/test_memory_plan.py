"""The memory plan (lamb.train.memory): targets, the choice of layout, the refusal of a plan
that cannot fit; the layout options of BERT (remat, attention-probability dtype) against the
plain model; and a resume that changes the layout (lamb.train.layout)."""
from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import sweep
from lamb.models import bert
from lamb.train import layout as layout_lib
from lamb.train import memory

GIB = memory.GIB


# --- targets ---------------------------------------------------------------------------------

def test_a_tpu_target_counts_chips_as_the_paper_and_names_the_cloud_type():
  t = memory.parse_target("tpu-v3-1024")
  assert (t.chips, t.devices, t.device_memory) == (1024, 2048, 16 * GIB)
  assert "v3-2048" in t.describe()  # Cloud TPU v3 types count TensorCores
  v5e = memory.parse_target("tpu-v5e-256")
  assert (v5e.devices, v5e.device_memory) == (256, 16 * GIB)
  assert "v5litepod-256" in v5e.describe()
  v5p = memory.parse_target("tpu-v5p-128")  # one device a chip, two TensorCores counted
  assert v5p.devices == 128 and "v5p-256" in v5p.describe()


def test_a_gpu_target_takes_its_count_from_the_name_or_the_chips_flag():
  assert memory.parse_target("h100-80gb-32").devices == 32
  assert memory.parse_target("h100-80gb", chips=8).devices == 8
  with pytest.raises(ValueError, match="names no chip count"):
    memory.parse_target("h100-80gb")
  with pytest.raises(ValueError, match="unknown --target"):
    memory.parse_target("tpu-v9-8")


# --- choosing a layout -----------------------------------------------------------------------

def _fake_measure(fixed_gib: float, per_example_gib: float):
  """Memory = fixed + per example of a micro-batch, remat dividing the activations."""
  share = {"none": 1.0, "minimal": 0.5, "full": 0.2}

  def measure(config, layout, per_device, target, optimizer, cache):
    del config, target, optimizer, cache
    rows = per_device // layout.microbatches
    return memory.Measurement((fixed_gib + per_example_gib * rows * share[layout.remat]) * GIB,
                              "fake")
  return measure


class _Config(dict):
  """The little of a ConfigDict the planner reads."""
  def get(self, key, default=None):
    return dict.get(self, key, default)


BERT = _Config(task="bert_pretraining", model=_Config(name="bert"), compute_dtype="float32")
LENET = _Config(task="image_classification", model=_Config(name="lenet"))


def test_candidates_come_cheapest_first_and_split_the_batch():
  layouts = memory.candidates(16)
  assert layouts[0] == memory.Layout(1, "none")
  costs = [memory.cost(l) for l in layouts]
  assert costs == sorted(costs)
  assert all(16 % l.microbatches == 0 for l in layouts)
  assert {l.microbatches for l in memory.candidates(12)} == {1, 2, 4}


def test_the_cheapest_layout_that_fits_is_chosen():
  target = memory.parse_target("tpu-v3-4")  # 8 devices of 16 GiB, budget 14.4 GiB
  # 16 examples a device: 2 + 1.0 x 16 = 18 GiB without help; 2 micro-batches give 10 GiB.
  row = memory.plan_phase("seq512", BERT, 128, target, {}, 14.4 * GIB,
                          measure_fn=_fake_measure(2.0, 1.0))
  assert row.layout == memory.Layout(2, "none")
  # The cheapest, then the leanest (had it not fit, nothing would), then in order of cost.
  assert [l for l, _ in row.tried] == [memory.Layout(1, "none"), memory.Layout(16, "full"),
                                       memory.Layout(2, "none")]
  assert row.measurement.bytes == pytest.approx(10 * GIB)


def test_the_leanest_layout_is_chosen_when_it_alone_fits():
  target = memory.parse_target("tpu-v3-4")
  # 16 a device at 1 GiB each over a 14.2 GiB fixed part: only 16 micro-batches x full remat fit.
  row = memory.plan_phase("seq512", BERT, 128, target, {}, 14.4 * GIB,
                          measure_fn=_fake_measure(14.2, 1.0))
  assert row.layout == memory.Layout(16, "full")


def test_micro_batches_keep_whole_batch_norm_groups():
  target = memory.parse_target("h100-80gb-32")
  ghost = _Config(task="image_classification", model=_Config(name="resnet", bn_group_size=32))
  row = memory.plan_phase("train", ghost, 32768, target, {}, 1.0 * GIB,
                          measure_fn=_fake_measure(0.5, 0.1))
  # micro-batches of the global batch (32,768 / k) hold whole groups of 32: k <= 1024, so the
  # per-device count (1,024 rows) is the limit; a group may span devices (GSPMD)
  assert {l.microbatches for l, _ in row.tried} <= {1, 2, 4, 8, 16, 32, 64}
  big = _Config(task="image_classification", model=_Config(name="resnet", bn_group_size=4096))
  row = memory.plan_phase("train", big, 32768, target, {}, 1.0 * GIB,
                          measure_fn=_fake_measure(0.5, 0.1))
  assert all((32768 // l.microbatches) % 4096 == 0 for l, _ in row.tried)
  assert max(l.microbatches for l, _ in row.tried) == 8
  whole = _Config(task="image_classification", model=_Config(name="resnet", bn_group_size=0))
  row = memory.plan_phase("train", whole, 32768, target, {}, 1.0 * GIB,
                          measure_fn=_fake_measure(0.5, 0.1))
  assert [l for l, _ in row.tried] == [memory.Layout(1, "none")] and row.layout is None


def test_a_model_without_remat_is_only_given_micro_batches():
  target = memory.parse_target("tpu-v3-4")
  row = memory.plan_phase("train", LENET, 512, target, {}, 14.4 * GIB,
                          measure_fn=_fake_measure(2.0, 0.5))  # 64 a device: 34 GiB
  assert all(l.remat == "none" for l, _ in row.tried)
  assert row.layout == memory.Layout(4, "none")  # 2 + 0.5 x 16 = 10 GiB


def test_a_plan_that_cannot_fit_says_so_in_one_line():
  target = memory.parse_target("tpu-v3-4")
  plan = memory.plan_run([("seq128", BERT, 64), ("seq512", BERT, 128)], target, {},
                         measure_fn=_fake_measure(15.0, 1.0))  # the fixed part alone overflows
  assert not plan.fits
  assert [len(p.tried) for p in plan.phases] == [2, 2]  # the cheapest and the leanest only
  line = plan.refusal()
  assert "\n" not in line and "seq128" in line and "14.40 GiB" in line
  assert "seq128: 8 examples a device: NO layout fits" in "\n".join(plan.lines())


def test_a_fixed_layout_is_checked_not_replaced():
  target = memory.parse_target("tpu-v3-4")
  plan = memory.plan_run([("seq512", BERT, 128)], target, {}, fixed=[memory.Layout(1, "none")],
                         measure_fn=_fake_measure(2.0, 1.0))
  assert not plan.fits and len(plan.phases[0].tried) == 1
  with pytest.raises(ValueError, match="do not split"):
    memory.plan_run([("seq512", BERT, 128)], target, {}, fixed=[memory.Layout(32, "none")],
                    measure_fn=_fake_measure(2.0, 1.0))


def test_a_batch_that_does_not_split_over_the_target_is_refused():
  with pytest.raises(ValueError, match="does not split over the 2,048 devices|2048 devices"):
    memory.plan_run([("seq128", BERT, 1000)], memory.parse_target("tpu-v3-1024"), {},
                    measure_fn=_fake_measure(1.0, 1.0))


# --- the compiled step responds to the options -----------------------------------------------

@pytest.fixture(scope="module")
def tiny_bert_step_bytes():
  """Bytes of the real compiled train step (tiny BERT, host CPU) per option."""
  from ml_collections import ConfigDict
  config = ConfigDict(dict(
      task="bert_pretraining", compute_dtype="float32", remat="none", seed=0,
      model=dict(name="bert", preset="tiny", vocab_size=512, attention_probs_dtype="float32"),
      data=dict(name="janeausten", max_seq_length=128, max_predictions_per_seq=20,
                vocab_size=512)))
  optimizer = dict(name="lamb", learning_rate=1e-3, weight_decay=0.01,
                   schedule=dict(name="constant"))
  devices = jax.devices("cpu")[:1]

  def measure(remat="none", probs="float32", microbatches=1, batch=32):
    c = config.copy_and_resolve_references()
    c.model.attention_probs_dtype = probs
    step_bytes = memory._step_bytes  # pylint: disable=protected-access
    return step_bytes(c, memory.Layout(microbatches, remat), batch, devices, optimizer)
  return measure


def test_remat_and_micro_batches_lower_the_compiled_memory(tiny_bert_step_bytes):
  plain = tiny_bert_step_bytes()
  assert tiny_bert_step_bytes(remat="full") < plain
  assert tiny_bert_step_bytes(microbatches=4) < plain


# --- the options keep the math -----------------------------------------------------------------

def _bert_grads(**options):
  config = bert.BertConfig.preset("tiny", vocab_size=128)
  model = bert.BertPretraining(config, **options)
  rng = np.random.default_rng(0)
  batch = dict(input_ids=rng.integers(0, 128, (4, 16)), input_mask=np.ones((4, 16), np.int32),
               segment_ids=np.zeros((4, 16), np.int32),
               masked_lm_positions=rng.integers(0, 16, (4, 3)),
               masked_lm_ids=rng.integers(0, 128, (4, 3)),
               masked_lm_weights=np.ones((4, 3), np.float32),
               next_sentence_labels=rng.integers(0, 2, (4, 1)))
  params = model.init({"params": jax.random.PRNGKey(0)}, *(batch[k] for k in
                                                            bert.PRETRAINING_INPUTS))["params"]

  def loss(p):
    out = model.apply({"params": p}, *(batch[k] for k in bert.PRETRAINING_INPUTS),
                      deterministic=False, rngs={"dropout": jax.random.PRNGKey(1)})
    return bert.pretraining_loss(out, batch)["loss"]
  return jax.jit(jax.value_and_grad(loss))(params)


@pytest.mark.parametrize("policy", ["minimal", "full"])
def test_remat_gives_the_gradient_of_the_plain_model(policy):
  (loss, grads), (loss_r, grads_r) = _bert_grads(), _bert_grads(remat=policy)
  assert float(loss_r) == pytest.approx(float(loss), rel=1e-6)
  for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(grads_r)):
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-7)


def test_bfloat16_attention_probabilities_change_the_numerics_a_little():
  (loss, _), (loss_b, _) = _bert_grads(), _bert_grads(attention_probs_dtype=jnp.bfloat16)
  assert float(loss_b) != float(loss)  # a different computation: part of the run's identity
  assert float(loss_b) == pytest.approx(float(loss), rel=1e-2)


def test_an_unknown_remat_policy_is_refused():
  with pytest.raises(ValueError, match="unknown remat policy"):
    _bert_grads(remat="everything")


# --- identity and resume -----------------------------------------------------------------------

def _bert_run(**top):
  base = {"name": "table4", "model": {"name": "bert"}, "microbatches": 1, "remat": "none",
          "phases": [{"name": "seq128", "overrides": {}}, {"name": "seq512", "overrides": {}}]}
  base.update(top)
  return base


def test_remat_leaves_a_runs_identity_but_micro_batches_do_not():
  plain = _bert_run()
  rematerialised = _bert_run(remat="full", phases=[
      {"name": "seq128", "overrides": {}},
      {"name": "seq512", "overrides": {"remat": "minimal"}}])
  assert sweep.identity(rematerialised) == sweep.identity(plain)
  accumulated = _bert_run(phases=[{"name": "seq128", "overrides": {}},
                                  {"name": "seq512", "overrides": {"microbatches": 4}}])
  assert sweep.identity(accumulated) != sweep.identity(plain)  # dropout masks, token means
  assert sweep.identity(_bert_run(microbatches=8)) != sweep.identity(plain)
  numerics = _bert_run(model={"name": "bert", "attention_probs_dtype": "bfloat16"})
  assert sweep.identity(numerics) != sweep.identity(plain)
  assert sweep.identity(_bert_run(model={"name": "bert", "attention_probs_dtype": "float32"})
                        ) == sweep.identity(plain)


def test_micro_batches_are_part_of_a_batch_norm_runs_identity_too():
  resnet = {"name": "table3", "model": {"name": "resnet"}, "microbatches": 1}
  assert sweep.identity(dict(resnet, microbatches=4)) != sweep.identity(resnet)
  assert sweep.identity(dict(resnet, remat="full")) == sweep.identity(resnet)


class _Phase:
  def __init__(self, name, start, steps, microbatches, remat="none"):
    self.name, self.start, self.steps, self.microbatches = name, start, steps, microbatches
    self.config = _Config(remat=remat)

  @property
  def end(self):
    return self.start + self.steps


class _Plan:
  def __init__(self, *phases):
    self.phases = phases

  def index_at(self, step):
    return next((i for i, p in enumerate(self.phases) if step < p.end), len(self.phases) - 1)


def test_a_layout_changes_at_a_phase_boundary_and_is_recorded(tmp_path):
  layout_lib.save(tmp_path, 90, _Phase("seq128", 0, 90, 1))
  plan = _Plan(_Phase("seq128", 0, 90, 1), _Phase("seq512", 90, 10, 4))
  change = layout_lib.check_resume(tmp_path, 90, plan, "run")
  assert change == {"step": 90, "phase": "seq512", "from": "1 micro-batch, no remat",
                    "to": "4 micro-batches, no remat"}
  assert json.loads((tmp_path / layout_lib.LAYOUTS).read_text())["90"]["phase"] == "seq128"


def test_a_layout_change_inside_a_phase_is_refused_with_the_flag_that_restores_it(tmp_path):
  layout_lib.save(tmp_path, 95, _Phase("seq512", 90, 10, 2))
  plan = _Plan(_Phase("seq128", 0, 90, 1), _Phase("seq512", 90, 10, 4))
  with pytest.raises(ValueError, match=r"--phase_microbatches=1,2"):
    layout_lib.check_resume(tmp_path, 95, plan, "run")
  same = _Plan(_Phase("seq128", 0, 90, 1), _Phase("seq512", 90, 10, 2))
  assert layout_lib.check_resume(tmp_path, 95, same, "run") is None


# --- the command line --------------------------------------------------------------------------

from conftest import cli_env, run_cli  # noqa: E402  (pytest puts tests/ on the path)

LENET_RUN = ["--config=table7", "--only=^lamb_lr0.01_seed0$", "--estimate"]


def _env(tmp_path):
  return cli_env(LAMB_MEMORY_CACHE=tmp_path / "memory.json")


def test_estimate_with_a_target_prints_each_phases_memory_and_layout(tmp_path):
  proc = run_cli(LENET_RUN + ["--target=h100-80gb-1"], results_dir=tmp_path / "results",
                 env=_env(tmp_path))
  assert proc.returncode == 0, proc.stderr
  assert "memory on 1 x NVIDIA H100 80GB" in proc.stdout
  assert "train: 1024 examples a device -> 1 micro-batch, no remat" in proc.stdout
  assert "estimate: the step compiled for this host's CPU" in proc.stdout
  assert json.loads((tmp_path / "memory.json").read_text())  # the compile was kept


def test_a_plan_that_cannot_fit_exits_2_with_one_line_and_writes_nothing(tmp_path):
  results = tmp_path / "results"
  proc = run_cli(LENET_RUN + ["--target=h100-80gb-1", "--memory_headroom=0.9999999"],
                 results_dir=results, env=_env(tmp_path))
  assert proc.returncode == 2, proc.stdout + proc.stderr
  errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert len(errors) == 1 and "no memory layout of phase(s) train fits" in errors[0]
  assert not results.exists()


def test_training_with_a_target_that_cannot_fit_refuses_before_any_step(tmp_path):
  from conftest import tiny_args
  results = tmp_path / "results"
  proc = run_cli(tiny_args() + ["--target=h100-80gb-1", "--memory_headroom=0.9999999"],
                 results_dir=results, env=_env(tmp_path))
  assert proc.returncode == 2, proc.stdout + proc.stderr
  assert "no memory layout" in proc.stderr and not results.exists()


@pytest.mark.parametrize("flags, message", [
    (["--target=tpu-v9-8"], "unknown --target"),
    (["--target=h100-80gb"], "names no chip count"),
    (["--memory_headroom=0.2"], "applies to a --target"),
    (["--target=h100-80gb-1", "--memory_headroom=1.5"], "must lie in [0, 1)"),
])
def test_bad_target_flags_are_one_line_errors(tmp_path, flags, message):
  proc = run_cli(LENET_RUN + flags, results_dir=tmp_path / "results", env=_env(tmp_path))
  assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_a_plan_that_keeps_the_micro_batches_keeps_the_run():
  from experiments import run as run_cli_module
  config = sweep.load_config(sweep.resolve_config("table4:paper"))
  name, values = sweep.expand_sweep(config)[-1]
  run = sweep.run_config(config, values)
  remat_only = run_cli_module.with_layout(
      run.copy_and_resolve_references(), [memory.Layout(1, "none"), memory.Layout(1, "full")])
  assert [dict(p["overrides"]).get("remat") for p in remat_only.phases] == [None, "full"]
  assert sweep.identity(remat_only.to_dict()) == sweep.identity(run.to_dict())
  accumulated = run_cli_module.with_layout(
      run.copy_and_resolve_references(), [memory.Layout(1, "none"), memory.Layout(4, "none")])
  assert [dict(p["overrides"]).get("microbatches") for p in accumulated.phases] == [None, 4]
  assert sweep.identity(accumulated.to_dict()) != sweep.identity(run.to_dict())


@pytest.mark.skipif(not memory.compile_only_available(), reason="libtpu is not installed "
                    "(pip install -e .[tpu-plan])")
def test_a_tpu_target_is_compiled_for_the_tpu(tmp_path):
  proc = run_cli(LENET_RUN + ["--target=tpu-v3-4"], results_dir=tmp_path / "results",
                 env=_env(tmp_path))
  assert proc.returncode == 0, proc.stderr
  assert "compiled for TPU v3 (libtpu compile-only)" in proc.stdout
  assert "Cloud TPU accelerator type v3-8" in proc.stdout


def test_bfloat16_attention_probabilities_are_reported_never_applied():
  from ml_collections import ConfigDict
  config = ConfigDict(dict(task="bert_pretraining", compute_dtype="bfloat16",
                           model=dict(name="bert", attention_probs_dtype="float32")))

  def measure(cfg, layout, per_device, target, optimizer, cache):
    per_example = 0.5 if cfg.model.attention_probs_dtype == "bfloat16" else 1.0
    return memory.Measurement((2.0 + per_example * per_device / layout.microbatches) * GIB, "fake")

  row = memory.plan_phase("seq512", config, 128, memory.parse_target("tpu-v3-4"), {},
                          14.4 * GIB, measure_fn=measure)
  assert row.layout == memory.Layout(2, "none")  # the plan keeps the run's numerics
  assert "cheaper with attention probabilities in bfloat16" in row.alternative
  assert "1 micro-batch, no remat, 10.00 GiB" in row.alternative
  assert config.model.attention_probs_dtype == "float32"


def test_a_deep_encoders_memory_is_extrapolated_within_a_percent_of_its_compile(
    tiny_bert_step_bytes):
  """The 2-4 layer extrapolation against the whole 8-layer program (host CPU; on TPU v3 the
  same check on BERT mini at 12 layers gave 456.6 against 457.5 MiB, benchmarks/MEMORY.md)."""
  del tiny_bert_step_bytes  # compiled the programs the fixture shares first
  from ml_collections import ConfigDict
  config = ConfigDict(dict(
      task="bert_pretraining", compute_dtype="float32", remat="none", seed=0,
      model=dict(name="bert", preset="tiny", vocab_size=512, attention_probs_dtype="float32",
                 num_hidden_layers=8),
      data=dict(name="janeausten", max_seq_length=64, max_predictions_per_seq=10,
                vocab_size=512)))
  optimizer = dict(name="lamb", learning_rate=1e-3, weight_decay=0.01,
                   schedule=dict(name="constant"))
  target = memory.parse_target("h100-80gb-1")
  extrapolated = memory.measure(config, memory.Layout(1, "none"), 16, target, optimizer)
  assert "8 layers extrapolated from 2- and 4-layer compiles" in extrapolated.method
  step_bytes = memory._step_bytes  # pylint: disable=protected-access
  whole = step_bytes(config, memory.Layout(1, "none"), 16, jax.devices("cpu")[:1], optimizer)
  assert extrapolated.bytes == pytest.approx(whole, rel=0.01)
