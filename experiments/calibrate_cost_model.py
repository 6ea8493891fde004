"""The cost model calibrated on Table 1's measured times, validated leave-one-out.

    python experiments/calibrate_cost_model.py [--out benchmarks/COST_MODEL.md]

Table 1 prints the wall time of every BERT run on its TPUv3 slice (16 chips at 512 ... 1024 at
32K). The ring model of `lamb.train.cost_model` predicts each from XLA's FLOP count of
BERT-Large (abstract shapes, nothing allocated) at an assumed 40% of peak; what it leaves out
per step (`cost_model.Calibration`: a fixed part and one that grows with the hops of a 2-D
torus) is fitted by least squares on per-step seconds.

Eight of the nine rows share one shape (32 sequences a chip, nine steps at 128 tokens to one at
512), so they differ only in the slice; the 64K/32K mixed batch (64 sequences a chip at 128
tokens) is the one row outside it. The report gives, for every row, the prediction of a fit that
did not see it (the other shape rows; all eight for the mixed row), beside two naive predictors
fitted on the same rows: the per-step time interpolated between neighbouring slices in log-log,
and the ring model plus one constant per step. It then asks whether the rows can tell the
assumed utilisation from the fixed term (a profile of the fit over utilisations, and a fit of
all three), and prints Figure 8's efficiencies. The fit on all eight shape rows is
`cost_model.TPU_V3_BERT`, which `run.py --estimate` prints beside the plain model; a slow test
checks that the two agree.
"""
from __future__ import annotations

import argparse
import collections
import math
import sys
from pathlib import Path
from typing import NamedTuple

if __package__ in (None, ""):  # `python experiments/calibrate_cost_model.py` from the checkout
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BASE_ROW, TOP_ROW, MIXED_ROW = "512", "32k", "64k/32k"
ASSUMED_UTILISATION = 0.4  # cost_model.DEFAULT_UTILISATION, what TPU_V3_BERT is fitted at
PROFILE_UTILISATIONS = (0.3, 0.32, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.8, 1.0)


