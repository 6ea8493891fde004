"""SQuAD v1.1 fine-tuning of a pre-trained BERT, the F1 / exact match of Tables 1, 2, 4 and 8
(Devlin et al.'s procedure, unchanged, as Section 4.1 says).

    --config=squad:paper,pretrained=table4     one fine-tune per run of table4's sweep
    --config=squad --config.init_from=FOLDER   one fine-tune of a run folder

With `pretrained=EXPERIMENT` the sweep has a run per pre-training run of that experiment at the
same scale, named after it (results/squad/<scale>/<experiment>_<run>/), each initialised from
<--results_dir>/<experiment>/<scale>/<run> and recording it (`pretrained_run`), which is how the
tables put its F1 beside the pre-training run."""
import importlib

from experiments import sweep
from experiments.configs import _bert, common

PRETRAINING = ("table1", "table2", "table4", "table8", "figure6", "mixed_batch", "figure7",
               "noise_scale_bert", "bert_multipliers", "ladder_multipliers",
               "top_rung_multipliers", "nado_bert", "bert_correction")


def _pretrained_variants(experiment: str, scale: str) -> tuple:
  """(name, overrides) of a fine-tune per run of `experiment`'s sweep at `scale`."""
  if experiment not in PRETRAINING:
    raise ValueError(f"pretrained={experiment!r} is not a BERT pre-training config; one of "
                     f"{', '.join(PRETRAINING)}")
  source = importlib.import_module(f"experiments.configs.{experiment}").get_config(scale)
  variants = []
  for run_name, _ in sweep.expand_sweep(source):
    folder = f"{source.name}/{scale}/{run_name}"
    variants.append((f"{source.name}_{run_name}", (
        ("init_from", f"{{results_dir}}/{folder}"), ("pretrained_run", folder))))
  return tuple(variants)


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
  pretrained = [o.split("=", 1)[1] for o in options if o.startswith("pretrained=")]
  options = [o for o in options if not o.startswith("pretrained=")]
  config = common.base_config(name="squad", scale=scale)
  config.task = "squad"
  # A pre-training run folder (e.g. results/table4/cpu/batch32K_seed0) whose newest checkpoint gives
  # the bert/... weights; "" trains from scratch.
  config.init_from = ""
  config.eval_every_epochs = 0
  config.checkpoint_every_steps = 500
  config.trust_ratio_every_steps = 0
  # run_squad.py's fine-tuning: AdamW (BERT's, with its exclusions), 2 epochs, 10% warmup.
  config.num_epochs = 2
  if scale == "paper":
    config.model = dict(name="bert", preset="large", vocab_size=30522,
                        attention_probs_dtype="float32")
    config.data = dict(name="squad", tfds_name="squad/v1.1", eval_split="validation",
                       vocab_file="", cache_dir="", max_seq_length=384, doc_stride=128,
                       max_query_length=64, max_answer_length=30, train_examples=0,
                       eval_examples=0)
    config.batch_size = 24  # BERT's README for BERT-Large on a TPU
    config.optimizer = _bert.adamw_section(learning_rate=3e-5, warmup_ratio=0.1)
    config.eval_batch_size = 64
    config.shrink_note = ""
  else:
    c = _bert.BERT_CPU
    config.model = dict(name="bert", preset=c["preset"], vocab_size=c["vocab_size"],
                        attention_probs_dtype="float32")
    config.data = dict(name="janeausten_cloze", held_out="sensesensibility", text_dir="",
                       vocab_file="", vocab_size=c["vocab_size"], cache_dir="",
                       sentences_per_context=3, max_seq_length=128, doc_stride=64,
                       max_query_length=48, max_answer_length=30, train_examples=4096,
                       eval_examples=512)
    config.batch_size = 32
    config.optimizer = _bert.adamw_section(learning_rate=1e-4, warmup_ratio=0.1)
    config.eval_batch_size = 128
    config.log_every_steps = 25
    config.shrink_note = (
        "cpu scale: SQuAD stand-in = blanked-span questions generated from Jane Austen (Debian "
        "r-cran-janeaustenr; contexts of 3 sentences, the question one of them with 1-3 words "
        "blanked), 4,096 training questions from the five training novels, 512 evaluation "
        "questions from Sense and Sensibility; BERT tiny with the 8,192-token vocabulary of the "
        "cpu pre-training runs; length 128 (paper 384), stride 64, batch 32 (paper 24), "
        "learning rate 1e-4 (paper 3e-5); the official F1 / exact match")
  config.sweep = ()
  if pretrained:
    config.pretrained_run = ""
    config.variants = _pretrained_variants(pretrained[-1], scale)
    config.sweep = common.sweep(("variant", tuple(name for name, _ in config.variants), ""))
  return common.apply_options(config, options)
