"""`run.py --estimate`: what a config would cost, printed without training or reading data.

For each distinct setup of the sweep (model, batch, steps) it prints the model's parameters, its
FLOPs per example (XLA's count of one forward and backward pass, lowered at abstract shapes:
nothing is allocated), the steps and total FLOPs, and the wall time that the data-parallel cost
model of `lamb.train.cost_model` predicts on the config's accelerator slice
(`config.hardware`), with its assumptions; then the predicted scaling efficiency from the
config's baseline slice, next to what the paper reports where it reports one.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORTED_FIGURES = ROOT / "analysis" / "reported" / "figures.csv"
_ABSTRACT_BATCH = 2  # FLOPs are linear in the batch; two examples keep lowering cheap


def _flops(lowered) -> float:
  cost = lowered.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float((cost or {}).get("flops", 0.0))


_MEASURED: dict = {}  # shapes -> (FLOPs per example, optimizer FLOPs, parameters)


def _shape_key(config) -> str:
  """What the FLOPs of one example and of one update depend on (not the batch or the steps)."""
  keep = {k: config.get(k).to_dict() if hasattr(config.get(k), "to_dict") else config.get(k)
          for k in ("task", "model", "data", "compute_dtype")}
  keep["optimizer"] = {k: v for k, v in config.optimizer.to_dict().items()
                       if k not in ("learning_rate", "schedule")}
  return json.dumps(keep, sort_keys=True, default=str)


def measure_phase(phase, optimizer: dict) -> tuple:
  """(cost_model.Phase, parameter count) of one phase of a run's plan, from abstract shapes only.
  The model is lowered once per distinct shape (a batch ladder of BERT-Large lowers it twice,
  not 18 times)."""
  import jax  # pylint: disable=import-outside-toplevel
  from lamb import optim  # pylint: disable=import-outside-toplevel
  from lamb.train import cost_model  # pylint: disable=import-outside-toplevel

  task, config = phase.task, phase.config
  key = _shape_key(config)
  if key not in _MEASURED:
    params, model_state = jax.eval_shape(task.init, jax.random.PRNGKey(0))
    # Two examples, or one BatchNorm group where the model normalises groups of more.
    batch = max(_ABSTRACT_BATCH, (config.get("model") or {}).get("bn_group_size") or 0)
    example = {k: jax.ShapeDtypeStruct((batch,) + tuple(v.shape), v.dtype)
               for k, v in task.example.items()}
    grad_fn = jax.value_and_grad(lambda p, s, b, r: task.loss_fn(p, s, b, r, True), has_aux=True)
    per_example = _flops(jax.jit(grad_fn).lower(params, model_state, example,
                                               jax.random.PRNGKey(0))) / batch
    tx = optim.create(optimizer)
    update = jax.jit(lambda g, s, p: tx.update(g, s, p))
    optimizer_flops = _flops(update.lower(params, jax.eval_shape(tx.init, params), params))
    n_params = sum(math.prod(x.shape) for x in jax.tree.leaves(params))
    _MEASURED[key] = (per_example, optimizer_flops, n_params)
  per_example, optimizer_flops, n_params = _MEASURED[key]
  return cost_model.Phase(phase.name, phase.steps, phase.batch_size, per_example,
                          optimizer_flops), n_params


_ABSTRACT_TASKS: dict = {}  # what a task is built from -> the task, shapes only


def abstract_plan(config):
  """The run's plan on its tasks' shapes and sizes, no data read: what training would do.
  Runs that build the same task share it (a 273-run grid builds one)."""
  from experiments import launch, sweep  # pylint: disable=import-outside-toplevel
  from lamb.train import phases, plan, tasks  # pylint: disable=import-outside-toplevel
  built = []
  for _, phase_config in phases.configs(config):
    key = sweep.fingerprint(launch.task_key(phase_config))
    if key not in _ABSTRACT_TASKS:
      _ABSTRACT_TASKS[key] = tasks.build(phase_config, load_data=False)
    built.append(_ABSTRACT_TASKS[key])
  return plan.make(config, built)


def reported_figure(figure: str, quantity: str):
  """A number of `analysis/reported/figures.csv` (the paper's, never ours), or None."""
  with open(REPORTED_FIGURES, newline="") as f:
    for row in csv.DictReader(f):
      if row["figure"] == figure and row["quantity"] == quantity and row["value"]:
        return float(row["value"])
  return None


def _si(x: float, unit: str = "") -> str:
  for factor, prefix in ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"),
                         (1e3, "k"), (1.0, ""), (1e-3, "m")):
    if abs(x) >= factor:
      return f"{x / factor:.3g} {prefix}{unit}"
  return f"{x:.3g} {unit}"


