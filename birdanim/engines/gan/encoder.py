"""A small CNN that predicts a starting ws for the projector from an image, in one forward pass.

    E = load_encoder("weights/")                       # weights/encoder/{model.safetensors, config.json}
    ws = E(img)                                        # img [N, 3, R, R] in [-1, 1] -> [N, num_ws, w_dim]

It predicts ws as w_avg + a shared delta + a per-layer delta, so an untrained encoder already
returns the average bird. Trained on the generator's own samples (train/tools/train_encoder.py).

Two trunks: "lite0" (default) reads frozen ImageNet EfficientNet-Lite0 features (birdanim.models.features;
not stored in the checkpoint) and trains only a small head: it learns from few samples and carries
over to real photos, which the generator's samples only approximate. "cnn" is a small CNN trained
from scratch (no pretrained weights needed).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from birdanim.checkpoint import CheckpointError, load_state_dict, save_state_dict, write_json_atomic

ENCODER_DIR = "encoder"  # sub-folder of a weights folder


@dataclass
class EncoderConfig:
    num_ws: int = 14  # rows of ws to predict (the generator's num_ws)
    w_dim: int = 512  # width of each row (the generator's w_dim)
    input_res: int = 128  # images are resized to input_res x input_res pixels before the CNN
    channels: tuple[int, ...] = (32, 64, 128, 256, 256)  # widths of the stride-2 conv stages ("cnn" trunk)
    backbone: str = "cnn"  # "cnn": trained from scratch; "lite0": frozen EfficientNet-Lite0 + trained head
    head_dim: int = 512  # hidden width of the "lite0" head
    generator_sha256: str = ""  # sha256 of the model.safetensors it was trained for ("" unknown)

    def __post_init__(self):
        self.channels = tuple(self.channels)
        if self.backbone not in ("cnn", "lite0"):
            raise ValueError(f"backbone must be 'cnn' or 'lite0', got {self.backbone!r}")


class WEncoder(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.input_res, self.num_ws, self.w_dim = cfg.input_res, cfg.num_ws, cfg.w_dim
        if cfg.backbone == "lite0":
            self.trunk = Lite0Trunk(cfg.head_dim)
            c_in = cfg.head_dim
        else:
            layers, c_in = [], 3
            for c in cfg.channels:  # each stage halves the resolution
                layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                           nn.Conv2d(c, c, 3, padding=1), nn.LeakyReLU(0.2)]
                c_in = c
            layers.append(GlobalAvgPool())
            self.trunk = nn.Sequential(*layers)
        self.shared = nn.Linear(c_in, cfg.w_dim)  # one delta for all rows: most of W+ is near W
        self.per_layer = nn.Linear(c_in, cfg.num_ws * cfg.w_dim)
        for lin in (self.shared, self.per_layer):
            nn.init.zeros_(lin.weight)  # start at w_avg exactly
            nn.init.zeros_(lin.bias)
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """img [N, 3, H, W] in [-1, 1] (resized to input_res) -> ws [N, num_ws, w_dim]."""
        if img.shape[-1] != self.input_res or img.shape[-2] != self.input_res:
            img = F.interpolate(img, size=(self.input_res,) * 2, mode="bilinear", antialias=True, align_corners=False)
        h = self.trunk(img.float())
        delta = self.shared(h).unsqueeze(1) + self.per_layer(h).view(-1, self.num_ws, self.w_dim)
        return self.w_avg + delta


class GlobalAvgPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class Lite0Trunk(nn.Module):
    """Frozen EfficientNet-Lite0 features -> [N, head_dim]: the stride-32 map keeps its spatial layout
    (pose lives there) through a trained 1x1 conv pooled to 4x4; the stride-8 and stride-16 maps are
    averaged. The frozen network is held outside the state dict (it comes from its own package)."""

    GRID = 4  # the stride-32 map is pooled to GRID x GRID cells

    def __init__(self, head_dim: int):
        super().__init__()
        self._net: list = []  # [EfficientNetLiteFeatures], loaded on first use, not saved
        self.reduce = nn.Conv2d(320, 64, 1)
        self.mlp = nn.Sequential(nn.Linear(64 * self.GRID**2 + 40 + 112, head_dim), nn.LeakyReLU(0.2))

    def net(self, device):
        if not self._net:
            from birdanim.models.features import load_efficientnet_lite

            self._net.append(load_efficientnet_lite(0, device))
        return self._net[0].to(device)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            _, f8, f16, f32 = self.net(img.device).forward_features(img)
        grid = F.adaptive_avg_pool2d(self.reduce(f32.float()), self.GRID).flatten(1)
        return self.mlp(torch.cat([grid, f8.float().mean(dim=(2, 3)), f16.float().mean(dim=(2, 3))], dim=1))


def save_encoder(E: WEncoder, weights_folder: str | Path) -> Path:
    folder = Path(weights_folder) / ENCODER_DIR
    folder.mkdir(parents=True, exist_ok=True)
    save_state_dict(E.state_dict(), folder / "model.safetensors", torch.float16)  # halves the file; run in fp32
    write_json_atomic(folder / "config.json", asdict(E.cfg))
    return folder


def load_encoder(weights_folder: str | Path, device: torch.device | str = "cpu", G: nn.Module | None = None,
                 weights_file: str | Path | None = None) -> WEncoder:
    """Load weights_folder/encoder/; with G, check that it predicts ws of G's shape; with weights_file
    (G's model.safetensors), check that the encoder was trained for exactly those weights."""
    folder = Path(weights_folder) / ENCODER_DIR
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise CheckpointError(f"no encoder in {folder} (expected model.safetensors and config.json)")
    cfg = EncoderConfig(**json.loads((folder / "config.json").read_text()))
    if G is not None and (cfg.num_ws, cfg.w_dim) != (G.num_ws, G.w_dim):
        raise CheckpointError(f"encoder predicts ws [{cfg.num_ws}, {cfg.w_dim}] but G uses [{G.num_ws}, {G.w_dim}]")
    if weights_file is not None and cfg.generator_sha256:
        from birdanim.engines.gan.poses import sha256_file

        if sha256_file(weights_file) != cfg.generator_sha256:
            raise CheckpointError(f"the encoder in {folder} was trained for other generator weights; retrain it "
                                  "with train/tools/train_encoder.py")
    E = WEncoder(cfg)
    E.load_state_dict({k: v.float() for k, v in load_state_dict(folder / "model.safetensors").items()})
    return E.to(device).eval().requires_grad_(False)
