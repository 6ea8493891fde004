"""`lamb.optim` against the independent NumPy reference of the paper's pseudocode, and optax.

Each algorithm is run for T steps on a small pytree (several shapes, a zero-initialised leaf,
a stacked [L, ...] leaf) with a fixed sequence of random gradients. The library runs in
float64 (jax_enable_x64, switched on by a fixture and restored afterwards) and must match the
float64 reference to 1e-6 relative on every update, every parameter and every trust ratio.
Every case also runs in float32 (the default) against the same reference with a
float32-sized, leaf-normwise tolerance (RTOL32 below); the float64 runs are the strict ones.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lamb import optim

try:
  import reference_optimizers as ref
except ImportError:  # tests/ imported as a package
  from tests import reference_optimizers as ref

T = 10
RTOL = 1e-6
ATOL = 1e-12


# The `x64` and `precision` fixtures (jax_enable_x64 on / both ways) are in conftest.py.

# float32 runs are compared leaf by leaf in norm: ||got - want|| <= RTOL32 * ||want||. Unit
# roundoff is 6e-8, but 1 - b2^t = 1e-3 computed in float32 is only good to ~1e-5 relative
# (optax.lamb does the same), so 1e-4 is the float32 tolerance. Not a substitute for the
# float64 runs, which are held to RTOL elementwise.
RTOL32 = 1e-4



def make_params(seed=0):
  rng = np.random.default_rng(seed)
  return {
      "dense": {"kernel": rng.normal(size=(4, 3)), "bias": np.zeros(3)},      # zero leaf
      "conv": {"kernel": 0.05 * rng.normal(size=(3, 3, 2, 4))},
      "LayerNorm": {"scale": np.ones(5)},
      # three stacked layers of very different scales: per-slice ratios differ a lot
      "layers": {"kernel": rng.normal(size=(3, 4, 5)) * np.array([0.05, 1.0, 3.0])[:, None, None]},
  }


def make_grads(params, seed=1, steps=T):
  """g_t: random normal times a per-step scale in [0.1, 10]; LayerNorm's g_1 is exactly 0."""
  rng = np.random.default_rng(seed)
  out = []
  for t in range(steps):
    scale = 10 ** rng.uniform(-1, 1)
    g = jax.tree.map(lambda p: scale * rng.normal(size=np.shape(p)), params)
    if t == 0:
      g["LayerNorm"]["scale"] = np.zeros(5)
    out.append(g)
  return out


def flat(tree):
  return ref.flatten(jax.tree.map(np.asarray, tree))


def run_library(tx, params, grads, dtype=np.float64):
  """Steps the optax transformation; returns records like the reference's."""
  p = jax.tree.map(lambda a: jnp.asarray(a, dtype), params)
  state = tx.init(p)
  update = jax.jit(tx.update)
  first = flat(optim.trust_ratios(state))
  out = []
  for g in grads:
    updates, state = update(jax.tree.map(lambda a: jnp.asarray(a, dtype), g), state, p)
    p = optax.apply_updates(p, updates)
    out.append({"updates": flat(updates), "params": flat(p), "ratios": flat(optim.trust_ratios(state))})
  return first, out


def run_reference(fn, params, grads, **kw):
  out = fn(ref.flatten(params), [ref.flatten(g) for g in grads], **kw)
  assert all(np.asarray(v).dtype == np.float64 for r in out for f in r.values() for v in f.values())
  return out


def assert_records_close(lib, want, rtol=RTOL, atol=ATOL):
  """Elementwise rtol/atol on updates, params and ratios at every step (float64 runs)."""
  assert len(lib) == len(want)
  for t, (a, b) in enumerate(zip(lib, want), start=1):
    for field in ("updates", "params", "ratios"):
      assert sorted(a[field]) == sorted(b[field]), field
      for path in b[field]:
        got, exp = a[field][path], np.asarray(b[field][path])
        assert got.shape == exp.shape, (t, field, path, got.shape, exp.shape)
        if field != "ratios":
          assert got.dtype == np.float64, (field, path, got.dtype)
        np.testing.assert_allclose(got, exp, rtol=rtol, atol=atol,
                                   err_msg=f"step {t}, {field}, {path}")


