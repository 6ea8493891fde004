"""Independent float64 NumPy reference of the paper's optimizers, for testing `lamb.optim`.

Written from the paper's pseudocode (You et al., "Large Batch Optimization for Deep Learning:
Training BERT in 76 minutes"): Algorithm 1 (LARS), Algorithm 2 (LAMB), Appendix D
(Algorithm 3 N-LAMB, Algorithm 4 NN-LAMB), Appendix E (adam-correction) and Appendix F
(norms), plus the library spec's conventions (masks, phi bounds, trust ratio 1 at zero norms,
global-norm clipping, per-slice ratios). Pure NumPy on purpose: no jax, no optax.

Conventions:
  * a parameter tree is a flat dict {"/"-joined path: np.ndarray}; `flatten` turns a nested
    dict into one;
  * masks and layer axes are None (all True / no slicing), a constant, or a flat dict keyed
    by path;
  * `learning_rate` is a float or a callable of the 0-based step count (optax convention),
    so step t (1-based, as in the paper) uses learning_rate(t - 1);
  * every algorithm takes the initial params x_1 and the gradients g_1..g_T, and returns one
    record per step: {"updates": x_{t+1} - x_t, "params": x_{t+1}, "ratios": ratio_t}.
"""
from __future__ import annotations

import re

import numpy as np

BIAS_AND_NORM = ("bias", "LayerNorm", "layer_norm", "BatchNorm", "batch_norm")


# ------------------------------------------------------------------------------ helpers
def flatten(tree, prefix=""):
  """Nested dict -> {"a/b/c": np.ndarray} (dtype kept)."""
  out = {}
  for key, value in tree.items():
    path = f"{prefix}/{key}" if prefix else str(key)
    if isinstance(value, dict):
      out.update(flatten(value, path))
    else:
      out[path] = np.asarray(value)
  return out


def path_mask(paths, include=(), exclude=()):
  """{path: bool}: True iff the path re.search-matches some include (default all) and no exclude."""
  return {p: (not include or any(re.search(r, p) for r in include))
          and not any(re.search(r, p) for r in exclude) for p in paths}


def _per_leaf(spec, path, default):
  if spec is None:
    return default
  if isinstance(spec, dict):
    return spec[path]
  return spec


def _lr(learning_rate, t):
  return float(learning_rate(t - 1)) if callable(learning_rate) else float(learning_rate)


def norm(x, kind="l2", axis=None):
  """Layer norm (Appendix F): a scalar, or with `axis` one norm per slice along it."""
  x = np.asarray(x, np.float64)
  rows = x.reshape(1, -1) if axis is None else np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)
  if kind == "l2":
    n = np.sqrt(np.sum(rows * rows, axis=1))
  elif kind == "l1":
    n = np.sum(np.abs(rows), axis=1)
  elif kind == "linf":
    n = np.max(np.abs(rows), axis=1)
  else:
    raise ValueError(kind)
  return n[0] if axis is None else n


def phi_fn(z, phi=None):
  """phi(z) = z, or min(max(z, gamma_l), gamma_u) for phi = (gamma_l, gamma_u) (Section 3)."""
  if phi is None:
    return z
  return np.minimum(np.maximum(z, phi[0]), phi[1])


def trust_ratio(x, d, *, kind="l2", phi=None, adapt=True, axis=None, tc=1.0, eps=0.0):
  """tc * phi(||x||) / (||d|| + eps); exactly 1 where ||x|| == 0, ||d|| == 0 or not adapted."""
  xn, dn = norm(x, kind, axis), norm(d, kind, axis)
  if not adapt:
    return np.ones_like(np.asarray(xn, np.float64))
  with np.errstate(divide="ignore", invalid="ignore"):
    r = tc * phi_fn(xn, phi) / (dn + eps)
  return np.where((xn == 0) | (dn == 0), 1.0, r)


def _bcast(ratio, x, axis):
  """Per-slice ratios (shape [x.shape[axis]]) broadcast against x."""
  if axis is None:
    return ratio
  shape = [1] * x.ndim
  shape[axis] = -1
  return np.reshape(ratio, shape)


def clip_by_global_norm(g, max_norm):
  """g * min(1, max_norm / ||g||_2) with ||g||_2 the l2 norm over every leaf."""
  if max_norm is None:
    return g
  gn = np.sqrt(sum(np.sum(v * v) for v in g.values()))
  s = min(1.0, max_norm / gn)
  return {k: v * s for k, v in g.items()}


def _layerwise_step(x, u, lr, *, kind, phi, adapt, axis, tc=1.0, eps=0.0):
  """x_{t+1}^(i) = x_t^(i) - eta_t * phi(||x_t^(i)||) / ||u^(i)|| * u^(i)  (last line of Alg. 1-4)."""
  ratio = trust_ratio(x, u, kind=kind, phi=phi, adapt=adapt, axis=axis, tc=tc, eps=eps)
  step = -lr * _bcast(ratio, x, axis) * u
  return step, ratio


