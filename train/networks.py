"""Build the generator, discriminator and augmentation pipe of a TrainConfig."""

from __future__ import annotations

import torch
from torch import nn

from birdanim.models import DCGANConfig, DCGANDiscriminator, DCGANGenerator, Discriminator, DiscriminatorConfig
from birdanim.models import Generator, GeneratorConfig
from birdanim.models.stylegan2 import ToRGB
from train.augment import AugmentConfig, AugmentPipe, DiffAugment
from train.presets import TrainConfig
from train.projected_d import ProjectedDConfig, ProjectedDiscriminator


def generator_config(cfg: TrainConfig):
    if cfg.arch == "dcgan":
        return DCGANConfig(img_resolution=cfg.resolution, z_dim=cfg.z_dim, ngf=cfg.dcgan_ngf, ndf=cfg.dcgan_ndf)
    return GeneratorConfig(
        img_resolution=cfg.resolution, z_dim=cfg.z_dim, w_dim=cfg.w_dim, mapping_layers=cfg.mapping_layers,
        channel_base=cfg.channel_base, channel_max=cfg.channel_max, channel_min=cfg.channel_min,
    )


def build_generator(cfg: TrainConfig) -> nn.Module:
    gcfg = generator_config(cfg)
    if cfg.arch == "dcgan":
        return DCGANGenerator(gcfg)
    G = Generator(gcfg)
    if cfg.rgb_init_gain != 1.0:
        scale_torgb_init(G, cfg.rgb_init_gain)
    return G


@torch.no_grad()
def scale_torgb_init(G: nn.Module, gain: float) -> None:
    """Multiply every toRGB weight by `gain` (their biases start at 0, so the initial image scales by `gain`)."""
    for m in G.modules():
        if isinstance(m, ToRGB):
            m.weight.mul_(gain)


def build_discriminator(cfg: TrainConfig, feature_net: nn.Module | None = None) -> nn.Module:
    if cfg.arch == "dcgan":
        return DCGANDiscriminator(generator_config(cfg))
    if cfg.d == "classic":
        return Discriminator(DiscriminatorConfig(img_resolution=cfg.resolution, channel_base=cfg.d_channel_base, channel_max=cfg.d_channel_max))
    pcfg = ProjectedDConfig(img_resolution=cfg.resolution, feat_res=cfg.feat_res, ccm_channels=cfg.ccm_channels, head_channels=cfg.head_channels,
                            head_min_res=cfg.d_end_res, separable=cfg.d_separable, mbstd_group=cfg.d_mbstd,
                            equal_heads=cfg.d_equal_heads)
    return ProjectedDiscriminator(pcfg, feature_net)


def build_augment(cfg: TrainConfig) -> nn.Module:
    if cfg.aug == "diffaug":
        return DiffAugment(p=cfg.aug_p)
    return AugmentPipe(AugmentConfig(), p=cfg.aug_p if cfg.aug != "none" else 0.0)
