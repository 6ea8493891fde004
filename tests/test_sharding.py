"""The explicit gradient reduction and FSDP (lamb.train.mesh.Parallelism, lamb.train.step)
against the default step (GSPMD's reduction, replicated state) on 8 simulated CPU devices, and
the collectives of the compiled programs on CPU and on a TPU v3 target.

The device count is fixed when jax starts, so the 8-device checks run in a subprocess: this file
run as a script (`python tests/test_sharding.py bert|resnet|tpu OUT_DIR`) trains the cases and
writes their arrays and the collectives of their compiled train steps to OUT_DIR; the tests
compare them. The parsing of the compiled HLO lives here too (`collectives`).

Tolerances, and why they are not zero: the cases sum the same gradients in another order (8
devices x 4 micro-batches, reduced per micro-batch by GSPMD or once per step here), which
changes float32 rounding and nothing else:
  * losses and metrics, relative 1e-5 (test_distributed's RTOL for 8 devices against 1);
  * the first step's gradient (LAMB's first moment after one step, (1 - b1) g exactly, before
    any normalisation can magnify a difference), per array max|a - b| <= 1e-5 max|b|;
  * parameters after 3 LAMB steps, |a - b| <= 1e-3 lr + 1e-5 |b|: Adam's direction
    m / (sqrt(v) + eps) normalises each element's gradient, so a rounding difference in a small
    gradient becomes a visible (still tiny) one in that element's step, which is at most ~lr;
  * trust ratios, relative 1e-5.
BERT's attention key biases are the extreme case: their gradient is exactly zero in exact
arithmetic (softmax is shift-invariant), ~1e-13 in float32, so relative to itself it is noise
and so are their trust ratios ||x|| / ||u||; they are compared against the largest gradient of
the model and checked to stay at noise level instead (`NOISE_ONLY`).
Measured on this machine (`pytest tests/test_sharding.py -m slow`): gradients 3e-7 (explicit)
and 1.2e-6 (GSPMD with FSDP), parameters 2.4e-5 lr and 6.6e-5 lr, trust ratios 3e-7, losses
9e-8; a bfloat16 reduction is 8e-3 off in the gradient and a per-device masked-LM mean 0.36, both
caught.
"""
from __future__ import annotations

import collections
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

DEVICES = 8
MICROBATCHES = 4
BATCH = 64  # 2 rows per device per micro-batch
# ResNet: batch-norm groups of 4 rows, each a device's share of a micro-batch, over 16x16 images
# (2x2 positions in the last stage): groups of 2 rows at 1x1 normalise 2 numbers, so ill-
# conditioned that GSPMD's own step differs by 2e-3 in the gradient from FSDP's.
RESNET_BATCH, RESNET_GROUP, RESNET_IMAGE = 128, 4, 16
STEPS = 3
LEARNING_RATE = 1e-2
B1 = 0.9
LOSS_RTOL = 1e-5
GRAD_RTOL = 1e-5
PARAM_ATOL, PARAM_RTOL = 1e-3 * LEARNING_RATE, 1e-5
RATIO_RTOL = 1e-5
NOISE_ONLY = "attention/self/key/bias"  # zero gradient in exact arithmetic (see the docstring)

# --------------------------------------------------------------------------------------------
# The compiled program's collectives (HLO text, CPU or TPU).

