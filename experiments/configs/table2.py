"""Table 2: LARS against LAMB for BERT-Large pre-training from batch 512 to 32K (SQuAD F1; LARS
diverges at 32K), both with the untuned ladder of Table 4.

This config trains LARS; the LAMB column is Table 4's ladder (the same runs, read by the
analysis). At the cpu scale LARS runs Table 4's rungs (4K and 32K) and 16K, where the caption
says it stops scaling, 3 seeds, at its own multiplier (`_bert.BERT_CPU_LADDER`).
"""
from experiments.configs import _bert, common


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
  cpu = _bert.BERT_CPU_LADDER
  config = common.base_config(name="table2", scale=scale)
  _bert.pretraining(config, scale, batch=_bert.LADDER[0], cpu=cpu)
  config.optimizer = _bert.lars_section(_bert.LADDER[0], scale, cpu)
  config.learning_rate_multiplier = _bert.lr_multiplier(scale, "lars", cpu)
  batches = _bert.ladder_batches(scale, cpu, rows="lars_rows")
  rows = tuple(f"lars_{_bert.label(b)}" for b in batches)
  variants = []
  for batch, row in zip(batches, rows):
    section = _bert.lars_section(batch, scale, cpu)
    variants.append((row, _bert.batch_overrides(scale, batch, cpu=cpu) + (
        ("optimizer", section),
        ("paper", _bert.paper_keys(2, row, batch, section, scale, rows, cpu)))))
  config.variants = tuple(variants)
  config.paper = dict(variants[0][1][-1][1])
  axes = [("variant", rows, "")]
  if scale == "cpu":
    axes.append(("seed", _bert.CPU_SEEDS, "seed"))
  config.sweep = common.sweep(*axes)
  config.shrink_note += ("" if scale == "paper" else "; ") + (
      "LARS's BERT learning rates are not printed: it runs LAMB's ladder (Table 4) with "
      "momentum 0.9" + ("" if scale == "paper" else
                        f", x{_bert.lr_multiplier(scale, 'lars', cpu):g} (its own multiplier); "
                        f"rungs {', '.join(_bert.label(b) for b in batches)}; "
                        f"{len(_bert.CPU_SEEDS)} seeds"))
  return common.apply_options(config, options)