def assert_records_close_normwise(lib, want, rtol=RTOL32):
  """Per leaf ||got - want|| <= rtol ||want|| at every step (float32 runs)."""
  assert len(lib) == len(want)
  for t, (a, b) in enumerate(zip(lib, want), start=1):
    for field in ("updates", "params", "ratios"):
      assert sorted(a[field]) == sorted(b[field]), field
      for path in b[field]:
        got, exp = np.asarray(a[field][path], np.float64), np.asarray(b[field][path])
        assert got.shape == exp.shape, (t, field, path, got.shape, exp.shape)
        if field != "ratios":
          assert a[field][path].dtype == np.float32, (field, path, a[field][path].dtype)
        err, size = np.linalg.norm((got - exp).ravel()), np.linalg.norm(exp.ravel())
        assert err <= rtol * size, f"step {t}, {field}, {path}: rel err {err / size:.3g}"


def max_rel_diff(r1, r2):
  """Largest relative difference of the updates of two reference runs."""
  worst = 0.0
  for a, b in zip(r1, r2):
    for k in a["updates"]:
      d = np.max(np.abs(a["updates"][k] - b["updates"][k]))
      worst = max(worst, d / (np.max(np.abs(b["updates"][k])) + 1e-300))
  return worst


# ----------------------------------------------------------------------- configurations
PATHS = sorted(ref.flatten(make_params()))
BN_MASK = ref.path_mask(PATHS, exclude=ref.BIAS_AND_NORM)      # reference's own mask
STACKED = {p: (0 if p == "layers/kernel" else None) for p in PATHS}
PHI = (0.5, 3.0)   # conv (||x||~0.4) clipped up, dense kernel (~3.5) clipped down, LN (2.24) inside


def poly_decay_np(c):
  return 0.02 * (1.0 - min(c, 20) / 20)


def poly_decay_jnp(count):
  """eta_t = eta_0 (1 - t/T) of Section 4, as a schedule of optax's 0-based int32 count.

  Written out rather than optax.polynomial_schedule, which rounds to float32 even under x64.
  """
  t = jnp.asarray(count, dtype=float)  # the default float: float64 under x64
  return 0.02 * (1.0 - jnp.minimum(t, 20.0) / 20.0)


def lib_layer_axis_stacked(params):
  return {"dense": {"kernel": None, "bias": None}, "conv": {"kernel": None},
          "LayerNorm": {"scale": None}, "layers": {"kernel": 0}}


def bool_tree(flat_mask):
  tree = {}
  for path, val in flat_mask.items():
    node = tree
    *parents, leaf = path.split("/")
    for name in parents:
      node = node.setdefault(name, {})
    node[leaf] = bool(val)
  return tree


def _lib_kw(kw):
  """Library kwargs from the reference kwargs: masks/axes/schedules in the library's form."""
  out = dict(kw)
  for name in ("weight_decay_mask", "adaptation_mask"):
    if out.get(name) == "bn":
      out[name] = optim.exclude_bias_and_norm
    elif out.get(name) == "bn_tree":
      out[name] = bool_tree(BN_MASK)
  if out.get("layer_axis") == "stacked":
    out["layer_axis"] = lib_layer_axis_stacked
  if out.get("learning_rate") == "poly":
    out["learning_rate"] = poly_decay_jnp
  return out


def _ref_kw(kw):
  out = dict(kw)
  for name in ("weight_decay_mask", "adaptation_mask"):
    if out.get(name) in ("bn", "bn_tree"):
      out[name] = BN_MASK
  if out.get("layer_axis") == "stacked":
    out["layer_axis"] = STACKED
  if out.get("learning_rate") == "poly":
    out["learning_rate"] = poly_decay_np
  return out


