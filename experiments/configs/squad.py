"""SQuAD v1.1 fine-tuning of a pre-trained BERT, the F1 / exact match of Tables 1, 2, 4 and 8
(Devlin et al.'s procedure, unchanged, as Section 4.1 says): --config.init_from=RUN_FOLDER."""
from experiments.configs import _bert, common


def get_config(arg: str = "cpu"):
  scale, options = common.parse_arg(arg)
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
    config.model = dict(name="bert", preset="large", vocab_size=30522)
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
    config.model = dict(name="bert", preset=c["preset"], vocab_size=c["vocab_size"])
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
  return common.apply_options(config, options)
