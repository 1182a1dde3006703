"""StyleGAN2 generator in plain PyTorch, shaped for fast CPU inference.

The contract (shared with NVlabs' stylegan2-ada, so style mixing is slicing rows of `ws`):

    ws  = G.mapping(z, psi=1.0)              # [N, num_ws, w_dim]
    img = G.synthesis(ws, noise_mode="const") # [N, 3, H, W] in about [-1, 1]
    img = G(z)                                # both

Speed: instead of modulating the convolution *weights* per sample (one grouped convolution per
sample, as NVlabs does), we modulate the *activations*: scale the input channels by the style,
run one dense convolution for the whole batch, then scale the output channels by the
demodulation coefficients. The result is mathematically the same, and a dense batched convolution
in channels_last memory format runs near the CPU's peak (see docs/MEASUREMENTS.md in ../shared).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from birdanim.models.layers import SQRT2, FullyConnected, assert_shape, normalize_2nd_moment, upsample2x

NOISE_MODES = ("const", "random", "none")


@dataclass
class GeneratorConfig:
    """Architecture of the StyleGAN2 generator; stored as config.json beside the weights."""

    img_resolution: int = 256  # output side in pixels, a power of two in 32..256 (larger works too)
    z_dim: int = 512  # input noise width
    w_dim: int = 512  # intermediate latent width
    mapping_layers: int = 2  # fully connected layers in the mapping network (1..8)
    mapping_lr_mul: float = 0.01  # learning-rate multiplier of the mapping network
    # Channels at resolution r are clip(channel_base // r, channel_min, channel_max). The default
    # [256, 256, 128, 64, 32, 16, 16] for 4..256 px is ~1.7 GFLOPs per frame: sized for a 2-core CPU.
    channel_base: int = 2048
    channel_max: int = 256
    channel_min: int = 16  # lower bound on channels at any resolution (keeps 256 px layers useful)
    conv_clamp: float | None = None  # clamp activations to +-this (None: no clamp; NVlabs clamps fp16 layers at 256)
    w_avg_beta: float = 0.995  # decay of the tracked w average used for truncation

    def __post_init__(self):
        r = self.img_resolution
        if r < 8 or r & (r - 1):
            raise ValueError(f"img_resolution must be a power of two >= 8, got {r}")
        if not 1 <= self.mapping_layers <= 8:
            raise ValueError(f"mapping_layers must be in 1..8, got {self.mapping_layers}")

    @property
    def num_ws(self) -> int:
        return 2 * int(math.log2(self.img_resolution)) - 2

    def channels(self, res: int) -> int:
        return max(min(self.channel_base // res, self.channel_max), self.channel_min)


class MappingNetwork(nn.Module):
    def __init__(self, z_dim: int, w_dim: int, num_ws: int, num_layers: int, lr_mul: float, w_avg_beta: float):
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws = z_dim, w_dim, num_ws
        self.w_avg_beta = w_avg_beta
        dims = [z_dim] + [w_dim] * num_layers
        self.layers = nn.ModuleList(
            FullyConnected(dims[i], dims[i + 1], activation="lrelu", lr_mul=lr_mul) for i in range(num_layers)
        )
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(
        self,
        z: torch.Tensor,  # [N, z_dim]
        psi: float = 1.0,  # truncation: 1 = none, 0 = every w becomes w_avg
        update_w_avg: bool = False,  # training only: move w_avg toward this batch's mean w
    ) -> torch.Tensor:
        assert_shape(z, (None, self.z_dim))
        x = normalize_2nd_moment(z.float())
        for layer in self.layers:
            x = layer(x)
        if update_w_avg:
            self.w_avg.copy_(x.detach().mean(0).lerp(self.w_avg, self.w_avg_beta))
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if psi != 1.0:
            ws = self.w_avg.lerp(ws, psi)
        return ws


class ModulatedConv(nn.Module):
    """3x3 modulated convolution with weight demodulation, noise, bias and leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: bool, conv_clamp):
        super().__init__()
        self.up = up
        self.resolution = resolution
        self.conv_clamp = conv_clamp
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.weight_gain = 1.0 / math.sqrt(in_channels * 9)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        styles = self.affine(w)  # [N, in]
        weight = self.weight * self.weight_gain
        # Demodulation: 1 / ||w_oik * s_i|| over (i, k), for each sample n and output channel o.
        # The leaky ReLU's gain sqrt(2) is folded in here and into `offset` (lrelu(a*x) = a*lrelu(x), a > 0).
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt() * SQRT2  # [N, out]
        x = x * styles[:, :, None, None]  # modulate before upsampling: same result, 4x fewer pixels
        if self.up:
            x = upsample2x(x)
        x = F.conv2d(x, weight, padding=1)
        # Noise + bias as one offset laid out NHWC like x: a tensor in another layout would make the
        # fused op below write NCHW, and every later op would pay for converting it back.
        offset = self.bias * SQRT2  # [out], broadcast over the trailing (channel) axis of NHWC
        res = self.resolution
        if noise_mode == "const":  # [1, H, W, out], batch-independent
            offset = (self.noise_const * (self.noise_strength * SQRT2))[None, :, :, None] + offset
        elif noise_mode == "random":  # [N, H, W, out]
            noise = torch.randn(x.shape[0], res, res, 1, device=x.device)
            offset = noise * (self.noise_strength * SQRT2) + offset
        else:
            offset = offset.view(1, 1, 1, -1)
        offset = offset.permute(0, 3, 1, 2)  # NCHW view with channels_last strides
        # One fused pass for demodulation + noise + bias, one in-place pass for the activation.
        x = F.leaky_relu_(torch.addcmul(offset, x, dcoefs[:, :, None, None]), 0.2)
        if self.conv_clamp is not None:
            x = x.clamp(-self.conv_clamp, self.conv_clamp)
        return x


