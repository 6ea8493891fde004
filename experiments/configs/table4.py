"""Table 4: untuned LAMB for BERT-Large pre-training from batch 512 to 32K at a fixed number of
epochs, with square-root learning-rate scaling and linear-epoch warmup (SQuAD F1 / EM)."""
from experiments.configs import _bert, common


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
  config = common.base_config(name="table4", scale=scale)
  _bert.pretraining(config, scale, batch=_bert.LADDER[0])
  config.optimizer = _bert.lamb_section(_bert.LADDER[0], scale)
  # One variant per printed batch: its phases and steps (15625 = 14063 + 1562 at 32K), its
  # rate 5/(2^(3.0-0.5k) x 10^3) and warmup ratio 1/320 x 2^k.
  config.variants = tuple(
      (_bert.label(batch), _bert.batch_overrides(scale, batch)
       + (("optimizer", _bert.lamb_section(batch, scale)),))
      for batch in _bert.LADDER)
  config.sweep = common.sweep(("variant", tuple(name for name, _ in config.variants), "batch"))
  if scale == "cpu":
    config.shrink_note += ("; the ladder's warmup ratios as printed, its rates x "
                           f"{_bert.lr_multiplier(scale):g}")
  return common.apply_options(config, options)
