"""Table 14: tuning AdamW, L2 regularization default (0.01), weight decay 0.0001 for ResNet-50 on ImageNet at batch 16K (90 epochs), learning rate
grid as printed in Appendix H.1."""
from experiments.configs import _imagenet_tuning


def get_config(arg: str = "cpu"):
  return _imagenet_tuning.get_config(14, arg)
