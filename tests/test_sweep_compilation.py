"""One compilation per sweep: runs that differ only in numbers share the compiled programs.

Every scalar hyperparameter reaches the train step as a traced argument (lamb.optim.split), so
a learning-rate grid compiles its train and eval steps once, with the same results as runs
compiled one by one; the persistent cache carries that across processes.
"""
from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import (ROOT, cli_env, read_json, run_cli, run_dir, tiny_args,
                      tiny_table7_config, train_losses)
from lamb import optim
from lamb.train import programs, tasks, trainer



def tiny_config(**changes):
  return tiny_table7_config(**changes)


@pytest.fixture
def no_persistent_cache():
  """In-process compilations counted as such, even if an earlier test turned the on-disk cache
  on for this process."""
  from jax.experimental.compilation_cache import compilation_cache
  previous = jax.config.jax_enable_compilation_cache
  jax.config.update("jax_enable_compilation_cache", False)
  compilation_cache.reset_cache()
  yield
  jax.config.update("jax_enable_compilation_cache", previous)
  compilation_cache.reset_cache()


def metrics_of(path):
  return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]


def test_two_learning_rates_compile_once_and_match_runs_compiled_alone(tmp_path,
                                                                     no_persistent_cache):
  programs.clear()
  jax.clear_caches()
  first, second = tiny_config(**{"optimizer.learning_rate": 0.01}), \
      tiny_config(**{"optimizer.learning_rate": 0.001})
  task = tasks.build(first)  # the data set, loaded once and shared, as run.py does

  before = programs.compilations()
  a = trainer.train_and_evaluate(first, tmp_path / "sweep" / "a", task=task)
  after_first = programs.compilations()
  b = trainer.train_and_evaluate(second, tmp_path / "sweep" / "b", task=task)
  assert after_first - before >= 2  # at least the train and the eval step
  assert a["compilations"] == after_first - before
  assert programs.compilations() == after_first, "the second learning rate recompiled"
  assert b["compilations"] == 0

  # The second run again, compiled on its own in a fresh cache.
  programs.clear()
  jax.clear_caches()
  alone = trainer.train_and_evaluate(second, tmp_path / "alone" / "b", task=tasks.build(second))
  assert alone["compilations"] >= 2
  assert metrics_of(tmp_path / "sweep" / "b") == metrics_of(tmp_path / "alone" / "b")
  assert b["final"] == alone["final"]
  assert a["final"] != b["final"]  # the learning rate did reach the step


def test_seed_and_epochs_are_data_too(tmp_path, no_persistent_cache):
  """Seeds and run lengths (hence schedule lengths) are numbers, not program structure."""
  task = tasks.build(tiny_config())
  trainer.train_and_evaluate(tiny_config(), tmp_path / "a", task=task)
  before = programs.compilations()
  summary = trainer.train_and_evaluate(
      tiny_config(seed=3, num_steps=8, **{"optimizer.weight_decay": 0.1}), tmp_path / "b",
      task=task)
  assert programs.compilations() == before and summary["compilations"] == 0
  assert summary["steps"] == 8


