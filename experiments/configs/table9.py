"""Table 9: tuning Adagrad for ResNet-50 on ImageNet at batch 16K (90 epochs), learning rate
grid as printed in Appendix H.1."""
from experiments.configs import _imagenet_tuning


def get_config(arg: str = "cpu"):
  return _imagenet_tuning.get_config(9, arg)
