"""How close the LAMB step comes to the memory floor of an Adam-family update.

Builds a BERT-base-shaped float32 parameter tree (~110M parameters, ~200 leaves) and times,
in one process and alternating, the jitted and donated step of
  - lamb.optim.lamb,
  - optax.lamb (the same math),
  - a memory-floor kernel that reads params, grads, m, v once and writes params, m, v once
    (the least traffic any Adam-family step can have).
Prints the medians and, last, the line `lamb/floor=X.XX optax/floor=Y.YY`.

The process first sets the host allocator as `experiments/run.py` does at cpu scale
(`lamb.train.host_malloc`: XLA:CPU's per-step temporaries are reused rather than page-faulted
in afresh); the same measurement under glibc's default malloc runs in a subprocess and is
printed before the last line (`--host_malloc=glibc` measures only that).

    python benchmarks/optimizer_step.py [--repeats 9] [--layers 12] [--host_malloc reuse|glibc]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional


import jax
import jax.numpy as jnp
import optax

from lamb import optim
from lamb.train import host_malloc


def bert_base_shapes(layers=12, hidden=768, intermediate=3072, vocab=30522, positions=512):
  """The parameter shapes of BERT-base with its pretraining heads."""
  shapes = {"embeddings": {"word": (vocab, hidden), "position": (positions, hidden),
                           "token_type": (2, hidden),
                           "LayerNorm": {"scale": (hidden,), "bias": (hidden,)}}}
  for i in range(layers):
    layer = {}
    for name in ("query", "key", "value", "attention_output"):
      layer[name] = {"kernel": (hidden, hidden), "bias": (hidden,)}
    layer["attention_LayerNorm"] = {"scale": (hidden,), "bias": (hidden,)}
    layer["intermediate"] = {"kernel": (hidden, intermediate), "bias": (intermediate,)}
    layer["output"] = {"kernel": (intermediate, hidden), "bias": (hidden,)}
    layer["output_LayerNorm"] = {"scale": (hidden,), "bias": (hidden,)}
    shapes[f"layer_{i:02d}"] = layer
  shapes["pooler"] = {"kernel": (hidden, hidden), "bias": (hidden,)}
  shapes["mlm"] = {"dense": {"kernel": (hidden, hidden), "bias": (hidden,)},
                   "LayerNorm": {"scale": (hidden,), "bias": (hidden,)}, "output_bias": (vocab,)}
  return shapes


def make_tree(shapes, key):
  leaves, treedef = jax.tree.flatten(shapes, is_leaf=lambda s: isinstance(s, tuple))
  keys = jax.random.split(key, len(leaves))
  return jax.tree.unflatten(treedef, [0.02 * jax.random.normal(k, s) for k, s in zip(keys, leaves)])


def optimizer_step(tx):
  def step(params, state, grads):
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state
  return jax.jit(step, donate_argnums=(0, 1))


def floor_step():
  """Reads x, g, m, v and writes x, m, v exactly once: 7 arrays of traffic."""
  def step(params, state, grads):
    m, v = state
    m = jax.tree.map(lambda m, g: 0.9 * m + 0.1 * g, m, grads)
    v = jax.tree.map(lambda v, g: 0.999 * v + 0.001 * g * g, v, grads)
    params = jax.tree.map(lambda x, m, v: x - 1e-3 * m / (jnp.sqrt(v) + 1e-6), params, m, v)
    return params, (m, v)
  return jax.jit(step, donate_argnums=(0, 1))


def measure(repeats: int = 9, layers: int = 12, verbose: bool = True) -> dict:
  """Median step times (s) of lamb, optax.lamb and the floor, and their ratios."""
  shapes = bert_base_shapes(layers=layers)
  grads = make_tree(shapes, jax.random.PRNGKey(1))
  n_params = sum(g.size for g in jax.tree.leaves(grads))
  if verbose:
    print(f"BERT-base-shaped tree: {n_params / 1e6:.1f}M float32 parameters, "
          f"{len(jax.tree.leaves(grads))} leaves; {jax.device_count()} "
          f"{jax.devices()[0].platform} device(s)")

  candidates = {
      "lamb": (optimizer_step(optim.lamb(1e-3)), lambda p: optim.lamb(1e-3).init(p)),
      "optax": (optimizer_step(optax.lamb(1e-3, weight_decay=0.01)),
                lambda p: optax.lamb(1e-3, weight_decay=0.01).init(p)),
      "floor": (floor_step(), lambda p: (jax.tree.map(jnp.zeros_like, p),
                                         jax.tree.map(jnp.zeros_like, p))),
  }
  carry = {}
  for name, (step, init) in candidates.items():
    params = make_tree(shapes, jax.random.PRNGKey(0))
    carry[name] = step(params, init(params), grads)  # compile and warm up
    jax.block_until_ready(carry[name])

  times = {name: [] for name in candidates}
  for _ in range(repeats):  # alternate so machine noise hits all three alike
    for name, (step, _) in candidates.items():
      start = time.perf_counter()
      carry[name] = step(*carry[name], grads)
      jax.block_until_ready(carry[name])
      times[name].append(time.perf_counter() - start)
  del carry

  med = {name: statistics.median(t) for name, t in times.items()}
  if verbose:
    for name, t in med.items():
      print(f"{name:>6}: median {t * 1e3:8.1f} ms over {repeats} steps")
  return {"params": n_params, "lamb_s": med["lamb"], "optax_s": med["optax"],
          "floor_s": med["floor"], "lamb/floor": med["lamb"] / med["floor"],
          "optax/floor": med["optax"] / med["floor"], "lamb/optax": med["lamb"] / med["optax"]}


def measure_with_glibc_malloc(repeats: int = 9, layers: int = 12) -> Optional[dict]:
  """`measure` in a fresh process that keeps glibc's default malloc: {"lamb/floor", "optax/floor"};
  None where this process's allocator was left unchanged (no glibc), as there is nothing to
  compare. Run it before measuring in this process, so the two never hold their trees at once."""
  if not host_malloc.reuse_freed_memory():
    return None
  proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--host_malloc=glibc",
                         f"--repeats={repeats}", f"--layers={layers}"], capture_output=True,
                        text=True)
  if proc.returncode != 0:
    raise RuntimeError("the glibc-malloc measurement failed:\n" + proc.stderr[-2000:])
  last = proc.stdout.strip().splitlines()[-1]
  return {k: float(v) for k, v in (item.split("=") for item in last.split())}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--repeats", type=int, default=9)
  parser.add_argument("--layers", type=int, default=12)
  parser.add_argument("--host_malloc", choices=("reuse", "glibc"), default="reuse",
                      help="reuse: the runner's cpu-scale allocator setting (default); glibc: "
                           "glibc's defaults, and no comparison run")
  args = parser.parse_args(argv)
  if args.host_malloc == "reuse":
    host_malloc.reuse_freed_memory()  # before the first computation starts JAX's CPU client
  glibc = (measure_with_glibc_malloc(args.repeats, args.layers) if args.host_malloc == "reuse"
           else None)
  result = measure(args.repeats, args.layers)
  print(f"lamb/optax={result['lamb/optax']:.2f}")
  if args.host_malloc == "reuse":
    print("with glibc's default malloc: " + (
        f"lamb/floor={glibc['lamb/floor']:.2f} optax/floor={glibc['optax/floor']:.2f}" if glibc
        else "not measured (no glibc: the allocator was left unchanged)"))
  print(f"lamb/floor={result['lamb/floor']:.2f} optax/floor={result['optax/floor']:.2f}")


if __name__ == "__main__":
  main()
