"""ADA: a differentiable augmentation pipeline whose strength p adapts to D's overfitting.

Everything D sees (reals and fakes, in the D and the G steps) goes through `AugmentPipe`. Each
transform is applied to each image independently with probability p. The geometric ones (x-flip,
integer translation, isotropic scale, rotation) become one 3x3 matrix per image and one
`affine_grid` + `grid_sample` (reflection padding); the colour ones (brightness, contrast,
saturation, hue) one 4x4 matrix per image applied as a batched matmul. Gradients flow through
both to the generator. p = 0 returns the input unchanged (exactly).

p is a buffer (saved in checkpoints, restored on resume) adjusted by `AdaController` from
r_t = E[sign(D(real))] toward a target (0.6) at a speed given in kimg (Karras et al. 2020).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

_LUMA = torch.tensor([0.299, 0.587, 0.114])  # luma axis for saturation and hue


@dataclass
class AugmentConfig:
    xflip: float = 1.0  # per-transform probability multipliers (0 disables that transform)
    translate: float = 1.0
    scale: float = 1.0
    rotate: float = 1.0
    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0
    hue: float = 1.0
    translate_std: float = 0.125  # translation range, as a fraction of the image side (uniform +-)
    scale_std: float = 0.2  # log2 of the isotropic scale ~ N(0, scale_std)
    rotate_max: float = 1.0  # rotation angle ~ U(-rotate_max, rotate_max) * pi
    brightness_std: float = 0.2  # additive brightness ~ N(0, brightness_std) in [-1, 1] units
    contrast_std: float = 0.5  # log2 of the contrast factor ~ N(0, contrast_std)
    saturation_std: float = 1.0  # log2 of the saturation factor ~ N(0, saturation_std)
    hue_max: float = 1.0  # hue rotation ~ U(-hue_max, hue_max) * pi around the luma axis


class AugmentPipe(nn.Module):
    def __init__(self, cfg: AugmentConfig | None = None, p: float = 0.0):
        super().__init__()
        self.cfg = cfg or AugmentConfig()
        self.register_buffer("p", torch.tensor(float(p)))  # current strength, model state

    def _gate(self, n: int, mult: float, g, device) -> torch.Tensor:
        """[N] bool: which images get this transform (probability p * mult)."""
        return torch.rand(n, generator=g, device=device) < float(self.p) * mult

    def _geometric(self, n: int, res: int, g, device) -> torch.Tensor | None:
        """[N, 2, 3] affine matrices in normalised coordinates (output -> input), or None if all identity."""
        c = self.cfg
        m = torch.eye(3, device=device).repeat(n, 1, 1)
        active = torch.zeros(n, dtype=torch.bool, device=device)

        def apply(mat, gate):
            nonlocal m, active
            mat = torch.where(gate[:, None, None], mat, torch.eye(3, device=device))
            m = m @ mat
            active |= gate

        eye = torch.eye(3, device=device).repeat(n, 1, 1)
        if c.xflip:
            gate = self._gate(n, c.xflip, g, device)
            f = eye.clone()
            f[:, 0, 0] = 1 - 2 * torch.randint(0, 2, (n,), generator=g, device=device).float()
            apply(f, gate)
        if c.translate:
            gate = self._gate(n, c.translate, g, device)
            # Integer pixel shifts: normalised coordinates span 2 units over `res` pixels.
            px = torch.round((torch.rand(n, 2, generator=g, device=device) * 2 - 1) * c.translate_std * res)
            t = eye.clone()
            t[:, :2, 2] = px * 2 / res
            apply(t, gate)
        if c.scale:
            gate = self._gate(n, c.scale, g, device)
            s = torch.exp2(torch.randn(n, generator=g, device=device) * c.scale_std)
            sm = eye.clone()
            sm[:, 0, 0] = sm[:, 1, 1] = 1 / s  # output->input map: shrink coordinates to enlarge
            apply(sm, gate)
        if c.rotate:
            gate = self._gate(n, c.rotate, g, device)
            a = (torch.rand(n, generator=g, device=device) * 2 - 1) * math.pi * c.rotate_max
            r = eye.clone()
            r[:, 0, 0], r[:, 0, 1], r[:, 1, 0], r[:, 1, 1] = a.cos(), -a.sin(), a.sin(), a.cos()
            apply(r, gate)
        return m[:, :2, :] if bool(active.any()) else None

    def _colour(self, n: int, g, device) -> torch.Tensor | None:
        """[N, 4, 4] colour matrices acting on (r, g, b, 1), or None if all identity."""
        c = self.cfg
        eye = torch.eye(4, device=device).repeat(n, 1, 1)
        m = eye.clone()
        active = torch.zeros(n, dtype=torch.bool, device=device)
        luma = _LUMA.to(device) / _LUMA.norm()
        lum_proj = torch.zeros(4, 4, device=device)
        lum_proj[:3, :3] = torch.outer(luma, luma)

        def apply(mat, gate):
            nonlocal m, active
            m = torch.where(gate[:, None, None], mat, eye) @ m
            active |= gate

        if c.brightness:
            gate = self._gate(n, c.brightness, g, device)
            b = eye.clone()
            b[:, :3, 3] = (torch.randn(n, generator=g, device=device) * c.brightness_std)[:, None]
            apply(b, gate)
        if c.contrast:
            gate = self._gate(n, c.contrast, g, device)
            k = torch.exp2(torch.randn(n, generator=g, device=device) * c.contrast_std)
            ct = eye.clone()
            ct[:, 0, 0] = ct[:, 1, 1] = ct[:, 2, 2] = k
            apply(ct, gate)
        if c.hue:
            gate = self._gate(n, c.hue, g, device)
            a = (torch.rand(n, generator=g, device=device) * 2 - 1) * math.pi * c.hue_max
            apply(_rotation_about(luma, a), gate)
        if c.saturation:
            gate = self._gate(n, c.saturation, g, device)
            s = torch.exp2(torch.randn(n, generator=g, device=device) * c.saturation_std)
            # Keep the luma component, scale the chroma: P + s (I - P) on the RGB part.
            sat = lum_proj + (eye - lum_proj) * s[:, None, None]
            sat[:, 3, 3] = 1
            apply(sat, gate)
        return m if bool(active.any()) else None

    def forward(self, img: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """[N, 3, H, W] in [-1, 1] -> augmented, same shape (differentiable)."""
        if float(self.p) <= 0:
            return img
        n, _, h, w = img.shape
        dev = img.device
        theta = self._geometric(n, h, generator, dev)
        if theta is not None:
            grid = F.affine_grid(theta, list(img.shape), align_corners=False)
            img = F.grid_sample(img, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        cm = self._colour(n, generator, dev)
        if cm is not None:
            img = torch.einsum("nij,njhw->nihw", cm[:, :3, :3], img) + cm[:, :3, 3, None, None]
        return img.contiguous(memory_format=torch.channels_last)


class DiffAugment(nn.Module):
    """DiffAugment (Zhao et al. 2020), the Projected GAN's always-on augmentation: colour (brightness,
    saturation, contrast), translation by up to 1/8 of the side with zero fill, and cutout of a square
    of half the side, each applied to each image with probability p (1 in the paper). Differentiable;
    the same `p` buffer as AugmentPipe, so snapshots and logs treat both alike. p = 0: the identity."""

    def __init__(self, p: float = 1.0, translate: float = 0.125, cutout: float = 0.5):
        super().__init__()
        self.translate, self.cutout = translate, cutout
        self.register_buffer("p", torch.tensor(float(p)))

    def forward(self, img: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """[N, 3, H, W] in [-1, 1] -> augmented, same shape."""
        p = float(self.p)
        if p <= 0:
            return img
        n, _, h, w = img.shape
        dev = img.device

        def rand(*shape):
            return torch.rand(*shape, generator=generator, device=dev)

        def gate():  # [N, 1, 1, 1] 1.0 where this op applies to the image
            return (rand(n, 1, 1, 1) < p).to(img.dtype)

        x = img + (rand(n, 1, 1, 1) - 0.5) * gate()  # brightness: + U(-0.5, 0.5)
        mean = x.mean(dim=1, keepdim=True)  # saturation: x U(0, 2) around the pixel's grey
        x = mean + (x - mean) * (1 + (rand(n, 1, 1, 1) * 2 - 1) * gate())
        mean = x.mean(dim=[1, 2, 3], keepdim=True)  # contrast: x U(0.5, 1.5) around the image mean
        x = mean + (x - mean) * (1 + (rand(n, 1, 1, 1) - 0.5) * gate())
        if self.translate > 0:  # integer shifts, zero fill: nearest sampling of an exact pixel grid
            g = gate()[:, 0, 0, 0]
            shift = torch.round((rand(n, 2) * 2 - 1) * self.translate * torch.tensor([w, h], device=dev)) * g[:, None]
            theta = torch.zeros(n, 2, 3, device=dev)
            theta[:, 0, 0] = theta[:, 1, 1] = 1
            theta[:, 0, 2], theta[:, 1, 2] = -shift[:, 0] * 2 / w, -shift[:, 1] * 2 / h
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)
        if self.cutout > 0:  # one square of cutout x side, its centre anywhere in the image, zeroed
            ch, cw = int(h * self.cutout + 0.5), int(w * self.cutout + 0.5)
            y0 = (rand(n) * h).floor()[:, None, None] - ch // 2
            x0 = (rand(n) * w).floor()[:, None, None] - cw // 2
            yy = torch.arange(h, device=dev)[None, :, None]
            xx = torch.arange(w, device=dev)[None, None, :]
            inside = (yy >= y0) & (yy < y0 + ch) & (xx >= x0) & (xx < x0 + cw)
            x = x * (1 - inside[:, None].to(x.dtype) * gate())
        return x.contiguous(memory_format=torch.channels_last)


def _rotation_about(axis: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """[N, 4, 4] rotations of RGB around the unit `axis` [3] by `angle` [N] (Rodrigues)."""
    n = angle.shape[0]
    x, y, z = axis
    k = torch.tensor([[0, -z, y], [z, 0, -x], [-y, x, 0]], device=angle.device)
    s, c = angle.sin()[:, None, None], angle.cos()[:, None, None]
    r3 = torch.eye(3, device=angle.device) + s * k + (1 - c) * (k @ k)
    out = torch.eye(4, device=angle.device).repeat(n, 1, 1)
    out[:, :3, :3] = r3
    return out


class AdaController:
    """Moves `pipe.p` toward the value that keeps r_t = E[sign(D(real))] at `target`.

    Every `interval` D steps: p += sign(r_t - target) * images_since_last / (speed_kimg * 1000), clamped
    to [0, 1]. So p can go from 0 to 1 in `speed_kimg` thousand images."""

    def __init__(self, pipe: AugmentPipe, target: float = 0.6, speed_kimg: float = 100.0, interval: int = 4):
        self.pipe, self.target, self.speed_kimg, self.interval = pipe, target, speed_kimg, interval
        self._sum = 0.0
        self._count = 0
        self._images = 0
        self._steps = 0
        self.last_rt: float | None = None

    def state_dict(self) -> dict:
        """Accumulators between p updates (p itself lives in the pipe's buffer)."""
        return {"sum": self._sum, "count": self._count, "images": self._images, "steps": self._steps, "last_rt": self.last_rt}

    def load_state_dict(self, d: dict) -> None:
        self._sum, self._count, self._images, self._steps = d["sum"], d["count"], d["images"], d["steps"]
        self.last_rt = d["last_rt"]

    def accumulate(self, real_logits: torch.Tensor, images: int) -> None:
        """Add one D step's logits on augmented reals ([N, ...]: one sign per image)."""
        s = real_logits.detach().reshape(real_logits.shape[0], -1).mean(1).sign()
        self._sum += float(s.sum())
        self._count += s.numel()
        self._images += images
        self._steps += 1

    def maybe_update(self, reduce=None) -> bool:
        """Adjust p if `interval` steps have accumulated. `reduce(tensor)` sums across DDP ranks."""
        if self._steps < self.interval or self.speed_kimg <= 0:
            return False
        stats = torch.tensor([self._sum, float(self._count), float(self._images)])
        if reduce is not None:
            stats = reduce(stats)
        rt = float(stats[0] / max(stats[1], 1.0))
        adjust = math.copysign(1.0, rt - self.target) * float(stats[2]) / (self.speed_kimg * 1000)
        self.pipe.p.copy_((self.pipe.p + adjust).clamp(0.0, 1.0))
        self.last_rt = rt
        self._sum, self._count, self._images, self._steps = 0.0, 0, 0, 0
        return True
