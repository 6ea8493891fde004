"""LARS in the paper's form (Algorithm 1) and in the classic form of You et al. (2017).

Algorithm 1 (form="paper"):
    m_t = b1 m_{t-1} + (1 - b1) (g_t + lambda x_t)
    x_{t+1} = x_t - eta_t * phi(||x_t||) / ||m_t|| * m_t

You et al. 2017, as MLPerf ResNet-50 and optax.lars run it (form="you2017"): the local rate
trust_coefficient * ||x|| / ||g + lambda x|| scales the update that is fed into the momentum.

`l2_regularization` adds lambda2 x to the gradient before either form sees it, as an L2 term
lambda2/2 ||x||^2 in the loss does (the TensorFlow ResNet-50 references train LARS with both
that term and LARS's own decay).
"""
from __future__ import annotations

from typing import Optional, Tuple

import optax

from lamb.optim.moments import scale_by_ema_momentum
from lamb.optim.trust_ratio import scale_by_trust_ratio

FORMS = ("paper", "you2017")


def lars(learning_rate, momentum=0.9, weight_decay=0.0, *,
         phi: Optional[Tuple[float, float]] = None, norm: str = "l2", eps=0.0,
         trust_coefficient=None, nesterov: bool = False, weight_decay_mask=None,
         adaptation_mask=None, form: str = "paper", layer_axis=None, l2_regularization=0.0,
         l2_mask=None) -> optax.GradientTransformation:
  """LARS. `trust_coefficient` defaults to 1 for the paper's form and 0.001 for you2017."""
  if form not in FORMS:
    raise ValueError(f"form must be one of {FORMS}, got {form!r}")
  trust = scale_by_trust_ratio(
      norm=norm, phi=phi, eps=eps, mask=adaptation_mask, layer_axis=layer_axis,
      trust_coefficient=(1.0 if form == "paper" else 1e-3) if trust_coefficient is None
      else trust_coefficient)
  decay = optax.add_decayed_weights(weight_decay, weight_decay_mask)  # g_t + lambda x_t
  l2 = optax.add_decayed_weights(l2_regularization, l2_mask)  # the loss's L2 term (0: none)
  if form == "paper":
    return optax.chain(l2, decay, scale_by_ema_momentum(momentum, nesterov=nesterov), trust,
                       optax.scale_by_learning_rate(learning_rate))
  return optax.chain(l2, decay, trust, optax.scale_by_learning_rate(learning_rate),
                     optax.trace(decay=momentum, nesterov=nesterov))