def _duration(seconds: float) -> str:
  if seconds < 1:
    return _si(seconds, "s") if seconds >= 1e-3 else f"{seconds * 1e6:.3g} us"
  if seconds >= 3 * 86400:
    return f"{seconds / 86400:.1f} days"
  if seconds >= 3600:
    return f"{seconds / 3600:.2f} h"
  if seconds >= 60:
    return f"{seconds / 60:.1f} min"
  return f"{seconds:.1f} s"


# A --target's family -> the cost model's accelerator (lamb.train.cost_model.ACCELERATORS).
TARGET_ACCELERATORS = {"tpu-v3": "tpu_v3", "h100-80gb": "h100", "a100-80gb": "a100",
                       "a100-40gb": "a100"}


def memory_plan(config, target, headroom=None, fixed: bool = False):
  """The memory plan of one run of `config` on `target` (lamb.train.memory.Target): the
  cheapest layout per phase, or with `fixed` the config's own layout, checked."""
  from lamb.train import memory  # pylint: disable=import-outside-toplevel
  run_plan = abstract_plan(config)
  phases = [(p.name, p.config, p.batch_size) for p in run_plan.phases]
  layouts = ([memory.Layout(p.microbatches, p.config.get("remat") or "none")
              for p in run_plan.phases] if fixed else None)
  cache = memory.load_cache()
  try:
    return memory.plan_run(phases, target, run_plan.optimizer,
                           memory.DEFAULT_HEADROOM if headroom is None else headroom,
                           layouts, cache)
  finally:
    memory.save_cache(cache)


def target_slice(target, hw: dict):
  """(cost-model accelerator name, chips, note) of a --target."""
  family = next(k for k, v in _families().items() if v is target.family)
  name = TARGET_ACCELERATORS.get(family)
  if name is None:
    return hw.get("accelerator", "tpu_v3"), hw.get("chips", 1), (
        f"the cost model has no {target.family.label}: wall time on the config's "
        f"{hw.get('accelerator', 'tpu_v3')}")
  return name, target.chips, ""


def _families():
  from lamb.train import memory  # pylint: disable=import-outside-toplevel
  return memory.FAMILIES


