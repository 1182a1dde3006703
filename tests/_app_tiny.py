"""The real birdanim.service.Animator on a tiny 32 px generator, for the app tests.

Only the detector is scripted (`ScriptedDetector`), so tests can ask for "no bird" or "three birds"
on plain synthetic photos; photo loading, cropping, projection, mixing, rendering and encoding are
the service's own code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from _anim_tiny import tiny_generator, tiny_poses
from birdanim.checkpoint import save_generator
from birdanim.stages.detect import Box
from birdanim.engines.gan.poses import save_poses
from birdanim.service import Animator


def tiny_weights(folder: Path) -> Path:
    """A weights folder (tiny generator + meta) with matching target poses in folder/poses."""
    G = tiny_generator()
    save_generator(G, folder, meta={"kimg": 0.0, "note": "tiny test generator"})
    save_poses(folder / "poses", tiny_poses(G, 4), None, folder / "model.safetensors", {"source": "test"})
    return folder


class ScriptedDetector:
    """Stands in for BirdDetector: returns `boxes` (None: one box over the middle of the photo)."""

    def __init__(self, boxes: list[Box] | None = None):
        self.boxes = boxes
        self.seen: list[tuple[int, int]] = []  # sizes of the photos it was shown

    def __call__(self, photo: Image.Image) -> list[Box]:
        self.seen.append(photo.size)
        if self.boxes is not None:
            return list(self.boxes)
        w, h = photo.size
        return [Box(w * 0.3, h * 0.3, w * 0.7, h * 0.7, 0.9)]


def tiny_animator(folder: Path, detector: str | None = None) -> Animator:
    """The real Animator on tiny weights written to `folder`; detector None: a ScriptedDetector."""
    w = tiny_weights(folder)
    a = Animator(weights=str(w), device="cpu", detector=detector, poses_dir=w / "poses", encoder=None)
    if detector is None:
        a.detector = ScriptedDetector()
    return a


def bird_photo(path: Path, size=(320, 240), seed: int = 0) -> Path:
    """A plain test photo (sky with a dark blob): enough for the app's plumbing, not for a detector."""
    rng = np.random.default_rng(seed)
    w, h = size
    a = np.zeros((h, w, 3), np.uint8)
    a[..., 0], a[..., 1], a[..., 2] = 120, 170, 230
    yy, xx = np.mgrid[:h, :w]
    blob = ((xx - w / 2) / (w / 6)) ** 2 + ((yy - h / 2) / (h / 8)) ** 2 < 1
    a[blob] = (60, 40, 30)
    a = np.clip(a.astype(int) + rng.integers(-8, 9, a.shape), 0, 255).astype(np.uint8)
    Image.fromarray(a).save(path)
    return path
