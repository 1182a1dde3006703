"""Build the generator, discriminator and augmentation pipe of a TrainConfig."""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from birdanim.models import DCGANConfig, DCGANDiscriminator, DCGANGenerator, Discriminator, DiscriminatorConfig
from birdanim.models import Generator, GeneratorConfig
from birdanim.models.stylegan2 import ToRGB
from train.loop.augment import AugmentConfig, AugmentPipe, DiffAugment
from train.loop.presets import TrainConfig
from birdanim.models.projected_d import ProjectedDConfig, ProjectedDiscriminator


def generator_config(cfg: TrainConfig):
    if cfg.generator.arch == "dcgan":
        return DCGANConfig(img_resolution=cfg.generator.resolution, z_dim=cfg.generator.z_dim, ngf=cfg.generator.dcgan_ngf, ndf=cfg.discriminator.dcgan_ndf)
    return GeneratorConfig(
        img_resolution=cfg.generator.resolution, z_dim=cfg.generator.z_dim, w_dim=cfg.generator.w_dim,
        channel_base=cfg.generator.channel_base, channel_max=cfg.generator.channel_max, channel_min=cfg.generator.channel_min,
    )


def build_generator(cfg: TrainConfig) -> nn.Module:
    gcfg = generator_config(cfg)
    if cfg.generator.arch == "dcgan":
        return DCGANGenerator(gcfg)
    G = Generator(gcfg)
    if cfg.generator.rgb_init_gain != 1.0:
        scale_torgb_init(G, cfg.generator.rgb_init_gain)
    return G


@torch.no_grad()
def scale_torgb_init(G: nn.Module, gain: float) -> None:
    """Multiply every toRGB weight by `gain` (their biases start at 0, so the initial image scales by `gain`)."""
    for m in G.modules():
        if isinstance(m, ToRGB):
            m.weight.mul_(gain)


WIDTH_FIELDS = ("channel_base", "channel_max", "channel_min")


def growable(src: GeneratorConfig, dst: GeneratorConfig) -> bool:
    """Whether `dst` can start from `src`: the same generator but for a resolution and channel widths at
    least as large at every resolution `src` has."""
    a, b = dataclasses.asdict(src), dataclasses.asdict(dst)
    for k in ("img_resolution", *WIDTH_FIELDS):
        a.pop(k), b.pop(k)
    res = [2**i for i in range(2, int(math.log2(src.img_resolution)) + 1)]
    return a == b and src.img_resolution <= dst.img_resolution and all(src.channels(r) <= dst.channels(r) for r in res)


@torch.no_grad()
def load_grown(G: Generator, state: dict[str, torch.Tensor]) -> int:
    """Load a smaller generator's `state` (see `growable`) into `G` so that G computes the same image.

    Finer blocks that `state` lacks keep their init (with a silenced toRGB, the output is the upsampled
    source image). Wider layers are widened function-preservingly, as in Net2Net: each old tensor fills
    the leading slice of the new one; the new channels keep their init as *outputs*, but the old
    outputs' weights on the new *inputs* are zero, so nothing old sees them until training moves those
    weights (their gradients are not zero). Demodulation makes a modulated conv independent of its
    1/sqrt(fan_in) weight gain; toRGB is not demodulated, so its old weights are rescaled for the new
    fan-in. Returns the number of tensors that were new or widened."""
    changed = 0
    for k, dst in G.state_dict().items():
        if k not in state:
            changed += 1
            continue
        src = state[k].to(dst.dtype)
        if src.shape == dst.shape:
            dst.copy_(src)
            continue
        if src.dim() != dst.dim() or any(a > b for a, b in zip(src.shape, dst.shape)):
            raise ValueError(f"{k}: {tuple(src.shape)} does not fit into {tuple(dst.shape)}")
        changed += 1
        dst[tuple(slice(0, n) for n in src.shape)] = src
        if k.endswith("torgb.weight"):  # [3, in, 1, 1], gain 1 / sqrt(in)
            dst[:, : src.shape[1]] *= math.sqrt(dst.shape[1] / src.shape[1])
            dst[:, src.shape[1]:] = 0
        elif k.endswith(".weight") and dst.dim() == 4:  # modulated conv [out, in, 3, 3]
            dst[: src.shape[0], src.shape[1]:] = 0
    return changed


def build_discriminator(cfg: TrainConfig, feature_net: nn.Module | None = None) -> nn.Module:
    if cfg.generator.arch == "dcgan":
        return DCGANDiscriminator(generator_config(cfg))
    if cfg.discriminator.kind == "classic":
        return Discriminator(DiscriminatorConfig(img_resolution=cfg.generator.resolution, channel_base=cfg.discriminator.channel_base, channel_max=cfg.discriminator.channel_max))
    pcfg = ProjectedDConfig(img_resolution=cfg.generator.resolution, feat_res=cfg.discriminator.feat_res, ccm_channels=cfg.discriminator.ccm_channels, head_channels=cfg.discriminator.head_channels,
                            head_min_res=cfg.discriminator.end_res, separable=cfg.discriminator.separable, mbstd_group=cfg.discriminator.mbstd,
                            equal_heads=cfg.discriminator.equal_heads)
    return ProjectedDiscriminator(pcfg, feature_net)


def build_augment(cfg: TrainConfig) -> nn.Module:
    if cfg.augment.kind == "diffaug":
        return DiffAugment(p=cfg.augment.p)
    return AugmentPipe(AugmentConfig(), p=cfg.augment.p if cfg.augment.kind != "none" else 0.0)
