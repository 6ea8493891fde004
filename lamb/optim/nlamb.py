"""N-LAMB (Algorithm 3) and NN-LAMB (Algorithm 4): LAMB with Nesterov momentum (Appendix D).

Appendix D uses Dozat's NAdam settings b1 = 0.975, b2 = 0.999, eps = 1e-8; those are the
defaults here.
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import optax

from lamb.optim.lamb import pre_normalize
from lamb.optim.moments import scale_by_nesterov_moments
from lamb.optim.trust_ratio import scale_by_trust_ratio


def _nesterov_lamb(learning_rate, b1, b2, eps, weight_decay, b1_schedule, b2_schedule,
                   nesterov_second_moment, norm, phi, weight_decay_mask, adaptation_mask,
                   max_grad_norm, layer_axis):
  return optax.chain(
      pre_normalize(max_grad_norm),
      scale_by_nesterov_moments(b1, b2, eps, b1_schedule=b1_schedule, b2_schedule=b2_schedule,
                                nesterov_second_moment=nesterov_second_moment),
      optax.add_decayed_weights(weight_decay, weight_decay_mask),
      scale_by_trust_ratio(norm=norm, phi=phi, mask=adaptation_mask, layer_axis=layer_axis),
      optax.scale_by_learning_rate(learning_rate),
  )


def nlamb(learning_rate, b1=0.975, b2=0.999, eps=1e-8, weight_decay=0.01, *,
          b1_schedule: Optional[Callable] = None, norm: str = "l2",
          phi: Optional[Tuple[float, float]] = None, weight_decay_mask=None, adaptation_mask=None,
          max_grad_norm: Optional[float] = None, layer_axis=None) -> optax.GradientTransformation:
  """N-LAMB: Nesterov momentum on the first moment. `b1_schedule(t)` is {beta1^t}."""
  return _nesterov_lamb(learning_rate, b1, b2, eps, weight_decay, b1_schedule, None, False, norm,
                        phi, weight_decay_mask, adaptation_mask, max_grad_norm, layer_axis)


def nnlamb(learning_rate, b1=0.975, b2=0.999, eps=1e-8, weight_decay=0.01, *,
           b1_schedule: Optional[Callable] = None, b2_schedule: Optional[Callable] = None,
           norm: str = "l2", phi: Optional[Tuple[float, float]] = None, weight_decay_mask=None,
           adaptation_mask=None, max_grad_norm: Optional[float] = None,
           layer_axis=None) -> optax.GradientTransformation:
  """NN-LAMB: Nesterov momentum on both moments, schedules {beta1^t} and {beta2^t}."""
  return _nesterov_lamb(learning_rate, b1, b2, eps, weight_decay, b1_schedule, b2_schedule, True,
                        norm, phi, weight_decay_mask, adaptation_mask, max_grad_norm, layer_axis)