LAMB_CASES = {
    "default": dict(learning_rate=0.01),
    "wd_mask_bn": dict(learning_rate=0.01, weight_decay=0.1, weight_decay_mask="bn"),
    "adapt_mask_bn": dict(learning_rate=0.01, adaptation_mask="bn"),
    "both_masks_tree": dict(learning_rate=0.01, weight_decay=0.1, weight_decay_mask="bn_tree",
                            adaptation_mask="bn_tree"),
    "phi": dict(learning_rate=0.01, phi=PHI),
    "l1": dict(learning_rate=0.01, norm="l1"),
    "linf": dict(learning_rate=0.01, norm="linf"),
    "l1_phi": dict(learning_rate=0.01, norm="l1", phi=(2.0, 10.0)),
    "linf_phi": dict(learning_rate=0.01, norm="linf", phi=(0.1, 1.5)),
    "eps_outside_big": dict(learning_rate=0.01, eps=0.3),
    "eps_inside_big": dict(learning_rate=0.01, eps=0.3, eps_inside_sqrt=True),
    "eps_inside": dict(learning_rate=0.01, eps_inside_sqrt=True),
    "no_bias_correction": dict(learning_rate=0.01, weight_decay=0.1, bias_correction=False),
    "no_bc_eps_inside": dict(learning_rate=0.01, weight_decay=0.1, bias_correction=False,
                             eps=0.3, eps_inside_sqrt=True),
    "poly_schedule": dict(learning_rate="poly"),
    "max_grad_norm": dict(learning_rate=0.01, weight_decay=0.1, max_grad_norm=5.0),
    "layer_axis_stacked": dict(learning_rate=0.01, layer_axis="stacked"),
    "layer_axis_int0": dict(learning_rate=0.01, layer_axis=0),
    "layer_axis_linf_phi": dict(learning_rate=0.01, layer_axis="stacked", norm="linf", phi=PHI),
    "everything": dict(learning_rate="poly", b1=0.8, b2=0.99, eps=0.1, weight_decay=0.05,
                       bias_correction=False, eps_inside_sqrt=True, norm="l1", phi=(1.0, 8.0),
                       weight_decay_mask="bn", adaptation_mask="bn_tree", max_grad_norm=5.0,
                       layer_axis="stacked"),
}

LARS_PAPER_CASES = {
    "default": dict(learning_rate=0.1),
    "wd": dict(learning_rate=0.1, weight_decay=0.01),
    "wd_masks": dict(learning_rate=0.1, weight_decay=0.01, weight_decay_mask="bn",
                     adaptation_mask="bn_tree"),
    "phi_tc_eps": dict(learning_rate=0.1, phi=PHI, trust_coefficient=0.5, eps=0.05),
    "l1": dict(learning_rate=0.1, norm="l1", weight_decay=0.01),
    "linf_phi": dict(learning_rate=0.1, norm="linf", phi=(0.1, 1.5)),
    "nesterov": dict(learning_rate=0.1, weight_decay=0.01, nesterov=True),
    "momentum_schedule": dict(learning_rate="poly", momentum=0.5),
    "layer_axis": dict(learning_rate=0.1, layer_axis="stacked", weight_decay=0.01),
    "everything": dict(learning_rate="poly", momentum=0.8, weight_decay=0.05, phi=(0.2, 4.0),
                       norm="l1", eps=0.01, trust_coefficient=0.3, nesterov=True,
                       weight_decay_mask="bn", adaptation_mask="bn", layer_axis="stacked"),
}

LARS_YOU_CASES = {
    "default": dict(learning_rate=1.0),
    "wd": dict(learning_rate=1.0, weight_decay=0.01),
    "wd_masks": dict(learning_rate=1.0, weight_decay=0.01, weight_decay_mask="bn",
                     adaptation_mask="bn_tree"),
    "phi_tc_eps": dict(learning_rate=1.0, phi=PHI, trust_coefficient=0.02, eps=0.05),
    "linf": dict(learning_rate=1.0, norm="linf", weight_decay=0.01),
    "nesterov": dict(learning_rate=1.0, weight_decay=0.01, nesterov=True),
    "schedule": dict(learning_rate="poly", trust_coefficient=1.0),
    "layer_axis": dict(learning_rate=1.0, layer_axis="stacked"),
}