COLLECTIVES = ("all-reduce", "reduce-scatter", "all-gather", "all-to-all", "collective-permute")
_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%?[\w.\-]+\s*=\s*(.*?)\s+([a-z][a-z\-]*)\(")
_ARRAY = re.compile(r"\b(pred|[a-z]+\d+)\[([\d,]*)\]")
_COMPUTATION = re.compile(r"^(?:ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$")


def computations(text: str) -> dict:
  """{computation name: its instruction lines} of an HLO module's text."""
  found, name, lines = {}, None, []
  for line in text.splitlines():
    if name is None:
      match = _COMPUTATION.match(line)
      if match:
        name, lines = match.group(1), []
    elif line.strip() == "}":
      found[name], name = lines, None
    else:
      lines.append(line)
  return found


def loop_computations(found: dict) -> set:
  """The bodies of every while loop and every computation they call, transitively."""
  todo = [b for lines in found.values() for line in lines
          for b in re.findall(r"\bbody=%?([\w.\-]+)", line)]
  seen = set()
  while todo:
    name = todo.pop()
    if name in seen or name not in found:
      continue
    seen.add(name)
    todo.extend(ref for line in found[name] for ref in re.findall(r"%([\w.\-]+)", line)
                if ref in found)
  return seen


def collectives(text: str) -> list:
  """[{"op", "in_loop", "operands": [[dtype, shape], ...]}] for every collective of the
  program (an async start counts, its done does not); operands are the result's arrays (for a
  reduce-scatter its shards, for an all-gather the gathered arrays)."""
  found = computations(text)
  loops = loop_computations(found)
  out = []
  for name, lines in found.items():
    for line in lines:
      match = _INSTRUCTION.match(line)
      if not match or match.group(2).endswith("-done"):
        continue
      op = match.group(2).replace("-start", "")
      if op in COLLECTIVES:
        arrays = [[dtype, [int(d) for d in dims.split(",") if d]]
                  for dtype, dims in _ARRAY.findall(match.group(1))]
        if match.group(2).endswith("-start") and op == "all-gather":
          arrays = arrays[len(arrays) // 2:]  # (operands, results): the results
        out.append({"op": op, "in_loop": name in loops, "operands": arrays})
  return out


def operand_shapes(found: list, op: str, dtype=None, in_loop=False, scalars=False) -> list:
  """Sorted shapes of `op`'s operands (non-scalar unless `scalars`), optionally of one dtype."""
  return sorted(tuple(shape) for c in found if c["op"] == op and c["in_loop"] == in_loop
                for d, shape in c["operands"]
                if (scalars or shape) and (dtype is None or d == dtype))


def counts(found: list) -> dict:
  """{"loop|after op dtype": (instructions, elements)}, what the report quotes."""
  table = collections.defaultdict(lambda: [0, 0])
  for c in found:
    for dtype in sorted({d for d, _ in c["operands"]}):
      key = f"{'loop' if c['in_loop'] else 'after'} {c['op']} {dtype}"
      table[key][0] += 1
      table[key][1] += sum(int(np.prod(s)) for d, s in c["operands"] if d == dtype)
  return {k: tuple(v) for k, v in sorted(table.items())}


# --------------------------------------------------------------------------------------------
# The subprocess: the cases, trained and compiled on 8 simulated devices.


def _bert_model(dtype="float32"):
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from lamb.models import bert  # pylint: disable=import-outside-toplevel
  # Dropout off: each device draws its own dropout under "explicit", not GSPMD's one draw for
  # the whole batch (a test below checks the draws differ by device). 101 tokens: the tied
  # embedding's vocabulary dimension is not divisible by 8, so FSDP splits it on the other.
  config = bert.BertConfig.preset("tiny", vocab_size=101, max_position_embeddings=16,
                                  hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
  return bert.BertPretraining(config, dtype=jnp.dtype(dtype))


def _bert_task(model, exact: bool):
  """A Task whose loss is bert.pretraining_loss; `exact` adds an `axis_name` argument under
  which the masked-LM and next-sentence denominators are summed over the devices, so that the
  mean of the devices' losses is the loss of the whole batch (step.py's module docstring)."""
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from lamb.models import bert  # pylint: disable=import-outside-toplevel
  from lamb.train.task import Task  # pylint: disable=import-outside-toplevel

  def init(rng):
    ids = jnp.zeros((1, 16), jnp.int32)
    variables = model.init({"params": rng}, ids, ids, ids, jnp.zeros((1, 4), jnp.int32),
                           deterministic=True)
    return variables["params"], {}

  def outputs(params, batch, rng, train):
    return model.apply({"params": params}, *(batch[k] for k in bert.PRETRAINING_INPUTS),
                       deterministic=not train, rngs={"dropout": rng})

  def plain_loss(params, model_state, batch, rng, train):
    m = bert.pretraining_loss(outputs(params, batch, rng, train), batch)
    return m["loss"], ({"masked_lm_accuracy": m["mlm_accuracy"]}, model_state)

  def exact_loss(params, model_state, batch, rng, train, axis_name=None):
    # the library's own loss (bert_tasks passes axis_name through to it)
    m = bert.pretraining_loss(outputs(params, batch, rng, train), batch, axis_name)
    return m["loss"], ({"masked_lm_accuracy": m["mlm_accuracy"]}, model_state)

  return Task({}, {}, init, exact_loss if exact else plain_loss, lambda p, m, b: ({}, {}),
              None, "bert tiny", "")


def _bert_batch(seed: int) -> dict:
  """Masked-LM weights 0 or 1 at random, so the devices hold different numbers of masked
  tokens: a mean of the devices' means would not be the global mean."""
  rng = np.random.default_rng(seed)
  weights = (rng.random((BATCH, 4)) < 0.6).astype(np.float32)
  weights[:, 0] = 1.0
  return {"input_ids": rng.integers(0, 101, (BATCH, 16)).astype(np.int32),
          "input_mask": np.ones((BATCH, 16), np.int32),
          "segment_ids": np.zeros((BATCH, 16), np.int32),
          "masked_lm_positions": rng.integers(0, 16, (BATCH, 4)).astype(np.int32),
          "masked_lm_ids": rng.integers(0, 101, (BATCH, 4)).astype(np.int32),
          "masked_lm_weights": weights,
          "next_sentence_labels": rng.integers(0, 2, (BATCH,)).astype(np.int32)}


def _leaves(tree, prefix: str) -> dict:
  import jax  # pylint: disable=import-outside-toplevel
  from lamb.optim import masks  # pylint: disable=import-outside-toplevel
  flat = jax.tree_util.tree_flatten_with_path(jax.device_get(tree))[0]
  return {f"{prefix}/{masks.path_to_str(p)}": np.asarray(v) for p, v in flat}


def _first_moment(opt_state):
  import jax  # pylint: disable=import-outside-toplevel
  from lamb.optim.moments import AdamMomentsState  # pylint: disable=import-outside-toplevel
  is_state = lambda s: isinstance(s, AdamMomentsState)
  (state,) = [s for s in jax.tree.leaves(opt_state, is_leaf=is_state) if is_state(s)]
  return state.mu


def _train_cases(cases: dict, batches: list, structure, numbers, out: Path, loss_key="loss"):
  """Trains every case STEPS steps from the same init; writes the arrays to out/arrays.npz and
  returns {case: {"losses", "collectives", "specs"}}."""
  import jax  # pylint: disable=import-outside-toplevel
  from lamb import optim  # pylint: disable=import-outside-toplevel
  from lamb.train import mesh as mesh_lib  # pylint: disable=import-outside-toplevel
  from lamb.train import programs  # pylint: disable=import-outside-toplevel
  mesh = mesh_lib.make_mesh()
  hyperparameters = programs.hyperparameters(numbers, mesh)
  arrays, report = {}, {}
  for name, (task, layout) in cases.items():
    shared = programs.get(task, structure, mesh, MICROBATCHES, parallelism=layout)
    state = shared.init(np.int32(0), hyperparameters)
    first = mesh_lib.global_batch(batches[0], mesh)
    compiled = shared.train_step.lower(state, first, hyperparameters).compile()
    report[name] = {"collectives": collectives(compiled.as_text()), "losses": [], "metrics": [],
                    "specs": {k: str(a.sharding.spec) for k, a in
                              zip(_leaves(state.params, "p"), jax.tree.leaves(state.params))}}
    for step, local in enumerate(batches):
      state, metrics = compiled(state, mesh_lib.global_batch(local, mesh), hyperparameters)
      metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
      report[name]["losses"].append(metrics.pop(loss_key))
      report[name]["metrics"].append(metrics)
      if step == 0:
        arrays.update(_leaves(_first_moment(state.opt_state), f"{name}/mu1"))
    arrays.update(_leaves(state.params, f"{name}/params"))
    arrays.update(_leaves(state.model_state, f"{name}/model_state"))
    arrays.update(_leaves(optim.trust_ratios(state.opt_state), f"{name}/ratios"))
  np.savez(out / "arrays.npz", **arrays)
  report["param_shapes"] = [list(np.shape(x)) for x in jax.tree.leaves(state.params)]
  report["model_state_shapes"] = [list(np.shape(x)) for x in jax.tree.leaves(state.model_state)]
  return report


def _lamb():
  from lamb import optim  # pylint: disable=import-outside-toplevel
  return optim.split({"name": "lamb", "learning_rate": LEARNING_RATE, "weight_decay": 0.01,
                      "b1": B1})


def _mlp_checks(out: Path) -> dict:
  """A two-layer perceptron (a loss that is a mean over rows, no batch norm): the fast case."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import optax  # pylint: disable=import-outside-toplevel
  from lamb.train import mesh as mesh_lib  # pylint: disable=import-outside-toplevel
  from lamb.train.task import Task  # pylint: disable=import-outside-toplevel

  def init(rng):
    one, two = jax.random.split(rng)
    return {"hidden": {"kernel": jax.random.normal(one, (12, 32)) / 4, "bias": jnp.zeros([32])},
            "out": {"kernel": jax.random.normal(two, (32, 10)) / 6,
                    "bias": jnp.zeros([10])}}, {}

  def loss_fn(params, model_state, batch, rng, train):
    del rng, train
    h = jnp.tanh(batch["x"] @ params["hidden"]["kernel"] + params["hidden"]["bias"])
    logits = h @ params["out"]["kernel"] + params["out"]["bias"]
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]).mean()
    return loss, ({"accuracy": jnp.mean(jnp.argmax(logits, -1) == batch["y"])}, model_state)

  rng = np.random.default_rng(0)
  batches = [{"x": rng.normal(size=(BATCH, 12)).astype(np.float32),
              "y": rng.integers(0, 10, BATCH).astype(np.int32)} for _ in range(STEPS)]
  task = Task({}, {}, init, loss_fn, lambda p, m, b: ({}, {}), None, "mlp", "")
  P = mesh_lib.Parallelism
  structure, numbers = _lamb()
  report = _train_cases({"auto": (task, P()), "explicit": (task, P("explicit")),
                         "auto_fsdp": (task, P(sharding="fsdp")),
                         "explicit_fsdp": (task, P("explicit", sharding="fsdp"))},
                        batches, structure, numbers, out)
  assert sorted(report["param_shapes"]) == [[10], [12, 32], [32], [32, 10]]
  return report


def _bert_checks(out: Path) -> dict:
  import jax  # pylint: disable=import-outside-toplevel
  from lamb.train import mesh as mesh_lib  # pylint: disable=import-outside-toplevel
  from lamb.train import programs  # pylint: disable=import-outside-toplevel
  assert jax.device_count() == DEVICES, jax.devices()
  P = mesh_lib.Parallelism
  model = _bert_model()
  exact, plain = _bert_task(model, exact=True), _bert_task(model, exact=False)
  cases = {"auto": (exact, P()), "explicit": (exact, P("explicit")),
           "auto_fsdp": (exact, P(sharding="fsdp")),
           "explicit_fsdp": (exact, P("explicit", sharding="fsdp")),
           "explicit_bf16": (exact, P("explicit", "bfloat16")),
           "explicit_plain_loss": (plain, P("explicit"))}
  structure, numbers = _lamb()
  report = _train_cases(cases, [_bert_batch(s) for s in range(STEPS)], structure, numbers, out)
  # What XLA is asked for, before the CPU compiler widens a bfloat16 all-reduce to float32.
  mesh = mesh_lib.make_mesh()
  hyperparameters = programs.hyperparameters(numbers, mesh)
  shared = programs.get(exact, structure, mesh, MICROBATCHES, parallelism=P("explicit", "bfloat16"))
  state = shared.init(np.int32(0), hyperparameters)
  lowered = shared.train_step.lower(state, mesh_lib.global_batch(_bert_batch(0), mesh),
                                    hyperparameters)
  report["explicit_bf16"]["requested"] = collectives(lowered.as_text(dialect="hlo"))
  return report


def _dropout_checks(out: Path) -> dict:
  """A loss whose gradient is a standard normal draw from the step's key: the mean of 8
  devices' gradients has norm ~sqrt(n / 8) when each device draws its own, sqrt(n) when they
  share one draw."""
  del out
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import optax  # pylint: disable=import-outside-toplevel
  from lamb.train import mesh as mesh_lib  # pylint: disable=import-outside-toplevel
  from lamb.train import step as step_lib  # pylint: disable=import-outside-toplevel
  from lamb.train.state import TrainState  # pylint: disable=import-outside-toplevel
  size = 4096

  def loss_fn(params, model_state, batch, rng, train):
    del train
    noise = jax.random.normal(rng, (size,))
    return jnp.sum(params["w"] * noise) + 0 * jnp.sum(batch["x"]), ({}, model_state)

  mesh, tx = mesh_lib.make_mesh(), optax.sgd(1.0)
  norms = {}
  for reduction in ("auto", "explicit"):
    params = {"w": jnp.zeros([size])}
    state = jax.device_put(TrainState(step=jnp.zeros([], jnp.int32), params=params,
                                      opt_state=tx.init(params), model_state={},
                                      rng=jax.random.PRNGKey(0)),
                           mesh_lib.replicated(mesh))
    step = step_lib.make_train_step(loss_fn, tx, mesh, MICROBATCHES,
                                    gradient_reduction=reduction)
    batch = mesh_lib.global_batch({"x": np.zeros((BATCH, 1), np.float32)}, mesh)
    state, _ = step(state, batch, {})
    norms[reduction] = float(jnp.linalg.norm(state.params["w"]))  # |lr * mean gradient|
  return {"norms": norms, "size": size}


def _norm_checks(out: Path) -> dict:
  """LAMB's layer norm of an FSDP-split array under jit, against numpy's of the whole array
  and of the first device's shard."""
  del out
  import jax  # pylint: disable=import-outside-toplevel
  from lamb.optim import trust_ratio  # pylint: disable=import-outside-toplevel
  from lamb.train import mesh as mesh_lib  # pylint: disable=import-outside-toplevel
  mesh = mesh_lib.make_mesh()
  x = np.random.default_rng(0).normal(size=(64, 24)).astype(np.float32)
  sharding = mesh_lib.array_shardings(jax.ShapeDtypeStruct(x.shape, x.dtype), mesh, "fsdp")
  split = jax.device_put(x, sharding)
  got = {norm: float(jax.jit(lambda a, n=norm: trust_ratio.layer_norm(a, n))(split))
         for norm in trust_ratio.NORMS}
  shard = np.asarray(split.addressable_shards[0].data)
  whole = {"l2": np.linalg.norm(x), "l1": np.abs(x).sum(), "linf": np.abs(x).max()}
  first = {"l2": np.linalg.norm(shard), "l1": np.abs(shard).sum(), "linf": np.abs(shard).max()}
  return {"spec": str(split.sharding.spec), "shard_shape": list(shard.shape), "jit": got,
          "whole": {k: float(v) for k, v in whole.items()},
          "first_shard": {k: float(v) for k, v in first.items()}}


def _resnet_task():
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import optax  # pylint: disable=import-outside-toplevel
  from lamb.models.resnet import ResNet  # pylint: disable=import-outside-toplevel
  from lamb.train.task import Task  # pylint: disable=import-outside-toplevel
  # Batch-norm groups within one device's share of a micro-batch, as the explicit reduction
  # requires (mesh.parallelism refuses other group sizes).
  model = ResNet(depth=18, width=0.125, stem="cifar", num_classes=10,
                 bn_group_size=RESNET_GROUP)

  def init(rng):
    variables = model.init(rng, jnp.zeros((1, RESNET_IMAGE, RESNET_IMAGE, 3)), train=False)
    params = variables.pop("params")
    return params, dict(variables)

  def loss_fn(params, model_state, batch, rng, train):
    del rng
    logits, updates = model.apply({"params": params, **model_state}, batch["image"],
                                  train=train, mutable=list(model_state))
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()
    accuracy = jnp.mean(jnp.argmax(logits, -1) == batch["label"])
    return loss, ({"accuracy": accuracy}, {**model_state, **updates})

  return Task({}, {}, init, loss_fn, lambda p, m, b: ({}, {}), None, "resnet", "")


def _resnet_checks(out: Path) -> dict:
  from lamb.train import mesh as mesh_lib  # pylint: disable=import-outside-toplevel
  P = mesh_lib.Parallelism
  task = _resnet_task()
  rng = np.random.default_rng(0)
  shape = (RESNET_BATCH, RESNET_IMAGE, RESNET_IMAGE, 3)
  batches = [{"image": rng.normal(size=shape).astype(np.float32),
              "label": rng.integers(0, 10, RESNET_BATCH).astype(np.int32)}
             for _ in range(STEPS)]
  structure, numbers = _lamb()
  return _train_cases({"auto": (task, P()), "explicit_fsdp": (task, P("explicit",
                                                                      sharding="fsdp"))},
                      batches, structure, numbers, out)


def _tpu_checks(out: Path) -> dict:
  """The BERT step (bfloat16 compute, as at the paper's scale) compiled for a TPU v3 2x2 slice
  (8 cores) by the compile-only client, with abstract inputs."""
  del out
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from jax.experimental import topologies  # pylint: disable=import-outside-toplevel
  from jax.sharding import Mesh, NamedSharding  # pylint: disable=import-outside-toplevel
  from jax.sharding import PartitionSpec  # pylint: disable=import-outside-toplevel
  from lamb.train import mesh as mesh_lib  # pylint: disable=import-outside-toplevel
  from lamb.train import programs  # pylint: disable=import-outside-toplevel
  from lamb.train import state as state_lib  # pylint: disable=import-outside-toplevel
  topology = topologies.get_topology_desc(platform="tpu", topology_name="v3:2x2")
  mesh = Mesh(np.asarray(topology.devices), (mesh_lib.DATA,))
  replicated = NamedSharding(mesh, PartitionSpec())
  rows = NamedSharding(mesh, PartitionSpec(mesh_lib.DATA))
  task = _bert_task(_bert_model("bfloat16"), exact=False)
  structure, numbers = _lamb()
  hyperparameters = {k: jax.ShapeDtypeStruct((), jnp.float32, sharding=replicated)
                     for k in numbers}
  batch = {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=rows)
           for k, v in _bert_batch(0).items()}
  P = mesh_lib.Parallelism
  report = {"device_kind": topology.devices[0].device_kind, "devices": len(topology.devices)}
  for name, layout in {"auto": P(), "explicit": P("explicit"),
                       "explicit_bf16": P("explicit", "bfloat16"),
                       "explicit_fsdp": P("explicit", sharding="fsdp")}.items():
    shared = programs.get(task, structure, mesh, MICROBATCHES, parallelism=layout)
    shapes = jax.eval_shape(shared.init, jax.ShapeDtypeStruct((), jnp.int32), hyperparameters)
    state = state_lib.abstract(shapes, mesh, layout.sharding)
    text = shared.train_step.lower(state, batch, hyperparameters).compile().as_text()
    report[name] = {"collectives": collectives(text)}
    report["param_shapes"] = [list(x.shape) for x in jax.tree.leaves(shapes.params)]
  return report


CHECKS = {"mlp": _mlp_checks, "bert": _bert_checks, "dropout": _dropout_checks,
          "norms": _norm_checks, "resnet": _resnet_checks, "tpu": _tpu_checks}


def _main(names: str, out: str) -> None:
  out_dir = Path(out)
  report = {name: CHECKS[name](out_dir) for name in names.split(",")}
  (out_dir / "report.json").write_text(json.dumps(report))


# --------------------------------------------------------------------------------------------
# The tests.


def _run(names: str, out: Path, **env) -> dict:
  from conftest import cli_env  # pylint: disable=import-outside-toplevel
  out.mkdir(parents=True, exist_ok=True)
  proc = subprocess.run([sys.executable, __file__, names, str(out)],
                        env=cli_env(devices=DEVICES, **env), capture_output=True, text=True,
                        timeout=600, cwd=Path(__file__).resolve().parents[1])
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
  return json.loads((out / "report.json").read_text())


def _fsdp_split(params: list) -> tuple:
  """(split shapes, replicated shapes, shard shapes) of FSDP over DEVICES, each sorted."""
  from lamb.train import mesh as mesh_lib  # pylint: disable=import-outside-toplevel
  split, whole, shards = [], [], []
  for shape in map(tuple, params):
    dim = mesh_lib.sharded_dim(mesh_lib.fsdp_spec(shape, DEVICES))
    if dim is None:
      whole.append(shape)
    else:
      split.append(shape)
      shards.append(tuple(n // DEVICES if i == dim else n for i, n in enumerate(shape)))
  return sorted(split), sorted(whole), sorted(shards)


def assert_one_reduction_after_the_loop(found: list, params: list, dtype="f32", fsdp=False,
                                        loss_collectives=False, model_state=()):
  """The explicit step's collectives: none inside the accumulation loop (but a loss's own
  scalar all-reduces of its denominators, with `loss_collectives`); after it, each parameter's
  gradient in exactly one reduction in `dtype`: an all-reduce, or under FSDP a reduce-scatter
  to its shard (an all-reduce where FSDP leaves it whole), and each split parameter gathered
  once by an all-gather; and one float32 all-reduce of each `model_state` array (batch-norm
  statistics, averaged over the devices)."""
  in_loop = [c for c in found if c["in_loop"]]
  if loss_collectives:
    assert all(c["op"] == "all-reduce" and not shape for c in in_loop for _, shape in
               c["operands"]), in_loop
  else:
    assert not in_loop, in_loop
  params, model_state = sorted(map(tuple, params)), sorted(map(tuple, model_state))
  if not fsdp:
    split, whole, shards = [], params, []
  else:
    split, whole, shards = _fsdp_split(params)
    assert split, "FSDP splits something"
  assert operand_shapes(found, "all-gather") == split
  assert operand_shapes(found, "reduce-scatter", dtype) == \
      operand_shapes(found, "reduce-scatter") == shards
  assert operand_shapes(found, "all-reduce") == sorted(whole + model_state)
  # the model state in float32, whatever the gradients' dtype
  assert operand_shapes(found, "all-reduce", dtype) == sorted(
      whole + (model_state if dtype == "f32" else []))


def test_explicit_reduction_and_fsdp_equal_the_default_step_on_a_perceptron(tmp_path):
  """The fast check of (a)-(c): 3 LAMB steps of a two-layer perceptron, 4 micro-batches on 8
  devices, equal to the default step to rounding, each compiled as described."""
  report = _run("mlp", tmp_path)["mlp"]
  arrays = dict(np.load(tmp_path / "arrays.npz"))
  for name in ("explicit", "auto_fsdp", "explicit_fsdp"):
    _assert_losses_equal(report, name)
    _assert_gradients_equal(arrays, name)
    _assert_params_equal(arrays, name)
    _assert_ratios_equal(arrays, name)
  assert report["auto"]["losses"][0] - report["auto"]["losses"][-1] > 1e-2  # it trains
  params = report["param_shapes"]
  assert_one_reduction_after_the_loop(report["explicit"]["collectives"], params)
  assert_one_reduction_after_the_loop(report["explicit_fsdp"]["collectives"], params, fsdp=True)
  assert operand_shapes(report["auto"]["collectives"], "all-reduce", in_loop=True)


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
  out = tmp_path_factory.mktemp("sharding_bert")
  report = _run("bert,dropout,norms", out)
  return report, dict(np.load(out / "arrays.npz"))


def _case(arrays: dict, name: str, kind: str) -> dict:
  prefix = f"{name}/{kind}/"
  return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def _gradient_errors(arrays, name, reference="auto") -> dict:
  """{path: max|a - b| / max|b|} of the first step's gradients, the noise-only arrays against
  the largest gradient of the model."""
  got, want = _case(arrays, name, "mu1"), _case(arrays, reference, "mu1")
  assert got.keys() == want.keys() and got
  largest = max(float(np.max(np.abs(v))) for v in want.values())
  tiny = float(np.finfo(np.float32).tiny)  # an exactly zero gradient (zero-initialised BN scale)
  return {path: float(np.max(np.abs(got[path] - value)))
          / (largest if NOISE_ONLY in path else max(float(np.max(np.abs(value))), tiny))
          for path, value in want.items()}


def _assert_gradients_equal(arrays, name, reference="auto"):
  for path, error in _gradient_errors(arrays, name, reference).items():
    assert error <= GRAD_RTOL, (name, path, error)


def _assert_params_equal(arrays, name, reference="auto"):
  got, want = _case(arrays, name, "params"), _case(arrays, reference, "params")
  assert got.keys() == want.keys() and got
  for path, value in want.items():
    np.testing.assert_allclose(got[path], value, rtol=PARAM_RTOL, atol=PARAM_ATOL,
                               err_msg=f"{name}: {path}")


def _assert_ratios_equal(arrays, name, reference="auto"):
  got, want = _case(arrays, name, "ratios"), _case(arrays, reference, "ratios")
  compared = [p for p in want if NOISE_ONLY not in p]
  assert len(compared) >= len(want) - 2
  for path in compared:
    np.testing.assert_allclose(got[path], want[path], rtol=RATIO_RTOL, err_msg=f"{name}: {path}")
  for path in set(want) - set(compared):  # noise in both runs, as the docstring says
    for case in (name, reference):
      assert float(np.max(np.abs(_case(arrays, case, "params")[path]))) < 1e-6, (case, path)


def _assert_losses_equal(report, name, reference="auto"):
  np.testing.assert_allclose(report[name]["losses"], report[reference]["losses"], rtol=LOSS_RTOL)
  for got, want in zip(report[name]["metrics"], report[reference]["metrics"]):
    assert got.keys() == want.keys()
    for key, value in want.items():
      assert got[key] == pytest.approx(value, rel=LOSS_RTOL, abs=1e-6), (name, key)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["explicit", "auto_fsdp", "explicit_fsdp"])
def test_bert_steps_equal_the_default_step_to_rounding(bert, name):
  """(a), (b): a few LAMB steps of BERT tiny (tied embedding) on 8 devices with 4 micro-batches,
  under the explicit reduction and/or FSDP, against the default step."""
  report, arrays = bert
  _assert_losses_equal(report["bert"], name)
  _assert_gradients_equal(arrays, name)
  _assert_params_equal(arrays, name)
  _assert_ratios_equal(arrays, name)
  assert max(report["bert"]["auto"]["losses"]) - min(report["bert"]["auto"]["losses"]) > 1e-3


@pytest.mark.slow
def test_fsdp_splits_each_array_on_its_largest_divisible_dimension(bert):
  from jax.sharding import PartitionSpec as P  # pylint: disable=import-outside-toplevel
  specs = bert[0]["bert"]["explicit_fsdp"]["specs"]
  assert specs["p/bert/embeddings/word_embeddings/embedding"] == str(P(None, "data"))  # [101, 128]
  assert specs["p/bert/encoder/layer_0/intermediate/dense/kernel"] == str(P(None, "data"))
  assert specs["p/bert/encoder/layer_0/output/dense/kernel"] == str(P("data"))  # [512, 128]
  assert specs["p/cls/predictions/output_bias"] == str(P())  # 101 tokens
  assert specs["p/cls/seq_relationship/bias"] == str(P())  # 2 classes
  assert set(bert[0]["bert"]["explicit"]["specs"].values()) == {str(P())}


@pytest.mark.slow
def test_a_per_device_mean_is_not_the_global_mean_of_masked_tokens(bert):
  """The negative case of the exactness the `axis_name` loss buys: BERT's masked-LM loss as
  bert.pretraining_loss computes it, a mean over each device's masked tokens, averaged over
  devices whose counts differ, is another loss than the mean over all of them."""
  report, arrays = bert
  got = report["bert"]["explicit_plain_loss"]["losses"][0]
  want = report["bert"]["auto"]["losses"][0]
  assert abs(got - want) > 10 * LOSS_RTOL * abs(want), (got, want)  # 6.5e-4 measured
  assert max(_gradient_errors(arrays, "explicit_plain_loss").values()) > 1000 * GRAD_RTOL


@pytest.mark.slow
def test_bfloat16_reduction_is_close_but_not_equal(bert):
  report, arrays = bert
  losses = report["bert"]["explicit_bf16"]["losses"]
  np.testing.assert_allclose(losses, report["bert"]["auto"]["losses"], rtol=1e-3)
  # bfloat16's 8 bits of mantissa (2^-9 = 2e-3 relative per rounding), not float32's 24
  assert 100 * GRAD_RTOL < max(_gradient_errors(arrays, "explicit_bf16").values()) < 2e-2


@pytest.mark.slow
def test_compiled_explicit_step_reduces_once_after_the_loop_on_cpu(bert):
  """(c): with 4 micro-batches the explicit step holds no collective inside the accumulation
  loop and, after it, one all-reduce operand per parameter (in float32), or under FSDP one
  reduce-scatter per split parameter, one all-reduce per replicated one, one all-gather per
  split one. GSPMD's step (the negative case) all-reduces gradients inside the loop."""
  report = bert[0]["bert"]
  params = report["param_shapes"]
  assert_one_reduction_after_the_loop(report["explicit_plain_loss"]["collectives"], params)
  # the exact loss sums its masked-token and sentence counts over the devices, a scalar
  # all-reduce per micro-batch; the gradients are still reduced once, after the loop
  assert_one_reduction_after_the_loop(report["explicit"]["collectives"], params,
                                      loss_collectives=True)
  assert_one_reduction_after_the_loop(report["explicit_fsdp"]["collectives"], params,
                                      fsdp=True, loss_collectives=True)
  assert operand_shapes(report["auto"]["collectives"], "all-reduce", in_loop=True)


@pytest.mark.slow
def test_bfloat16_reduction_is_asked_for_in_bfloat16(bert):
  """The program asks XLA for bfloat16 all-reduces of the gradients; the CPU compiler widens
  them to float32 (it reduces in float32), the TPU one does not (test below)."""
  report = bert[0]["bert"]
  params = report["param_shapes"]
  assert_one_reduction_after_the_loop(report["explicit_bf16"]["requested"], params, "bf16",
                                      loss_collectives=True)
  assert_one_reduction_after_the_loop(report["explicit_bf16"]["collectives"], params, "f32",
                                      loss_collectives=True)


@pytest.mark.slow
def test_each_device_draws_its_own_randomness(bert):
  """Dropout keys under "explicit" fold in the device index: 8 independent normal draws
  averaged have norm sqrt(n / 8), one draw shared by all devices sqrt(n) (GSPMD's one draw for
  the whole batch has norm sqrt(n) too: each micro-batch's gradient is a single draw)."""
  result = bert[0]["dropout"]
  size = result["size"]
  # mean over 4 micro-batches of one draw each: sqrt(size / 4); over 32 (device, micro-batch)
  # draws: sqrt(size / 32)
  assert result["norms"]["auto"] == pytest.approx(np.sqrt(size / MICROBATCHES), rel=0.1)
  assert result["norms"]["explicit"] == pytest.approx(
      np.sqrt(size / (MICROBATCHES * DEVICES)), rel=0.1)


@pytest.mark.slow
def test_norms_of_split_arrays_are_norms_of_the_whole_array(bert):
  from jax.sharding import PartitionSpec as P  # pylint: disable=import-outside-toplevel
  result = bert[0]["norms"]
  assert result["spec"] == str(P("data")) and result["shard_shape"] == [8, 24]
  for norm, value in result["whole"].items():
    assert result["jit"][norm] == pytest.approx(value, rel=1e-6)
    assert result["first_shard"][norm] != pytest.approx(value, rel=1e-2)  # a shard's is not


@pytest.mark.slow
def test_resnet_with_batch_norm_explicit_fsdp_equals_the_default_step(tmp_path):
  """Batch-norm statistics averaged over devices: the running averages after 3 steps equal
  GSPMD's (the update is affine in the groups' statistics); losses and parameters as BERT's."""
  report = _run("resnet", tmp_path)["resnet"]
  arrays = dict(np.load(tmp_path / "arrays.npz"))
  _assert_losses_equal(report, "explicit_fsdp")
  _assert_gradients_equal(arrays, "explicit_fsdp")
  _assert_params_equal(arrays, "explicit_fsdp")
  stats, want = _case(arrays, "explicit_fsdp", "model_state"), _case(arrays, "auto",
                                                                      "model_state")
  assert stats.keys() == want.keys() and len(want) >= 20
  for path, value in want.items():
    np.testing.assert_allclose(stats[path], value, rtol=1e-5, atol=1e-6, err_msg=path)
  assert_one_reduction_after_the_loop(report["explicit_fsdp"]["collectives"],
                                      report["param_shapes"], fsdp=True,
                                      model_state=report["model_state_shapes"])


_LIBTPU = importlib.util.find_spec("libtpu") is not None


@pytest.mark.slow
@pytest.mark.skipif(not _LIBTPU, reason="libtpu is not installed: no compile-only TPU client")
def test_compiled_explicit_step_reduces_once_after_the_loop_on_tpu_v3(tmp_path):
  """(d): the same step compiled for 8 TPU v3 cores (bfloat16 compute). GSPMD all-reduces the
  tied embedding's gradient inside the loop in bfloat16; the explicit step reduces every
  gradient once after it, in float32 or, when asked, bfloat16."""
  # libtpu takes a lock file that another process's compile-only client may hold
  report = _run("tpu", tmp_path, ALLOW_MULTIPLE_LIBTPU_LOAD="1")["tpu"]
  assert report["devices"] == DEVICES and "v3" in report["device_kind"].lower()
  params = report["param_shapes"]
  assert operand_shapes(report["auto"]["collectives"], "all-reduce", "bf16", in_loop=True)
  assert_one_reduction_after_the_loop(report["explicit"]["collectives"], params, "f32")
  assert_one_reduction_after_the_loop(report["explicit_bf16"]["collectives"], params, "bf16")
  # Under FSDP the TPU compiler rewrites this small model's reduce-scatters as all-reduces and
  # gathers the bfloat16 copies of the parameters (some as all-reduces): the shapes above do
  # not apply, the loop's emptiness does.
  assert not [c for c in report["explicit_fsdp"]["collectives"] if c["in_loop"]]


# --------------------------------------------------------------------------------------------
# The options themselves, in this process.


def test_parallelism_reads_a_config_and_refuses_what_it_cannot_do():
  import ml_collections  # pylint: disable=import-outside-toplevel
  from lamb.train import mesh as mesh_lib  # pylint: disable=import-outside-toplevel
  P = mesh_lib.Parallelism
  assert mesh_lib.parallelism({}) == P() == P("auto", None, "replicated")
  assert P().reduction_dtype is None and P("auto", "float32") == P()
  assert P("explicit").reduction_dtype == "float32"
  assert mesh_lib.parallelism({"gradient_reduction": "explicit",
                               "gradient_reduction_dtype": "bfloat16",
                               "sharding": "fsdp"}) == P("explicit", "bfloat16", "fsdp")
  with pytest.raises(ValueError, match="gradient_reduction='fast' is not one of"):
    P("fast")
  with pytest.raises(ValueError, match="sharding='zero3' is not one of"):
    P(sharding="zero3")
  with pytest.raises(ValueError, match="needs gradient_reduction='explicit'"):
    mesh_lib.parallelism({"gradient_reduction_dtype": "bfloat16"})
  with pytest.raises(ValueError, match="is not one of"):
    P("explicit", "float16")
  resnet = ml_collections.ConfigDict({"gradient_reduction": "explicit", "batch_size": 64,
                                      "microbatches": 4, "model": {"name": "resnet",
                                                                   "bn_group_size": 0}})
  with pytest.raises(ValueError, match="BatchNorm over each device's rows"):
    mesh_lib.parallelism(resnet)
  resnet.model.bn_group_size = 2
  assert mesh_lib.parallelism(resnet, device_count=8).explicit  # 2 rows a device
  with pytest.raises(ValueError, match="does not divide the 1 rows"):
    mesh_lib.parallelism(resnet, device_count=16)
  with pytest.raises(ValueError, match="does not divide the 1 rows"):
    mesh_lib.parallelism(resnet, device_count=8, microbatches=8)  # a memory plan's count
  with pytest.raises(ValueError, match="BatchNorm"):
    mesh_lib.parallelism({"gradient_reduction": "explicit", "model": {"name": "davidnet"}})
  assert mesh_lib.parallelism({"model": {"name": "davidnet"}}) == P()


def test_fsdp_spec_picks_the_largest_dimension_the_devices_divide():
  from jax.sharding import PartitionSpec  # pylint: disable=import-outside-toplevel
  from lamb.train import mesh as mesh_lib  # pylint: disable=import-outside-toplevel
  spec = mesh_lib.fsdp_spec
  assert spec((101, 128), 8) == PartitionSpec(None, "data")
  assert spec((1024, 4096), 8) == PartitionSpec(None, "data")
  assert spec((4096, 1024), 8) == PartitionSpec("data")
  assert spec((128, 128), 8) == PartitionSpec("data")  # the first of equal ones
  assert spec((3, 3, 64, 64), 8) == PartitionSpec(None, None, "data")
  assert spec((101,), 8) == spec((), 8) == spec((4,), 8) == PartitionSpec()
  assert spec((1024,), 1) == PartitionSpec()
  assert mesh_lib.sharded_dim(spec((3, 3, 64, 64), 8)) == 2
  assert mesh_lib.sharded_dim(PartitionSpec()) is None


def test_default_options_share_the_default_programs():
  """`parallelism=None` and the default Parallelism are one cache entry: the trainer's default
  runs compile what they compiled before the options existed."""
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from lamb.train import mesh as mesh_lib  # pylint: disable=import-outside-toplevel
  from lamb.train import programs  # pylint: disable=import-outside-toplevel
  from lamb.train.task import Task  # pylint: disable=import-outside-toplevel
  task = Task({}, {}, lambda rng: ({"w": jnp.zeros([2])}, {}),
              lambda p, m, b, r, t: (jnp.sum(p["w"]), ({}, m)), lambda p, m, b: ({}, {}),
              None, "", "")
  structure = {"name": "lamb", "learning_rate": "<hyperparameter>"}
  mesh = mesh_lib.make_mesh()
  default = programs.get(task, structure, mesh)
  assert programs.get(task, structure, mesh, parallelism=mesh_lib.Parallelism()) is default
  assert default.parallelism == mesh_lib.Parallelism()
  fsdp = programs.get(task, structure, mesh, parallelism=mesh_lib.Parallelism(sharding="fsdp"))
  assert fsdp is not default and fsdp.parallelism.fsdp


def test_default_options_keep_every_run_identity():
  """The three keys at their defaults stay out of a run's identity; another value is another
  run."""
  from experiments import sweep  # pylint: disable=import-outside-toplevel
  from experiments.configs import common  # pylint: disable=import-outside-toplevel
  config = common.base_config("table7", "cpu").to_dict()
  assert {"gradient_reduction", "gradient_reduction_dtype", "sharding"} <= set(config)
  view = sweep.identity_view(config)
  assert not {"gradient_reduction", "gradient_reduction_dtype", "sharding"} & set(view)
  bare = {k: v for k, v in config.items()
          if k not in ("gradient_reduction", "gradient_reduction_dtype", "sharding")}
  assert sweep.fingerprint(config) == sweep.fingerprint(bare)
  assert sweep.fingerprint(dict(config, sharding="fsdp")) != sweep.fingerprint(config)


if __name__ == "__main__":
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
  _main(*sys.argv[1:])