# Each optimizer with every scalar knob set away from its default; numbers2 moves all of them.
SECTIONS = {
    "lamb": dict(name="lamb", learning_rate=0.01, weight_decay=0.01, kwargs=dict(
        b1=0.9, b2=0.99, eps=1e-6, phi=[0.01, 10.0], max_grad_norm=1.0),
                 schedule=dict(name="warmup_polynomial_decay", total_steps=10, warmup_ratio=0.2,
                               power=2.0, end_value=0.001)),
    "lars": dict(name="lars", learning_rate=0.1, momentum=0.9, weight_decay=0.001,
                 kwargs=dict(phi=[0.0, 5.0], eps=1e-9, trust_coefficient=0.5),
                 schedule=dict(name="goyal", steps_per_epoch=2, warmup_epochs=1.0,
                               decay_epochs=[2, 4], decay_factor=0.1)),
    "nnlamb": dict(name="nnlamb", learning_rate=0.01, weight_decay=0.01,
                   kwargs=dict(b1=0.975, b2=0.999, eps=1e-8, b1_schedule="dozat"),
                   schedule=dict(name="polynomial_decay", total_steps=10)),
    "adamw": dict(name="adamw", learning_rate=0.01, weight_decay=0.1,
                  kwargs=dict(l2_regularization=0.01, b1=0.8, eps=1e-7)),
    "adagrad": dict(name="adagrad", learning_rate=0.1,
                    kwargs=dict(initial_accumulator_value=0.2, eps=1e-6)),
    "momentum": dict(name="momentum", learning_rate=0.1, momentum=0.8,
                     kwargs=dict(l2_regularization=1e-4)),
}


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_every_scalar_hyperparameter_is_traced(name):
  structure, numbers = optim.split(SECTIONS[name])
  assert len(numbers) >= 3, numbers
  params = {"w": jnp.linspace(-1.0, 1.0, 12).reshape(3, 4), "b": jnp.full([4], 0.5)}
  grads = jax.tree.map(lambda p: jnp.cos(3 * p) + 0.1, params)
  traces = []

  @jax.jit
  def three_steps(numbers):
    traces.append(1)
    tx = optim.create(structure, numbers)
    state, p = tx.init(params), params
    for _ in range(3):
      updates, state = tx.update(grads, state, p)
      p = jax.tree.map(jnp.add, p, updates)
    return p, optim.learning_rate(structure, numbers)(jnp.int32(2))

  def constant_steps(section):  # the same optimizer, its numbers Python constants
    tx = optim.create(section)
    state, p = tx.init(params), params
    for _ in range(3):
      updates, state = tx.update(grads, state, p)
      p = jax.tree.map(jnp.add, p, updates)
    return p, optim.learning_rate(section)(jnp.int32(2))

  moved = {k: v * 1.5 if "steps" not in k else v * 2 for k, v in numbers.items()}
  for values in (numbers, moved):
    got_params, got_lr = three_steps({k: jnp.float32(v) for k, v in values.items()})
    want_params, want_lr = constant_steps(optim.merge(structure, values))
    np.testing.assert_allclose(got_lr, want_lr, rtol=1e-6)
    for key in params:
      np.testing.assert_allclose(got_params[key], want_params[key], rtol=2e-5, atol=1e-7)
  assert len(traces) == 1, "changing a hyperparameter retraced the step"


def test_split_keeps_structure_and_merge_inverts_it():
  section = SECTIONS["lamb"]
  structure, numbers = optim.split(section)
  assert numbers["learning_rate"] == 0.01 and numbers["kwargs.phi.1"] == 10.0
  assert numbers["schedule.warmup_ratio"] == 0.2
  assert structure["schedule"]["name"] == "warmup_polynomial_decay"
  assert optim.merge(structure, numbers) == json.loads(json.dumps(section))
  other = dict(section, learning_rate=0.5, weight_decay=0.0)
  assert optim.split(other)[0] == structure  # numbers only: the same program
  switched = dict(section, kwargs=dict(section["kwargs"], bias_correction=False))
  assert optim.split(switched)[0] != structure  # a switch is structure
  with_axis = dict(section, kwargs=dict(section["kwargs"], layer_axis=0))
  assert optim.split(with_axis)[0]["kwargs"]["layer_axis"] == 0  # shapes the state: static


def test_persistent_cache_makes_a_second_invocation_compile_nothing(tmp_path):
  cache = tmp_path / "cache"
  args = tiny_args(num_steps=4) + [f"--compilation_cache_dir={cache}"]
  for results in ("first", "second"):
    proc = run_cli(args, results_dir=tmp_path / results, env=cli_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
  first = read_json(run_dir(tmp_path / "first") / "summary.json")
  second = read_json(run_dir(tmp_path / "second") / "summary.json")
  assert first["compilations"] >= 2 and any(cache.iterdir())
  assert second["compilations"] == 0, second["compilations"]
  assert train_losses(run_dir(tmp_path / "first")) == train_losses(run_dir(tmp_path / "second"))
