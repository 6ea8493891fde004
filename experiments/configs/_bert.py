"""BERT-Large pre-training as Section 4.1 runs it, shared by every BERT config (Tables 1, 2, 4,
8, Figures 6, 7, squad, mixed_batch, nado_bert, bert_correction, noise_scale_bert and the
multiplier grids bert_multipliers, ladder_multipliers, top_rung_multipliers).

It owns Devlin et al.'s constants and the cpu scale's shrink of them (`BERT_CPU`, its note).
`pretraining(config, scale)` sets the task, model, data, logging and hardware; `phases(...)`
the two phases of a batch (or of the 64K/32K mixed run) with their step counts from
lamb.optim.schedules; `lamb_section(batch)` is Table 4's untuned LAMB at a batch of the ladder
(square-root scaled rate from 5/(2^3 x 10^3) at 512, warmup ratio 1/320 at 512 growing
linearly with the batch); `adamw_section` is BERT's own AdamW recipe (Devlin et al.).
Batches here are the paper's; the cpu scale divides them by BERT_CPU["batch_divisor"].
"""
from experiments.configs import common
from lamb.optim import schedules

# Devlin et al.'s schedule, the paper's baseline: 1000k steps at batch 512, the first 9/10 of
# the epochs at sequence length 128 (20 masked predictions), the last 1/10 at 512 (80).
BERT_BASE_BATCH = 512
BERT_BASE_STEPS = 1_000_000
BERT_PHASE1_FRACTION = 0.9
BERT_SEQUENCE_LENGTHS = (128, 512)
BERT_MAX_PREDICTIONS = (20, 80)
# The slice per row of Table 1: 16 TPUv3 chips at 512 ... 1024 at 32K, 32 sequences a chip.
BERT_BATCH_PER_CHIP = 32
# The cpu scale keeps the recipe (masking, short-sequence probability, the 9/10 + 1/10 split,
# the ladder's ratios, every warmup ratio and the ratios between learning rates) and shrinks the
# rest. lr_multiplier: BERT tiny at batch 8 needs a larger base rate than BERT-Large at 512.
# With the paper's 6.25e-4, 2,000 steps end at the unigram guess (held-out masked-LM accuracy
# 0.061); at 8x they reach 0.126 (measured at batch 8 with LAMB: x4 0.103, x8 0.126, x16 0.126,
# x32 0.058). Every printed BERT rate (LAMB's ladder, LARS, AdamW's grid) is multiplied by it;
# it was chosen for LAMB alone, on the held-out novel, which favours LAMB in Tables 2 and 8.
BERT_CPU = dict(preset="tiny", vocab_size=8192, sequence_lengths=(32, 64),
                max_predictions=(5, 10), batch_divisor=64, base_steps=2000, dupe_factor=1,
                eval_examples=1024, lr_multiplier=8.0)
BERT_CPU_NOTE = (
    "cpu scale: Jane Austen novels (Debian r-cran-janeaustenr) instead of Wikipedia+BooksCorpus; "
    "masked-LM / next-sentence accuracy on held-out Sense and Sensibility instead of SQuAD F1; "
    "BERT tiny (2 layers, hidden 128, 2 heads) with an 8,192-token WordPiece vocabulary trained on "
    "the five training novels instead of BERT-Large with 30,522; sequence lengths 32 then 64 "
    "(paper 128 then 512) with 5 / 10 masked predictions (paper 20 / 80), in the same 9/10 + "
    "1/10 split of the epochs; batch sizes / 64 (512 -> 8, 32K -> 512); 2,000 steps at batch 8 "
    "instead of 1000k at 512 (every batch sees the same 16,000 sequences); dupe factor 1; "
    f"float32; every printed learning rate x {BERT_CPU['lr_multiplier']:g} (the tiny model's "
    "base rate; the ratios between "
    "rates are the paper's); the recipe's masking (15%, 80/10/10) and short-sequence "
    "probability 0.1 as in BERT")

