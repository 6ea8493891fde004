"""The task registry: what a run trains, chosen by `config.task`.

Each builder turns a config into a `Task` (lamb.train.task: the model's pure functions and the
batch sources every task provides): image classification for Tables 3, 5-7, 9-25 and the
figures (image_task), BERT pre-training for Section 4.1 (bert_tasks) and SQuAD v1.1
fine-tuning for the F1 of Tables 1, 2, 4 and 8 (squad_task). This module only names them.
"""
from __future__ import annotations

from lamb.train import bert_tasks, image_task, squad_task
from lamb.train.task import Task  # also `tasks.Task`, as callers have always written it

TASKS = {"image_classification": image_task.image_classification,
         "bert_pretraining": bert_tasks.pretraining_task,
         "squad": squad_task.squad_task}


def build(config, data_dir=None, load_data: bool = True) -> Task:
  """The task of `config`; with load_data=False its functions and shapes without its data."""
  if config.task not in TASKS:
    raise ValueError(f"unknown task {config.task!r}; known: {sorted(TASKS)}")
  return TASKS[config.task](config, data_dir, load_data)
