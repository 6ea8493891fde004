"""The Task type: what the generic training loop needs to know about a run's problem.

This module owns only the `Task` dataclass; the builders that fill one in live next to it
(image_task for the image tables and figures, bert_tasks for Section 4.1's pre-training,
squad_task for the SQuAD F1) and lamb.train.tasks picks one by `config.task`.

Every task provides:
  * a Flax model's three pure functions: `init(rng) -> (params, model_state)`,
    `loss_fn(params, model_state, batch, rng, train) -> (loss, (metrics, model_state))` and
    `eval_fn(params, model_state, batch) -> (dict of sums, dict of per-row outputs)`, the
    sums masked so padded eval batches count every example exactly once, and
    `finalize_eval(sums) -> metrics`;
  * `eval_records(rows, sums) -> EvalRecords`: the final evaluation's one record per unit
    (image, masked token, question), from the per-row outputs of every evaluation batch
    (`real_rows` drops the padding) or from the sums, for results.write_eval_examples;
  * two batch sources: `train_batches(batch_size, seed, start_step, process_index,
    process_count)`, endless and a pure function of (seed, step), and `eval_batches(batch_size,
    process_index, process_count)`, the evaluation split once with a boolean "mask" and each
    row's position in the split, "index" (what ties a record to its example). Small data
    sets are arrays held whole in host memory and batched by lamb.data.batches; streamed data
    (TFDS at paper scale) plugs in its own `train_source` / `eval_source` behind the same two
    methods;
  * the shapes of one training example and the training-set size, known without loading the
    data, for the cost model.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import numpy as np

from lamb.data import batches as batches_lib


@dataclasses.dataclass
class EvalRecords:
  """One evaluation's records, one per unit in evaluation-set order (results.EVAL_MEMBERS)."""
  unit: str  # "images", "masked tokens", "questions"
  metric: str  # the summary metric they average to
  arrays: dict  # index, correct, and loss, cluster or score
  identity: dict  # what the units are (indices, labels, targets): the eval_set fingerprint's input

  def __len__(self) -> int:
    return len(self.arrays["index"])


def real_rows(rows: dict) -> dict:
  """Per-row evaluation outputs without the padding rows, ordered by their "index" in the
  evaluation set (processes read their shares in an order of their own)."""
  keep = np.asarray(rows[batches_lib.MASK_KEY], bool)
  order = np.argsort(np.asarray(rows[batches_lib.INDEX_KEY])[keep], kind="stable")
  return {k: np.asarray(v)[keep][order] for k, v in rows.items() if k != batches_lib.MASK_KEY}


@dataclasses.dataclass
class Task:
  train_arrays: dict  # whole splits in memory ({} for streamed data)
  eval_arrays: dict
  init: Callable  # rng -> (params, model_state)
  loss_fn: Callable  # (params, model_state, batch, rng, train) -> (loss, (metrics, model_state))
  eval_fn: Callable  # (params, model_state, batch) -> (dict of sums, dict of per-row outputs)
  finalize_eval: Callable  # dict of sums -> dict of metrics
  description: str
  eval_split: str
  # Evaluation metrics for the summary's "best", each with max or min; the first is the one
  # the paper reports for the task.
  better: dict = dataclasses.field(default_factory=lambda: {"accuracy": max, "loss": min})
  # One training example's shape and dtype per key, and the training-set size: what the cost
  # model needs, known without loading the data (`build(..., load_data=False)`).
  example: dict = dataclasses.field(default_factory=dict)
  num_train_examples: int = 0
  # Batch sources; None means batching `train_arrays` / `eval_arrays` (lamb.data.batches).
  train_source: Optional[Callable] = None
  eval_source: Optional[Callable] = None
  # params -> params: pre-trained weights put into the freshly initialised ones (fine-tuning
  # from a checkpoint); applied whenever training starts at step 0, never on resume.
  warm_start: Optional[Callable] = None
  # (per-row outputs of every eval batch concatenated, summed sums) -> EvalRecords: the final
  # evaluation's per-unit records; None writes none.
  eval_records: Optional[Callable] = None

  def train_batches(self, batch_size: int, *, seed: int, start_step: int = 0,
                    process_index: int = 0, process_count: int = 1):
    """This process's share of every global training batch from `start_step` on."""
    if self.train_source is not None:
      return self.train_source(batch_size, seed=seed, start_step=start_step,
                               process_index=process_index, process_count=process_count)
    return batches_lib.train_batches(self.train_arrays, batch_size, seed=seed,
                                     start_step=start_step, process_index=process_index,
                                     process_count=process_count)

  def eval_batches(self, batch_size: int, *, process_index: int = 0, process_count: int = 1):
    """The evaluation split once, padded, with a boolean "mask" of the real examples and
    their "index" in the split."""
    if self.eval_source is not None:
      return self.eval_source(batch_size, process_index=process_index,
                              process_count=process_count)
    return batches_lib.eval_batches(self.eval_arrays, batch_size, process_index=process_index,
                                    process_count=process_count)
