"""Properties of `lamb.optim` that follow from the paper without a reference implementation.

* Appendix E: with lambda = 0 and eps -> 0, the adam-correction only rescales r_t, which the
  layer-wise normalisation removes: LAMB with and without bias correction take the same steps.
* Section 3: the trust ratio makes every adapted layer's step have norm eta_t * phi(||x_t||),
  in whichever norm (Appendix F) is used for both norms.
* Zero layers and zero gradients never produce NaN; the ratio is exactly 1 there.
* `trust_ratios` is all ones before the first update; `layer_axis` slices behave exactly like
  separate layers; `path_mask` / `exclude_bias_and_norm` select exactly the expected paths.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lamb import optim

T = 8
LR = 0.01




def _flat(tree, prefix=""):
  out = {}
  for k, v in tree.items():
    path = f"{prefix}/{k}" if prefix else str(k)
    out.update(_flat(v, path) if isinstance(v, dict) else {path: np.asarray(v)})
  return out


def _norm(x, kind, axis=None):
  """Written out independently of the library and of reference_optimizers."""
  x = np.asarray(x, np.float64)
  if axis is not None:
    return np.array([_norm(np.take(x, i, axis=axis), kind) for i in range(x.shape[axis])])
  if kind == "l2":
    return np.sqrt(np.sum(x ** 2))
  if kind == "l1":
    return np.sum(np.abs(x))
  return np.max(np.abs(x))


def _phi(z, phi):
  return z if phi is None else np.clip(z, phi[0], phi[1])


def _params(seed=0, zero_bias=False):
  rng = np.random.default_rng(seed)
  return {
      "dense": {"kernel": rng.normal(size=(4, 3)),
                "bias": np.zeros(3) if zero_bias else 0.1 * rng.normal(size=3)},
      "conv": {"kernel": 0.05 * rng.normal(size=(3, 3, 2, 4))},
      "LayerNorm": {"scale": np.ones(5)},
      "layers": {"kernel": rng.normal(size=(3, 4, 5)) * np.array([0.05, 1.0, 3.0])[:, None, None]},
  }


def _grads(params, seed=1, steps=T):
  rng = np.random.default_rng(seed)
  return [jax.tree.map(lambda p, s=10 ** rng.uniform(-1, 1): s * rng.normal(size=np.shape(p)), params)
          for _ in range(steps)]


def _dtype(precision):
  return jnp.float64 if precision == "float64" else jnp.float32


def _run(tx, params, grads, dtype):
  """[(x_t, update_t, ratios_t)] as flat dicts of numpy arrays."""
  cast = lambda tree: jax.tree.map(lambda a: jnp.asarray(a, dtype), tree)
  p = cast(params)
  state = tx.init(p)
  update = jax.jit(tx.update)
  out = []
  for g in grads:
    u, state = update(cast(g), state, p)
    out.append((_flat(p), _flat(u), _flat(optim.trust_ratios(state))))
    p = optax.apply_updates(p, u)
  return out


def _all_finite(records):
  return all(np.all(np.isfinite(np.asarray(v, np.float64)))
             for rec in records for d in rec for v in d.values())


STACKED_AXIS = lambda params: {"dense": {"kernel": None, "bias": None}, "conv": {"kernel": None},
                               "LayerNorm": {"scale": None}, "layers": {"kernel": 0}}


# ---------------------------------------------------------------- Appendix E: adam-correction
@pytest.mark.parametrize("eps_inside_sqrt", [False, True])
@pytest.mark.parametrize("extra", [{}, {"norm": "l1", "phi": (0.5, 3.0), "layer_axis": STACKED_AXIS}],
                         ids=["plain", "l1_phi_layer_axis"])
def test_bias_correction_is_absorbed_by_the_ratio(precision, eps_inside_sqrt, extra):
  params = _params()
  grads = _grads(params)
  dtype = _dtype(precision)
  kw = dict(weight_decay=0.0, eps=1e-30, eps_inside_sqrt=eps_inside_sqrt, **extra)
  with_bc = _run(optim.lamb(LR, bias_correction=True, **kw), params, grads, dtype)
  without = _run(optim.lamb(LR, bias_correction=False, **kw), params, grads, dtype)
  rtol = 1e-6 if precision == "float64" else 1e-5
  for t, ((xa, ua, _), (xb, ub, _)) in enumerate(zip(with_bc, without), start=1):
    for k in ua:
      np.testing.assert_allclose(np.asarray(ua[k], np.float64), np.asarray(ub[k], np.float64),
                                 rtol=rtol, atol=rtol * np.max(np.abs(ub[k])), err_msg=f"step {t} {k}")
  # ...and the check has teeth: with weight decay the correction is no longer a pure rescale.
  kw["weight_decay"] = 0.1
  a = _run(optim.lamb(LR, bias_correction=True, **kw), params, grads, dtype)
  b = _run(optim.lamb(LR, bias_correction=False, **kw), params, grads, dtype)
  diff = max(np.max(np.abs(np.asarray(a[0][1][k], np.float64) - b[0][1][k])) / np.max(np.abs(b[0][1][k]))
             for k in b[0][1])
  assert diff > 1e-3


# ----------------------------------------------------- Section 3: ||step|| = eta_t phi(||x_t||)
def _schedule(count):
  return 0.02 * (1.0 - jnp.minimum(jnp.asarray(count, float), 20.0) / 20.0)


def _lr_np(t):  # t is 1-based
  return 0.02 * (1.0 - min(t - 1, 20) / 20.0)


ALGS = {
    "lamb": lambda **kw: optim.lamb(_schedule, **kw),
    "lamb_no_bc_eps_inside": lambda **kw: optim.lamb(_schedule, bias_correction=False,
                                                     eps_inside_sqrt=True, **kw),
    "nlamb": lambda **kw: optim.nlamb(_schedule, b1_schedule=optim.dozat_momentum_schedule(0.975), **kw),
    "nnlamb": lambda **kw: optim.nnlamb(_schedule, **kw),
    "lars_paper": lambda **kw: optim.lars(_schedule, weight_decay=0.01, form="paper", **kw),
}


@pytest.mark.parametrize("phi", [None, (0.5, 3.0)], ids=["phi_id", "phi_clip"])
@pytest.mark.parametrize("norm", ["l2", "l1", "linf"])
@pytest.mark.parametrize("alg", sorted(ALGS))
def test_step_norm_is_lr_times_phi(alg, norm, phi, x64):
  params = _params()
  grads = _grads(params)
  records = _run(ALGS[alg](norm=norm, phi=phi), params, grads, jnp.float64)
  clipped = set()
  for t, (x, u, _) in enumerate(records, start=1):
    for k in x:
      xn = _norm(x[k], norm)
      want = _lr_np(t) * _phi(xn, phi)
      clipped.add(bool(phi is not None and _phi(xn, phi) != xn))
      np.testing.assert_allclose(_norm(u[k], norm), want, rtol=1e-6, err_msg=f"{alg} step {t} {k}")
  if phi is not None:
    assert clipped == {True, False}  # the bounds were active for some layers, not for others


@pytest.mark.parametrize("norm", ["l2", "l1", "linf"])
@pytest.mark.parametrize("alg", sorted(ALGS))
def test_step_norm_per_slice_with_layer_axis(alg, norm, x64):
  params = _params()
  grads = _grads(params, steps=4)
  phi = (0.5, 3.0)
  records = _run(ALGS[alg](norm=norm, phi=phi, layer_axis=STACKED_AXIS), params, grads, jnp.float64)
  for t, (x, u, r) in enumerate(records, start=1):
    k = "layers/kernel"
    assert r[k].shape == (3,)
    want = _lr_np(t) * _phi(_norm(x[k], norm, axis=0), phi)
    np.testing.assert_allclose(_norm(u[k], norm, axis=0), want, rtol=1e-6, err_msg=f"step {t}")


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_you2017_first_step_norm(norm, x64):
  """you2017 form: the first step (empty momentum buffer) has norm lr * tc * phi(||x||)."""
  params = _params()
  grads = _grads(params, steps=1)
  tx = optim.lars(0.5, momentum=0.9, weight_decay=0.01, trust_coefficient=0.02, norm=norm,
                  phi=(0.5, 3.0), form="you2017")
  (x, u, _), = _run(tx, params, grads, jnp.float64)
  for k in x:
    np.testing.assert_allclose(_norm(u[k], norm), 0.5 * 0.02 * _phi(_norm(x[k], norm), (0.5, 3.0)),
                               rtol=1e-6, err_msg=k)


# ------------------------------------------------------------------- zero layers, zero grads
NAN_ALGS = {
    "lamb": lambda **kw: optim.lamb(LR, max_grad_norm=1.0, **kw),
    "lamb_eps_inside_no_bc": lambda **kw: optim.lamb(LR, eps_inside_sqrt=True,
                                                     bias_correction=False, **kw),
    "nlamb": lambda **kw: optim.nlamb(LR, max_grad_norm=1.0, **kw),
    "nnlamb": lambda **kw: optim.nnlamb(LR, **kw),
    "lars_paper": lambda **kw: optim.lars(LR, form="paper", **kw),
    "lars_paper_nesterov": lambda **kw: optim.lars(LR, form="paper", nesterov=True, **kw),
    "lars_you2017": lambda **kw: optim.lars(LR, form="you2017", **kw),
}


@pytest.mark.parametrize("wd", [0.0, 0.01])
@pytest.mark.parametrize("alg", sorted(NAN_ALGS))
def test_zero_layers_and_zero_gradients_give_no_nan(alg, wd, precision):
  rng = np.random.default_rng(3)
  params = {"w": rng.normal(size=(4, 3)), "b": np.zeros(3),
            # the middle slice of the stacked leaf is all zero
            "stack": rng.normal(size=(3, 2, 2)) * np.array([1.0, 0.0, 2.0])[:, None, None],
            "frozen": rng.normal(size=(5,))}
  zeros = jax.tree.map(np.zeros_like, params)
  grads = [zeros]  # step 1: every gradient is zero
  for _ in range(4):
    g = jax.tree.map(lambda p: rng.normal(size=p.shape), params)
    g["frozen"] = np.zeros(5)  # never gets a gradient
    g["stack"][1] = 0.0        # the zero slice gets none either
    grads.append(g)
  axis = lambda p: {"w": None, "b": None, "stack": 0, "frozen": None}
  tx = NAN_ALGS[alg](weight_decay=wd, phi=(0.1, 10.0), layer_axis=axis)
  records = _run(tx, params, grads, _dtype(precision))
  assert _all_finite(records)
  x1, u1, r1 = records[0]
  # zero layer at step 1: ratio exactly 1 (not phi(0)/||u|| = gamma_l/||u||)
  assert float(r1["b"]) == 1.0
  if wd == 0.0:
    # zero gradient and no decay: zero direction, ratio exactly 1, no move at all
    for k in u1:
      assert np.all(u1[k] == 0), k
      assert np.all(r1[k] == 1.0), k
  for t, (x, u, r) in enumerate(records, start=1):
    assert r["stack"][1] == 1.0, t            # zero slice: ratio exactly 1 ...
    assert np.all(u["stack"][1] == 0), t      # ... and no move (zero x, zero g, zero momentum)
    assert np.all(x["stack"][1] == 0), t
    if wd == 0.0:
      assert float(r["frozen"]) == 1.0, t
      assert np.all(u["frozen"] == 0), t


# ------------------------------------------------------------------------ trust_ratios init
INIT_ALGS = {
    "lamb": lambda **kw: optim.lamb(LR, **kw),
    "nlamb": lambda **kw: optim.nlamb(LR, **kw),
    "nnlamb": lambda **kw: optim.nnlamb(LR, **kw),
    "lars_paper": lambda **kw: optim.lars(LR, form="paper", **kw),
    "lars_you2017": lambda **kw: optim.lars(LR, form="you2017", **kw),
}


@pytest.mark.parametrize("layer_axis", [None, 0, "callable", "pytree"])
@pytest.mark.parametrize("alg", sorted(INIT_ALGS))
def test_trust_ratios_are_ones_before_the_first_step(alg, layer_axis):
  params = jax.tree.map(jnp.asarray, _params(zero_bias=True))
  if layer_axis == "callable":
    layer_axis = STACKED_AXIS
  elif layer_axis == "pytree":
    layer_axis = STACKED_AXIS(params)
  state = INIT_ALGS[alg](layer_axis=layer_axis, adaptation_mask=optim.exclude_bias_and_norm).init(params)
  ratios = optim.trust_ratios(state)
  assert jax.tree.structure(ratios) == jax.tree.structure(params)
  for path, r in _flat(ratios).items():
    if layer_axis is None:
      shape = ()
    elif isinstance(layer_axis, int):
      shape = (_flat(params)[path].shape[0],)
    else:
      shape = (3,) if path == "layers/kernel" else ()
    assert np.shape(r) == shape, path
    assert np.all(np.asarray(r) == 1.0), path


# ----------------------------------------------------------------- state dtypes are stable
@pytest.mark.parametrize("alg", sorted(INIT_ALGS))
def test_update_keeps_state_shapes_and_dtypes(alg, precision):
  """update must return a state of the init state's exact types (lax.scan carries, donation)."""
  dtype = _dtype(precision)
  params = jax.tree.map(lambda a: jnp.asarray(a, dtype), _params())
  grads = jax.tree.map(lambda a: jnp.asarray(a, dtype), _grads(_params(), steps=1)[0])
  tx = INIT_ALGS[alg](layer_axis=STACKED_AXIS)
  state0 = tx.init(params)
  _, state1 = tx.update(grads, state0, params)
  spec = lambda s: jax.tree.map(lambda a: (jnp.shape(a), jnp.result_type(a)), s)
  assert spec(state1) == spec(state0)
  body = lambda s, _: (tx.update(grads, s, params)[1], None)
  jax.lax.scan(body, state0, None, length=3)  # raises on a carry type mismatch


