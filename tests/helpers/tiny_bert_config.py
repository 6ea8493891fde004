"""A few-step BERT pre-training config for the tests: Table 4's cpu setting (BERT tiny on Jane
Austen, LAMB or the 64K/32K mixed-batch schedule) with both phases cut to a handful of steps.

`get_config("cpu")` is LAMB at cpu batch 8 (steps 3 + 2); `get_config("cpu,mixed=1")` the
mixed-batch schedule with batches 16 then 8. Used as `run.py --config=tests/helpers/...`.
"""
from experiments.configs import _bert, common, table4

STEPS = (3, 2)


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
  mixed = "mixed=1" in options
  config = table4.short_ladder(scale)
  config.name = "tiny_bert"
  config.optimizer = (_bert.mixed_lamb_section(scale) if mixed
                      else _bert.lamb_section(_bert.LADDER[0], scale))
  config.learning_rate_multiplier = _bert.lr_multiplier(scale)
  batches = (16, 8) if mixed else (8, 8)
  lengths, predictions = _bert.BERT_CPU["sequence_lengths"], _bert.BERT_CPU["max_predictions"]
  config.phases = tuple(
      {"name": f"seq{length}", "overrides": {"batch_size": b, "num_steps": n,
                                             "data.max_seq_length": length,
                                             "data.max_predictions_per_seq": p}}
      for b, n, length, p in zip(batches, STEPS, lengths, predictions))
  config.batch_size, config.num_steps = batches[0], sum(STEPS)
  config.sweep = ()
  config.variants = ()
  config.data.train_examples = 512
  config.data.eval_examples = 64
  # > 0: train on instances written beforehand by experiments/write_pretraining_data.py
  config.data.instance_shards = 0
  config.eval_batch_size = 64
  config.checkpoint_every_steps = 1
  config.log_every_steps = 1
  return config
