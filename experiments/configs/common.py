"""What every experiment config shares: scales, run options, sweeps as plain data.

What one data set's experiments share lives beside it: `_imagenet.py` (ResNet-50 on ImageNet and
its stand-in), `_cifar.py` (DavidNet on CIFAR-10), `_bert.py` (BERT pre-training).

`get_config(arg)` takes `cpu` (the default), `paper`, and `key=value` options after the scale
(e.g. `table7:cpu,num_epochs=1`), the way big_vision configs take variants.
"""
from __future__ import annotations

import ml_collections

SCALES = ("cpu", "paper")
# A paper-scale host must decode ~3,400 ImageNet images/s (ResNet-50 at 32K in 2.2 minutes on
# 256 hosts) at 2.1-3.3 ms of CPU each (benchmarks/RESULTS.md, input pipeline): 7-11 cores.
PAPER_INPUT_WORKERS = 8


def parse_arg(arg: str | None, named: tuple = ()):
  """(scale, options): `key=value` options, and the words of `named` (a config's named
  variants, e.g. table6's `cutout`); any other word is refused, never ignored."""
  parts = [p for p in (arg or "cpu").split(",") if p]
  scale = parts[0] if parts and "=" not in parts[0] else "cpu"
  if scale not in SCALES:
    raise ValueError(f"unknown scale {scale!r}; expected one of {SCALES}")
  options = [p for p in parts[1 if parts and parts[0] == scale else 0:]]
  for word in options:
    if "=" not in word and word not in named:
      takes = f"the named variants {', '.join(named)} and " if named else ""
      raise ValueError(f"unknown option {word!r}: this config takes {takes}key=value options")
  return scale, options


def named_variants(options: list) -> set:
  return {word for word in options if "=" not in word}


def base_config(name: str, scale: str) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.name = name
  config.scale = scale
  config.seed = 0
  config.compute_dtype = "float32" if scale == "cpu" else "bfloat16"
  config.microbatches = 1  # part of a run's identity; --target plans it (lamb.train.memory)
  config.remat = "none"  # layout: lamb.models.bert.REMAT_POLICIES
  # The PRNG of the run's keys (dropout, shuffling by key): "unsafe_rbg" is the TPU's hardware
  # generator, as MaxText and t5x use at scale (other numbers: another run).
  config.rng_impl = "threefry2x32"
  # How the step reduces gradients and where its state lives (lamb.train.mesh.parallelism); the
  # defaults are what every committed run did: XLA's reduction, replicated state.
  config.gradient_reduction = "auto"  # or "explicit": one reduction per step, after the loop
  config.gradient_reduction_dtype = "float32"  # of the explicit reduction; or "bfloat16"
  config.sharding = "replicated"  # or "fsdp": parameters and optimizer state split over devices
  config.num_steps = 0  # 0: derived from num_epochs
  config.log_every_steps = 50
  config.eval_batch_size = 1000
  # Worker processes making each host's streamed input batches (lamb.data.streams: the same
  # batches with any number); none at cpu scale, whose data sit in memory.
  config.input_workers = 0 if scale == "cpu" else PAPER_INPUT_WORKERS
  return config


def sweep(*axes):
  """Axes of a grid, each (config path, values, label for run names; '' = value only)."""
  return tuple((path, tuple(values), label) for path, values, label in axes)


def replicates_of(grid, name: str, arg: str):
  """(config, options): `grid`'s cpu config renamed `name`, for a config that reruns the cpu
  grid's choices on fresh seeds; the paper scale is refused (its choices come from the paper
  scale's own grid, not yet run)."""
  scale, options = parse_arg(arg)
  source = grid.__name__.rsplit(".", 1)[-1]
  if scale == "paper":
    raise ValueError(f"{name} is cpu scale only: it reruns the cpu grid's choices; at the paper "
                     f"scale choose from {source}:paper's grid first")
  config = grid.get_config(arg)
  config.name = name
  return config, options


def apply_options(config, options):
  for option in options:
    if "=" not in option:  # a named variant, applied by the config itself
      continue
    key, value = option.split("=", 1)
    if key not in config:
      raise ValueError(f"unknown config option {key!r}")
    config[key] = type(config[key])(value) if config[key] is not None else value
  return config


def batch_label(batch: int) -> str:
  """The paper's way of printing a batch size: 512, 1K, ..., 32K."""
  return f"{batch // 1024}K" if batch >= 1024 else str(batch)


# --- the image experiments (Tables 3, 5, 6, 9-25; Figures 1-5, 9-14) --------------------------

# Section 4's eta_0 (1 - t/T) after a linear warmup, the schedule of every other run.
POLY = dict(name="warmup_polynomial_decay", warmup_ratio=0.0)
# Batch-norm scales and biases are kept out of weight decay and layer adaptation, as in the
# LARS/LAMB ResNet references.
BN_AND_BIAS = ("(^|/)(bias|scale)$",)

def fashion_mnist_standin(train_examples: int, eval_examples: int, augment: dict,
                          eval_split: str = "test") -> dict:
  return dict(name="fashion_mnist", source="debian", eval_split=eval_split, image_size=32,
              channels=3, train_examples=train_examples, eval_examples=eval_examples,
              augment=augment)
