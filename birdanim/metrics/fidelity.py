"""How faithful an animation is to the user's bird, measured from the video alone (any engine).

The crops compared are made the way the training crops were made (../shared/data/birds256/README.md,
"How a CUB crop is made"; `birdanim.stages.detect.square_window` with margin 0.25, `crop_square`):
a square 1.25x the long side of the bird's box, clamped inside the image, edge-padded only where the
image is too small, resized to 256 px (Lanczos). Where the detector finds no bird, the crop is the
largest centred square of the image (for a square frame: the full frame).

- identity: mean over frames of the cosine between the EfficientNet-Lite2 pooled features (1280-d,
  at 260 px) of the bird crop of each frame and the bird crop of the input photo;
- scale: the same cosine between two test photos of the same CUB species, and of different species;
- flight: P(bird in flight) of a logistic-regression probe on Lite2 features (`FlightProbe`), on the
  bird crop of each frame; a frame where no bird is detected scores 0 (so sky cannot pass for flight);
- bird-detect: share of frames where YOLOv8n finds a bird (conf >= 0.25);
- motion: spread (std) over frames of the detected box's aspect ratio (width / height) and of its area
  relative to the mean area: a bird that does not move scores ~0.

Pure functions on numpy arrays; torch is imported inside the functions that need it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from birdanim.stages.detect import Box, crop_square, square_window

CROP = 256  # side of the compared crops: the training crops' side (Lite2 then resizes to its 260)
MARGIN = 0.25  # the training crops' margin around the box
LITE2 = 2  # EfficientNet-Lite variant of the metrics


# ---------------------------------------------------------------- crops and features


def bird_crop(img: Image.Image | np.ndarray, box: Box | None, size: int = CROP) -> np.ndarray:
    """uint8 [size, size, 3]: the training-style square crop around `box` (None: largest centred square)."""
    im = img if isinstance(img, Image.Image) else Image.fromarray(np.asarray(img, np.uint8))
    return np.asarray(crop_square(im, square_window(box, im.width, im.height, MARGIN), size))


def embed(net, crops: np.ndarray | list[np.ndarray], batch: int = 16) -> np.ndarray:
    """uint8 crops [N, H, W, 3] (one size) -> float32 [N, 1280] pooled features of `net` (`net.pooled`; Lite2
    for the metrics)."""
    import torch

    from birdanim.imageops import uint8_to_float

    arr = np.asarray(crops, np.uint8)
    out = []
    with torch.no_grad():
        for i in range(0, len(arr), batch):
            x = uint8_to_float(torch.from_numpy(arr[i : i + batch]).permute(0, 3, 1, 2))
            out.append(net.pooled(x).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, net.pooled_dim), np.float32)


def load_lite2(device="cpu"):
    from birdanim.models.features import load_efficientnet_lite

    return load_efficientnet_lite(LITE2, device)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of [N, D] and [N, D] (or [D], broadcast) -> [N]."""
    a = np.atleast_2d(np.asarray(a, np.float64))
    b = np.atleast_2d(np.asarray(b, np.float64))
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    return (a * b).sum(1) / np.maximum(na * nb, 1e-12)


def identity(frame_feats: np.ndarray, photo_feat: np.ndarray) -> float:
    """Mean over frames of cos(features of the frame's bird crop, features of the photo's bird crop)."""
    return float(cosine(frame_feats, photo_feat).mean())