NLAMB_CASES = {
    "default": dict(learning_rate=0.01),
    "dozat": dict(learning_rate=0.01, b1_schedule="dozat"),
    "masks_phi": dict(learning_rate=0.01, weight_decay=0.1, weight_decay_mask="bn",
                      adaptation_mask="bn", phi=PHI),
    "l1_big_eps": dict(learning_rate=0.01, norm="l1", eps=0.3),
    "linf": dict(learning_rate=0.01, norm="linf"),
    "max_grad_norm": dict(learning_rate=0.01, max_grad_norm=5.0),
    "layer_axis_poly": dict(learning_rate="poly", layer_axis="stacked", b1=0.9, b2=0.99),
}

NNLAMB_CASES = dict(NLAMB_CASES)
NNLAMB_CASES.update({
    "b2_schedule": dict(learning_rate=0.01, b2_schedule="b2sched"),
    "both_schedules": dict(learning_rate=0.01, b1_schedule="dozat", b2_schedule="b2sched",
                           weight_decay=0.1, weight_decay_mask="bn"),
})


def b2_schedule(t):
  return 0.999 - 0.2 / (t + 1.0)


def _sched_kw(kw, lib):
  out = dict(kw)
  if out.get("b1_schedule") == "dozat":
    b1 = out.get("b1", 0.975)
    out["b1_schedule"] = optim.dozat_momentum_schedule(b1) if lib else ref.dozat_momentum_schedule(b1)
  if out.get("b2_schedule") == "b2sched":
    out["b2_schedule"] = b2_schedule
  return out


def _check_discriminative(ref_fn, kw, default_kw, params, grads):
  """Each non-default case must change the reference trajectory by far more than RTOL."""
  if kw == default_kw:
    return
  a = run_reference(ref_fn, params, grads, **kw)
  b = run_reference(ref_fn, params, grads, **default_kw)
  assert max_rel_diff(a, b) > 1e-3


def _compare(lib_fn, ref_fn, kw, default_kw, precision, *, lib_extra=None, ref_extra=None):
  params = make_params()
  grads = make_grads(params)
  rkw = dict(_ref_kw(kw), **(ref_extra or {}))
  lkw = dict(_lib_kw(kw), **(lib_extra or {}))
  want = run_reference(ref_fn, params, grads, **rkw)
  _check_discriminative(ref_fn, rkw, dict(_ref_kw(default_kw), **(ref_extra or {})), params, grads)
  dtype = np.float64 if precision == "float64" else np.float32
  first, got = run_library(lib_fn(**lkw), params, grads, dtype=dtype)
  for path, r in first.items():  # trust_ratios before any update: all ones, right shapes
    np.testing.assert_array_equal(r, np.ones_like(np.asarray(want[0]["ratios"][path])))
  if precision == "float64":
    assert_records_close(got, want)
  else:
    assert_records_close_normwise(got, want)
  return want


# -------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("case", sorted(LAMB_CASES))
def test_lamb_matches_reference(case, precision):
  _compare(optim.lamb, ref.lamb, LAMB_CASES[case], LAMB_CASES["default"], precision)


@pytest.mark.parametrize("case", sorted(LARS_PAPER_CASES))
def test_lars_paper_matches_reference(case, precision):
  _compare(optim.lars, ref.lars_paper, LARS_PAPER_CASES[case], LARS_PAPER_CASES["default"], precision,
           lib_extra=dict(form="paper"))


@pytest.mark.parametrize("case", sorted(LARS_YOU_CASES))
def test_lars_you2017_matches_reference(case, precision):
  _compare(optim.lars, ref.lars_you2017, LARS_YOU_CASES[case], LARS_YOU_CASES["default"], precision,
           lib_extra=dict(form="you2017"))


@pytest.mark.parametrize("case", sorted(NLAMB_CASES))
def test_nlamb_matches_reference(case, precision):
  kw = NLAMB_CASES[case]
  _compare(lambda **k: optim.nlamb(**_sched_kw(k, True)),
           lambda *a, **k: ref.nlamb(*a, **_sched_kw(k, False)), kw, NLAMB_CASES["default"], precision)


