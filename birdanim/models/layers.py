"""Building blocks shared by the generator and the discriminators.

Every learned layer uses the equalised learning rate of Karras et al.: parameters are stored with
unit variance (divided by `lr_mul`) and scaled by `lr_mul / sqrt(fan_in)` at run time, so that Adam
moves every layer at the same relative speed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

SQRT2 = math.sqrt(2.0)


def assert_shape(t: torch.Tensor, shape: tuple) -> None:
    """Check `t.shape` against `shape`; `None` in `shape` matches any size."""
    if t.dim() != len(shape) or any(s is not None and s != ts for s, ts in zip(shape, t.shape)):
        raise ValueError(f"expected shape {shape}, got {tuple(t.shape)}")


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """Smooth 2x upsampling: bilinear with half-pixel centres equals the [1, 3, 3, 1] FIR filter."""
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


def downsample2x(x: torch.Tensor) -> torch.Tensor:
    """Smooth 2x downsampling (2x2 box filter): cheap on a CPU, unlike a depthwise blur."""
    return F.avg_pool2d(x, 2)


class FullyConnected(nn.Module):
    def __init__(
        self,
        in_features: int,  # input width
        out_features: int,  # output width
        activation: str = "linear",  # "linear" or "lrelu" (leaky ReLU 0.2 with gain sqrt(2))
        lr_mul: float = 1.0,  # learning-rate multiplier (0.01 in the mapping network)
        bias_init: float = 0.0,  # initial bias value (1.0 for style affines: start unmodulated)
    ):
        super().__init__()
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init)))
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.bias_gain = lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.bias_gain)
        if self.activation == "lrelu":
            x = F.leaky_relu(x, 0.2) * SQRT2
        return x


class Conv2dLayer(nn.Module):
    """Plain (unmodulated) conv with equalised learning rate, optional 2x down, leaky ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "lrelu",  # "linear" or "lrelu"
        down: bool = False,  # downsample 2x (box filter) before the convolution
    ):
        super().__init__()
        self.activation = activation
        self.down = down
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.down:
            x = downsample2x(x)
        x = F.conv2d(x, self.weight * self.weight_gain, self.bias, padding=self.padding)
        if self.activation == "lrelu":
            x = F.leaky_relu(x, 0.2) * SQRT2
        return x