def _record(x, updates, ratios):
  new_x = {k: x[k] + updates[k] for k in x}
  return new_x, {"updates": updates, "params": new_x, "ratios": ratios}


# ------------------------------------------------------------------- Algorithm 2: LAMB
def lamb(params, grads, learning_rate, b1=0.9, b2=0.999, eps=1e-6, weight_decay=0.01, *,
         bias_correction=True, eps_inside_sqrt=False, norm="l2", phi=None,
         weight_decay_mask=None, adaptation_mask=None, max_grad_norm=None, layer_axis=None):
  kind = norm
  x = {k: np.asarray(v, np.float64) for k, v in params.items()}
  m = {k: np.zeros_like(v) for k, v in x.items()}                    # Set m_0 = 0
  v = {k: np.zeros_like(val) for k, val in x.items()}                # v_0 = 0
  out = []
  for t, g in enumerate(grads, start=1):                             # for t = 1 to T do
    g = clip_by_global_norm(g, max_grad_norm)
    lr = _lr(learning_rate, t)
    upd, rat = {}, {}
    for i in x:
      m[i] = b1 * m[i] + (1 - b1) * g[i]                             # m_t = b1 m_{t-1} + (1-b1) g_t
      v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2                        # v_t = b2 v_{t-1} + (1-b2) g_t^2
      if bias_correction:                                            # adam-correction (App. E)
        m_hat = m[i] / (1 - b1 ** t)                                 # m_t = m_t / (1 - b1^t)
        v_hat = v[i] / (1 - b2 ** t)                                 # v_t = v_t / (1 - b2^t)
      else:
        m_hat, v_hat = m[i], v[i]
      if eps_inside_sqrt:
        r = m_hat / np.sqrt(v_hat + eps)                             # r_t = m_t / sqrt(v_t + eps)
      else:
        r = m_hat / (np.sqrt(v_hat) + eps)                           # reference-code placement
      wd = weight_decay if _per_leaf(weight_decay_mask, i, True) else 0.0
      u = r + wd * x[i]                                              # r_t^(i) + lambda x_t^(i)
      upd[i], rat[i] = _layerwise_step(                              # x_{t+1}^(i) = ...
          x[i], u, lr, kind=kind, phi=phi, adapt=_per_leaf(adaptation_mask, i, True),
          axis=_per_leaf(layer_axis, i, None))
    x, rec = _record(x, upd, rat)
    out.append(rec)
  return out


# ------------------------------------------------------------------- Algorithm 1: LARS
def lars_paper(params, grads, learning_rate, momentum=0.9, weight_decay=0.0, *, phi=None,
               norm="l2", eps=0.0, trust_coefficient=None, nesterov=False,
               weight_decay_mask=None, adaptation_mask=None, layer_axis=None):
  kind = norm
  tc = 1.0 if trust_coefficient is None else trust_coefficient
  x = {k: np.asarray(v, np.float64) for k, v in params.items()}
  m = {k: np.zeros_like(v) for k, v in x.items()}                    # Set m_0 = 0
  out = []
  for t, g in enumerate(grads, start=1):                             # for t = 1 to T do
    lr = _lr(learning_rate, t)
    upd, rat = {}, {}
    for i in x:
      wd = weight_decay if _per_leaf(weight_decay_mask, i, True) else 0.0
      u = g[i] + wd * x[i]                                           # g_t + lambda x_t
      m[i] = momentum * m[i] + (1 - momentum) * u                    # m_t = b1 m_{t-1} + (1-b1)(g_t + lambda x_t)
      d = momentum * m[i] + (1 - momentum) * u if nesterov else m[i]
      upd[i], rat[i] = _layerwise_step(                              # x_{t+1} = x_t - eta phi(||x||)/||m|| m
          x[i], d, lr, kind=kind, phi=phi, adapt=_per_leaf(adaptation_mask, i, True),
          axis=_per_leaf(layer_axis, i, None), tc=tc, eps=eps)
    x, rec = _record(x, upd, rat)
    out.append(rec)
  return out


