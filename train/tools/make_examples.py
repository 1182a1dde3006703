"""Make the app's example photos from the shipped generator: birds it draws, pasted into simple scenes.

    python -m train.tools.make_examples                                  # weights/ -> assets/examples/
    python -m train.tools.make_examples --weights runs/.../gema/000400 --seeds 3,7,11,19 --psi 0.6

The examples are the project's own renders (never third-party photos), so they can ship with the app.
Each is a sky-and-ground scene with one generated bird crop blended in by the same feathered mask the
in-scene mode uses. Rerun this whenever the weights change; it also writes manifest.json (weights hash,
seeds, psi) so a stale set is easy to spot.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from birdanim.paths import ASSETS

SCENES = [  # (sky top, sky bottom, ground) RGB colours: morning, noon, dusk, overcast
    ((96, 150, 214), (196, 222, 240), (92, 120, 70)),
    ((60, 120, 200), (150, 200, 240), (120, 140, 80)),
    ((70, 80, 140), (240, 170, 120), (70, 70, 60)),
    ((150, 160, 170), (210, 214, 218), (100, 110, 90)),
]


def scene(width: int, height: int, colours, seed: int) -> Image.Image:
    """A vertical sky gradient over a gently rolling ground line, with a little noise (looks like a photo)."""
    top, bottom, ground = (np.array(c, np.float32) for c in colours)
    t = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    img = np.broadcast_to(top * (1 - t) + bottom * t, (height, width, 3)).copy()
    x = np.arange(width, dtype=np.float32)
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi)
    horizon = height * (0.78 + 0.04 * np.sin(x / width * 2 * np.pi + phase))
    below = np.arange(height)[:, None] >= horizon[None, :]
    img[below] = ground
    img += rng.normal(0, 3, img.shape).astype(np.float32)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def place(width: int, height: int, seed: int) -> tuple[int, int, int]:
    """(x0, y0, side) of the bird's square in the scene: 45-60% of the height, left/centre/right."""
    rng = np.random.default_rng(seed + 1)
    side = int(height * rng.uniform(0.45, 0.6))
    x0 = int(rng.uniform(0.08, 0.92) * (width - side))
    y0 = int(rng.uniform(0.08, 0.3) * (height - side))
    return x0, y0, side


@torch.no_grad()
def render_birds(weights: str, seeds: list[int], psi: float) -> np.ndarray:
    """uint8 [N, H, W, 3] birds from the generator in `weights` (constant noise)."""
    from birdanim.checkpoint import load_generator
    from birdanim.imageops import tensor_to_uint8
    from birdanim.models.stylegan2 import z_from_seeds

    G = load_generator(weights, "cpu")
    return tensor_to_uint8(G(z_from_seeds(seeds, G.z_dim, "cpu"), psi=psi, noise_mode="const"))


def make_examples(weights: str, seeds: list[int], psi: float, out: Path, size: tuple[int, int]) -> list[Path]:
    from birdanim.checkpoint import WEIGHTS_FILE, resolve, write_json_atomic
    from birdanim.stages.composite import Compositor
    from birdanim.engines.gan.poses import sha256_file

    out.mkdir(parents=True, exist_ok=True)
    for old in list(out.glob("bird_*.jpg")):
        old.unlink()  # a stale example from other weights must not survive
    paths = []
    for i, (seed, bird) in enumerate(zip(seeds, render_birds(weights, seeds, psi))):
        bg = scene(*size, SCENES[i % len(SCENES)], seed)
        comp = Compositor(bg, place(*size, seed), max_side=max(size), feather=0.12)
        path = out / f"bird_{seed:04d}.jpg"
        Image.fromarray(comp(bird)).save(path, quality=90)
        paths.append(path)
    write_json_atomic(out / "manifest.json", {
        "weights_sha256": sha256_file(resolve(weights, WEIGHTS_FILE)), "seeds": seeds, "psi": psi,
        "size": list(size), "made_by": "train/tools/make_examples.py",
    })
    return paths


def main(argv=None) -> int:
    from birdanim.checkpoint import default_weights
    from birdanim.ui.helpers import parse_seeds

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None,
                    help="generator folder or Hub id (default: $BIRDANIM_WEIGHTS or weights/)")
    ap.add_argument("--seeds", default="3,7,11,19", help="one example per seed, e.g. 0-3 or 3,7,11")
    ap.add_argument("--psi", type=float, default=0.6, help="truncation psi: lower = more typical birds")
    ap.add_argument("--out", type=Path, default=ASSETS / "examples", help="output folder")
    ap.add_argument("--size", default="640x480", help="scene size WxH in pixels")
    a = ap.parse_args(argv)
    w, h = (int(v) for v in a.size.lower().split("x"))
    for p in make_examples(a.weights or default_weights(), parse_seeds(a.seeds, 16), a.psi, a.out, (w, h)):
        print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