# The ladder sized from the top (Tables 1, 2 and 4, Figure 6): 131,072 sequences, so that the
# ladder's largest batch (32K / 64 = 512) trains 256 steps, above the floor of
# `analysis.claims.MIN_STEPS` (250). Every optimizer runs its own multiplier, chosen on a
# validation split of the training novels: LAMB x8 and LARS x32 by `ladder_multipliers` at 4K,
# the smallest rung that runs (LAMB's x8 is the top of its grid: at x16 its 4K run ended at the
# unigram guess; LARS x16-x32 are level and x64 collapses), AdamW x4 by `bert_multipliers` at
# 512, the baseline's batch (BERT's own AdamW, without bias correction: x8 and above end at the
# unigram guess, x2 0.093, x4 0.095). Its rungs: 4K and 32K of LAMB and LARS and the baseline at 512
# (3.5-6 minutes a run here); the others would take 2-4x longer each and are left to the paper
# scale. The 64K/32K mixed batch would train 141 steps on this budget divided by 64, so it is
# divided by 128 (`mixed_batch_divisor`).
BERT_CPU_LADDER = dict(BERT_CPU, base_steps=16384, lr_multiplier=None,
                       lr_multipliers=dict(lamb=8.0, lars=32.0, adamw=4.0),
                       multipliers_chosen_by=dict(lamb="`ladder_multipliers` at 4K",
                                                  lars="`ladder_multipliers` at 4K",
                                                  adamw="`bert_multipliers` at 512"),
                       rows=("4K", "32K"),
                       # LARS also runs 16K (batch 256, 512 steps), where Table 2's caption says
                       # it stops scaling (claim 5c); LAMB's 16K is left to the paper scale.
                       lars_rows=("4K", "16K", "32K"),
                       # The 64K/32K mixed batch divided by 64 would train 141 steps on this
                       # budget; divided by 128 (512 then 256) it trains 231 + 51 = 282, above
                       # the floor. Its rates follow LAMB's rules at the batches that run, i.e.
                       # at 32K then 16K of the paper (`mixed_rule_batches`).
                       mixed_batch_divisor=128,
                       # The mixed batch's phase 1 runs the 32K rung's batch and rule, where the
                       # 4K choice carried up by the square-root rule (LAMB x8) ends at the
                       # unigram guess on every seed. The mixed batch (claims 3, 4, 7, 21) and
                       # Nado et al.'s test (`nado_bert`) run each optimizer's own choice at 32K,
                       # from the same number of settings on the validation split instead.
                       top_multipliers=dict(lamb=4.0, adamw=4.0),
                       top_multipliers_chosen_by="`top_rung_multipliers` at 32K")


def cpu_note(cpu: dict) -> str:
  """What the cpu shape `cpu` shrinks (BERT_CPU_NOTE for the shape of the configs not yet rerun)."""
  if cpu is BERT_CPU:
    return BERT_CPU_NOTE
  multipliers = ", ".join(f"{name} x{m:g} ({cpu['multipliers_chosen_by'][name]})"
                          for name, m in cpu["lr_multipliers"].items())
  return (BERT_CPU_NOTE.split("; batch sizes")[0] + "; batch sizes / 64 (512 -> 8, 32K -> 512); "
          f"{cpu['base_steps']:,} steps at batch 8 instead of 1000k at 512 (every batch sees the "
          f"same {cpu['base_steps'] * BERT_BASE_BATCH // cpu['batch_divisor']:,} sequences); "
          "dupe factor 1; float32; every printed learning rate times its optimizer's multiplier "
          f"({multipliers}, each chosen on a validation split of the training novels; the "
          "ratios between rates are the paper's); the recipe's masking (15%, 80/10/10) and "
          "short-sequence probability 0.1 as in BERT")


# Input shards of the paper-scale corpus (the reference's many input files): ~6,000 articles of
# Wikipedia and a 1/1000 of the books each, written by as many workers as there are machines.
PAPER_INSTANCE_SHARDS = 1000

# The seeds of every claim-bearing cpu run of the ladder shape: claims pair them across configs.
CPU_SEEDS = (0, 1, 2)

BASE_LR = 5 / (2 ** 3.0 * 10 ** 3)  # Table 4 at 512
BASE_WARMUP_RATIO = 1 / 320  # Table 4 at 512
LADDER = (512, 1024, 2048, 4096, 8192, 16384, 32768)
MIXED = (65536, 32768)  # Table 1's last row: 64K at length 128, then 32K at 512
# BERT's LAMB and AdamW leave LayerNorm parameters and biases out of weight decay (and LAMB
# out of layer adaptation): the reference's exclude_from_weight_decay list.
EXCLUSIONS = dict(weight_decay_mask="exclude_bias_and_norm",
                  adaptation_mask="exclude_bias_and_norm")


label = common.batch_label


def ladder_batches(scale: str, cpu: dict = BERT_CPU_LADDER, rows: str = "rows") -> tuple:
  """The ladder's batches (paper sizes) that run at `scale` (cpu: the shape's `rows`, or
  another list of it such as `lars_rows`)."""
  return LADDER if scale == "paper" else tuple(b for b in LADDER if label(b) in cpu[rows])


