"""Table 20: tuning AdamW, L2 regularization disabled, weight decay 0.01 for ResNet-50 on ImageNet at batch 16K (90 epochs), learning rate
grid as printed in Appendix H.1."""
from experiments.configs import _imagenet_tuning


def get_config(arg: str = "cpu"):
  return _imagenet_tuning.get_config(20, arg)
