"""LAMB, LARS, N-LAMB, NN-LAMB and the paper's baselines as optax transformations.

    from lamb import optim
    tx = optim.lamb(optim.schedules.warmup_polynomial_decay(1e-3, 10_000, warmup_ratio=0.1))
    state = tx.init(params)
    updates, state = tx.update(grads, state, params)
    optim.trust_ratios(state)   # per-layer phi(||x||) / ||r + lambda x|| of that update
"""
from lamb.optim import schedules
from lamb.optim.baselines import adagrad, adam, adamw, momentum, nadam
from lamb.optim.factory import OPTIMIZERS, create, learning_rate, merge, split
from lamb.optim.lamb import lamb
from lamb.optim.lars import lars
from lamb.optim.masks import exclude_bias_and_norm, layer_axis_by_path, path_mask
from lamb.optim.moments import (dozat_momentum_schedule, scale_by_adam_moments,
                                scale_by_ema_momentum, scale_by_nesterov_moments)
from lamb.optim.nlamb import nlamb, nnlamb
from lamb.optim.trust_ratio import layer_norm, scale_by_trust_ratio, trust_ratios

__all__ = [
    "adagrad", "adam", "adamw", "momentum", "nadam", "lamb", "lars", "nlamb", "nnlamb",
    "create", "learning_rate", "split", "merge", "OPTIMIZERS", "schedules", "trust_ratios", "path_mask", "exclude_bias_and_norm",
    "layer_axis_by_path", "dozat_momentum_schedule", "scale_by_adam_moments",
    "scale_by_nesterov_moments", "scale_by_ema_momentum", "scale_by_trust_ratio", "layer_norm",
]
