"""Projected discriminator (Sauer et al. 2021, "Projected GANs Converge Faster"), sized for a CPU.

    image [N,3,R,R] in [-1,1]
      -> resize to feat_res (the feature network's input side; 128 instead of 256 halves its cost 4x)
      -> frozen ImageNet EfficientNet-Lite0: 4 maps at strides 4/8/16/32        (birdanim.models.features)
      -> CCM: a random 1x1 conv per scale (fixed at init, never trained)
      -> CSM: from deepest to shallowest, upsample and add, then a random 3x3 conv (fixed)
      -> one small trainable patch discriminator per scale (strided 4x4 convs, spectral norm, BN;
         optionally a minibatch-stddev channel before the last conv)
      -> logits [N, P]: every patch logit of every scale, concatenated (the losses average them, each
         alike or, with equal_heads, each scale's head alike)

The feature network and the random projections form F (frozen); only the heads learn. Use hinge
or non-saturating loss on all patch logits; no R1 needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from birdanim.models.features import load_efficientnet_lite
from birdanim.models.discriminator import MinibatchStd


@dataclass
class ProjectedDConfig:
    img_resolution: int = 256  # side of the images D judges (generator output)
    feat_res: int = 128  # images are resized to this side before the feature network (multiple of 32)
    ccm_channels: int = 32  # CCM output channels of the finest scale; x2 per coarser scale (paper: 64)
    head_channels: int = 64  # base width of the heads' strided convs (doubling as they shrink, capped x4)
    head_min_res: int = 4  # heads downsample until their map is this side, then a 1-channel conv
    separable: bool = False  # heads use depthwise-separable 3x3 convs + 2x2 average pooling instead of strided
    # 4x4 convs: a weaker D, which the Projected GAN authors made the default for a StyleGAN2 generator
    mbstd_group: int = 0  # > 0: each head appends a minibatch-stddev channel (groups of this many images)
    # before its last conv, so D can see a batch of fakes that all look alike (StyleGAN's answer to
    # mode collapse; the Projected GAN paper has none). 0: off (the paper's heads).
    equal_heads: bool = False  # weight each scale's head equally in the losses (patch_weights) instead of each
    # patch logit equally. At feat_res 128 the heads give 25/25/25/1 patch logits (the deepest map is 4x4), so
    # the semantic head weighs 1/76 of the loss; at the paper's 224 px input every head gives 16 (1/4 each).


class RandomProjection(nn.Module):
    """CCM + CSM: fixed random mixing of the 4 feature maps (not trained; buffers, not parameters)."""

    def __init__(self, in_channels: list[int], ccm_channels: int, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.out_channels = [ccm_channels * 2**i for i in range(len(in_channels))]
        for i, (cin, cout) in enumerate(zip(in_channels, self.out_channels)):
            # Kaiming-uniform like nn.Conv2d's default init, so activations keep their scale.
            self.register_buffer(f"ccm{i}", _kaiming(cout, cin, 1, g))
            if i < len(in_channels) - 1:  # CSM: deeper map (cout*2 ch) projected to this scale's width
                self.register_buffer(f"up{i}", _kaiming(cout, self.out_channels[i + 1], 1, g))
                self.register_buffer(f"csm{i}", _kaiming(cout, cout, 3, g))

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        n = len(feats)
        ccm = [F.conv2d(f, getattr(self, f"ccm{i}")) for i, f in enumerate(feats)]
        out = [None] * n
        out[-1] = ccm[-1]
        for i in range(n - 2, -1, -1):
            deeper = F.conv2d(out[i + 1], getattr(self, f"up{i}"))
            x = ccm[i] + F.interpolate(deeper, size=ccm[i].shape[-2:], mode="bilinear", align_corners=False)
            out[i] = F.conv2d(x, getattr(self, f"csm{i}"), padding=1)
        return out


def _kaiming(cout: int, cin: int, k: int, g: torch.Generator) -> torch.Tensor:
    bound = (6.0 / (cin * k * k)) ** 0.5 / (2**0.5)  # gain-1 uniform: keeps variance roughly constant
    return (torch.rand(cout, cin, k, k, generator=g) * 2 - 1) * bound


class SeparableConv(nn.Sequential):
    """Depthwise 3x3 conv then pointwise 1x1 conv, both spectral-normed."""

    def __init__(self, cin: int, cout: int):
        super().__init__(
            spectral_norm(nn.Conv2d(cin, cin, 3, 1, 1, groups=cin, bias=False)),
            spectral_norm(nn.Conv2d(cin, cout, 1, bias=False)),
        )


class PatchHead(nn.Module):
    """Down blocks (spectral norm + BN + leaky ReLU) from side `res` down to `min_res`, then a 4x4 conv
    to one channel: [N, C, res, res] -> patch logits [N, 1, h, w] (h = min_res - 3). A down block is a
    strided 4x4 conv, or with `separable` a depthwise-separable 3x3 conv followed by 2x2 average pooling."""

    def __init__(self, in_channels: int, res: int, base: int, min_res: int, mbstd_group: int = 0, separable: bool = False):
        super().__init__()
        layers, c, r = [], in_channels, res
        width = base
        while r > min_res:
            if separable:
                layers += [SeparableConv(c, width), nn.BatchNorm2d(width), nn.LeakyReLU(0.2, True), nn.AvgPool2d(2)]
            else:
                layers += [spectral_norm(nn.Conv2d(c, width, 4, 2, 1, bias=False)), nn.BatchNorm2d(width), nn.LeakyReLU(0.2, True)]
            c, r = width, r // 2
            width = min(width * 2, base * 4)
        if mbstd_group > 0:  # no parameters: with it off, the state dict is the same as before it existed
            layers.append(MinibatchStd(mbstd_group, 1))
            c += 1
        layers.append(spectral_norm(nn.Conv2d(c, 1, 4, 1, 0)))  # padding 0: 4x4 -> 1x1 patch logit
        self.net = nn.Sequential(*layers)
        self.min_res = min_res
        while res > min_res:
            res //= 2
        self.num_patches = max(res - 3, 1) ** 2  # the final 4x4 conv (padding 0; tiny maps are padded to 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] < 4:  # tiny inputs (tests): pad so the final 4x4 conv fits
            x = F.pad(x, [0, 4 - x.shape[-1], 0, 4 - x.shape[-2]])
        return self.net(x)


class ProjectedDiscriminator(nn.Module):
    def __init__(self, cfg: ProjectedDConfig, feature_net: nn.Module | None = None):
        super().__init__()
        if cfg.feat_res % 32:
            raise ValueError(f"feat_res must be a multiple of 32, got {cfg.feat_res}")
        self.cfg = cfg
        self.img_resolution = cfg.img_resolution
        # Not a registered submodule: its frozen ImageNet weights stay out of D's state dict.
        self._features = [feature_net if feature_net is not None else load_efficientnet_lite(0)]
        self.proj = RandomProjection(self.features.channels, cfg.ccm_channels)
        sides = [cfg.feat_res // s for s in (4, 8, 16, 32)]
        self.heads = nn.ModuleList(
            PatchHead(c, side, cfg.head_channels, min(cfg.head_min_res, side), cfg.mbstd_group, cfg.separable)
            for c, side in zip(self.proj.out_channels, sides)
        )
        # Loss weight of every patch logit, mean 1 (train/loop/loss.py): None = all alike (the mean over all patches).
        self.patch_weights = None
        if cfg.equal_heads:
            sizes = [h.num_patches for h in self.heads]
            self.patch_weights = torch.cat([torch.full((p,), sum(sizes) / (len(sizes) * p)) for p in sizes])

    @property
    def features(self) -> nn.Module:
        return self._features[0]

    def to(self, *args, **kwargs):
        self._features[0] = self._features[0].to(*args, **kwargs)
        return super().to(*args, **kwargs)

    def project(self, img: torch.Tensor) -> list[torch.Tensor]:
        """The frozen part F: image -> 4 mixed feature maps (differentiable w.r.t. the image)."""
        if img.shape[-1] != self.cfg.feat_res:
            img = resize(img, self.cfg.feat_res)
        return self.proj(self.features.forward_features(img))

    def logits(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """The trainable part: 4 projected maps -> patch logits [N, P] over all scales."""
        return torch.cat([head(f).flatten(1) for head, f in zip(self.heads, feats)], dim=1)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """[N, 3, R, R] in [-1, 1] -> patch logits [N, P] over all scales."""
        return self.logits(self.project(img))


def resize(img: torch.Tensor, side: int) -> torch.Tensor:
    """Differentiable resize: box filter for integer downscales (cheap, alias-free), else bilinear."""
    h = img.shape[-1]
    if h > side and h % side == 0:
        return F.avg_pool2d(img, h // side)
    return F.interpolate(img, size=(side, side), mode="bilinear", align_corners=False, antialias=h > side)
