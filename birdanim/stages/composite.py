"""Paste the animated bird back into the original photo, blended by a feathered elliptical mask.

With the bird's box given, the original bird is first removed from the background (stages.scene's
fill, at a reduced size, so it costs well under a second once per video): otherwise its wing tips would show
outside the mask as a ghost of the still bird. The output keeps the photo's aspect ratio, with the long side capped (default 1280 px) and both
sides rounded down to even numbers (H.264 yuv420p needs them even).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def output_size(width: int, height: int, max_side: int = 1280) -> tuple[int, int]:
    """(w, h) scaled so the long side <= max_side, both even and >= 2."""
    scale = min(1.0, max_side / max(width, height))
    w, h = int(width * scale) // 2 * 2, int(height * scale) // 2 * 2
    return max(2, w), max(2, h)


def feather_mask(side: int, feather: float = 0.08) -> np.ndarray:
    """float32 [side, side] in 0..1: an ellipse filling the square, edges blurred by feather x side."""
    radius = max(1.0, feather * side)
    inset = int(np.ceil(1.5 * radius)) + 1  # keep the blur (3 sigma) inside the square: border fully 0
    m = Image.new("L", (side, side), 0)
    ImageDraw.Draw(m).ellipse((inset, inset, side - 1 - inset, side - 1 - inset), fill=255)
    m = m.filter(ImageFilter.GaussianBlur(radius / 2))
    return np.asarray(m, dtype=np.float32) / 255.0


class Compositor:
    """Precomputes the scaled photo and mask once; call it with each frame."""

    def __init__(self, photo: Image.Image, window: tuple[int, int, int], max_side: int = 1280, feather: float = 0.08,
                 box: tuple[float, float, float, float] | None = None, hole: np.ndarray | None = None):
        # photo: the normalised RGB photo; window: (x0, y0, side) of the square crop in photo pixels
        # (may extend past the border); max_side: cap on the output's long side; feather: mask blur
        # as a fraction of the window side; box: (x0, y0, x1, y1) of the original bird in photo
        # pixels, inpainted away from the background (None: keep the photo as it is); hole: the bird's
        # own mask (float [H, W] in 0..1 at the photo's size, e.g. stages.segment's alpha): then only the
        # mask is filled inside the frame's ellipse (where the frame hides the rest), and the whole grown
        # box outside it (where a mask that missed a dark head or tail would leave a ghost of it). Filling
        # the whole box instead leaves no known pixels when the bird fills the photo: the fill turns black.
        self.size = output_size(photo.width, photo.height, max_side)
        sx, sy = self.size[0] / photo.width, self.size[1] / photo.height
        bg = np.asarray(photo.convert("RGB").resize(self.size, Image.Resampling.LANCZOS))
        x0, y0, side = window
        self.x0, self.y0 = int(round(x0 * sx)), int(round(y0 * sy))
        self.side = max(2, int(round(side * (sx + sy) / 2)))
        self.mask = feather_mask(self.side, feather)[..., None]
        # The part of the window that lies inside the output: rows/cols in both coordinate systems.
        W, H = self.size
        self.dst = (max(0, self.y0), min(H, self.y0 + self.side), max(0, self.x0), min(W, self.x0 + self.side))
        r0, r1, c0, c1 = self.dst
        self.src = (r0 - self.y0, r1 - self.y0, c0 - self.x0, c1 - self.x0)

        if hole is not None:
            from birdanim.stages.scene import fill_hole

            h = np.asarray(Image.fromarray((np.clip(hole, 0, 1) * 255).astype(np.uint8)).resize(self.size, Image.Resampling.BILINEAR),
                           np.float32) / 255.0
            if box is not None:  # where the frame does not cover the box: the bird's parts a mask can miss
                b = _grown_box((box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy), 0.06, self.size[0], self.size[1])
                cover = np.zeros(h.shape, np.float32)
                r0, r1, c0, c1 = self.dst
                s0, s1, t0, t1 = self.src
                cover[r0:r1, c0:c1] = self.mask[s0:s1, t0:t1, 0]
                if b is not None:
                    x0b, y0b, x1b, y1b = b
                    h[y0b:y1b, x0b:x1b] = np.maximum(h[y0b:y1b, x0b:x1b], (cover[y0b:y1b, x0b:x1b] < 0.5).astype(np.float32))
            bg = fill_hole(bg, h)
        elif box is not None:
            bg = remove_region(bg, (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy))
        self.background = bg.astype(np.float32)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """uint8 [h, w, 3] generated frame -> uint8 [H, W, 3] photo with the frame blended in."""
        f = np.asarray(Image.fromarray(frame).resize((self.side, self.side), Image.Resampling.BILINEAR), dtype=np.float32)
        out = self.background.copy()
        r0, r1, c0, c1 = self.dst
        s0, s1, t0, t1 = self.src
        m = self.mask[s0:s1, t0:t1]
        out[r0:r1, c0:c1] = m * f[s0:s1, t0:t1] + (1 - m) * out[r0:r1, c0:c1]
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)

    def batch(self, frames: np.ndarray) -> np.ndarray:
        return np.stack([self(f) for f in frames])


def remove_region(img: np.ndarray, box: tuple[float, float, float, float], grow: float = 0.06, work_side: int = 256) -> np.ndarray:
    """uint8 [H, W, 3] with the box (grown by `grow` x its size per side) filled in from its
    surroundings by ``birdanim.stages.scene.fill_hole`` (a pyramid fill at <= work_side px with the
    surroundings' texture mirrored in: no streaks, unlike cv2.inpaint on a hole this big); pixels away
    from the box are untouched."""
    from birdanim.stages.scene import fill_hole

    h, w = img.shape[:2]
    b = _grown_box(box, grow, w, h)
    if b is None:
        return img
    x0, y0, x1, y1 = b
    alpha = np.zeros((h, w), np.float32)
    alpha[y0:y1, x0:x1] = 1.0
    return fill_hole(img, alpha, work_side=work_side)


def _grown_box(box, grow: float, w: int, h: int) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) integer pixels of box grown by `grow` x its size per side, clipped to w x h; None if empty."""
    x0, y0, x1, y1 = box
    gx, gy = grow * (x1 - x0), grow * (y1 - y0)
    x0, y0 = max(0, int(x0 - gx)), max(0, int(y0 - gy))
    x1, y1 = min(w, int(np.ceil(x1 + gx))), min(h, int(np.ceil(y1 + gy)))
    return None if x1 <= x0 or y1 <= y0 else (x0, y0, x1, y1)
