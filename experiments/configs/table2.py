"""Table 2: LARS against LAMB for BERT-Large pre-training from batch 512 to 32K (SQuAD F1; LARS
diverges at 32K), both with the untuned ladder of Table 4."""
from experiments.configs import _bert, common

OPTIMIZERS = {"lars": _bert.lars_section, "lamb": _bert.lamb_section}


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
  config = common.base_config(name="table2", scale=scale)
  _bert.pretraining(config, scale, batch=_bert.LADDER[0])
  config.optimizer = _bert.lamb_section(_bert.LADDER[0], scale)
  config.variants = tuple(
      (f"{name}_{_bert.label(batch)}", _bert.batch_overrides(scale, batch)
       + (("optimizer", section(batch, scale)),))
      for name, section in OPTIMIZERS.items() for batch in _bert.LADDER)
  config.sweep = common.sweep(("variant", tuple(name for name, _ in config.variants), ""))
  config.shrink_note += ("" if scale == "paper" else "; ") + (
      "LARS's BERT learning rates are not printed: it runs LAMB's ladder (Table 4) with "
      "momentum 0.9")
  return common.apply_options(config, options)
