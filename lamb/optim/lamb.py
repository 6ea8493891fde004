"""LAMB (Algorithm 2): Adam's direction, made layer-wise by the trust ratio.

    g_t                          <- optional global-norm pre-normalisation (NVLAMB)
    m_t = b1 m_{t-1} + (1-b1) g_t
    v_t = b2 v_{t-1} + (1-b2) g_t^2
    m_t = m_t / (1 - b1^t)           (adam-correction, switchable: Appendix E)
    v_t = v_t / (1 - b2^t)
    r_t = m_t / (sqrt(v_t) + eps)    (or m_t / sqrt(v_t + eps) as printed)
    x_{t+1} = x_t - eta_t * phi(||x_t||) / ||r_t + lambda x_t|| * (r_t + lambda x_t)
"""
from __future__ import annotations

from typing import Optional, Tuple

import optax

from lamb.optim.moments import scale_by_adam_moments
from lamb.optim.trust_ratio import scale_by_trust_ratio


def pre_normalize(max_grad_norm: Optional[float]) -> optax.GradientTransformation:
  """NVIDIA's NVLAMB: scale the whole gradient to global l2 norm <= max_grad_norm."""
  return optax.identity() if max_grad_norm is None else optax.clip_by_global_norm(max_grad_norm)


def lamb(learning_rate, b1=0.9, b2=0.999, eps=1e-6, weight_decay=0.01, *,
         bias_correction: bool = True, eps_inside_sqrt: bool = False, norm: str = "l2",
         phi: Optional[Tuple[float, float]] = None, weight_decay_mask=None, adaptation_mask=None,
         max_grad_norm: Optional[float] = None, layer_axis=None) -> optax.GradientTransformation:
  """LAMB with the defaults of Appendix H (lambda = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-6).

  Args:
    learning_rate: eta_t, a float or an optax schedule of the step.
    b1, b2, eps: Adam's moment decays and epsilon.
    weight_decay: lambda, added to r_t before the trust ratio (decoupled weight decay).
    bias_correction: the adam-correction; False removes it (Appendix E).
    eps_inside_sqrt: r = m / sqrt(v + eps) as Algorithm 2 prints it, instead of the reference
      implementations' m / (sqrt(v) + eps).
    norm: "l2", "l1" or "linf", for both norms of the ratio (Appendix F).
    phi: None for phi(z) = z, or (gamma_l, gamma_u) for min(max(z, gamma_l), gamma_u).
    weight_decay_mask, adaptation_mask: optax-style masks (see `lamb.optim.masks`); leaves
      outside the adaptation mask get ratio 1, i.e. a plain AdamW step.
    max_grad_norm: optional global-norm pre-normalisation of the gradient (NVLAMB).
    layer_axis: one ratio per slice of stacked (scanned) layers; see `scale_by_trust_ratio`.
  """
  return optax.chain(
      pre_normalize(max_grad_norm),
      scale_by_adam_moments(b1, b2, eps, bias_correction=bias_correction,
                            eps_inside_sqrt=eps_inside_sqrt),  # r_t
      optax.add_decayed_weights(weight_decay, weight_decay_mask),  # r_t + lambda x_t
      scale_by_trust_ratio(norm=norm, phi=phi, mask=adaptation_mask,
                           layer_axis=layer_axis),  # * phi(||x_t||) / ||r_t + lambda x_t||
      optax.scale_by_learning_rate(learning_rate),  # * -eta_t
  )
