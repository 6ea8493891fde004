"""Figure 8 (Appendix H.0.1): the scaling efficiency of BERT pre-training, speedup against TPU
chips from the paper's Table 1 times, beside the cost model's prediction for the same rows. No
run of ours enters it: the paper's own times, and what the cost model predicts for them.
"""
from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt

from analysis import reported
from analysis.catalogue import E
from analysis.figures.plot import LABEL, TICK, TITLE, _finish, _legend, _wrap
from lamb.train import cost_model  # pure Python: no jax


# BERT-Large for the cost model's curve: one TPU v3 chip per 32 sequences (Table 1), 9/10 of
# the steps at length 128 and 1/10 at 512 (Section 4.1), FLOPs per sequence of length s from
# the usual analytic count 6 N s + 12 L s^2 h (N = 302M non-embedding weights, L = 24 layers,
# h = 1024; Kaplan et al. 2020), float32 gradients of all 336M parameters on the ring.
BERT_BATCH_PER_CHIP = 32
BERT_LARGE = dict(weights=302e6, params=336.2e6, layers=24, hidden=1024)


def _bert_flops(length: int) -> float:
  b = BERT_LARGE
  return 6 * b["weights"] * length + 12 * b["layers"] * length ** 2 * b["hidden"]


def _predicted_hours(batch: int, steps: int) -> float:
  """The cost model's time for a Table 1 row (`run.py --config=table4:paper --estimate` gives
  the same with XLA's own FLOP count for the LAMB rows, `table1:paper` for the baseline and the
  mixed batch)."""
  hardware = cost_model.slice_from("tpu_v3", batch // BERT_BATCH_PER_CHIP)
  phases = [cost_model.Phase(f"seq{length}", n, batch, _bert_flops(length),
                             optimizer_flops=20 * BERT_LARGE["params"])
            for length, n in ((128, round(0.9 * steps)), (512, steps - round(0.9 * steps)))]
  return cost_model.run_seconds(phases, 4 * BERT_LARGE["params"], hardware) / 3600


def figure8(results_dir, scale):
  """Speedup against TPU chips from Table 1's reported times (the paper's own numbers)."""
  del results_dir, scale
  t1 = reported.load(1)
  times = t1[t1.metric == "time_hours"]
  base = times[(times.optimizer == "LAMB") & (times.batch_size_text == "512")].iloc[0]
  fig, ax = plt.subplots(figsize=(7.8, 4.0), layout="constrained")
  rows = []
  for _, r in times[times.optimizer == "LAMB"].iterrows():
    speedup = base.value / r.value
    rows.append((int(r.tpus), speedup, r.batch_size_text))
  plain = [r for r in rows if "/" not in r[2]]
  mixed = [r for r in rows if "/" in r[2]]
  xs = [r[0] for r in rows]
  ax.plot([r[0] for r in plain], [r[1] for r in plain], marker="o",
          label="LAMB (paper, Table 1 times)")
  if mixed:
    ax.scatter([r[0] for r in mixed], [r[1] for r in mixed], marker="*", s=120, color="tab:red",
               zorder=3, label="LAMB mixed batch (paper)")
  ideal = sorted(set(xs))
  ax.plot(ideal, [x / base.tpus for x in ideal], ls="--", color="grey", label="linear")
  steps = t1[(t1.metric == "steps") & (t1.optimizer == "LAMB")]
  steps = {int(r.batch_size): int(r.value) for _, r in steps.iterrows()
           if str(r.batch_size).isdigit()}
  predicted = {b: _predicted_hours(b, n) for b, n in sorted(steps.items())}
  if 512 in predicted:
    chips = [b // BERT_BATCH_PER_CHIP for b in predicted]
    ax.plot(chips, [predicted[512] / h for h in predicted.values()], marker="s", ms=4,
            ls=":", color="tab:green",
            label=_wrap(f"cost model (TPU v3 at {cost_model.DEFAULT_UTILISATION:.0%} of peak, "
                        "analytic FLOPs)", 36))
  for x, s, label in rows:  # the mixed-batch label above-left, clear of the 32k point
    ax.annotate(label, (x, s), textcoords="offset points", fontsize=TICK,
                xytext=(-44, 4) if "/" in label else (4, -10))
  ax.set_xscale("log", base=2)
  ax.set_yscale("log", base=2)
  ax.set_xlabel("TPUv3 chips", fontsize=LABEL)
  ax.set_ylabel(f"speedup over {int(base.tpus)} chips", fontsize=LABEL)
  ax.grid(alpha=0.3, which="both")
  _legend(ax)
  fig.suptitle("\n".join(textwrap.fill(line, 112) for line in (
      "Figure 8: scaling BERT pre-training, from the paper's Table 1 times and the cost model "
      "(no runs of ours)", _figure8_note(predicted),
      f"per row: run.py --config={E.TABLE4}:paper --estimate (LAMB), {E.TABLE1}:paper "
      "(baseline, 64K/32K)")), fontsize=TITLE)
  return _finish(fig)


def _figure8_note(predicted: dict) -> str:
  eff = reported.figures()
  eff = eff[(eff.figure == "Figure 8") & (eff.quantity == "scaling_efficiency_percent")]
  note = f"paper: {eff.value.iloc[0]:g}% efficiency at 64x" if len(eff) else ""
  if 512 in predicted and 32768 in predicted:
    note += (f", cost model: {100 * predicted[512] / predicted[32768] / 64:.1f}% (no input, host "
             "or straggler time in the model)")
  return note
