"""Appendix E's BERT half: LAMB without the adam-correction, "no drop in the test or validation
accuracy for BERT" (Figure 2 shows the ImageNet half).

One rung of Table 4's ladder trained again with the bias correction of Adam's moments removed
(`bias_correction=False`) and nothing else changed; its other side is Table 4's own run of that
rung (the same seeds), read by the analysis. The paper does not say at which batch it looked:
the paper scale takes its headline 32K; the cpu scale takes 4K, the rung that learns
(`_bert.BERT_CPU_LADDER`'s 32K ends at the unigram guess, where no drop could show), 3 seeds.
"""
from experiments.configs import _bert, common, table4

BATCH = {"paper": 32768, "cpu": 4096}


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
  config = table4.get_config(scale)
  config.name = "bert_correction"
  batch = BATCH[scale]
  rung = dict(dict(config.variants)[_bert.label(batch)])
  lamb = rung["optimizer"]
  section = dict(lamb, kwargs=dict(lamb["kwargs"], bias_correction=False))
  name = f"nocorrection_{_bert.label(batch)}"
  rung.update(optimizer=section, noise_scale_every_steps=0,  # a measurement only: not needed
              paper=dict(rung["paper"], table=0, row=f"LAMB {_bert.label(batch)} without the "
                         "adam-correction", rows_at_scale=(name,)))
  config.variants = ((name, tuple(rung.items())),)
  config.optimizer = section
  config.paper = dict(rung["paper"])
  axes = [("variant", (name,), "")]
  if scale == "cpu":
    axes.append(("seed", _bert.CPU_SEEDS, "seed"))
    config.shrink_note += (f"; Table 4's {_bert.label(batch)} rung without the adam-correction "
                           "(its other side is table4's run)")
  config.sweep = common.sweep(*axes)
  return common.apply_options(config, options)
