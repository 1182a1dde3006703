"""The classic residual StyleGAN2 discriminator (NVlabs' 'resnet' D, the original project's D)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from birdanim.models.layers import Conv2dLayer, FullyConnected, assert_shape


@dataclass
class DiscriminatorConfig:
    img_resolution: int = 256  # input side in pixels, a power of two
    channel_base: int = 4096  # channels at resolution r are min(channel_base // r, channel_max)
    channel_max: int = 256
    channel_min: int = 16
    mbstd_group: int = 4  # minibatch-stddev group size (clipped to the batch size)
    mbstd_channels: int = 1  # minibatch-stddev feature channels

    def channels(self, res: int) -> int:
        return max(min(self.channel_base // res, self.channel_max), self.channel_min)


class DiscriminatorBlock(nn.Module):
    """Two 3x3 convs, the second downsampling 2x, plus a 1x1 residual skip; channels grow as res halves."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, first: bool):
        super().__init__()
        self.fromrgb = Conv2dLayer(3, tmp_channels, 1) if first else None
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, down=True)
        self.skip = Conv2dLayer(tmp_channels, out_channels, 1, bias=False, activation="linear", down=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fromrgb is not None:
            x = self.fromrgb(x)
        y = self.skip(x)
        x = self.conv1(self.conv0(x))
        return (x + y) * math.sqrt(0.5)


class MinibatchStd(nn.Module):
    def __init__(self, group_size: int, num_channels: int):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        while n % g:  # largest group size that divides the batch
            g -= 1
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)
        y = (y - y.mean(0)).square().mean(0).add(1e-8).sqrt()
        y = y.mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


class Discriminator(nn.Module):
    def __init__(self, cfg: DiscriminatorConfig):
        super().__init__()
        self.cfg = cfg
        self.img_resolution = cfg.img_resolution
        res_log2 = int(math.log2(cfg.img_resolution))
        blocks = []
        for r in [2**i for i in range(res_log2, 2, -1)]:
            blocks.append(DiscriminatorBlock(0, cfg.channels(r), cfg.channels(r // 2), first=r == cfg.img_resolution))
        self.blocks = nn.ModuleList(blocks)
        c4 = cfg.channels(4)
        self.mbstd = MinibatchStd(cfg.mbstd_group, cfg.mbstd_channels)
        self.conv = Conv2dLayer(c4 + cfg.mbstd_channels, c4, 3)
        self.fc = FullyConnected(c4 * 16, c4, activation="lrelu")
        self.out = FullyConnected(c4, 1)
        self.to(memory_format=torch.channels_last)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """[N, 3, H, W] in [-1, 1] -> logits [N, 1]."""
        assert_shape(img, (None, 3, self.img_resolution, self.img_resolution))
        x = img.contiguous(memory_format=torch.channels_last)
        for block in self.blocks:
            x = block(x)
        x = self.conv(self.mbstd(x))
        return self.out(self.fc(x.flatten(1)))