def lars_you2017(params, grads, learning_rate, momentum=0.9, weight_decay=0.0, *, phi=None,
                 norm="l2", eps=0.0, trust_coefficient=None, nesterov=False,
                 weight_decay_mask=None, adaptation_mask=None, layer_axis=None):
  """You et al. (2017) / optax.lars: local lr on (g + wd x), then heavy-ball on the scaled step."""
  kind = norm
  tc = 0.001 if trust_coefficient is None else trust_coefficient
  x = {k: np.asarray(v, np.float64) for k, v in params.items()}
  buf = {k: np.zeros_like(v) for k, v in x.items()}
  out = []
  for t, g in enumerate(grads, start=1):
    lr = _lr(learning_rate, t)
    upd, rat = {}, {}
    for i in x:
      axis = _per_leaf(layer_axis, i, None)
      wd = weight_decay if _per_leaf(weight_decay_mask, i, True) else 0.0
      u = g[i] + wd * x[i]
      local = trust_ratio(x[i], u, kind=kind, phi=phi, adapt=_per_leaf(adaptation_mask, i, True),
                          axis=axis, tc=tc, eps=eps)
      step = lr * _bcast(local, x[i], axis) * u
      buf[i] = momentum * buf[i] + step
      upd[i] = -(step + momentum * buf[i]) if nesterov else -buf[i]
      rat[i] = local
    x, rec = _record(x, upd, rat)
    out.append(rec)
  return out


# ------------------------------------------------------- Algorithms 3 and 4: N-LAMB, NN-LAMB
def dozat_momentum_schedule(b1, decay=0.004):
  """mu_t = b1 (1 - 0.5 * 0.96^(t * decay)) (Dozat 2016)."""
  return lambda t: b1 * (1 - 0.5 * 0.96 ** (t * decay))


def nlamb(params, grads, learning_rate, b1=0.975, b2=0.999, eps=1e-8, weight_decay=0.01, *,
          b1_schedule=None, b2_schedule=None, nesterov_v=False, norm="l2", phi=None,
          weight_decay_mask=None, adaptation_mask=None, max_grad_norm=None, layer_axis=None):
  """Algorithm 3 as printed; with nesterov_v=True, Algorithm 4 (NN-LAMB)."""
  kind = norm
  mu = (lambda t: b1) if b1_schedule is None else b1_schedule        # {beta_1^t}
  nu = (lambda t: b2) if b2_schedule is None else b2_schedule        # {beta_2^t} (Alg. 4)
  x = {k: np.asarray(v, np.float64) for k, v in params.items()}
  m = {k: np.zeros_like(v) for k, v in x.items()}                    # Set m_0 = 0
  v = {k: np.zeros_like(val) for k, val in x.items()}                # v_0 = 0
  out = []
  for t, g in enumerate(grads, start=1):                             # for t = 1 to T do
    g = clip_by_global_norm(g, max_grad_norm)
    lr = _lr(learning_rate, t)
    mu_t, mu_next = float(mu(t)), float(mu(t + 1))
    prod_mu_t = np.prod([float(mu(i)) for i in range(1, t + 1)])     # prod_{i=1}^{t} beta_1^i
    prod_mu_next = prod_mu_t * mu_next                               # prod_{i=1}^{t+1} beta_1^i
    nu_t, nu_next = float(nu(t)), float(nu(t + 1))
    prod_nu_t = np.prod([float(nu(i)) for i in range(1, t + 1)])
    prod_nu_next = prod_nu_t * nu_next
    upd, rat = {}, {}
    for i in x:
      m[i] = b1 * m[i] + (1 - b1) * g[i]                             # m_t = b1 m_{t-1} + (1-b1) g_t
      m_hat = (mu_next * m[i] / (1 - prod_mu_next)                   # m^ = b1^{t+1} m_t / (1 - prod^{t+1})
               + (1 - mu_t) * g[i] / (1 - prod_mu_t))                #    + (1 - b1^t) g_t / (1 - prod^t)
      v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2                        # v_t = b2 v_{t-1} + (1-b2) g_t^2
      if nesterov_v:                                                 # Algorithm 4:
        v_hat = (nu_next * v[i] / (1 - prod_nu_next)                 # v^ = b2^{t+1} v_t / (1 - prod^{t+1})
                 + (1 - nu_t) * g[i] ** 2 / (1 - prod_nu_t))         #    + (1 - b2^t) g_t^2 / (1 - prod^t)
      else:                                                          # Algorithm 3:
        v_hat = b2 * v[i] / (1 - b2 ** t)                            # v^ = b2 v_t / (1 - b2^t)
      r = m_hat / (np.sqrt(v_hat) + eps)                             # r_t = m^ / (sqrt(v^) + eps)
      wd = weight_decay if _per_leaf(weight_decay_mask, i, True) else 0.0
      u = r + wd * x[i]
      upd[i], rat[i] = _layerwise_step(                              # x_{t+1}^(i) = ...
          x[i], u, lr, kind=kind, phi=phi, adapt=_per_leaf(adaptation_mask, i, True),
          axis=_per_leaf(layer_axis, i, None))
    x, rec = _record(x, upd, rat)
    out.append(rec)
  return out


def nnlamb(params, grads, learning_rate, b1=0.975, b2=0.999, eps=1e-8, weight_decay=0.01, **kw):
  return nlamb(params, grads, learning_rate, b1, b2, eps, weight_decay, nesterov_v=True, **kw)