def paper_keys(table: int, row: str, batch: int, section: dict, scale: str, rows: tuple,
               cpu: dict = BERT_CPU_LADDER) -> dict:
  """A run's paper-facing keys: its table and row, the paper's batch and printed rate (the
  rate run divided by its multiplier), and the rows this scale's config runs."""
  multiplier = lr_multiplier(scale, section["name"], cpu)
  return dict(table=table, row=row, batch_size=batch,
              learning_rate=section["learning_rate"] / multiplier, rows_at_scale=tuple(rows))


def divisor(scale: str) -> int:
  return 1 if scale == "paper" else BERT_CPU["batch_divisor"]


def mixed_divisor(scale: str, cpu: dict = BERT_CPU) -> int:
  """What the mixed batch's two batches are divided by (the shape's own, or `divisor`)."""
  return 1 if scale == "paper" else cpu.get("mixed_batch_divisor", divisor(scale))


def mixed_rule_batches(scale: str, cpu: dict = BERT_CPU) -> tuple:
  """The paper batches whose rules (rate, warmup) the mixed run's two batches follow: MIXED at
  paper scale; at cpu, the batches that run times the ladder's divisor."""
  return tuple(b * divisor(scale) // mixed_divisor(scale, cpu) for b in MIXED)


def base_steps(scale: str, cpu: dict = BERT_CPU) -> int:
  """Steps of the fixed-epoch budget at the base batch (512, or 512 / divisor at cpu)."""
  return BERT_BASE_STEPS if scale == "paper" else cpu["base_steps"]


def train_sequences(scale: str, cpu: dict = BERT_CPU) -> int:
  """Sequences every run of the fixed-epoch budget trains on (at any batch)."""
  return base_steps(scale, cpu) * BERT_BASE_BATCH // divisor(scale)


def phases(scale: str, batch1: int, batch2: int = None, cpu: dict = BERT_CPU) -> tuple:
  """The two phases at paper batches `batch1` then `batch2` (default: the same): lengths 128
  then 512 (cpu: 32 then 64), steps = two_phase_steps of the fixed-epoch budget."""
  batch2 = batch2 or batch1
  d = divisor(scale)
  run_d = mixed_divisor(scale, cpu) if batch2 != batch1 else d
  steps = schedules.two_phase_steps(base_steps(scale, cpu), BERT_BASE_BATCH // d,
                                    batch1 // run_d, batch2 // run_d, BERT_PHASE1_FRACTION)
  if scale == "paper":
    lengths, predictions = BERT_SEQUENCE_LENGTHS, BERT_MAX_PREDICTIONS
  else:
    lengths, predictions = BERT_CPU["sequence_lengths"], BERT_CPU["max_predictions"]
  return tuple({"name": f"seq{length}",
                "overrides": {"batch_size": batch // run_d, "num_steps": n,
                              "data.max_seq_length": length,
                              "data.max_predictions_per_seq": p}}
               for batch, n, length, p in zip((batch1, batch2), steps, lengths, predictions))


def hardware(scale: str, batch: int, reported=("Figure 8", "scaling_efficiency_percent")) -> dict:
  """Table 1's slice for a run at paper batch `batch` (its TPUs column: batch / 32), compared
  with the baseline's 16 chips as in Figure 8."""
  if scale != "paper":
    return dict(accelerator="tpu_v3", chips=8, chips_source="cpu-scale shapes")
  return dict(accelerator="tpu_v3", chips=batch // BERT_BATCH_PER_CHIP,
              baseline_chips=BERT_BASE_BATCH // BERT_BATCH_PER_CHIP,
              chips_source="Table 1's TPUs column: one TPUv3 chip per 32 sequences",
              reported_efficiency=reported)


def pretraining(config, scale: str, batch: int = 512, cpu: dict = BERT_CPU):
  """Task, model, data, phases (at `batch`), logging and hardware of a BERT pre-training run;
  `cpu` is the cpu scale's shape (BERT_CPU_LADDER, or BERT_CPU for the configs not yet rerun)."""
  config.task = "bert_pretraining"
  # A record, not a knob: the sections below already multiplied the rates; analysis divides
  # by it to match runs with the printed rates. Change the shape's multipliers instead.
  config.learning_rate_multiplier = lr_multiplier(scale, "lamb", cpu)
  config.eval_every_steps = 0  # the held-out split at the end of each phase
  config.trust_ratio_every_steps = 0
  if scale == "paper":
    config.model = dict(name="bert", preset="large", vocab_size=30522,
                        attention_probs_dtype="float32")
    # Wikipedia from TFDS and BooksCorpus as BERT-format text files (--config.data.text_glob),
    # Google's uncased vocabulary (--config.data.vocab_file); read, never downloaded. Training
    # reads instances written beforehand in `instance_shards` shards
    # (experiments/write_pretraining_data.py; 0 would make them in memory in every process).
    config.data = dict(name="wikipedia", tfds_name="wikipedia/20190301.en", text_glob="",
                       vocab_file="", vocab_size=30522, eval_documents=10_000,
                       instance_shards=PAPER_INSTANCE_SHARDS,
                       max_documents=0, eval_examples=10_000, train_examples=0, cache_dir="",
                       max_seq_length=128, max_predictions_per_seq=20, masked_lm_prob=0.15,
                       short_seq_prob=0.1, dupe_factor=10, random_seed=12345,
                       do_whole_word_mask=False)
    config.eval_batch_size = 1024
    config.checkpoint_every_steps = 1000  # the reference's save_checkpoints_steps
    config.log_every_steps = 100
    config.shrink_note = ""
  else:
    c = BERT_CPU
    config.model = dict(name="bert", preset=c["preset"], vocab_size=c["vocab_size"],
                        attention_probs_dtype="float32")
    config.data = dict(name="janeausten", held_out="sensesensibility", text_dir="",
                       vocab_file="", vocab_size=c["vocab_size"], eval_examples=c["eval_examples"],
                       train_examples=0, cache_dir="",
                       max_seq_length=c["sequence_lengths"][0],
                       max_predictions_per_seq=c["max_predictions"][0], masked_lm_prob=0.15,
                       short_seq_prob=0.1, dupe_factor=c["dupe_factor"], random_seed=12345,
                       do_whole_word_mask=False)
    config.eval_batch_size = 512
    config.checkpoint_every_steps = 500
    config.log_every_steps = 25
    config.shrink_note = cpu_note(cpu)
    if cpu is not BERT_CPU:
      # A record, not a knob: the fixed-epoch budget every run of this shape trains on, so that
      # analysis never pairs runs of the two cpu shapes (`analysis.stats.TASK_COLUMNS`).
      config.train_sequences = train_sequences(scale, cpu)
  set_batch(config, scale, batch, cpu=cpu)
  return config


def set_batch(config, scale: str, batch1: int, batch2: int = None, cpu: dict = BERT_CPU):
  """Phases, batch size, step count and slice of a run at paper batch(es) (in place)."""
  for path, value in batch_overrides(scale, batch1, batch2, cpu):
    config[path] = value
  return config


def batch_overrides(scale: str, batch1: int, batch2: int = None, cpu: dict = BERT_CPU) -> tuple:
  """The (path, value) pairs of a run at paper batch `batch1` (then `batch2`: the mixed run)."""
  p = phases(scale, batch1, batch2, cpu)
  reported = ("Figure 8", "mixed_batch_scaling_efficiency_percent" if batch2 and batch2 != batch1
              else "scaling_efficiency_percent")
  return (("phases", p), ("batch_size", p[0]["overrides"]["batch_size"]),
          ("num_steps", sum(x["overrides"]["num_steps"] for x in p)),
          ("hardware", hardware(scale, batch2 or batch1, reported)))


def lr_multiplier(scale: str, optimizer: str = "lamb", cpu: dict = BERT_CPU) -> float:
  """The factor on `optimizer`'s printed rates: 1 at paper scale; at cpu the shape's one
  multiplier, or its optimizer's own (`lr_multipliers`)."""
  if scale == "paper":
    return 1.0
  return cpu["lr_multiplier"] or cpu["lr_multipliers"][optimizer]


def top_multiplier(scale: str, optimizer: str, cpu: dict = BERT_CPU) -> float:
  """The factor on `optimizer`'s printed rate at the ladder's top (32K, and the mixed batch whose
  phase 1 runs it): 1 at paper scale; at cpu the shape's `top_multipliers` choice, or the
  ladder's `lr_multiplier` for a shape without one."""
  if scale == "paper" or "top_multipliers" not in cpu:
    return lr_multiplier(scale, optimizer, cpu)
  chosen = cpu["top_multipliers"].get(optimizer)
  if chosen is None:
    raise ValueError(f"{optimizer}'s rate at the BERT ladder's top is not chosen yet: run "
                     "`python experiments/run.py --config=top_rung_multipliers`, then set "
                     f"top_multipliers['{optimizer}'] in experiments/configs/_bert.py from the "
                     "report's top-rung table")
  return chosen


def lamb_section(batch: int, scale: str = "paper", cpu: dict = BERT_CPU) -> dict:
  """Table 4's untuned LAMB at paper batch `batch`: one warmup + linear decay over all steps."""
  base = BASE_LR * lr_multiplier(scale, "lamb", cpu)
  return dict(name="lamb", learning_rate=schedules.sqrt_scaled_lr(base, 512, batch),
              weight_decay=0.01,
              schedule=dict(name="warmup_polynomial_decay", power=1.0,
                            warmup_ratio=schedules.linear_epoch_warmup(BASE_WARMUP_RATIO, 512,
                                                                       batch)),
              kwargs=dict(EXCLUSIONS, b1=0.9, b2=0.999, eps=1e-6))


def mixed_lamb_section(scale: str = "paper", cpu: dict = BERT_CPU) -> dict:
  """LAMB for the 64K/32K run: warmup and decay over phase 1, then re-warm-up from zero and
  decay over phase 2 (Section 4.1). The rates and warmups are not printed; Table 4's rules
  give them: phase 1 at 64K, phase 2 at 32K, each warmup a ratio of its own phase (at a cpu
  shape with its own `mixed_batch_divisor`, the rules at the batches that run, times the
  multiplier chosen at the top rung, `top_multiplier`)."""
  batch1, batch2 = mixed_rule_batches(scale, cpu)
  base = BASE_LR * top_multiplier(scale, "lamb", cpu)
  return dict(name="lamb", learning_rate=schedules.sqrt_scaled_lr(base, 512, batch1),
              weight_decay=0.01,
              schedule=dict(name="mixed_batch_rewarmup", power=1.0,
                            warmup_ratio1=schedules.linear_epoch_warmup(BASE_WARMUP_RATIO, 512,
                                                                        batch1),
                            peak2=schedules.sqrt_scaled_lr(base, 512, batch2),
                            warmup_ratio2=schedules.linear_epoch_warmup(BASE_WARMUP_RATIO, 512,
                                                                        batch2)),
              kwargs=dict(EXCLUSIONS, b1=0.9, b2=0.999, eps=1e-6))


def adamw_section(learning_rate: float = 1e-4, warmup_ratio: float = 0.01,
                  scale: str = "paper", cpu: dict = BERT_CPU, multiplier: float = None) -> dict:
  """BERT's AdamW (optimization.py's AdamWeightDecayOptimizer, as run_pretraining.py and
  run_squad.py build it): the gradient clipped to global norm 1.0, Adam's moments without bias
  correction, weight decay 0.01 (scaled by the rate) without LayerNorm and biases, eps 1e-6,
  linear warmup then linear decay. The defaults are Devlin et al.'s: 1e-4, 10k warmup steps of
  1000k. `multiplier`: the cpu scale's factor (default: the shape's AdamW multiplier)."""
  if multiplier is None:
    multiplier = lr_multiplier(scale, "adamw", cpu)
  return dict(name="adamw", learning_rate=learning_rate * multiplier,
              weight_decay=0.01,
              schedule=dict(name="warmup_polynomial_decay", power=1.0, warmup_ratio=warmup_ratio),
              kwargs=dict(weight_decay_mask="exclude_bias_and_norm", b1=0.9, b2=0.999, eps=1e-6,
                          bias_correction=False, max_grad_norm=1.0))


def adamw_at_rung(batch: int, scale: str = "paper", cpu: dict = BERT_CPU) -> dict:
  """BERT's AdamW (`adamw_section`) at Devlin et al.'s rate (1e-4, which the paper does not
  rescale with the batch: Table 8 runs 1e-4 to 3e-4 at 16K) on LAMB's schedule at paper batch
  `batch` (Table 4's warmup ratio, linear decay): at one rung only the update rule differs."""
  warmup = lamb_section(batch, scale, cpu)["schedule"]["warmup_ratio"]
  return adamw_section(1e-4, warmup, scale, cpu)


def lars_section(batch: int, scale: str = "paper", cpu: dict = BERT_CPU) -> dict:
  """LARS (Algorithm 1) for Table 2. Its BERT learning rates are not printed: it runs LAMB's
  untuned ladder (Table 4's rates and warmups) with momentum 0.9 and the same exclusions."""
  section = lamb_section(batch, scale, cpu)
  multiplier = lr_multiplier(scale, "lars", cpu) / lr_multiplier(scale, "lamb", cpu)
  section["learning_rate"] *= multiplier
  return dict(section, name="lars", momentum=0.9,
              kwargs=dict(EXCLUSIONS, form="paper"))
