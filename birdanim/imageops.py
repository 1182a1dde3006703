"""The one place where images change representation.

Inside the package an image is a float tensor, NCHW, RGB, in [-1, 1]. At the edges (PIL, numpy,
Gradio, video) it is uint8 HWC RGB. Every conversion between the two goes through these functions.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def tensor_to_uint8(img: torch.Tensor) -> np.ndarray:
    """[N, 3, H, W] or [3, H, W] float in [-1, 1] -> uint8 [N, H, W, 3] or [H, W, 3]."""
    if img.dim() not in (3, 4) or img.shape[-3] != 3:
        raise ValueError(f"expected [N, 3, H, W] or [3, H, W], got {tuple(img.shape)}")
    x = img.detach().float().mul(127.5).add_(128.0).clamp_(0, 255).to(torch.uint8)
    x = x.permute(0, 2, 3, 1) if x.dim() == 4 else x.permute(1, 2, 0)
    return x.cpu().numpy()


def uint8_to_float(t: torch.Tensor) -> torch.Tensor:
    """uint8 tensor [N, 3, H, W] (any memory layout) -> float in [-1, 1], same shape and device."""
    if t.dtype != torch.uint8:
        raise ValueError(f"expected uint8, got {t.dtype}")
    return t.float().sub_(127.5).div_(127.5)


def uint8_to_tensor(arr: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 [H, W, 3] or [N, H, W, 3] -> float [N, 3, H, W] in [-1, 1] (always batched)."""
    a = np.asarray(arr)
    if a.dtype != np.uint8:
        raise ValueError(f"expected uint8, got {a.dtype}")
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4 or a.shape[-1] != 3:
        raise ValueError(f"expected [H, W, 3] or [N, H, W, 3], got {a.shape}")
    a = np.ascontiguousarray(a) if a.flags.writeable else np.array(a)  # torch wants writable memory
    t = torch.from_numpy(a).to(device)
    return uint8_to_float(t.permute(0, 3, 1, 2))


def tensor_to_pil(img: torch.Tensor) -> Image.Image | list[Image.Image]:
    """[3, H, W] -> one PIL image; [N, 3, H, W] -> a list of N PIL images."""
    arr = tensor_to_uint8(img)
    if arr.ndim == 3:
        return Image.fromarray(arr)
    return [Image.fromarray(a) for a in arr]


def pil_to_tensor(img: Image.Image, device: torch.device | str = "cpu") -> torch.Tensor:
    """A PIL image (any mode) -> float [1, 3, H, W] in [-1, 1]."""
    return uint8_to_tensor(np.asarray(img.convert("RGB")), device)


def make_grid(imgs: np.ndarray, cols: int, pad: int = 2, fill: int = 255) -> np.ndarray:
    """uint8 [N, H, W, 3] -> one uint8 grid image, `cols` images wide, with `pad` pixels between."""
    n, h, w, c = imgs.shape
    rows = (n + cols - 1) // cols
    grid = np.full((rows * h + (rows - 1) * pad, cols * w + (cols - 1) * pad, c), fill, np.uint8)
    for i, im in enumerate(imgs):
        r, q = divmod(i, cols)
        grid[r * (h + pad) : r * (h + pad) + h, q * (w + pad) : q * (w + pad) + w] = im
    return grid
