"""DCGAN baseline (Radford et al. 2016; the original project's baseline), same `G(z) -> img` interface."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from birdanim.models.layers import assert_shape


@dataclass
class DCGANConfig:
    img_resolution: int = 64  # output side, a power of two >= 16; 64 px gives 5 transposed convs
    z_dim: int = 100  # input noise width
    ngf: int = 64  # generator channels at the last hidden layer (doubling toward 4x4)
    ndf: int = 64  # discriminator channels at the first layer (doubling toward 4x4)

    def __post_init__(self):
        r = self.img_resolution
        if r < 16 or r & (r - 1):
            raise ValueError(f"img_resolution must be a power of two >= 16, got {r}")

    @property
    def num_up(self) -> int:  # stride-2 layers between 4x4 and the output
        return int(math.log2(self.img_resolution)) - 2


def _init_dcgan(m: nn.Module) -> None:
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class DCGANGenerator(nn.Module):
    def __init__(self, cfg: DCGANConfig):
        super().__init__()
        self.cfg = cfg
        self.z_dim, self.img_resolution = cfg.z_dim, cfg.img_resolution
        n = cfg.num_up
        chans = [cfg.ngf * 2 ** (n - 1 - i) for i in range(n)]  # 4x4 .. res/2
        layers = [nn.ConvTranspose2d(cfg.z_dim, chans[0], 4, 1, 0, bias=False), nn.BatchNorm2d(chans[0]), nn.ReLU(True)]
        for a, b in zip(chans[:-1], chans[1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(chans[-1], 3, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(_init_dcgan)

    def forward(self, z: torch.Tensor, **_ignored) -> torch.Tensor:
        """[N, z_dim] -> [N, 3, res, res] in [-1, 1]. Extra keywords (psi, noise_mode) are ignored."""
        assert_shape(z, (None, self.z_dim))
        return self.net(z[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    def __init__(self, cfg: DCGANConfig):
        super().__init__()
        self.cfg = cfg
        self.img_resolution = cfg.img_resolution
        n = cfg.num_up
        chans = [cfg.ndf * 2**i for i in range(n)]  # res/2 .. 4x4
        layers = [nn.Conv2d(3, chans[0], 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        for a, b in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(chans[-1], 1, 4, 1, 0, bias=False)]
        self.net = nn.Sequential(*layers)
        self.apply(_init_dcgan)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """[N, 3, res, res] -> logits [N, 1]."""
        assert_shape(img, (None, 3, self.img_resolution, self.img_resolution))
        return self.net(img).flatten(1)