def scale_pairs(labels: list[str], n_pairs: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random index pairs [n, 2] of items with the same label and with different labels (no self pairs)."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    groups = {k: np.flatnonzero(labels == k) for k in np.unique(labels)}
    multi = [g for g in groups.values() if len(g) >= 2]
    if not multi or len(groups) < 2:
        raise ValueError("need a label with two items and two different labels")
    sizes = np.array([len(g) * (len(g) - 1) for g in multi], np.float64)  # pick groups by their pair count
    same = []
    for gi in rng.choice(len(multi), size=n_pairs, p=sizes / sizes.sum()):
        same.append(rng.choice(multi[gi], size=2, replace=False))
    diff = []
    while len(diff) < n_pairs:
        i, j = rng.choice(len(labels), size=2, replace=False)
        if labels[i] != labels[j]:
            diff.append((i, j))
    return np.array(same, np.int64), np.array(diff, np.int64)


def pose_pairs(labels: list[str], flying, n_pairs: int = 200, seed: int = 0) -> np.ndarray:
    """Random index pairs [n, 2] (a perched item, a flying item) with the same label: how close a real photo
    of a species in flight comes to a perched photo of that species (the identity a flight can keep when
    it keeps only the species)."""
    rng = np.random.default_rng(seed)
    labels, flying = np.asarray(labels), np.asarray(flying, bool)
    groups = []
    for k in np.unique(labels):
        perched, flyers = np.flatnonzero((labels == k) & ~flying), np.flatnonzero((labels == k) & flying)
        if len(perched) and len(flyers):
            groups.append((perched, flyers))
    if not groups:
        raise ValueError("need a label with both a perched and a flying item")
    sizes = np.array([len(a) * len(b) for a, b in groups], np.float64)
    pairs = [(rng.choice(groups[g][0]), rng.choice(groups[g][1]))
             for g in rng.choice(len(groups), size=n_pairs, p=sizes / sizes.sum())]
    return np.array(pairs, np.int64)


def pair_cosine(feats: np.ndarray, pairs: np.ndarray) -> float:
    return float(cosine(feats[pairs[:, 0]], feats[pairs[:, 1]]).mean())


# ---------------------------------------------------------------- the flight probe


@dataclass
class FlightProbe:
    """Logistic regression P(flying) = sigmoid(((x - mean) / std) . weight + bias) on pooled features (Lite2:
    the benchmark's probe; Lite0: the rig engine's, beside the keypoint model)."""

    weight: np.ndarray  # [D]
    bias: float
    mean: np.ndarray  # [D] feature standardisation, from the training set
    std: np.ndarray  # [D]
    info: dict = field(default_factory=dict)  # accuracy, data used, l2, ... (written to the json)

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray, l2: float = 1.0, balanced: bool = True, iters: int = 50) -> FlightProbe:
        """Fit by Newton's method (IRLS) on standardised features; l2: penalty on the weights (not the
        bias) of the mean (class-weighted) log-loss, scaled by 1/N; balanced: each class weighs half."""
        X = np.asarray(X, np.float64)
        y = np.asarray(y, np.float64)
        mean, std = X.mean(0), X.std(0) + 1e-6
        Z = np.concatenate([(X - mean) / std, np.ones((len(X), 1))], 1)
        w_s = np.ones(len(y))
        if balanced:
            pos = y.mean()
            if not 0 < pos < 1:
                raise ValueError("both classes are needed to fit the probe")
            w_s = np.where(y > 0.5, 0.5 / pos, 0.5 / (1 - pos))
        w_s = w_s / w_s.sum()
        reg = np.full(Z.shape[1], l2 / len(y))
        reg[-1] = 0.0  # the bias is not penalised
        theta = np.zeros(Z.shape[1])
        for _ in range(iters):
            p = _sigmoid(Z @ theta)
            grad = Z.T @ (w_s * (p - y)) + reg * theta
            H = (Z * (w_s * p * (1 - p))[:, None]).T @ Z + np.diag(reg + 1e-10)
            step = np.linalg.solve(H, grad)
            theta -= step
            if np.abs(step).max() < 1e-7:
                break
        return cls(theta[:-1].astype(np.float32), float(theta[-1]), mean.astype(np.float32), std.astype(np.float32))

    def proba(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, np.float64))
        return _sigmoid(((X - self.mean) / self.std) @ self.weight.astype(np.float64) + self.bias)

    def save(self, path: str | Path) -> tuple[Path, Path]:
        """PATH.safetensors (weight, bias, mean, std) and PATH.json (self.info)."""
        from safetensors.numpy import save_file

        path = Path(path).with_suffix(".safetensors")
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({"weight": self.weight.astype(np.float32), "bias": np.array([self.bias], np.float32),
                   "mean": self.mean.astype(np.float32), "std": self.std.astype(np.float32)}, str(path))
        js = path.with_suffix(".json")
        js.write_text(json.dumps(self.info, indent=2) + "\n")
        return path, js

    @classmethod
    def load(cls, path: str | Path) -> FlightProbe:
        from safetensors.numpy import load_file

        path = Path(path).with_suffix(".safetensors")
        t = load_file(str(path))
        js = path.with_suffix(".json")
        info = json.loads(js.read_text()) if js.is_file() else {}
        return cls(t["weight"], float(t["bias"][0]), t["mean"], t["std"], info)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow warnings for large |x|


