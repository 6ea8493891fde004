"""The critical batch of BERT pre-training (Tables 1, 2, 4, 8): Table 4's untuned LAMB at two
rungs of its ladder, measuring the gradient noise scale B_simple = tr(Σ)/|G|² (McCandlish et al.
2018; `lamb.train.noise_scale`) about 16 times through each run, both phases included.

The report places the BERT ladders against the measured value (`analysis.critical_batch`). At
the cpu scale these runs are of the shorter shape of the configs not yet rerun
(`table4.short_ladder`); Table 4's own ladder measures the noise scale in every run.
"""
from experiments.configs import _bert, common, table4

RUNGS = (512, 4096)
PARTS = 4  # each measurement compares the batch with its quarters
MEASUREMENTS = 16


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
  config = table4.short_ladder(scale)
  config.name = "noise_scale_bert"
  variants = dict(config.variants)
  chosen = []
  for batch in RUNGS:
    overrides = variants[_bert.label(batch)]
    steps = dict(overrides)["num_steps"]
    chosen.append((_bert.label(batch), overrides + (
        ("noise_scale_every_steps", max(1, steps // MEASUREMENTS)),)))
  config.variants = tuple(chosen)
  config.sweep = common.sweep(("variant", tuple(name for name, _ in chosen), "batch"))
  config.noise_scale_every_steps = 0  # set per rung: a sixteenth of its steps
  config.noise_scale_parts = PARTS
  return common.apply_options(config, options)
