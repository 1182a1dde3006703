"""Training images: decoded once into one uint8 tensor in memory, then served as random batches.

    ds = ImageDataset.from_zips([...train.zip], resolution=256)   # ds.images: uint8 [N, 3, R, R]
    batches = BatchSampler(len(ds), batch=16, seed=0, rank=0, world=1)
    img = ds.batch(next(batches), xflip=True, generator=g)        # float [B, 3, R, R] in [-1, 1]

Only train splits ever go in here; the test zips are for metrics (train/metrics/evaluate.py).
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from birdanim.checkpoint import atomic_path
from birdanim.imageops import uint8_to_float
from birdanim.paths import cache_dir, data_dir

DATASETS = ("birds256", "birds256_more")  # the folders under the data folder a run trains on by default
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
CACHE_DIR = cache_dir()


def default_train_zips() -> list[Path]:
    """The train splits of the default datasets (read when called: $BIRDANIM_DATA may be set after import)."""
    return [data_dir() / name / "train.zip" for name in DATASETS]


def default_test_zips() -> list[Path]:
    """The test splits of the default datasets (for metrics only)."""
    return [data_dir() / name / "test.zip" for name in DATASETS]


def decode_image(data: bytes, resolution: int) -> np.ndarray:
    """JPEG/PNG bytes -> uint8 [resolution, resolution, 3] (centre-cropped to square, Lanczos resize)."""
    im = Image.open(io.BytesIO(data)).convert("RGB")
    w, h = im.size
    if w != h:  # the datasets are square already; be safe with others
        s = min(w, h)
        im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    if im.size != (resolution, resolution):
        im = im.resize((resolution, resolution), Image.LANCZOS)
    return np.asarray(im, dtype=np.uint8)


def zip_members(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as z:
        return sorted(n for n in z.namelist() if n.lower().endswith(IMAGE_EXTS))


def files_key(zips: list[Path], resolution: int) -> str:
    """Hash of (zip paths, sizes, member names, resolution): names the decoded cache and real stats."""
    h = hashlib.sha256(str(resolution).encode())
    for p in zips:
        p = Path(p)
        h.update(f"{p.resolve()}:{p.stat().st_size}".encode())
        h.update("\n".join(zip_members(p)).encode())
    return h.hexdigest()[:16]


def decode_zips(zips: list[Path], resolution: int, max_images: int | None = None) -> np.ndarray:
    """All images of `zips` -> uint8 [N, R, R, 3], in sorted name order per zip."""
    out = []
    for p in zips:
        with zipfile.ZipFile(p) as z:
            for name in zip_members(p):
                if max_images is not None and len(out) >= max_images:
                    break
                out.append(decode_image(z.read(name), resolution))
    if not out:
        raise ValueError(f"no images found in {[str(p) for p in zips]}")
    return np.stack(out)


@dataclass
class ImageDataset:
    images: torch.Tensor  # uint8 [N, 3, R, R], all training images in memory
    key: str  # identifies the source files + resolution (for the record and caches)

    @classmethod
    def from_zips(cls, zips, resolution: int, max_images: int | None = None, cache: bool = True) -> "ImageDataset":
        """Decode the zips once; with `cache`, keep the decoded array as .npy under ~/.cache/birdanim/data."""
        zips = [Path(p) for p in zips]
        for p in zips:
            if not p.is_file():
                raise FileNotFoundError(f"dataset zip {p} does not exist")
        key = files_key(zips, resolution) + (f"-n{max_images}" if max_images else "")
        path = CACHE_DIR / "data" / f"{key}.npy"
        if cache and path.is_file():
            arr = np.load(path)
        else:
            arr = decode_zips(zips, resolution, max_images)
            if cache:
                path.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(path) as tmp:  # several ranks (torchrun) may build the same cache at once
                    np.save(tmp, arr)
        return cls(torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous(), key)

    @classmethod
    def from_tensor(cls, images: torch.Tensor) -> "ImageDataset":
        """Wrap uint8 [N, 3, R, R] images (tests, synthetic data)."""
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected uint8 [N, 3, R, R], got {images.dtype} {tuple(images.shape)}")
        return cls(images, "tensor")

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def resolution(self) -> int:
        return self.images.shape[-1]

    def batch(self, idx: torch.Tensor, xflip: bool, generator: torch.Generator, device="cpu") -> torch.Tensor:
        """Images at `idx` as float [B, 3, R, R] in [-1, 1], each mirrored with probability 0.5 if `xflip`."""
        x = uint8_to_float(self.images[idx].to(device))
        if xflip:
            flip = torch.rand(len(idx), generator=generator) < 0.5
            x[flip] = x[flip].flip(-1)
        return x.contiguous(memory_format=torch.channels_last)


class BatchSampler:
    """Endless seeded batches of indices; epoch e is one permutation shared by all ranks, of which
    rank r takes every world-th entry (what DistributedSampler does, without a DataLoader)."""

    def __init__(self, n: int, batch: int, seed: int, rank: int = 0, world: int = 1, epoch: int = 0):
        self.n, self.batch, self.seed, self.rank, self.world = n, batch, seed, rank, world
        self.epoch = epoch  # start epoch; resume passes images_seen // n so data order moves on
        self._buf: list[int] = []

    def _refill(self) -> None:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        self._buf += torch.randperm(self.n, generator=g)[self.rank :: self.world].tolist()
        self.epoch += 1

    def __iter__(self):
        return self

    def __next__(self) -> torch.Tensor:
        while len(self._buf) < self.batch:
            self._refill()
        idx, self._buf = self._buf[: self.batch], self._buf[self.batch :]
        return torch.tensor(idx)
