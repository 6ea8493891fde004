"""BatchNorm over groups of examples (lamb.models.batch_norm), checked against flax's own
BatchNorm applied to each group, and its place in ResNet, the configs and the run plan."""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from experiments.configs import _imagenet, table5
from lamb.models.batch_norm import GroupBatchNorm, batch_norm
from lamb.models.resnet import ResNet
from lamb.train import plan

SHAPE = (8, 3, 3, 4)


def _x(shape=SHAPE, seed=0):
  return jnp.asarray(np.random.default_rng(seed).normal(2.0, 3.0, shape), jnp.float32)


def _variables(module, x):
  variables = module.init(jax.random.PRNGKey(0), x)
  rng = np.random.default_rng(1)
  variables = jax.tree.map(lambda a: jnp.asarray(rng.normal(1.0, 0.3, a.shape), a.dtype),
                           variables)
  return variables


def _train(module, variables, x):
  return module.apply(variables, x, mutable=["batch_stats"])


@pytest.mark.parametrize("group", [2, 4])
def test_each_group_is_normalised_as_flax_would_normalise_it_alone(group):
  x = _x()
  ours = GroupBatchNorm(group, momentum=0.9)
  flax_bn = nn.BatchNorm(use_running_average=False, momentum=0.9)
  variables = _variables(ours, x)
  assert jax.tree.map(jnp.shape, variables) == jax.tree.map(
      jnp.shape, flax_bn.init(jax.random.PRNGKey(0), x))  # the same checkpoint layout
  y, updates = _train(ours, variables, x)
  stats = []
  for k in range(0, SHAPE[0], group):
    y_k, u_k = _train(flax_bn, variables, x[k:k + group])
    np.testing.assert_allclose(y[k:k + group], y_k, rtol=1e-5, atol=1e-5)
    stats.append(u_k["batch_stats"])
  for name in ("mean", "var"):  # the running averages take the mean of the groups' updates
    expected = np.mean([s[name] for s in stats], axis=0)
    np.testing.assert_allclose(updates["batch_stats"][name], expected, rtol=1e-5, atol=1e-6)


def test_one_group_of_the_whole_batch_is_flax_batch_norm_and_evaluation_uses_the_averages():
  x = _x()
  variables = _variables(GroupBatchNorm(SHAPE[0]), x)
  y, updates = _train(GroupBatchNorm(SHAPE[0], momentum=0.9), variables, x)
  y_flax, updates_flax = _train(nn.BatchNorm(use_running_average=False, momentum=0.9),
                                variables, x)
  np.testing.assert_allclose(y, y_flax, rtol=1e-5, atol=1e-5)
  for name in ("mean", "var"):
    np.testing.assert_allclose(updates["batch_stats"][name], updates_flax["batch_stats"][name],
                               rtol=1e-5, atol=1e-6)
  y_eval = GroupBatchNorm(2, use_running_average=True).apply(variables, x)
  y_eval_flax = nn.BatchNorm(use_running_average=True).apply(variables, x)
  np.testing.assert_allclose(y_eval, y_eval_flax, rtol=1e-5, atol=1e-5)
  assert isinstance(batch_norm(0, use_running_average=True), nn.BatchNorm)


def test_a_batch_that_does_not_split_into_groups_is_refused():
  x = _x()
  with pytest.raises(ValueError, match="does not split into BatchNorm groups of 3"):
    GroupBatchNorm(3).init(jax.random.PRNGKey(0), x)


def test_every_batch_norm_of_resnet_normalises_over_groups_and_keeps_its_variables():
  """Traced only (jax.eval_shape): every BatchNorm ResNet-50 calls in training is a
  GroupBatchNorm of the configured size, its variables are the whole-batch model's, and a batch
  that splits a group is refused."""
  make = lambda group: ResNet(depth=50, width=1 / 16, num_classes=10, bn_group_size=group)
  x = jax.ShapeDtypeStruct((4, 32, 32, 3), jnp.float32)
  shapes = lambda group: jax.eval_shape(
      lambda x: make(group).init(jax.random.PRNGKey(0), x, train=False), x)
  assert jax.tree.map(jnp.shape, shapes(0)) == jax.tree.map(jnp.shape, shapes(2))
  seen = []

  def record(next_fun, args, kwargs, context):
    if context.method_name == "__call__" and isinstance(context.module,
                                                        (nn.BatchNorm, GroupBatchNorm)):
      seen.append((type(context.module).__name__, getattr(context.module, "group_size", 0)))
    return next_fun(*args, **kwargs)

  variables = shapes(2)
  with nn.intercept_methods(record):
    jax.eval_shape(lambda v, x: make(2).apply(v, x, train=True, mutable=["batch_stats"]),
                   variables, x)
  assert len(seen) == 53  # stem, 3 per bottleneck block x 16, 4 projection shortcuts
  assert set(seen) == {("GroupBatchNorm", 2)}
  with pytest.raises(ValueError, match="groups of 3"):
    jax.eval_shape(lambda v, x: make(3).apply(v, x, train=True, mutable=["batch_stats"]),
                   variables, x)


def test_the_paper_scale_normalises_over_groups_of_32_and_the_cpu_scale_over_the_batch():
  paper, cpu = table5.get_config("paper"), table5.get_config("cpu")
  assert paper.model.bn_group_size == _imagenet.PAPER_BN_GROUP == 32
  assert "bn_group_size" not in cpu.model
  assert "BatchNorm over the whole batch" in cpu.shrink_note


@pytest.mark.parametrize("batch,microbatches,group,ok", [
    (256, 2, 32, True), (256, 16, 32, False), (96, 1, 32, True), (100, 1, 32, False),
    (256, 1, 0, True)])
def test_the_plan_refuses_a_micro_batch_that_splits_a_group(batch, microbatches, group, ok):
  config = ml_collections.ConfigDict(dict(batch_size=batch, microbatches=microbatches,
                                          model=dict(name="resnet", bn_group_size=group)))
  if ok:
    plan._check_bn_groups(config, microbatches, 0)
  else:
    with pytest.raises(ValueError, match=f"bn_group_size={group} does not divide a micro-batch"):
      plan._check_bn_groups(config, microbatches, 0)