# --------------------------------------------------- layer_axis slices == separate layers
@pytest.mark.parametrize("alg", sorted(INIT_ALGS))
def test_stacked_layers_equal_separate_layers(alg, precision):
  """An [L, ...] leaf with layer_axis=0 steps exactly like L separate leaves."""
  rng = np.random.default_rng(5)
  stack = rng.normal(size=(3, 4, 5)) * np.array([0.05, 1.0, 3.0])[:, None, None]
  stacked = {"stack": stack, "other": rng.normal(size=(6,))}
  separate = {"l0": stack[0], "l1": stack[1], "l2": stack[2], "other": stacked["other"]}
  g_stacked = [{"stack": rng.normal(size=(3, 4, 5)), "other": rng.normal(size=(6,))} for _ in range(5)]
  g_separate = [{"l0": g["stack"][0], "l1": g["stack"][1], "l2": g["stack"][2], "other": g["other"]}
                for g in g_stacked]
  kw = dict(norm="l1", phi=(0.5, 3.0), weight_decay=0.01)
  # max_grad_norm is global, so it is left out: it would couple the layers identically anyway
  a = _run(INIT_ALGS[alg](layer_axis=lambda p: {"stack": 0, "other": None}, **kw), stacked,
           g_stacked, _dtype(precision))
  b = _run(INIT_ALGS[alg](**kw), separate, g_separate, _dtype(precision))
  rtol = 1e-6 if precision == "float64" else 1e-5
  for t, ((xa, ua, ra), (xb, ub, rb)) in enumerate(zip(a, b), start=1):
    for i in range(3):
      np.testing.assert_allclose(ua["stack"][i], ub[f"l{i}"], rtol=rtol,
                                 atol=rtol * np.max(np.abs(ub[f"l{i}"])), err_msg=f"step {t} slice {i}")
      np.testing.assert_allclose(ra["stack"][i], rb[f"l{i}"], rtol=rtol, err_msg=f"step {t} ratio {i}")
    np.testing.assert_allclose(ua["other"], ub["other"], rtol=rtol, atol=rtol * np.max(np.abs(ub["other"])))
  # the slices really got different ratios (a single whole-leaf ratio would fail above)
  assert len({round(float(v), 6) for v in a[-1][2]["stack"]}) == 3


