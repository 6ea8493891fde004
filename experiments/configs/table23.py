"""Table 23: tuning AdamW+ (Goyal et al.'s recipe), L2 regularization disabled, weight decay 0.01, 0.001 for ResNet-50 on ImageNet at batch 16K (90 epochs), learning rate
grid as printed in Appendix H.1."""
from experiments.configs import _imagenet_tuning


def get_config(arg: str = "cpu"):
  return _imagenet_tuning.get_config(23, arg)