class Row(NamedTuple):
  """One row of Table 1 with a time, and what the uncalibrated model makes of it."""
  label: str
  optimizer: str
  chips: int
  seconds: float  # the paper's wall time
  steps: int
  model_s: float  # the ring model's prediction at the assumed utilisation
  phases: list  # cost_model.Phase of each phase
  gradient_bytes: float
  compute_at_peak_s: float  # the compute term's seconds at 100% of peak, all steps
  allreduce_s: float  # the ring all-reduce's seconds, all steps

  @property
  def per_step_s(self) -> float:
    return self.seconds / self.steps

  @property
  def shape(self) -> tuple:
    """(phase, sequences a chip, share of the steps): rows of one shape differ in the slice."""
    return tuple((p.name, p.batch_size // self.chips, round(p.steps / self.steps, 2))
                 for p in self.phases)

  @property
  def batch(self) -> str:
    return "/".join(dict.fromkeys(f"{p.batch_size:,}" for p in self.phases))


def _runs():
  """{Table 1 row label: the paper-scale run config that stands for it}."""
  from experiments import sweep  # pylint: disable=import-outside-toplevel
  from experiments.configs import _bert, table1, table4  # pylint: disable=import-outside-toplevel
  out = {}
  for config, wanted in ((table4.get_config("paper"), None),
                         (table1.get_config("paper"), (table1.BASELINE, table1.MIXED))):
    for _, values in sweep.expand_sweep(config):
      run = sweep.run_config(config, values)
      if run.seed != 0 or (wanted and run.variant not in wanted):
        continue
      label = {table1.BASELINE: "Baseline", table1.MIXED: MIXED_ROW}.get(
          run.variant, _bert.label(run.batch_size).lower())
      out[label] = run
  return out


def _reported():
  """{row label: (optimizer, TPUs, hours)} of Table 1 (the paper's numbers)."""
  from analysis import reported  # pylint: disable=import-outside-toplevel
  t = reported.load(1)
  t = t[t.metric == "time_hours"]
  return {("Baseline" if r.optimizer == "Baseline" else str(r.batch_size_text).lower()):
          (r.optimizer, int(r.tpus), float(r.value)) for r in t.itertuples()}


def make_row(label, optimizer, chips, seconds, phases, gradient_bytes) -> Row:
  """A Row of measured seconds on `chips` TPUv3 chips, with the ring model's terms."""
  from lamb.train import cost_model  # pylint: disable=import-outside-toplevel
  at_peak = cost_model.slice_from("tpu_v3", chips, 1.0)
  costs = [cost_model.phase_cost(p, gradient_bytes, at_peak) for p in phases]
  compute = sum(c.compute_s * c.phase.steps for c in costs)
  allreduce = sum(c.allreduce_s * c.phase.steps for c in costs)
  return Row(label, optimizer, chips, seconds, sum(p.steps for p in phases),
             compute / ASSUMED_UTILISATION + allreduce, list(phases), gradient_bytes,
             compute, allreduce)


def rows() -> list:
  """[Row] for every row of Table 1 with a time."""
  from experiments import estimate  # pylint: disable=import-outside-toplevel
  runs, reported = _runs(), _reported()
  out = []
  for label, (optimizer, chips, hours) in reported.items():
    plan = estimate.abstract_plan(runs[label])
    measured = [estimate.measure_phase(p, plan.optimizer) for p in plan.phases]
    out.append(make_row(label, optimizer, chips, hours * 3600, [p for p, _ in measured],
                        4 * measured[0][1]))
  return out


def split_by_shape(table: list) -> tuple[list, list]:
  """(rows of the most common shape, the others): the fit's rows and the out-of-shape tests."""
  common = collections.Counter(r.shape for r in table).most_common(1)[0][0]
  return [r for r in table if r.shape == common], [r for r in table if r.shape != common]


# Predictors: each takes the rows it may learn from and returns a function of a row to seconds.

def _unexplained(row: Row, utilisation: float) -> float:
  """Seconds a step took beyond compute at `utilisation` and the ring all-reduce."""
  return (row.seconds - row.compute_at_peak_s / utilisation - row.allreduce_s) / row.steps


def calibrated_model(fit_rows: list, utilisation: float = ASSUMED_UTILISATION):
  """The ring model at `utilisation` plus a Calibration fitted on `fit_rows`."""
  from lamb.train import cost_model  # pylint: disable=import-outside-toplevel
  cal = cost_model.fit_calibration([(r.chips, _unexplained(r, utilisation)) for r in fit_rows],
                                   "leave-one-out")
  return lambda row: (row.compute_at_peak_s / utilisation + row.allreduce_s
                      + row.steps * cal.overhead_seconds(row.chips))


def constant_overhead(fit_rows: list, utilisation: float = ASSUMED_UTILISATION):
  """Naive: the ring model plus the mean unexplained seconds a step (no hop term)."""
  fixed = sum(_unexplained(r, utilisation) for r in fit_rows) / len(fit_rows)
  return lambda row: row.compute_at_peak_s / utilisation + row.allreduce_s + row.steps * fixed


def loglog_neighbours(fit_rows: list):
  """Naive: the per-step time interpolated linearly in log(time) against log(chips) between
  the neighbouring slices of `fit_rows` (rows on one slice averaged in log), extended along
  the end segments; times the row's steps. No model at all."""
  by_chips = collections.defaultdict(list)
  for r in fit_rows:
    by_chips[r.chips].append(math.log(r.per_step_s))
  xs = sorted(by_chips)
  points = [(math.log(n), sum(by_chips[n]) / len(by_chips[n])) for n in xs]

  def predict(row: Row) -> float:
    x = math.log(row.chips)
    if len(points) == 1:
      return math.exp(points[0][1]) * row.steps
    i = min(max(1, sum(px < x for px, _ in points)), len(points) - 1)
    (x0, y0), (x1, y1) = points[i - 1], points[i]
    return math.exp(y0 + (y1 - y0) * (x - x0) / (x1 - x0)) * row.steps
  return predict


PREDICTORS = (("model", calibrated_model), ("log-log neighbours", loglog_neighbours),
              ("constant overhead", constant_overhead))


def leave_one_out(table: list) -> list:
  """[(row, {predictor: predicted seconds})]: each shape row predicted from the other shape
  rows, each out-of-shape row from all of them (it is never fitted)."""
  shape_rows, others = split_by_shape(table)
  out = []
  for row in table:
    fit_rows = [r for r in shape_rows if r is not row]
    out.append((row, {name: make(fit_rows)(row) for name, make in PREDICTORS}))
  return out


def calibrate(table: list):
  """`cost_model.TPU_V3_BERT`: the Calibration fitted on every row of the common shape."""
  from lamb.train import cost_model  # pylint: disable=import-outside-toplevel
  shape_rows, _ = split_by_shape(table)
  return cost_model.fit_calibration(
      [(r.chips, _unexplained(r, ASSUMED_UTILISATION)) for r in shape_rows],
      f"fitted on Table 1's {len(shape_rows)} rows of one shape "
      "(experiments/calibrate_cost_model.py)")


def _predicted(row: Row, calibration) -> float:
  """`row`'s seconds as `run.py --estimate` computes them with `calibration`."""
  from lamb.train import cost_model  # pylint: disable=import-outside-toplevel
  return cost_model.run_seconds(row.phases, row.gradient_bytes,
                                cost_model.slice_from("tpu_v3", row.chips), calibration)


# Utilisation against the fixed term.

def utilisation_profile(table: list, utilisations=PROFILE_UTILISATIONS) -> list:
  """[(utilisation, Calibration fitted at it, RMS relative error of the shape rows in the fit,
  relative error of each out-of-shape row)]: how well each assumed utilisation fits."""
  from lamb.train import cost_model  # pylint: disable=import-outside-toplevel
  shape_rows, others = split_by_shape(table)
  out = []
  for u in utilisations:
    cal = cost_model.fit_calibration([(r.chips, _unexplained(r, u)) for r in shape_rows], "")
    predict = calibrated_model(shape_rows, u)
    rms = math.sqrt(sum((predict(r) / r.seconds - 1) ** 2 for r in shape_rows)
                    / len(shape_rows))
    out.append((u, cal, rms, [predict(r) / r.seconds - 1 for r in others]))
  return out


class FreeFit(NamedTuple):
  """Least squares of per-step seconds on the three terms: compute / u, fixed, per hop."""
  utilisation: float
  fixed_s: float
  per_hop_s: float
  correlation: float  # of the estimates of 1 / u and fixed (NaN where only one is fitted)
  condition: float  # of the design matrix


def free_fit(fit_rows: list, fixed_s: float | None = None) -> FreeFit:
  """Fit the utilisation and per-hop term, and the fixed term unless `fixed_s` gives it."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  from lamb.train import cost_model  # pylint: disable=import-outside-toplevel
  design, target = [], []
  for r in fit_rows:
    y = (r.seconds - r.allreduce_s) / r.steps - (fixed_s or 0.0)
    columns = [r.compute_at_peak_s / r.steps, cost_model.torus_hops(r.chips)]
    design.append(columns if fixed_s is not None else columns[:1] + [1.0] + columns[1:])
    target.append(y)
  x, y = np.asarray(design), np.asarray(target)
  beta = np.linalg.lstsq(x, y, rcond=None)[0]
  correlation = math.nan
  if fixed_s is None:
    # (X^T X)^-1 from the SVD of X: forming X^T X would square a condition number of 1e7.
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    cov = vt.T @ np.diag(s ** -2.0) @ vt
    correlation = float(cov[0, 1] / math.sqrt(cov[0, 0] * cov[1, 1]))
  fixed = fixed_s if fixed_s is not None else float(beta[1])
  return FreeFit(float(1 / beta[0]), fixed, float(beta[-1]), correlation,
                 float(np.linalg.cond(x)))


def free_fit_error(fit: FreeFit, row: Row) -> float:
  from lamb.train import cost_model  # pylint: disable=import-outside-toplevel
  predicted = (row.compute_at_peak_s / fit.utilisation + row.allreduce_s
               + row.steps * (fit.fixed_s + fit.per_hop_s * cost_model.torus_hops(row.chips)))
  return predicted / row.seconds - 1


# The report.

def _mean_max(errors) -> str:
  errors = [abs(e) for e in errors]
  return f"mean absolute error {sum(errors) / len(errors):.1%}, largest {max(errors):.1%}"


def _loo_section(table: list) -> list:
  from experiments import estimate  # pylint: disable=import-outside-toplevel
  shape_rows, others = split_by_shape(table)
  names = [name for name, _ in PREDICTORS]
  lines = [
      "## Leave-one-out", "",
      f"Each of the {len(shape_rows)} rows of one shape (32 sequences a chip; the rows differ "
      "only in the slice) is predicted by a fit on the other "
      f"{len(shape_rows) - 1}; the out-of-shape row ({', '.join(r.label for r in others)}: 64 "
      "sequences a chip at 128 tokens) by a fit on all of them. **model**: the ring model at "
      "40% plus `fixed + per_hop x torus hops` (two fitted numbers); **log-log neighbours**: "
      "the per-step time interpolated in log-log between the neighbouring slices (no model); "
      "**constant overhead**: the ring model plus the mean unexplained seconds a step (one "
      "fitted number). **ring**: the uncalibrated model, for scale.", "",
      "| row | optimizer | TPUv3 chips | batch | reported | ring | "
      + " | ".join(f"{n} | error" for n in names) + " |",
      "|---|---|---|---|---|---|" + "---|---|" * len(names)]
  errors = collections.defaultdict(list)
  for row, predicted in leave_one_out(table):
    cells = []
    for name in names:
      error = predicted[name] / row.seconds - 1
      errors[(name, row in others)].append(error)
      cells.append(f"{estimate._duration(predicted[name])} | {error:+.1%}")
    label = row.label + (" (out of shape)" if row in others else "")
    lines.append(f"| {label} | {row.optimizer} | {row.chips} | {row.batch} | "
                 f"{estimate._duration(row.seconds)} | {estimate._duration(row.model_s)} | "
                 + " | ".join(cells) + " |")
  lines.append("")
  for name in names:
    outside = ", ".join(f"{e:+.1%}" for e in errors[(name, True)])
    lines.append(f"- {name}: the {len(shape_rows)} shape rows left out, "
                 f"{_mean_max(errors[(name, False)])}; out of shape {outside}")
  def mean(name, outside=False):
    return sum(abs(e) for e in errors[(name, outside)]) / len(errors[(name, outside)])

  def compare(name, outside=False):
    side = "below" if mean("model", outside) < mean(name, outside) else "above"
    return f"{side} that of the {name} ({mean(name, outside):.1%})"
  lines += ["", f"Within the fitted shape the model's mean absolute error ({mean('model'):.1%}) "
                f"is {compare('log-log neighbours')} and {compare('constant overhead')}; out of "
                f"shape its absolute error ({mean('model', True):.1%}) is "
                f"{compare('log-log neighbours', True)} and "
                f"{compare('constant overhead', True)}. One row cannot rank how the predictors "
                "extrapolate."]
  lines += ["", f"The {', '.join(r.label for r in others)} row is the only test outside the "
                "fitted shape. The other rows lie on one curve of slice size, where interpolating "
                "the neighbours needs no model; the end rows (16 and 1024 chips) are "
                "extrapolations for every predictor.", ""]
  return lines


def _utilisation_section(table: list) -> list:
  shape_rows, others = split_by_shape(table)
  spread = [r.compute_at_peak_s / r.steps for r in shape_rows]
  three = free_fit(shape_rows)
  zero = free_fit(shape_rows, fixed_s=0.0)
  everything = free_fit(table)
  names = ", ".join(r.label for r in others)
  lines = [
      "## Utilisation against the fixed term", "",
      "The compute term is FLOPs / (peak x utilisation). On the shape rows the FLOPs a chip "
      "does in a step are the same on every slice (compute at 100% of peak "
      f"{min(spread) * 1e3:.4f} to {max(spread) * 1e3:.4f} ms a step), so compute / "
      "utilisation and `fixed` both add one constant to every step and the rows cannot tell "
      f"them apart: fitting all three terms on them gives a correlation of "
      f"{three.correlation:.10f} between the estimates of 1/utilisation and `fixed` "
      f"(condition number {three.condition:.3g}) and a meaningless utilisation "
      f"{three.utilisation:.3g} with `fixed` {three.fixed_s:.4g} s. "
      "Profile of the fit over assumed utilisations (`fixed` and `per_hop` refitted at each):",
      "", "| utilisation | fixed | per hop | RMS error, shape rows | "
      + " | ".join(f"{n} error" for n in names.split(", ")) + " |",
      "|---|---|---|---|" + "---|" * len(others)]
  for u, cal, rms, outside in utilisation_profile(table):
    lines.append(f"| {u:.0%} | {cal.fixed_s * 1e3:.1f} ms | {cal.per_hop_s * 1e6:.1f} us | "
                 f"{rms:.4%} | " + " | ".join(f"{e:+.1%}" for e in outside) + " |")
  lines += [
      "", f"The shape rows fit every utilisation alike; only `fixed` >= 0 bounds it, from below: "
          f"fitted with "
          f"`fixed` = 0, utilisation {zero.utilisation:.1%} (per hop "
          f"{zero.per_hop_s * 1e6:.1f} us), which predicts {names} at "
          + ", ".join(f"{free_fit_error(zero, r):+.1%}" for r in others) + ". "
          f"Only {names} separates the two: the three terms fitted on all nine rows give "
          f"utilisation {everything.utilisation:.1%}, `fixed` {everything.fixed_s * 1e3:.1f} ms, "
          f"per hop {everything.per_hop_s * 1e6:.1f} us (correlation "
          f"{everything.correlation:.3f}), which matches {names} exactly because it is the one "
          "row that pins the utilisation; choosing it would spend the only out-of-shape test. "
          f"The committed calibration keeps the assumed {ASSUMED_UTILISATION:.0%}; the "
          "utilisation is relative to the chip counts as Table 1 prints them.", ""]
  return lines


def _figure8_section(table: list, calibration) -> list:
  from experiments import estimate  # pylint: disable=import-outside-toplevel
  by = {row.label: row for row in table}
  base = by[BASE_ROW]
  lines = ["## Figure 8", "",
           "| Figure 8 | reported | from Table 1's times | ring | calibrated |",
           "|---|---|---|---|---|"]
  for label, quantity, name in ((TOP_ROW, "scaling_efficiency_percent",
                                 "16 -> 1024 chips, 512 -> 32K"),
                                (MIXED_ROW, "mixed_batch_scaling_efficiency_percent",
                                 "16 -> 1024 chips, 512 -> 64K/32K")):
    row = by[label]
    ratio = row.chips / base.chips
    measured = base.seconds / row.seconds / ratio
    ring = base.model_s / row.model_s / ratio
    calibrated = _predicted(base, calibration) / _predicted(row, calibration) / ratio
    paper = estimate.reported_figure("Figure 8", quantity)
    lines.append(f"| {name} | {paper:g}% | {100 * measured:.1f}% | {100 * ring:.1f}% | "
                 f"{100 * calibrated:.1f}% |")
  lines += ["", "Calibrated with the committed fit, which saw the 512 and 32K rows; "
                "the mixed batch it did not.", ""]
  return lines


def _cluster_section(gradient_bytes: float) -> list:
  """The hierarchical all-reduce of BERT-Large's gradient on GPU clusters (a model, not a
  measurement), beside the one flat ring at NVLink speed that ignores the nodes."""
  from experiments import estimate  # pylint: disable=import-outside-toplevel
  from lamb.train import cost_model  # pylint: disable=import-outside-toplevel
  lines = [
      "## GPU clusters: the all-reduce across nodes", "",
      f"BERT-Large's {gradient_bytes / 1e9:.3g} GB of float32 gradients all-reduced once "
      "(`cost_model.allreduce_parts`: reduce-scatter and all-gather on NVLink inside each "
      "8-GPU node, a ring across nodes on each GPU's own InfiniBand NIC). Datasheet bandwidths "
      "and assumed hop latencies (`cost_model.ACCELERATORS`); nothing here is measured, and "
      "the TPU calibration does not apply.", "",
      "| accelerator | GPUs | nodes | NVLink part | network part | all-reduce | one flat ring "
      "at NVLink speed |", "|---|---|---|---|---|---|---|"]
  for name in ("a100", "h100"):
    for chips in (8, 32, 256):
      hw = cost_model.slice_from(name, chips)
      inside, across = cost_model.allreduce_parts(gradient_bytes, hw)
      acc = hw.accelerator
      flat = cost_model.ring_allreduce_seconds(gradient_bytes, chips, acc.link_bandwidth,
                                               acc.hop_latency)
      network = estimate._duration(across) if across else "none"
      lines.append(f"| {acc.name} | {chips} | {hw.nodes} | {estimate._duration(inside)} | "
                   f"{network} | {estimate._duration(inside + across)} | "
                   f"{estimate._duration(flat)} |")
  lines.append("")
  return lines


def report(table: list, calibration) -> str:
  shape_rows, _ = split_by_shape(table)
  lines = [
      "# The cost model against Table 1's measured times", "",
      "Generated by `python experiments/calibrate_cost_model.py` (no accelerator: XLA's FLOP "
      "count of BERT-Large at abstract shapes, TPU v3 at an assumed 40% of peak). Times are the "
      "paper's (Table 1), never ours. The committed calibration (`cost_model.TPU_V3_BERT`) is "
      f"the fit on all {len(shape_rows)} rows of one shape: {calibration.fixed_s * 1e3:.2f} ms "
      f"a step and {calibration.per_hop_s * 1e6:.1f} us per 2-D torus hop, with the "
      "utilisation assumed, not fitted (see below).", ""]
  lines += _loo_section(table) + _utilisation_section(table)
  lines += _figure8_section(table, calibration) + _cluster_section(table[0].gradient_bytes)
  return "\n".join(lines)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", help="write the report here (markdown) instead of stdout")
  args = parser.parse_args(argv)
  out = Path(args.out) if args.out else None
  if out is not None and not out.parent.is_dir():
    print(f"error: --out={out}: folder {out.parent} does not exist", file=sys.stderr)
    return 2
  table = rows()
  calibration = calibrate(table)
  text = report(table, calibration)
  text += (f"\nFit: fixed {calibration.fixed_s:.6g} s, per hop {calibration.per_hop_s:.6g} s "
           "(`lamb.train.cost_model.TPU_V3_BERT` holds them rounded).\n")
  if out is None:
    print(text, end="")
  else:
    from lamb.train import results  # pylint: disable=import-outside-toplevel
    results.atomic_write_text(out, text)
    print(f"wrote {out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
