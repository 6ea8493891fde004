"""The optimizers the paper compares LAMB against, built from optax in the same vocabulary.

`l2_regularization` adds lambda2 * x to the gradient before the optimizer sees it (an L2 term
lambda2/2 ||x||^2 in the loss). `adamw` also has decoupled `weight_decay`; the paper's AdamW
grids vary both ("L2 regularization: default (0.01) / disable" x weight decay, Tables 13-25).
"""
from __future__ import annotations

from typing import Optional

import optax

from lamb.optim.moments import scale_by_adam_moments


def _l2(l2_regularization, mask=None) -> optax.GradientTransformation:
  return optax.add_decayed_weights(l2_regularization, mask)


def adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8, *, l2_regularization=0.0,
         l2_mask=None) -> optax.GradientTransformation:
  return optax.chain(_l2(l2_regularization, l2_mask),
                     optax.adam(learning_rate, b1=b1, b2=b2, eps=eps))


def adamw(learning_rate, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.01, *,
          l2_regularization=0.0, weight_decay_mask=None, l2_mask=None,
          decay_scaled_by_lr: bool = True, bias_correction: bool = True,
          max_grad_norm: Optional[float] = None) -> optax.GradientTransformation:
  """AdamW. With `decay_scaled_by_lr` (optax's and BERT's AdamWeightDecay form) the step is
  x - eta_t (adam + lambda x); without it (TensorFlow's DecoupledWeightDecayExtension, the
  `tf.contrib.opt.AdamWOptimizer` of the ResNet-50 grids) it is x - eta_t adam - lambda x, so
  lambda is a fraction of the weights removed per step whatever the learning rate.

  BERT's pre-training optimizer (optimization.py: AdamWeightDecayOptimizer after
  `tf.clip_by_global_norm(grads, 1.0)`) is `bias_correction=False, max_grad_norm=1.0`: the
  moments are not bias-corrected, and the whole gradient is first clipped to global norm 1."""
  if not bias_correction or max_grad_norm is not None:
    if not decay_scaled_by_lr:
      raise ValueError("bias_correction=False and max_grad_norm are BERT's AdamWeightDecay "
                       "form, whose decay is scaled by the learning rate (decay_scaled_by_lr)")
    clip = (optax.identity() if max_grad_norm is None
            else optax.clip_by_global_norm(max_grad_norm))
    return optax.chain(clip, _l2(l2_regularization, l2_mask),
                       scale_by_adam_moments(b1, b2, eps, bias_correction=bias_correction),
                       optax.add_decayed_weights(weight_decay, weight_decay_mask),
                       optax.scale_by_learning_rate(learning_rate))
  if decay_scaled_by_lr:
    return optax.chain(_l2(l2_regularization, l2_mask),
                       optax.adamw(learning_rate, b1=b1, b2=b2, eps=eps,
                                   weight_decay=weight_decay, mask=weight_decay_mask))
  return optax.chain(_l2(l2_regularization, l2_mask),
                     optax.adam(learning_rate, b1=b1, b2=b2, eps=eps),
                     optax.add_decayed_weights(-weight_decay, weight_decay_mask))  # - lambda x


def adagrad(learning_rate, initial_accumulator_value=0.1, eps=1e-7, *, l2_regularization=0.0,
            l2_mask=None) -> optax.GradientTransformation:
  return optax.chain(_l2(l2_regularization, l2_mask),
                     optax.adagrad(learning_rate, initial_accumulator_value=initial_accumulator_value,
                                   eps=eps))


def momentum(learning_rate, momentum=0.9, *, nesterov: bool = False, l2_regularization=0.0,
             l2_mask=None) -> optax.GradientTransformation:
  """Heavy-ball SGD, the ResNet-50 baseline of Goyal et al. (weight decay as an L2 term)."""
  return optax.chain(_l2(l2_regularization, l2_mask),
                     optax.sgd(learning_rate, momentum=momentum, nesterov=nesterov))


def nadam(learning_rate, b1=0.9, b2=0.999, eps=1e-8, *, l2_regularization=0.0,
          l2_mask=None) -> optax.GradientTransformation:
  return optax.chain(_l2(l2_regularization, l2_mask),
                     optax.nadam(learning_rate, b1=b1, b2=b2, eps=eps))