# ------------------------------------------------------------------------------ path masks
BERT_LIKE = {
    "embeddings": {"word_embeddings": {"embedding": np.zeros((7, 4))},
                   "LayerNorm": {"scale": np.zeros(4), "bias": np.zeros(4)}},
    "encoder": {"layer_0": {"attention": {"query": {"kernel": np.zeros((4, 4)), "bias": np.zeros(4)}},
                            "layer_norm": {"scale": np.zeros(4)}}},
    "resnet": {"conv_0": {"kernel": np.zeros((3, 3, 1, 2))},
               "BatchNorm_0": {"scale": np.zeros(2), "bias": np.zeros(2)},
               "bn": {"batch_norm": {"scale": np.zeros(2)}}},
    "head": {"dense": {"kernel": np.zeros((4, 2)), "bias": np.zeros(2)}},
}
BERT_EXPECTED_EXCLUDE = {  # True = gets weight decay / adaptation
    "embeddings/word_embeddings/embedding": True,
    "embeddings/LayerNorm/scale": False,
    "embeddings/LayerNorm/bias": False,
    "encoder/layer_0/attention/query/kernel": True,
    "encoder/layer_0/attention/query/bias": False,
    "encoder/layer_0/layer_norm/scale": False,
    "resnet/conv_0/kernel": True,
    "resnet/BatchNorm_0/scale": False,
    "resnet/BatchNorm_0/bias": False,
    "resnet/bn/batch_norm/scale": False,
    "head/dense/kernel": True,
    "head/dense/bias": False,
}


