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
steps (231 at 512, then 51 at 256) instead of 141. Phase 1 runs the batch and rule of the
ladder's 32K rung, so each optimizer runs its own multiplier chosen there, from the same four
settings on the validation split (`top_rung_multipliers`, `_bert.top_multiplier`): LAMB's
rates are its rules' times its choice, AdamW's Devlin et al.'s 1e-4 times its choice; 3 seeds.
Every run logs its training loss every 5 steps: the re-warm-up run of seed 0 is Figure 7's
curve at this scale (`figure7` would train it again under its own name).
"""
from experiments.configs import _bert, common, table8


CPU_ADAMW_RATES = (0.0001,)  # Devlin et al.'s, times AdamW's multiplier chosen at 32K


def no_rewarmup_section(scale: str, phase_steps: tuple, cpu: dict) -> dict:
  """LAMB's mixed-batch section with its two schedules replaced by one warmup + decay."""
  section = _bert.mixed_lamb_section(scale, cpu)
  warmup_ratio1 = section["schedule"]["warmup_ratio1"]
  return dict(section, schedule=dict(
      name="warmup_polynomial_decay", power=1.0,
      warmup_ratio=warmup_ratio1 * phase_steps[0] / sum(phase_steps)))


def adamw_mixed_section(learning_rate: float, scale: str, cpu: dict) -> dict:
  """BERT's AdamW (`_bert.adamw_section`, times its multiplier at the ladder's top) on the mixed
  batch's re-warm-up schedule, phase 2's peak in the same ratio to phase 1's as LAMB's
  (1/sqrt(2): 32K after 64K)."""
  lamb = _bert.mixed_lamb_section(scale, cpu)
  section = _bert.adamw_section(learning_rate, scale=scale, cpu=cpu,
                                multiplier=_bert.top_multiplier(scale, "adamw", cpu))
  ratio = section["learning_rate"] / lamb["learning_rate"]
  return dict(section, schedule=dict(lamb["schedule"], peak2=lamb["schedule"]["peak2"] * ratio))


def cpu_note(cpu: dict) -> str:
  """What the cpu scale changes in the mixed batch (this config's runs and figure7's)."""
  p = _bert.phases("cpu", *_bert.MIXED, cpu=cpu)
  rule = "/".join(common.batch_label(b) for b in _bert.mixed_rule_batches("cpu", cpu))
  return (f"; the mixed batch runs at {p[0]['overrides']['batch_size']} then "
          f"{p[1]['overrides']['batch_size']} (64K/32K / {_bert.mixed_divisor('cpu', cpu)}), "
          f"{p[0]['overrides']['num_steps']} + {p[1]['overrides']['num_steps']} steps, LAMB's "
          f"rates and warmups those of its rules at {rule}; each optimizer's rate times its own "
          f"multiplier chosen at 32K ({cpu['top_multipliers_chosen_by']}, on a validation split "
          f"of the training novels): LAMB x{_bert.top_multiplier('cpu', 'lamb', cpu):g}, AdamW "
          f"1e-4 x{_bert.top_multiplier('cpu', 'adamw', cpu):g}")


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
  cpu = _bert.BERT_CPU_LADDER
  config = common.base_config(name="mixed_batch", scale=scale)
  _bert.pretraining(config, scale, batch=_bert.MIXED[0], cpu=cpu)
  overrides = _bert.batch_overrides(scale, *_bert.MIXED, cpu=cpu)
  phase_steps = tuple(p["overrides"]["num_steps"] for p in dict(overrides)["phases"])
  lamb = _bert.mixed_lamb_section(scale, cpu)
  config.learning_rate_multiplier = _bert.top_multiplier(scale, "lamb", cpu)
  variants = [("lamb_rewarmup", overrides + (("optimizer", lamb),)),
              ("lamb_no_rewarmup", overrides + (
                  ("optimizer", no_rewarmup_section(scale, phase_steps, cpu)),))]
  rates = table8.LEARNING_RATES if scale == "paper" else CPU_ADAMW_RATES
  variants += [(f"adamw_lr{lr:g}", overrides + (
      ("optimizer", adamw_mixed_section(lr, scale, cpu)),
      ("learning_rate_multiplier", _bert.top_multiplier(scale, "adamw", cpu))))
               for lr in rates]
  config.variants = tuple(variants)
  config.optimizer = lamb
  for path, value in overrides:
    config[path] = value
  seeds = (0,) if scale == "paper" else _bert.CPU_SEEDS
  config.sweep = common.sweep(("variant", tuple(name for name, _ in variants), ""),
                              ("seed", seeds, "seed"))
  if scale == "cpu":
    config.shrink_note += cpu_note(cpu) + "; 3 seeds"
    config.log_every_steps = 5  # Figure 7's curve (claim 21) is the re-warm-up run of seed 0
  return common.apply_options(config, options)
