"""LAMB: layer-wise adaptive large-batch optimization, reproduced in JAX."""