def _mask_dict(mask_tree):
  return {k: bool(v) for k, v in _flat(mask_tree).items()}


def test_exclude_bias_and_norm_selects_expected_paths():
  mask = optim.exclude_bias_and_norm(BERT_LIKE)
  assert jax.tree.structure(mask) == jax.tree.structure(BERT_LIKE)
  assert _mask_dict(mask) == BERT_EXPECTED_EXCLUDE


@pytest.mark.parametrize("include, exclude, selected", [
    ((), (), set(BERT_EXPECTED_EXCLUDE)),
    (("encoder",), ("bias",), {"encoder/layer_0/attention/query/kernel",
                               "encoder/layer_0/layer_norm/scale"}),
    ((r"kernel$",), (), {"encoder/layer_0/attention/query/kernel", "resnet/conv_0/kernel",
                         "head/dense/kernel"}),
    # re.search, not re.match: "query" matches in the middle of the path
    (("query",), (), {"encoder/layer_0/attention/query/kernel",
                      "encoder/layer_0/attention/query/bias"}),
    # several includes are OR-ed, several excludes are OR-ed
    ((r"^head/", r"^embeddings/"), ("LayerNorm", r"bias$"),
     {"head/dense/kernel", "embeddings/word_embeddings/embedding"}),
    ((), ("scale", "kernel", "bias", "embedding"), set()),
])
def test_path_mask_selects_expected_paths(include, exclude, selected):
  mask = optim.path_mask(include=include, exclude=exclude)(BERT_LIKE)
  assert jax.tree.structure(mask) == jax.tree.structure(BERT_LIKE)
  got = _mask_dict(mask)
  assert got == {k: k in selected for k in BERT_EXPECTED_EXCLUDE}


