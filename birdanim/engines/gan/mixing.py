"""Style mixing with target poses, a smooth closed loop through them, and batched frame rendering.

    keys = mix_with_poses(user_ws, poses, cutoff=7)   # [K, num_ws, w_dim]: pose (coarse) + bird (fine)
    ws   = loop_ws(keys, frames=300)                   # [300, num_ws, w_dim]: closed Catmull-Rom in W+
    for batch in iter_frames(G, ws): ...              # uint8 [B, H, W, 3], noise fixed

Coarse rows [0, cutoff) of ws decide pose and shape, fine rows [cutoff, num_ws) colour and texture
(the original project used cutoff 7 of 14 at 256 px). Two ways to give the bird a pose:

- "swap" (the original project's): the coarse rows are replaced by the pose's, so the bird takes the
  pose bird's shape and, through the coarse rows' share of colour, much of its colouring too;
- "offset": the coarse rows are *moved* by the pose's difference from the mean of all poses,
  ws[:cutoff] + strength x (pose[:cutoff] - mean(poses)[:cutoff]): what the poses have in common (the
  pose birds' own look) cancels out, what changes along the wing-beat is added to the user's bird.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import numpy as np
import torch

from birdanim.errors import Cancelled
from birdanim.imageops import tensor_to_uint8
from birdanim.options import MAX_STRENGTH, MIXINGS

MIN_FRAMES, MAX_FRAMES = 2, 600



def mix_with_poses(
    user_ws: torch.Tensor,  # [num_ws, w_dim] or [1, num_ws, w_dim]: the user's bird
    poses: torch.Tensor,  # [K, num_ws, w_dim]: target poses of one wing-beat cycle
    cutoff: int = 7,  # rows [0, cutoff) come from (swap) or are moved by (offset) the pose; 1..num_ws-1
    strength: float = 1.0,  # swap: 1 hard swap, 0 the user's ws unchanged, between a blend; offset: the
    # scale of the pose's difference from the mean pose (0: unchanged, 1: the poses' own spread)
    mixing: str = "swap",  # "swap" or "offset" (see the module docstring)
) -> torch.Tensor:
    """One mixed ws per pose: [K, num_ws, w_dim]."""
    user = user_ws.reshape(1, *user_ws.shape[-2:]).to(poses.device, poses.dtype)
    num_ws = user.shape[1]
    if poses.dim() != 3 or poses.shape[1:] != user.shape[1:]:
        raise ValueError(f"poses {tuple(poses.shape)} do not match the user's ws {tuple(user.shape)}")
    if not 1 <= cutoff <= num_ws - 1:
        raise ValueError(f"cutoff must be in 1..{num_ws - 1}, got {cutoff}")
    if mixing not in MIXINGS:
        raise ValueError(f"mixing must be one of {', '.join(MIXINGS)}, got {mixing!r}")
    if not 0.0 <= strength <= MAX_STRENGTH[mixing]:
        raise ValueError(f"strength must be in 0..{MAX_STRENGTH[mixing]:g} for {mixing}, got {strength}")
    out = user.repeat(poses.shape[0], 1, 1)
    if mixing == "swap":
        out[:, :cutoff] = torch.lerp(out[:, :cutoff], poses[:, :cutoff], strength)
    else:
        out[:, :cutoff] += strength * (poses[:, :cutoff] - poses[:, :cutoff].mean(0, keepdim=True))
    return out


def catmull_rom(p0, p1, p2, p3, u: torch.Tensor) -> torch.Tensor:
    """Uniform Catmull-Rom between p1 and p2 at u in [0, 1] (u broadcast over the trailing dims)."""
    u2, u3 = u * u, u * u * u
    return 0.5 * (2 * p1 + (p2 - p0) * u + (2 * p0 - 5 * p1 + 4 * p2 - p3) * u2 + (3 * p1 - p0 - 3 * p2 + p3) * u3)


def loop_ws(keys: torch.Tensor, frames: int = 300, cycles: int = 1) -> torch.Tensor:
    """`frames` ws on a closed Catmull-Rom curve through the K keyframes, `cycles` times round.

    Frame i sits at t = i * K * cycles / frames; frame `frames` would equal frame 0, so the video
    loops with no duplicated frame at the seam. keys [K, ...] -> [frames, ...].
    """
    if not MIN_FRAMES <= frames <= MAX_FRAMES:
        raise ValueError(f"frames must be in {MIN_FRAMES}..{MAX_FRAMES}, got {frames}")
    if cycles < 1:
        raise ValueError(f"cycles must be >= 1, got {cycles}")
    k = keys.shape[0]
    if k == 1:
        return keys.repeat(frames, *([1] * (keys.dim() - 1)))
    t = torch.arange(frames, dtype=torch.float64) * (k * cycles / frames)
    seg = torch.floor(t).long()
    u = (t - seg).to(keys.dtype).reshape(-1, *([1] * (keys.dim() - 1)))
    idx = [(seg + d) % k for d in (-1, 0, 1, 2)]
    return catmull_rom(*(keys[i] for i in idx), u)


Progress = Callable[[float, np.ndarray | None], None]


@torch.no_grad()
def iter_frames(
    G: torch.nn.Module,
    ws: torch.Tensor,  # [N, num_ws, w_dim]
    batch: int = 8,  # frames per synthesis call: bounds memory (~batch x activations of one frame)
    progress: Progress | None = None,  # called after each batch with (fraction done, last frame)
    cancel: threading.Event | None = None,  # checked between batches
) -> Iterator[np.ndarray]:
    """Render ws batch by batch with the generator's constant noise; yields uint8 [B, H, W, 3]."""
    device = next(G.parameters()).device
    n = ws.shape[0]
    for i in range(0, n, batch):
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled")
        img = G.synthesis(ws[i : i + batch].to(device), noise_mode="const")
        frames = tensor_to_uint8(img)
        if progress is not None:
            progress(min(n, i + batch) / n, frames[-1])
        yield frames


def render_frames(G, ws, batch: int = 8, progress: Progress | None = None, cancel=None) -> np.ndarray:
    """All frames at once: uint8 [N, H, W, 3] (N x 196 KB at 256 px: 59 MB for 300 frames)."""
    return np.concatenate(list(iter_frames(G, ws, batch, progress, cancel)))
