"""Table 4: untuned LAMB for BERT-Large pre-training from batch 512 to 32K at a fixed number of
epochs, with square-root learning-rate scaling and linear-epoch warmup (SQuAD F1 / EM).

This is the one LAMB ladder of the BERT experiments: Table 1's LAMB rows, Table 2's LAMB column
and Figure 6's curves read these runs (`figure6` is this sweep under this name). At the cpu
scale the ladder is sized from the top (`_bert.BERT_CPU_LADDER`): the 4K and 32K rungs, 3 seeds,
32K training 256 steps; the other rungs are left to the paper scale.
"""
from experiments.configs import _bert, common

# The ladder measures its critical batch (`lamb.train.noise_scale`): about 16 gradient noise scale
# measurements per cpu run, each comparing the batch with its quarters.
NOISE_MEASUREMENTS = 16
NOISE_PARTS = 4


def short_ladder(scale: str):
  """All seven rungs at the cpu shape of the configs not yet rerun (`_bert.BERT_CPU`: 2000 steps
  at batch 8, LAMB's rates x 8, one seed), which `noise_scale_bert`'s committed runs measured."""
  config = common.base_config(name="table4", scale=scale)
  _bert.pretraining(config, scale, batch=_bert.LADDER[0])
  config.optimizer = _bert.lamb_section(_bert.LADDER[0], scale)
  config.variants = tuple(
      (_bert.label(batch), _bert.batch_overrides(scale, batch)
       + (("optimizer", _bert.lamb_section(batch, scale)),))
      for batch in _bert.LADDER)
  config.sweep = common.sweep(("variant", tuple(name for name, _ in config.variants), "batch"))
  if scale == "cpu":
    config.shrink_note += ("; the ladder's warmup ratios as printed, its rates x "
                           f"{_bert.lr_multiplier(scale):g}")
  return config


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
  cpu = _bert.BERT_CPU_LADDER
  config = common.base_config(name="table4", scale=scale)
  _bert.pretraining(config, scale, batch=_bert.LADDER[0], cpu=cpu)
  config.optimizer = _bert.lamb_section(_bert.LADDER[0], scale, cpu)
  batches = _bert.ladder_batches(scale, cpu)
  rows = tuple(_bert.label(b) for b in batches)
  # One variant per printed batch: its phases and steps (15625 = 14063 + 1562 at 32K), its
  # rate 5/(2^(3.0-0.5k) x 10^3) and warmup ratio 1/320 x 2^k.
  variants = []
  for batch in batches:
    section = _bert.lamb_section(batch, scale, cpu)
    overrides = _bert.batch_overrides(scale, batch, cpu=cpu)
    noise = () if scale == "paper" else (
        ("noise_scale_every_steps", max(1, dict(overrides)["num_steps"] // NOISE_MEASUREMENTS)),)
    variants.append((_bert.label(batch), overrides + noise + (
        ("optimizer", section),
        ("paper", _bert.paper_keys(4, _bert.label(batch), batch, section, scale, rows, cpu)))))
  config.variants = tuple(variants)
  config.paper = dict(variants[0][1][-1][1])
  axes = [("variant", rows, "batch")]
  if scale == "cpu":
    axes.append(("seed", _bert.CPU_SEEDS, "seed"))
    config.log_every_steps = 5  # Figure 6's curves: about 50 points at 32K
    config.noise_scale_every_steps = 0  # set per rung
    config.noise_scale_parts = NOISE_PARTS
    config.shrink_note += (f"; the ladder's warmup ratios as printed; rungs {', '.join(rows)} "
                           f"of the paper's 7; {len(_bert.CPU_SEEDS)} seeds")
  config.sweep = common.sweep(*axes)
  return common.apply_options(config, options)