def test_path_mask_joins_sequence_indices():
  params = {"blocks": [{"kernel": np.zeros(2)}, {"bias": np.zeros(2)}]}
  mask = optim.path_mask(include=(r"^blocks/1/",))(params)
  assert [bool(m) for m in jax.tree.leaves(mask)] == [False, True]


@pytest.mark.parametrize("form", ["paper", "you2017"])
def test_lars_l2_term_is_the_gradient_of_half_l2_in_the_loss(form):
  """l2_regularization = lambda2 gives the updates LARS makes on gradients g + lambda2 x (outside
  the mask), as the L2 term of the TensorFlow ResNet-50 LARS references does."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import optax  # pylint: disable=import-outside-toplevel
  from lamb import optim  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  params = {"dense": {"kernel": jnp.asarray(rng.normal(size=(4, 3)), jnp.float32),
                      "bias": jnp.asarray(rng.normal(size=(3,)), jnp.float32)}}
  not_bias = jax.tree_util.tree_map_with_path(
      lambda path, _: path[-1].key != "bias", params)
  kw = dict(learning_rate=0.1, momentum=0.9, weight_decay=1e-3, form=form)
  with_l2 = optim.lars(**kw, l2_regularization=0.05, l2_mask=not_bias)
  plain = optim.lars(**kw)
  p1, p2 = params, params
  s1, s2 = with_l2.init(p1), plain.init(p2)
  for step in range(3):
    grads = jax.tree_util.tree_map(
        lambda x: jnp.asarray(rng.normal(size=x.shape), jnp.float32), params)
    u1, s1 = with_l2.update(grads, s1, p1)
    g2 = jax.tree_util.tree_map(lambda g, x, m: g + 0.05 * x * m, grads, p2, not_bias)
    u2, s2 = plain.update(g2, s2, p2)
    p1, p2 = optax.apply_updates(p1, u1), optax.apply_updates(p2, u2)
    for a, b in zip(jax.tree_util.tree_leaves(p1), jax.tree_util.tree_leaves(p2)):
      np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)


def test_lars_numbers_may_be_traced():
  """A sweep shares one compiled program across settings by tracing the optimizer's numbers, so
  no number may decide the chain's structure (an `if l2_regularization:` failed there)."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from lamb import optim  # pylint: disable=import-outside-toplevel
  params = {"w": jnp.ones((3, 2))}

  @jax.jit
  def step(l2, wd):
    opt = optim.lars(0.1, weight_decay=wd, l2_regularization=l2, form="you2017")
    return opt.update(params, opt.init(params), params)[0]

  assert jax.tree_util.tree_leaves(step(1e-4, 1e-4))[0].shape == (3, 2)
