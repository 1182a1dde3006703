"""A small stand-in for birdanim.service.Animator (test code only) and test photos for the app tests.

The stand-in does real work with a tiny 32 px generator (real frames, a real H.264 MP4) but skips the
detector and the projection, so the UI's wiring can be tested in seconds. The end-to-end tests use
the real Animator.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from birdanim.animate import Cancelled, iter_frames, loop_ws, mix_with_poses
from birdanim.detect import Box, crop_square, square_window
from birdanim.errors import NoBirdError
from birdanim.imageops import make_grid, tensor_to_uint8
from birdanim.models.stylegan2 import z_from_seeds
from birdanim.photo import load_photo
from birdanim.video import write_gif, write_mp4

from _anim_tiny import tiny_generator, tiny_poses


@dataclass
class FakeResult:
    mp4_path: Path
    gif_path: Path | None
    crop: Image.Image
    num_frames: int
    fps: float
    timings: dict
    ws: torch.Tensor


class FakeAnimator:
    """Animator's interface on a tiny generator; `boxes` are what `detect` returns for every photo."""

    def __init__(self, boxes: list[Box] | None = None, slow: float = 0.0):
        # boxes: the fake detections (None: one box in the middle of the photo); slow: seconds of
        # sleep per rendered batch, to test cancelling.
        self.G = tiny_generator()
        self.num_ws = self.G.num_ws
        self.poses = tiny_poses(self.G)
        self.boxes, self.slow = boxes, slow
        self.calls: list[str] = []

    def warmup(self) -> None:
        pass

    def load_photo(self, src) -> Image.Image:
        return load_photo(src)

    def detect(self, photo) -> list[Box]:
        self.calls.append("detect")
        if self.boxes is not None:
            return list(self.boxes)
        w, h = photo.size
        return [Box(w * 0.3, h * 0.3, w * 0.7, h * 0.7, 0.9)]

    def crop(self, photo, box=None, margin=0.25) -> Image.Image:
        return crop_square(photo, square_window(box, *photo.size, margin), self.G.img_resolution)

    def animate(self, photo, *, box=None, frames=300, fps=30, cutoff=7, strength=1.0, quality="fast", seed=0,
                in_scene=False, gif=False, out_dir=None, progress=None, cancel=None):
        self.calls.append("animate")
        if box is None and self.boxes == []:
            raise NoBirdError("no bird found")
        crop = self.crop(photo, box)
        if progress:
            progress("detect", 1.0, None)
            progress("project", 1.0, np.asarray(crop))
        with torch.no_grad():
            user_ws = self.G.mapping(z_from_seeds([seed], self.G.z_dim, "cpu"))
        keys = mix_with_poses(user_ws, self.poses, cutoff=cutoff, strength=strength)
        ws = loop_ws(keys, frames=frames)

        def tick(fraction, frame):
            if self.slow:
                threading.Event().wait(self.slow)
            if progress:
                progress("render", fraction, frame)

        batches = list(iter_frames(self.G, ws, batch=8, progress=tick, cancel=cancel))
        out = Path(out_dir)
        mp4 = write_mp4(out / "bird.mp4", batches, fps=fps)
        gif_path = write_gif(out / "bird.gif", np.concatenate(batches), fps=fps) if gif else None
        if progress:
            progress("encode", 1.0, None)
        return FakeResult(mp4, gif_path, crop, frames, float(fps), {}, user_ws)

    def random_birds(self, seeds, psi=1.0) -> list[np.ndarray]:
        with torch.no_grad():
            return list(tensor_to_uint8(self.G(z_from_seeds(seeds, self.G.z_dim, "cpu"), psi=psi)))

    def similarity(self, seeds, psi=1.0):
        with torch.no_grad():
            ws = self.G.mapping(z_from_seeds(seeds, self.G.z_dim, "cpu"), psi=psi)[:, 0]
        w = torch.nn.functional.normalize(ws, dim=1)
        return (w @ w.T).numpy(), self.random_birds(seeds, psi)

    def mixing_grid(self, row_seeds, col_seeds, cutoff=7, psi=1.0) -> np.ndarray:
        with torch.no_grad():
            rw = self.G.mapping(z_from_seeds(row_seeds, self.G.z_dim, "cpu"), psi=psi)
            cw = self.G.mapping(z_from_seeds(col_seeds, self.G.z_dim, "cpu"), psi=psi)
            ws = cw.unsqueeze(0).repeat(len(row_seeds), 1, 1, 1)
            ws[:, :, :cutoff] = rw[:, None, :cutoff]
            imgs = tensor_to_uint8(self.G.synthesis(ws.flatten(0, 1), noise_mode="const"))
        return make_grid(imgs, cols=len(col_seeds))


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
