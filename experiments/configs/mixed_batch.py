"""Section 4.1's two claims about the 64K/32K mixed-batch BERT run that no table prints:
re-warm-up is needed when the batch shrinks at the phase switch, and AdamW "fails to get any
reasonable result" on the mixed batch even after tuning.

Variants, each at Table 1's 64K/32K phases:
  lamb_rewarmup     Table 1's run: warmup and decay in phase 1, re-warm-up from zero and decay
                    in phase 2 (`_bert.mixed_lamb_section`)
  lamb_no_rewarmup  the same peak and phase-1 warmup, then one decay over both phases: at the
                    switch the rate goes on decaying instead of ramping up again
  adamw_lr*         BERT's AdamW with the re-warm-up schedule at Table 8's three rates (the
                    paper's AdamW tuning for this run is not printed: this grid is ours)
"""
from experiments.configs import _bert, common, table8


def no_rewarmup_section(scale: str, phase_steps: tuple) -> dict:
  """LAMB's mixed-batch section with its two schedules replaced by one warmup + decay."""
  section = _bert.mixed_lamb_section(scale)
  warmup_ratio1 = section["schedule"]["warmup_ratio1"]
  return dict(section, schedule=dict(
      name="warmup_polynomial_decay", power=1.0,
      warmup_ratio=warmup_ratio1 * phase_steps[0] / sum(phase_steps)))


def adamw_mixed_section(learning_rate: float, scale: str) -> dict:
  """BERT's AdamW (`_bert.adamw_section`) on the mixed batch's re-warm-up schedule, phase 2's
  peak in the same ratio to phase 1's as LAMB's (1/sqrt(2): 32K after 64K)."""
  lamb = _bert.mixed_lamb_section(scale)["schedule"]
  section = _bert.adamw_section(learning_rate, scale=scale)
  ratio = section["learning_rate"] / _bert.mixed_lamb_section(scale)["learning_rate"]
  return dict(section, schedule=dict(lamb, peak2=lamb["peak2"] * ratio))


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
  config = common.base_config(name="mixed_batch", scale=scale)
  _bert.pretraining(config, scale, batch=_bert.MIXED[0])
  overrides = _bert.batch_overrides(scale, *_bert.MIXED)
  phase_steps = tuple(p["overrides"]["num_steps"] for p in dict(overrides)["phases"])
  variants = [("lamb_rewarmup", overrides + (("optimizer", _bert.mixed_lamb_section(scale)),)),
              ("lamb_no_rewarmup", overrides + (
                  ("optimizer", no_rewarmup_section(scale, phase_steps)),))]
  variants += [(f"adamw_lr{lr:g}", overrides + (("optimizer", adamw_mixed_section(lr, scale)),))
               for lr in table8.LEARNING_RATES]
  config.variants = tuple(variants)
  config.optimizer = variants[0][1][-1][1]
  for path, value in overrides:
    config[path] = value
  seeds = (0,) if scale == "paper" else (0, 1)
  config.sweep = common.sweep(("variant", tuple(name for name, _ in variants), ""),
                              ("seed", seeds, "seed"))
  if scale == "cpu":
    config.shrink_note += (f"; every rate x {_bert.lr_multiplier(scale):g}; AdamW's grid is "
                           "Table 8's three rates on the re-warm-up schedule; 2 seeds")
  return common.apply_options(config, options)
