"""Choose the device once, at the edge, and pass it down."""

from __future__ import annotations

import os

import torch


def pick_device(name: str | None = None) -> torch.device:
    """`name` ("cpu", "cuda", "cuda:1", "mps") or $BIRDANIM_DEVICE, else CUDA when present, else CPU."""
    name = name or os.environ.get("BIRDANIM_DEVICE")
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def set_cpu_threads(n: int | None = None) -> int:
    """Use all cores for intra-op work (torch defaults are sometimes lower in containers)."""
    n = n or int(os.environ.get("BIRDANIM_THREADS", 0)) or (os.cpu_count() or 1)
    torch.set_num_threads(n)
    return n
