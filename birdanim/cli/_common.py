"""Helpers shared by the animate / generate / mix / project commands (not a command itself)."""

from __future__ import annotations

import argparse
import sys

from birdanim.errors import BirdanimError


def parse_seeds(text: str) -> list[int]:
    """'0-15' -> [0..15]; '1,2,5-7' -> [1, 2, 5, 6, 7]. Raises argparse.ArgumentTypeError."""
    seeds: list[int] = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                continue
            lo, sep, hi = part.partition("-")
            if sep and lo:
                a, b = int(lo), int(hi)
                if b < a:
                    raise ValueError(f"empty range {part}")
                seeds.extend(range(a, b + 1))
            else:
                seeds.append(int(part))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"seeds must look like 0-15 or 1,2,5-7 ({e})") from e
    if not seeds:
        raise argparse.ArgumentTypeError("no seeds given")
    return seeds


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", default=None, help="weights folder or Hugging Face repo id (default: $BIRDANIM_WEIGHTS or weights/)")
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: CUDA when present, else CPU)")


def add_perceptual_argument(p: argparse.ArgumentParser) -> None:
    """--perceptual for the commands that project a photo (animate, project)."""
    p.add_argument("--perceptual", choices=["lite0", "lpips"], default="lite0",
                   help="projection loss network: EfficientNet-Lite0 (default) or VGG LPIPS (needs torchvision's VGG16 "
                        "weights: online, in torch hub's cache, or $BIRDANIM_VGG16)")


def fail(err: BirdanimError) -> int:
    """Print a birdanim error as one line for the user; exit status 2."""
    print(f"birdanim: error: {err}", file=sys.stderr)
    return 2


class TqdmProgress:
    """One tqdm bar per stage, fed by the service's progress(stage, fraction, frame) callback."""

    def __init__(self, enabled: bool = True):
        self.enabled, self.stage, self.bar = enabled, None, None

    def __call__(self, stage: str, fraction: float, frame=None) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if stage != self.stage:
            self.close()
            self.stage, self.bar = stage, tqdm(total=100, desc=f"{stage:>8}", unit="%", leave=True,
                                               bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}")
        self.bar.n = round(100 * fraction)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
