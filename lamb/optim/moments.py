"""The adaptive base algorithms whose direction LAMB normalises layer-wise.

`scale_by_adam_moments` is Adam's direction r_t of Algorithm 2 with the two switches the paper
discusses: the adam-correction (Appendix E) and where epsilon sits. `scale_by_nesterov_moments`
is the Nesterov variant of Algorithms 3 (N-LAMB) and 4 (NN-LAMB). `scale_by_ema_momentum` is
the heavy-ball average of Algorithm 1 (LARS).

Epsilon: Algorithm 2 prints r = m / sqrt(v + eps). The reference implementations (BERT's
LAMB, TF-Addons, NVIDIA's) compute r = m / (sqrt(v) + eps), which is the default here;
``eps_inside_sqrt=True`` gives the printed form. With eps = 1e-6 the two differ only where
sqrt(v) is below ~1e-3, i.e. for parameters with tiny gradients.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax


class AdamMomentsState(NamedTuple):
  count: jax.Array  # number of updates so far (t - 1 before the update, t after)
  mu: optax.Updates  # first moment m_t
  nu: optax.Updates  # second moment v_t


def state_dtype(dtype):
  """Moments and norms of bfloat16/float16 params in float32; float64 params stay float64."""
  return jnp.promote_types(dtype, jnp.float32)


def _float(count):
  """The step count as the default float type (float64 under jax_enable_x64)."""
  return jnp.asarray(count, dtype=jnp.result_type(float))


def _zeros(params):
  return jax.tree.map(lambda p: jnp.zeros_like(p, dtype=state_dtype(p.dtype)), params)


def _ratio(m_hat, v_hat, eps, eps_inside_sqrt):
  if eps_inside_sqrt:
    return m_hat * jax.lax.rsqrt(v_hat + eps)
  return m_hat / (jnp.sqrt(v_hat) + eps)


def scale_by_adam_moments(b1=0.9, b2=0.999, eps=1e-6, *, bias_correction: bool = True,
                          eps_inside_sqrt: bool = False) -> optax.GradientTransformation:
  """Adam's update direction r_t = m_hat / (sqrt(v_hat) + eps), moments in float32."""

  def init_fn(params):
    return AdamMomentsState(jnp.zeros([], jnp.int32), _zeros(params), _zeros(params))

  def update_fn(updates, state, params=None):
    del params
    count = optax.safe_increment(state.count)
    mu = jax.tree.map(lambda g, m: b1 * m + (1 - b1) * g, updates, state.mu)  # m_t
    nu = jax.tree.map(lambda g, v: b2 * v + (1 - b2) * g * g, updates, state.nu)  # v_t
    if bias_correction:  # m_t / (1 - b1^t), v_t / (1 - b2^t)
      t = _float(count)
      c1, c2 = 1 - b1 ** t, 1 - b2 ** t
    else:
      c1 = c2 = 1.0
    r = jax.tree.map(lambda m, v: _ratio(m / c1, v / c2, eps, eps_inside_sqrt), mu, nu)
    return r, AdamMomentsState(count, mu, nu)

  return optax.GradientTransformation(init_fn, update_fn)


class NesterovMomentsState(NamedTuple):
  count: jax.Array
  mu: optax.Updates
  nu: optax.Updates
  mu_product: jax.Array  # prod_{i<=t} beta1^i of the momentum schedule
  nu_product: jax.Array  # prod_{i<=t} beta2^i (NN-LAMB only; 1 otherwise)


def constant_schedule(value) -> Callable[[jax.Array], jax.Array]:
  return lambda t: value * jnp.ones_like(t, dtype=jnp.result_type(float))


def dozat_momentum_schedule(b1=0.975, decay=0.004) -> Callable[[jax.Array], jax.Array]:
  """Dozat's (2016) warming momentum schedule mu_t = b1 (1 - 0.5 * 0.96^(t * decay))."""
  return lambda t: b1 * (1 - 0.5 * 0.96 ** (t * decay))


def scale_by_nesterov_moments(b1=0.975, b2=0.999, eps=1e-8, *,
                              b1_schedule: Optional[Callable] = None,
                              b2_schedule: Optional[Callable] = None,
                              nesterov_second_moment: bool = False) -> optax.GradientTransformation:
  """The N-LAMB (Algorithm 3) or, with `nesterov_second_moment`, NN-LAMB (Algorithm 4) direction.

  As printed: m_t = b1 m + (1-b1) g with the constant b1, and the schedule {beta1^t}
  (`b1_schedule`, a function of the 1-based step; constant b1 by default, which makes
  N-LAMB's first moment exactly NAdam's) enters only the Nesterov combination
    m_hat = mu_{t+1} m_t / (1 - prod_{i<=t+1} mu_i) + (1 - mu_t) g_t / (1 - prod_{i<=t} mu_i).
  N-LAMB's second moment is v_hat = b2 v_t / (1 - b2^t) as Algorithm 3 prints it (the extra b2 is
  a constant rescale that the trust ratio normalises away except against eps and lambda x).
  NN-LAMB applies the same Nesterov combination to v with the schedule {beta2^t}.
  """
  mu_sched = b1_schedule or constant_schedule(b1)
  nu_sched = b2_schedule or constant_schedule(b2)

  def init_fn(params):
    one = jnp.ones([], jnp.result_type(float))
    return NesterovMomentsState(jnp.zeros([], jnp.int32), _zeros(params), _zeros(params), one, one)

  def update_fn(updates, state, params=None):
    del params
    count = optax.safe_increment(state.count)
    t = _float(count)
    mu_t, mu_next = mu_sched(t), mu_sched(t + 1)
    mu_prod = state.mu_product * mu_t
    mu = jax.tree.map(lambda g, m: b1 * m + (1 - b1) * g, updates, state.mu)
    nu = jax.tree.map(lambda g, v: b2 * v + (1 - b2) * g * g, updates, state.nu)
    m_hat = jax.tree.map(
        lambda g, m: mu_next * m / (1 - mu_prod * mu_next) + (1 - mu_t) * g / (1 - mu_prod),
        updates, mu)
    if nesterov_second_moment:
      nu_t, nu_next = nu_sched(t), nu_sched(t + 1)
      nu_prod = state.nu_product * nu_t
      v_hat = jax.tree.map(
          lambda g, v: nu_next * v / (1 - nu_prod * nu_next) + (1 - nu_t) * g * g / (1 - nu_prod),
          updates, nu)
    else:
      nu_prod = state.nu_product
      v_hat = jax.tree.map(lambda v: b2 * v / (1 - b2 ** t), nu)
    r = jax.tree.map(lambda m, v: m / (jnp.sqrt(v) + eps), m_hat, v_hat)
    return r, NesterovMomentsState(count, mu, nu, mu_prod, nu_prod)

  return optax.GradientTransformation(init_fn, update_fn)


class EmaMomentumState(NamedTuple):
  momentum: optax.Updates


def scale_by_ema_momentum(decay=0.9, *, nesterov: bool = False) -> optax.GradientTransformation:
  """m_t = decay m_{t-1} + (1 - decay) u_t (Algorithm 1); Nesterov returns decay m_t + (1-decay) u_t."""

  def init_fn(params):
    return EmaMomentumState(_zeros(params))

  def update_fn(updates, state, params=None):
    del params
    m = jax.tree.map(lambda u, m: decay * m + (1 - decay) * u, updates, state.momentum)
    out = jax.tree.map(lambda u, m: decay * m + (1 - decay) * u, updates, m) if nesterov else m
    return out, EmaMomentumState(m)

  return optax.GradientTransformation(init_fn, update_fn)