class ToRGB(nn.Module):
    """Modulated 1x1 convolution to RGB, without demodulation."""

    def __init__(self, in_channels: int, w_dim: int, conv_clamp):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(3, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(3))
        self.weight_gain = 1.0 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain  # [N, in]
        # Fold the styles into per-sample 1x1 weights and apply them as one batched matmul over the
        # channels_last view [N, H*W, C]: no extra pass over the (largest) activations.
        n, c, h, wd = x.shape
        weight = self.weight.view(1, 3, c) * styles[:, None, :]  # [N, 3, in]
        pix = x.permute(0, 2, 3, 1).reshape(n, h * wd, c)  # a view when x is channels_last
        y = torch.baddbmm(self.bias.view(1, 1, 3), pix, weight.transpose(1, 2))  # [N, H*W, 3]
        y = y.view(n, h, wd, 3).permute(0, 3, 1, 2)
        if self.conv_clamp is not None:
            y = y.clamp(-self.conv_clamp, self.conv_clamp)
        return y


class SynthesisBlock(nn.Module):
    """One resolution: (upsample +) two modulated convs, and a toRGB added to the upsampled image."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, conv_clamp):
        super().__init__()
        self.is_first = in_channels == 0
        self.resolution = resolution
        if self.is_first:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = ModulatedConv(in_channels, out_channels, w_dim, resolution, up=True, conv_clamp=conv_clamp)
        self.conv1 = ModulatedConv(out_channels, out_channels, w_dim, resolution, up=False, conv_clamp=conv_clamp)
        self.torgb = ToRGB(out_channels, w_dim, conv_clamp)
        self.num_conv = 1 if self.is_first else 2

    def forward(self, x, img, ws: torch.Tensor, noise_mode: str):
        # ws: [N, num_conv + 1, w_dim]; the last row (toRGB) is shared with the next block's first conv.
        if self.is_first:
            x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1).contiguous(memory_format=torch.channels_last)
            x = self.conv1(x, ws[:, 0], noise_mode)
        else:
            x = self.conv0(x, ws[:, 0], noise_mode)
            x = self.conv1(x, ws[:, 1], noise_mode)
        y = self.torgb(x, ws[:, self.num_conv])
        img = y if img is None else upsample2x(img) + y
        return x, img


class SynthesisNetwork(nn.Module):
    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.w_dim = cfg.w_dim
        self.img_resolution = cfg.img_resolution
        self.resolutions = [2**i for i in range(2, int(math.log2(cfg.img_resolution)) + 1)]
        blocks = []
        for res in self.resolutions:
            in_ch = 0 if res == 4 else cfg.channels(res // 2)
            blocks.append(SynthesisBlock(in_ch, cfg.channels(res), cfg.w_dim, res, cfg.conv_clamp))
        self.blocks = nn.ModuleList(blocks)
        self.num_ws = sum(b.num_conv for b in self.blocks) + 1

    def forward(self, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        assert_shape(ws, (None, self.num_ws, self.w_dim))
        ws = ws.float()
        x = img = None
        i = 0
        for block in self.blocks:
            x, img = block(x, img, ws[:, i : i + block.num_conv + 1], noise_mode)
            i += block.num_conv
        return img.contiguous()


class Generator(nn.Module):
    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        self.z_dim, self.w_dim, self.img_resolution = cfg.z_dim, cfg.w_dim, cfg.img_resolution
        self.synthesis = SynthesisNetwork(cfg)
        self.num_ws = self.synthesis.num_ws
        assert self.num_ws == cfg.num_ws
        self.mapping = MappingNetwork(
            cfg.z_dim, cfg.w_dim, self.num_ws, cfg.mapping_layers, cfg.mapping_lr_mul, cfg.w_avg_beta
        )
        self.to(memory_format=torch.channels_last)

    def forward(self, z: torch.Tensor, psi: float = 1.0, noise_mode: str = "const"):
        return self.synthesis(self.mapping(z, psi=psi), noise_mode=noise_mode)


def z_from_seeds(seeds, z_dim: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Deterministic z per integer seed (drawn on the CPU with numpy, then moved to `device`)."""
    z = np.stack([np.random.RandomState(int(s)).randn(z_dim) for s in seeds]).astype(np.float32)
    return torch.from_numpy(z).to(device)


def conv_gflops(cfg: GeneratorConfig) -> float:
    """Multiply-adds x 2 of the synthesis network's convolutions for one image, in GFLOPs."""
    flops = 0
    for res in [2**i for i in range(2, int(math.log2(cfg.img_resolution)) + 1)]:
        c_out = cfg.channels(res)
        c_in = cfg.channels(res // 2) if res > 4 else c_out
        n_conv = [(c_out, c_out)] if res == 4 else [(c_in, c_out), (c_out, c_out)]
        flops += sum(2 * 9 * a * b * res * res for a, b in n_conv)
        flops += 2 * c_out * 3 * res * res  # toRGB
    return flops / 1e9
