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

At the cpu scale the runs have the ladder's shape (`_bert.BERT_CPU_LADDER`: the baseline's
131,072 sequences) with the mixed batch divided by 128 instead of 64, so that it trains 282
steps (231 at 512, then 51 at 256) instead of 141; AdamW runs one rate, on 3 seeds.
"""
from experiments.configs import _bert, common, table8


CPU_ADAMW_RATES = (0.0002,)  # Table 8's best rate at the ladder's shape (warmup 0.2, 16K)


def no_rewarmup_section(scale: str, phase_steps: tuple, cpu: dict) -> dict:
  """LAMB's mixed-batch section with its two schedules replaced by one warmup + decay."""
  section = _bert.mixed_lamb_section(scale, cpu)
  warmup_ratio1 = section["schedule"]["warmup_ratio1"]
  return dict(section, schedule=dict(
      name="warmup_polynomial_decay", power=1.0,
      warmup_ratio=warmup_ratio1 * phase_steps[0] / sum(phase_steps)))


def adamw_mixed_section(learning_rate: float, scale: str, cpu: dict) -> dict:
  """BERT's AdamW (`_bert.adamw_section`) on the mixed batch's re-warm-up schedule, phase 2's
  peak in the same ratio to phase 1's as LAMB's (1/sqrt(2): 32K after 64K)."""
  lamb = _bert.mixed_lamb_section(scale, cpu)
  section = _bert.adamw_section(learning_rate, scale=scale, cpu=cpu)
  ratio = section["learning_rate"] / lamb["learning_rate"]
  return dict(section, schedule=dict(lamb["schedule"], peak2=lamb["schedule"]["peak2"] * ratio))


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
  cpu = _bert.BERT_CPU_LADDER
  config = common.base_config(name="mixed_batch", scale=scale)
  _bert.pretraining(config, scale, batch=_bert.MIXED[0], cpu=cpu)
  overrides = _bert.batch_overrides(scale, *_bert.MIXED, cpu=cpu)
  phase_steps = tuple(p["overrides"]["num_steps"] for p in dict(overrides)["phases"])
  lamb = _bert.mixed_lamb_section(scale, cpu)
  variants = [("lamb_rewarmup", overrides + (("optimizer", lamb),)),
              ("lamb_no_rewarmup", overrides + (
                  ("optimizer", no_rewarmup_section(scale, phase_steps, cpu)),))]
  rates = table8.LEARNING_RATES if scale == "paper" else CPU_ADAMW_RATES
  variants += [(f"adamw_lr{lr:g}", overrides + (
      ("optimizer", adamw_mixed_section(lr, scale, cpu)),
      ("learning_rate_multiplier", _bert.lr_multiplier(scale, "adamw", cpu))))
               for lr in rates]
  config.variants = tuple(variants)
  config.optimizer = lamb
  for path, value in overrides:
    config[path] = value
  seeds = (0,) if scale == "paper" else _bert.CPU_SEEDS
  config.sweep = common.sweep(("variant", tuple(name for name, _ in variants), ""),
                              ("seed", seeds, "seed"))
  if scale == "cpu":
    batches = [p["overrides"]["batch_size"] for p in dict(overrides)["phases"]]
    rule = "/".join(common.batch_label(b) for b in _bert.mixed_rule_batches(scale, cpu))
    config.shrink_note += (
        f"; the mixed batch runs at {batches[0]} then {batches[1]} (64K/32K / "
        f"{_bert.mixed_divisor(scale, cpu)}), {' + '.join(map(str, phase_steps))} steps, LAMB's "
        f"rates and warmups those of its rules at {rule}; AdamW one rate, Table 8's best at "
        "the ladder's shape (2e-4, chosen by looking at Table 8's held-out results), not a "
        "grid; 3 seeds")
  return common.apply_options(config, options)