@pytest.mark.parametrize("case", sorted(NNLAMB_CASES))
def test_nnlamb_matches_reference(case, precision):
  kw = NNLAMB_CASES[case]
  _compare(lambda **k: optim.nnlamb(**_sched_kw(k, True)),
           lambda *a, **k: ref.nnlamb(*a, **_sched_kw(k, False)), kw, NNLAMB_CASES["default"], precision)


def test_nlamb_and_nnlamb_differ(x64):
  """Algorithm 4 is not Algorithm 3: guards against nnlamb silently being nlamb."""
  params = make_params()
  grads = make_grads(params)
  _, a = run_library(optim.nlamb(0.01), params, grads)
  _, b = run_library(optim.nnlamb(0.01), params, grads)
  assert max_rel_diff(a, b) > 1e-3


def test_case_conditions_are_exercised():
  """The fixtures really hit the branches the cases are meant to test."""
  params = ref.flatten(make_params())
  grads = [ref.flatten(g) for g in make_grads(make_params())]
  # phi bounds: some leaf below gamma_l, some above gamma_u, some inside (l2, whole leaves)
  norms = [ref.norm(v) for k, v in params.items() if ref.norm(v) > 0]
  assert min(norms) < PHI[0] and max(norms) > PHI[1]
  assert any(PHI[0] < n < PHI[1] for n in norms)
  # per-slice norms of the stacked leaf span both bounds
  sl = ref.norm(params["layers/kernel"], "l2", axis=0)
  assert sl.min() < PHI[0] and sl.max() > PHI[1]
  # max_grad_norm=5 clips some steps and leaves others alone
  gn = [np.sqrt(sum(np.sum(v * v) for v in g.values())) for g in grads]
  assert any(n > 5.0 for n in gn) and any(n < 5.0 for n in gn)
  # the exclude_bias_and_norm reference mask has both values
  assert BN_MASK == {"LayerNorm/scale": False, "conv/kernel": True, "dense/bias": False,
                     "dense/kernel": True, "layers/kernel": True}


@pytest.mark.parametrize("wd", [0.0, 0.01])
def test_lamb_first_step_closed_form_float64(wd, x64):
  """Step 1 by hand: m_hat = g and v_hat = g^2 exactly, so r = g / (|g| + eps).

  Zero leaf b: ratio 1, step -lr * r. Leaf w: step -lr * ||w|| / ||r + wd w|| * (r + wd w).
  """
  w, b = np.array([1.0, 2.0]), np.zeros(3)
  gw, gb = np.array([0.3, -0.2]), np.array([0.1, 0.5, -1.0])
  lr, eps = 0.01, 1e-6
  tx = optim.lamb(lr, weight_decay=wd)
  p = {"w": jnp.asarray(w), "b": jnp.asarray(b)}
  u, _ = tx.update({"w": jnp.asarray(gw), "b": jnp.asarray(gb)}, tx.init(p), p)
  rb, rw = gb / (np.abs(gb) + eps), gw / (np.abs(gw) + eps)
  uw = rw + wd * w
  np.testing.assert_allclose(np.asarray(u["b"]), -lr * rb, rtol=RTOL, atol=0)
  np.testing.assert_allclose(np.asarray(u["w"]), -lr * np.linalg.norm(w) / np.linalg.norm(uw) * uw,
                             rtol=RTOL, atol=0)


def test_dozat_momentum_schedule(x64):
  sched = optim.dozat_momentum_schedule(0.975)
  for t in [1, 2, 10, 250, 10_000]:
    np.testing.assert_allclose(float(sched(t)), 0.975 * (1 - 0.5 * 0.96 ** (t * 0.004)), rtol=1e-12)
  sched = optim.dozat_momentum_schedule(0.9, decay=0.1)
  np.testing.assert_allclose(float(sched(7)), 0.9 * (1 - 0.5 * 0.96 ** 0.7), rtol=1e-12)