def report(config, accelerator=None, chips=None, utilisation=None, target=None,
           memory=None) -> str:
  """The estimate of one run of `config` as text; with `target` (lamb.train.memory.Target)
  the slice is the target's and `memory` (its MemoryPlan) is printed per phase."""
  from lamb.train import cost_model  # pylint: disable=import-outside-toplevel

  hw = dict(config.get("hardware") or {})
  note = ""
  if target is not None:
    accelerator, chips, note = target_slice(target, hw)
    hw["chips_source"] = f"--target={target.name}"
  hardware = cost_model.slice_from(accelerator or hw.get("accelerator", "tpu_v3"),
                                   chips or hw.get("chips", 1),
                                   utilisation or hw.get("utilisation",
                                                         cost_model.DEFAULT_UTILISATION))
  run_plan = abstract_plan(config)
  measured = [measure_phase(p, run_plan.optimizer) for p in run_plan.phases]
  phases = [p for p, _ in measured]
  n_params = measured[0][1]
  gradient_bytes = 4 * n_params  # float32 gradients, all-reduced every step
  acc = hardware.accelerator
  lines = [f"{config.name} ({config.scale}): {config.model.name}, "
           f"{n_params:,} parameters ({_si(gradient_bytes, 'B')} of float32 gradients)"]
  total_s = 0.0
  for phase in phases:
    cost = cost_model.phase_cost(phase, gradient_bytes, hardware)
    total_s += cost.total_s
    lines.append(
        f"  {phase.name}: {phase.steps:,} steps x batch {phase.batch_size:,}; "
        f"{_si(phase.flops_per_example, 'FLOP')} per example (forward+backward), "
        f"{_si(cost.total_flops, 'FLOP')} in all; step {_duration(cost.compute_s)} compute + "
        f"{_duration(cost.allreduce_s)} all-reduce -> {_duration(cost.total_s)}")
  lines.append(f"  estimated wall time on {hardware.chips} x {acc.name} "
               f"({hw.get('chips_source', 'chips from the config')}): {_duration(total_s)}")
  calibration = _calibration(config, hardware)
  if calibration is not None:
    calibrated_s = cost_model.run_seconds(phases, gradient_bytes, hardware, calibration)
    lines.append(f"  calibrated: {_duration(calibrated_s)} (+ "
                 f"{1e3 * calibration.overhead_seconds(hardware.chips):.0f} ms a step, "
                 f"{calibration.source})")
  base_chips = hw.get("baseline_chips")
  if base_chips and base_chips != hardware.chips:
    base = cost_model.Slice(acc, int(base_chips), hardware.utilisation)
    eff = cost_model.scaling_efficiency(phases, gradient_bytes, base, hardware)
    line = (f"  predicted scaling efficiency {base_chips} -> {hardware.chips} chips "
            f"({hardware.chips / base_chips:g}x, per-chip batch fixed): {100 * eff:.1f}%")
    if calibration is not None:
      calibrated = cost_model.scaling_efficiency(phases, gradient_bytes, base, hardware,
                                                 calibration)
      line += f", calibrated {100 * calibrated:.1f}%"
    if hw.get("reported_efficiency"):
      figure, quantity = hw["reported_efficiency"]
      value = reported_figure(figure, quantity)
      if value is not None:
        line += f"; the paper reports {value:g}% ({figure})"
    lines.append(line)
  if memory is not None:
    lines.extend(memory.lines())
  else:
    lines.append("  memory: not checked (--target=tpu-v3-1024, h100-80gb-32, ... compiles each "
                 "phase's step for that device and chooses its micro-batches and remat)")
  if note:
    lines.append(f"  note: {note}")
  lines.append(
      f"  assumptions: {acc.source}; {100 * hardware.utilisation:.0f}% of peak FLOP/s "
      f"sustained (assumed); float32 gradients all-reduced {_allreduce_text(hardware)} every "
      f"step, not "
      f"overlapped with compute; data-parallel only; input pipeline and host time ignored")
  return "\n".join(lines)


def _allreduce_text(hardware) -> str:
  if not getattr(hardware, "hierarchical", False) or hardware.nodes == 1:
    return "by a ring"
  return (f"hierarchically ({hardware.chips_per_node}-chip nodes on NVLink, a ring across "
          f"{hardware.nodes} nodes on InfiniBand)")


def _calibration(config, hardware):
  """The calibration fitted for this task, model and accelerator at the utilisation it assumed
  (BERT-Large pre-training on TPU v3 at 40%), or None: it is a fit, not a law, and would
  mislead elsewhere (fine-tuning, other models). Slices of other sizes than Table 1's are an
  extrapolation along its torus term, which assumes square slices."""
  from lamb.train import cost_model  # pylint: disable=import-outside-toplevel
  if (config.get("task") == "bert_pretraining" and config.model.get("preset") == "large"
      and hardware.accelerator.name == cost_model.ACCELERATORS["tpu_v3"].name
      and hardware.utilisation == cost_model.DEFAULT_UTILISATION):
    return cost_model.TPU_V3_BERT
  return None


def setup_key(config) -> str:
  """Runs with equal keys cost the same (a learning-rate or optimizer grid is one estimate;
  the optimizer's own update is a small part of a step)."""
  keep = {k: config.get(k).to_dict() if hasattr(config.get(k), "to_dict") else config.get(k)
          for k in ("task", "model", "data", "batch_size", "num_epochs", "num_steps", "phases",
                    "hardware", "microbatches", "remat")}
  return json.dumps(keep, sort_keys=True, default=str)
