"""The rig step's picture: the photo with the bird's cut-out outline and its rig drawn on top, and the
arithmetic between the picture's pixels and the photo's.

The app shows this picture before rendering (as AnimatedDrawings' web step does) so that a person can
check the joints and move them: pick a joint, click where it belongs. Nothing here imports gradio.

Pixel spaces: the rig engine works on the photo resized to the output size (`Bird.photo`, long side
`size`); the rig the service accepts (`animate(..., rig=)`) is in the *uploaded photo's* pixels. The
picture is drawn at the Bird's pixels, so a click on it (gradio reports the image's own pixels) is a
point in the Bird's pixels; `to_photo_rig` / `to_bird_rig` convert between the two.
"""

from __future__ import annotations

import numpy as np

from birdanim.engines.rig.rig import JOINTS, Rig

# What each joint is, in a photographer's words (the app's joint picker shows these).
JOINT_LABELS = {
    "beak": "Beak tip",
    "head": "Head",
    "tail": "Tail tip",
    "shoulder": "Near wing root",
    "far_shoulder": "Far wing root",
    "belly": "Belly",
}
SHORT = {"beak": "beak", "head": "head", "tail": "tail", "shoulder": "wing", "far_shoulder": "far wing",
         "belly": "belly"}
BONES = (("beak", "head"), ("head", "shoulder"), ("shoulder", "tail"), ("shoulder", "far_shoulder"),
         ("shoulder", "belly"))
COLOURS = {  # RGB, distinct on sky, water and foliage
    "beak": (255, 200, 0), "head": (255, 90, 60), "tail": (60, 170, 255), "shoulder": (40, 230, 90),
    "far_shoulder": (170, 120, 255), "belly": (255, 120, 220),
}


def photo_scale(photo_size: tuple[int, int], size: int) -> float:
    """The factor from the uploaded photo's pixels to the rig engine's (long side -> `size`), as
    RigEngine.prepare computes it. photo_size: (width, height)."""
    return size / max(photo_size)


def to_photo_rig(rig: Rig, s: float) -> Rig:
    """A rig in the Bird's pixels -> the uploaded photo's pixels (what animate(rig=) expects)."""
    return rig.scaled(1.0 / s)


def to_bird_rig(rig: Rig, s: float) -> Rig:
    return rig.scaled(s)


def draw_rig(photo: np.ndarray, alpha: np.ndarray, rig: Rig, selected: str | None = None,
             box: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """uint8 [H, W, 3]: the photo, slightly dimmed outside the cut-out, the cut-out's outline, the
    bones and the labelled joints (the selected one ringed). box: (x0, y0, x1, y1) of the crop square
    to outline (dashed), in the same pixels, or None."""
    import cv2

    h, w = photo.shape[:2]
    img = photo[..., :3].astype(np.float32)
    a = np.clip(alpha.astype(np.float32), 0, 1)[..., None]
    img = (img * (0.55 + 0.45 * a)).astype(np.uint8)  # the bird stands out; the rest stays readable
    img = np.ascontiguousarray(img)
    lw = max(1, round(max(h, w) / 300))  # line width that reads at the app's display size
    contours, _ = cv2.findContours((alpha > 0.5).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(img, contours, -1, (255, 255, 255), lw + 1, cv2.LINE_AA)
    cv2.drawContours(img, contours, -1, (0, 0, 0), max(1, lw - 1), cv2.LINE_AA)
    if box is not None:
        dashed_rect(img, box, (255, 255, 255), lw)

    def pt(j):
        x, y = rig.point(j)
        return int(round(x)), int(round(y))

    for a_, b_ in BONES:
        cv2.line(img, pt(a_), pt(b_), (0, 0, 0), lw + 2, cv2.LINE_AA)
        cv2.line(img, pt(a_), pt(b_), (255, 255, 255), lw, cv2.LINE_AA)
    r = max(4, round(max(h, w) / 90))
    font, fs = cv2.FONT_HERSHEY_SIMPLEX, max(0.4, max(h, w) / 700)
    thick = max(1, round(max(h, w) / 400))
    for j in JOINTS:  # labels first, so that no label hides another joint's dot
        label = SHORT[j]
        (tw, th), _ = cv2.getTextSize(label, font, fs, thick)
        x, y = pt(j)
        tx = min(max(2, x + r + 3), w - tw - 2)
        ty = min(max(th + 2, y - r), h - 3)
        cv2.putText(img, label, (tx, ty), font, fs, (0, 0, 0), thick + 3, cv2.LINE_AA)
        cv2.putText(img, label, (tx, ty), font, fs, COLOURS[j], thick, cv2.LINE_AA)
    for j in JOINTS:
        if j == selected:
            cv2.circle(img, pt(j), r + 2 * lw + 3, (255, 255, 255), lw + 1, cv2.LINE_AA)
        cv2.circle(img, pt(j), r, (0, 0, 0), -1, cv2.LINE_AA)
        cv2.circle(img, pt(j), r - lw, COLOURS[j], -1, cv2.LINE_AA)
    return img


def dashed_rect(img: np.ndarray, box, colour, lw: int, dash: int = 10) -> None:
    import cv2

    h, w = img.shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    x0, x1 = max(0, x0), min(w - 1, x1)
    y0, y1 = max(0, y0), min(h - 1, y1)
    for (xa, ya), (xb, yb) in (((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)), ((x1, y1), (x0, y1)), ((x0, y1), (x0, y0))):
        n = max(1, int(np.hypot(xb - xa, yb - ya) // dash))
        for i in range(0, n, 2):
            p = (round(xa + (xb - xa) * i / n), round(ya + (yb - ya) * i / n))
            q = (round(xa + (xb - xa) * min(i + 1, n) / n), round(ya + (yb - ya) * min(i + 1, n) / n))
            cv2.line(img, p, q, colour, lw, cv2.LINE_AA)