# ------------------------------------------------------------------------ against optax
OPTAX_LAMB_CASES = {
    "default": (dict(learning_rate=0.01), dict(learning_rate=0.01, weight_decay=0.01)),
    "wd_mask": (dict(learning_rate=0.01, weight_decay=0.1, weight_decay_mask="bn"),
                dict(learning_rate=0.01, weight_decay=0.1, mask="bn")),
    "schedule_betas": (dict(learning_rate="poly", b1=0.8, b2=0.95, eps=1e-3, weight_decay=0.0),
                       dict(learning_rate="poly", b1=0.8, b2=0.95, eps=1e-3, weight_decay=0.0)),
    "eps_inside": (dict(learning_rate=0.01, eps=0.3, eps_inside_sqrt=True),
                   dict(learning_rate=0.01, eps=0.0, eps_root=0.3, weight_decay=0.01)),
}


def _optax_kw(kw):
  out = dict(kw)
  if out.get("mask") == "bn":
    out["mask"] = optim.exclude_bias_and_norm
  if out.get("learning_rate") == "poly":
    out["learning_rate"] = optax.polynomial_schedule(0.02, 0.0, 1.0, 20)
  return out


def _compare_to_optax(ours, theirs, precision):
  params = make_params()
  grads = make_grads(params)
  dtype = np.float64 if precision == "float64" else np.float32
  _, a = run_library(ours, params, grads, dtype=dtype)
  b = _run_plain(theirs, params, grads, dtype=dtype)
  for t, (x, y) in enumerate(zip(a, b), start=1):
    for field in ("updates", "params"):
      for path in y[field]:
        got, exp = x[field][path], y[field][path]
        assert got.dtype == exp.dtype == dtype
        if precision == "float64":
          np.testing.assert_allclose(got, exp, rtol=RTOL, atol=ATOL, err_msg=f"step {t} {path}")
        else:  # same float32 arithmetic up to operation order
          err = np.linalg.norm((got - exp).ravel().astype(np.float64))
          assert err <= 1e-5 * np.linalg.norm(exp.ravel().astype(np.float64)), (t, field, path)


def _run_plain(tx, params, grads, dtype):
  p = jax.tree.map(lambda a: jnp.asarray(a, dtype), params)
  state = tx.init(p)
  update = jax.jit(tx.update)
  out = []
  for g in grads:
    updates, state = update(jax.tree.map(lambda a: jnp.asarray(a, dtype), g), state, p)
    p = optax.apply_updates(p, updates)
    out.append({"updates": flat(updates), "params": flat(p)})
  return out


@pytest.mark.parametrize("case", sorted(OPTAX_LAMB_CASES))
def test_lamb_matches_optax_lamb(case, precision):
  ours, theirs = OPTAX_LAMB_CASES[case]
  theirs = _optax_kw(theirs)
  ours = dict(_lib_kw(ours), learning_rate=theirs["learning_rate"])  # the same schedule object
  _compare_to_optax(optim.lamb(**ours), optax.lamb(**theirs), precision)


OPTAX_LARS_CASES = {
    "default": (dict(learning_rate=1.0), dict(learning_rate=1.0)),
    "wd_masks_nesterov": (
        dict(learning_rate=1.0, weight_decay=0.01, weight_decay_mask="bn", adaptation_mask="bn",
             nesterov=True, momentum=0.8),
        dict(learning_rate=1.0, weight_decay=0.01, weight_decay_mask="bn", trust_ratio_mask="bn",
             nesterov=True, momentum=0.8)),
    "tc_eps_schedule": (dict(learning_rate="poly", trust_coefficient=0.05, eps=0.01),
                        dict(learning_rate="poly", trust_coefficient=0.05, eps=0.01)),
}


@pytest.mark.parametrize("case", sorted(OPTAX_LARS_CASES))
def test_lars_you2017_matches_optax_lars(case, precision):
  ours, theirs = OPTAX_LARS_CASES[case]
  theirs = _optax_kw(theirs)
  for name in ("weight_decay_mask", "trust_ratio_mask"):
    if theirs.get(name) == "bn":
      theirs[name] = optim.exclude_bias_and_norm
  ours = dict(_lib_kw(ours), learning_rate=theirs["learning_rate"])
  _compare_to_optax(optim.lars(form="you2017", **ours), optax.lars(**theirs), precision)