def classification_report(p: np.ndarray, y: np.ndarray, threshold: float = 0.5) -> dict:
    """accuracy, balanced accuracy, recall per class, ROC AUC and the mean probability per class of
    probabilities p against labels y (1 = flying)."""
    y = np.asarray(y).astype(bool)
    p = np.asarray(p, np.float64)
    pred = p >= threshold
    rec_pos = float((pred & y).sum() / max(y.sum(), 1))
    rec_neg = float((~pred & ~y).sum() / max((~y).sum(), 1))
    order = np.argsort(p)
    ranks = np.empty(len(p))
    ranks[order] = np.arange(1, len(p) + 1)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    auc = float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / max(n_pos * n_neg, 1))
    return {"accuracy": float((pred == y).mean()), "balanced_accuracy": (rec_pos + rec_neg) / 2,
            "recall_flying": rec_pos, "recall_perched": rec_neg, "auc": auc, "n_flying": n_pos, "n_perched": n_neg,
            "mean_p_flying": float(np.mean(p[y])) if n_pos else float("nan"),
            "mean_p_perched": float(np.mean(p[~y])) if n_neg else float("nan")}


# ---------------------------------------------------------------- detection and motion


def largest_bird(detector, img: Image.Image | np.ndarray) -> Box | None:
    """The detector's largest (merged) bird box, or None."""
    im = img if isinstance(img, Image.Image) else Image.fromarray(np.asarray(img, np.uint8))
    boxes = detector(im)
    return boxes[0] if boxes else None


def motion(boxes: list[Box | None]) -> dict[str, float]:
    """Spread over frames of the detected box: std of width/height and std of area/mean area.

    Frames without a box are left out; NaN when fewer than two frames have one."""
    got = [b for b in boxes if b is not None and b.width > 0 and b.height > 0]
    if len(got) < 2:
        return {"aspect_std": float("nan"), "area_std": float("nan")}
    aspect = np.array([b.width / b.height for b in got])
    area = np.array([b.area for b in got])
    return {"aspect_std": float(aspect.std()), "area_std": float((area / area.mean()).std())}


# ---------------------------------------------------------------- frames and sheets


def sample_indices(num_frames: int, k: int) -> np.ndarray:
    """k frame indices spread evenly over [0, num_frames) (fewer when the video is shorter)."""
    k = max(1, min(k, num_frames))
    return np.unique(np.floor(np.arange(k) * num_frames / k).astype(np.int64))


def read_frames(path: str | Path, indices) -> tuple[np.ndarray, int]:
    """uint8 [len(indices), H, W, 3] frames at `indices` of the video, and its frame count (decodes once)."""
    import imageio_ffmpeg

    want = set(int(i) for i in indices)
    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    w, h = meta["size"]
    kept, total = {}, 0
    for f in gen:
        if total in want:
            kept[total] = np.frombuffer(f, np.uint8).reshape(h, w, 3).copy()
        total += 1
    return np.stack([kept[i] for i in sorted(kept)]) if kept else np.zeros((0, h, w, 3), np.uint8), total


def count_frames(path: str | Path) -> int:
    import imageio_ffmpeg

    return int(imageio_ffmpeg.count_frames_and_secs(str(path))[0])


def fit_cell(img: np.ndarray, cell: int, fill: int = 255) -> np.ndarray:
    """Resize to fit a cell x cell square, keeping the aspect, centred on `fill`."""
    im = Image.fromarray(np.asarray(img, np.uint8))
    s = cell / max(im.width, im.height)
    im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.Resampling.LANCZOS)
    out = np.full((cell, cell, 3), fill, np.uint8)
    y, x = (cell - im.height) // 2, (cell - im.width) // 2
    out[y : y + im.height, x : x + im.width] = np.asarray(im)
    return out


def contact_sheet(rows: list[list[np.ndarray]], cell: int = 128, pad: int = 4, gap: int = 12) -> np.ndarray:
    """A row per photo: the input, a `gap` of white, then its frames; each image fitted into a cell."""
    cols = max(len(r) for r in rows)
    w = cols * cell + (cols + 1) * pad + gap
    h = len(rows) * cell + (len(rows) + 1) * pad
    sheet = np.full((h, w, 3), 255, np.uint8)
    for r, images in enumerate(rows):
        y = pad + r * (cell + pad)
        for c, img in enumerate(images):
            x = pad + c * (cell + pad) + (gap if c > 0 else 0)
            sheet[y : y + cell, x : x + cell] = fit_cell(img, cell)
    return sheet
