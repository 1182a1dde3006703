"""The scene the bird flies through: its photo with the bird removed (the hole filled), or a sky.

``fill_hole`` (offline, OpenCV + numpy): the hole is the bird's mask grown a few pixels (so no rim of
feathers is left behind); it is filled at a reduced scale by a "push-pull" pyramid (each coarser level
averages the known pixels only, and finer levels take from it where they know nothing), which gives a
smooth fill with no streaks even for a hole much larger than cv2.inpaint handles well (Telea and
Navier-Stokes propagate from the rim and smear on big holes). The smooth fill is then given grain
matched to the surroundings' high frequencies, so it does not read as a blurred smear on a textured
background, and is blended in with a soft edge; pixels away from the hole are returned unchanged.

``LamaInpainter`` runs a learned inpainter (LaMa, Suvorov et al. 2022, Apache-2.0) exported to ONNX,
through OpenVINO, when its weights are there; ``fill_hole(..., inpainter=...)`` then uses it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from birdanim.errors import InpainterUnavailableError
from birdanim.paths import WEIGHTS, env_path

LAMA_REPO, LAMA_FILE = "Carve/LaMa-ONNX", "lama_fp32.onnx"


def hole_mask(alpha: np.ndarray, grow: float | None = None) -> np.ndarray:
    """uint8 0/1: every pixel with any bird in it, dilated by `grow` px (default: 3 px plus 3% of the
    bird's size), so that the soft edge and a missed feather or two go with the bird."""
    import cv2

    m = (np.asarray(alpha) > 0.02).astype(np.uint8)
    if not m.any():
        return m
    if grow is None:
        grow = 3 + 0.03 * float(np.sqrt(m.sum()))
    k = 2 * int(round(grow)) + 1
    return cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))


def push_pull(img: np.ndarray, known: np.ndarray, min_side: int = 4) -> np.ndarray:
    """float32 [h, w, c]: `img` with the pixels where `known` is 0 filled from the known ones by a
    normalised Gaussian pyramid (push: average known pixels down; pull: fill each level's gaps from the
    coarser one, blending by how much of the neighbourhood was known)."""
    import cv2

    levels = []
    a = img.astype(np.float32) * known[..., None]
    w = known.astype(np.float32)
    while True:
        levels.append((a, w))
        # go down until every pixel's neighbourhood is well known: a level whose weights are only
        # Gaussian tails would paint a far-away colour (a dark ground) into the middle of the sky
        if min(w.shape) <= min_side or w.min() > 0.25:
            break
        a, w = cv2.pyrDown(a), cv2.pyrDown(w)
        if a.ndim == 2:
            a = a[..., None]
    a, w = levels[-1]
    mean = (a.sum((0, 1)) / max(float(w.sum()), 1e-6)).astype(np.float32)  # of the known pixels
    conf = np.clip(w * 4.0, 0.0, 1.0)[..., None]
    out = conf * (a / np.maximum(w, 1e-6)[..., None]) + (1 - conf) * mean
    for a, w in reversed(levels[:-1]):
        up = cv2.resize(out, (w.shape[1], w.shape[0]), interpolation=cv2.INTER_LINEAR)
        if up.ndim == 2:
            up = up[..., None]
        conf = np.clip(w * 4.0, 0.0, 1.0)[..., None]  # a pixel whose neighbourhood is >= 1/4 known trusts itself
        own = a / np.maximum(w, 1e-6)[..., None]
        out = conf * own + (1 - conf) * up
    return out


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur; a wide one is done at a reduced size (4x faster at sigma 12, same low-pass)."""
    import cv2

    d = int(sigma // 3)
    if d < 2:
        return cv2.GaussianBlur(a, (0, 0), sigma)
    h, w = a.shape[:2]
    small = cv2.resize(a, (max(1, w // d), max(1, h // d)), interpolation=cv2.INTER_AREA)
    out = cv2.resize(cv2.GaussianBlur(small, (0, 0), sigma / d), (w, h), interpolation=cv2.INTER_LINEAR)
    return out if out.ndim == a.ndim else out[..., None]


def mirror_detail(img: np.ndarray, hole: np.ndarray, sigma: float) -> np.ndarray:
    """float32 [h, w, c]: for each hole pixel, the fine detail (image minus its Gaussian blur of
    `sigma` px, clipped to 2.5 robust deviations) of the known pixel mirrored across the hole's nearest
    border point, so the texture around the hole (water, grass, bark) continues into it as a reflection;
    0 where the mirror point falls in the hole or off the image, and outside the hole."""
    import cv2

    f = img.astype(np.float32)
    known = hole == 0
    # the blur of the known pixels only, so the bird's colours do not leak into the detail band
    w = _blur(known.astype(np.float32), sigma)
    low = _blur(f * known[..., None], sigma) / np.maximum(w, 1e-3)[..., None]
    high = np.where(known[..., None], f - low, 0.0).astype(np.float32)
    # texture, not edges: clip the detail to a few robust deviations of the surroundings', so a strong
    # edge near the hole (the horizon, a perch) is not mirrored into it as a bright streak
    if known.any():
        step = max(1, int(np.sqrt(known.size / 40000)))  # a subsample is plenty for a median
        sub = high[::step, ::step][known[::step, ::step]]
        sd = 1.4826 * np.median(np.abs(sub), axis=0) + 0.5
        high = np.clip(high, -2.5 * sd, 2.5 * sd)
    out = np.zeros_like(f)
    if not known.any():
        return out
    _, labels = cv2.distanceTransformWithLabels(hole.astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    ky, kx = np.nonzero(known)  # label k (1-based) is the k-th known pixel in raster order
    py, px = np.nonzero(hole)
    lab = labels[py, px] - 1
    qy, qx = ky[lab], kx[lab]
    ry, rx = 2 * qy - py, 2 * qx - px
    h, wd = hole.shape
    ok = (ry >= 0) & (ry < h) & (rx >= 0) & (rx < wd)
    ok[ok] &= known[ry[ok], rx[ok]]
    out[py[ok], px[ok]] = high[ry[ok], rx[ok]]
    # soften the seams between mirrored patches a little
    return cv2.GaussianBlur(out, (0, 0), 0.6) * hole[..., None]


def fill_hole(photo: np.ndarray, alpha: np.ndarray, inpainter=None, work_side: int = 256,
              texture: bool = True) -> np.ndarray:
    """uint8 [H, W, 3]: the photo with the bird (alpha > 0, grown a few px) removed.

    inpainter: a LamaInpainter (or any callable (photo, hole 0/1) -> uint8 photo) used instead of the
    OpenCV fill; work_side: long side in px at which the region around the hole is filled (the fill is
    smooth, so a low resolution loses nothing and keeps it fast); texture: add the surroundings' fine
    detail mirrored into the hole (see mirror_detail), so the fill is not a smooth smear.
    """
    import cv2

    photo = np.asarray(photo)
    H, W = photo.shape[:2]
    hole = hole_mask(alpha)
    if not hole.any():
        return photo.copy()
    if inpainter is not None:
        filled = np.asarray(inpainter(photo, hole), np.float32)
    else:
        ys, xs = np.nonzero(hole)
        r0, r1, c0, c1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        m = max(8, int(0.5 * max(r1 - r0, c1 - c0)))  # context around the hole
        R0, R1, C0, C1 = max(0, r0 - m), min(H, r1 + m), max(0, c0 - m), min(W, c1 + m)
        roi, rhole = photo[R0:R1, C0:C1], hole[R0:R1, C0:C1]
        s = min(1.0, work_side / max(R1 - R0, C1 - C0))
        sw, sh = max(4, round((C1 - C0) * s)), max(4, round((R1 - R0) * s))
        small = cv2.resize(roi, (sw, sh), interpolation=cv2.INTER_AREA).astype(np.float32)
        # a low-res pixel is known only if no hole pixel went into it
        known = cv2.resize(rhole.astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA) <= 0
        sfill = push_pull(small, known.astype(np.float32))
        big = cv2.resize(sfill, (C1 - C0, R1 - R0), interpolation=cv2.INTER_CUBIC)
        if texture:
            big = big + mirror_detail(roi, rhole, sigma=max(1.5, 0.012 * max(H, W)))
        filled = photo.astype(np.float32)
        filled[R0:R1, C0:C1] = big
    # blend: inside the hole the fill, a 1-2 px soft seam outward, everything else untouched
    soft = cv2.GaussianBlur(hole.astype(np.float32), (0, 0), 1.0)
    soft = np.maximum(soft, hole.astype(np.float32))[..., None]
    out = soft * filled + (1 - soft) * photo.astype(np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def sky_background(h: int, w: int, photo: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """uint8 [h, w, 3]: a soft sky, deeper at the top and hazier toward the bottom, tinted by the top
    rows of `photo` (a third of the way toward their colour, so a photo of foliage gives a greenish
    haze, not a green wall). A faint fixed grain keeps the video encoder from banding the gradient."""
    top = np.array([96.0, 150.0, 214.0])  # a clear sky's zenith
    bottom = np.array([204.0, 222.0, 238.0])  # its haze near the horizon
    if photo is not None and np.asarray(photo).size:
        p = np.asarray(photo, np.float32)
        rows = p[: max(1, p.shape[0] // 8)].reshape(-1, 3)
        tint = np.median(rows, 0)
        top = 0.67 * top + 0.33 * tint
        bottom = 0.67 * bottom + 0.33 * (0.5 * tint + 0.5 * 255.0)
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None] ** 0.8
    sky = (1 - t) * top[None, None, :] + t * bottom[None, None, :]
    sky = np.broadcast_to(sky, (h, w, 3)).astype(np.float32)
    sky = sky + np.random.default_rng(seed).normal(0.0, 1.2, (h, w, 1)).astype(np.float32)
    return np.clip(sky + 0.5, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- a learned inpainter (optional)


def inpainter_candidates(spec: str | os.PathLike | None = "auto") -> list[str]:
    """Local ONNX files to try: the given path, or $BIRDANIM_INPAINTER then weights/lama_fp32.onnx."""
    if spec not in (None, "auto"):
        return [str(spec)]
    cands = [c for c in [env_path("BIRDANIM_INPAINTER")] if c]
    if (WEIGHTS / LAMA_FILE).exists():
        cands.append(str(WEIGHTS / LAMA_FILE))
    return cands


class LamaInpainter:
    """LaMa exported to ONNX (Carve/LaMa-ONNX's ``lama_fp32.onnx``: inputs ``image`` [1,3,512,512] in
    0..1 and ``mask`` [1,1,512,512] 0/1, output [1,3,512,512]), run by OpenVINO on the CPU.

    The input names are configurable because other LaMa exports name them differently; the output's
    range (0..1 or 0..255) is detected from its values, as exports differ there too.
    """

    def __init__(self, spec: str | os.PathLike | None = "auto", image_input: str = "image", mask_input: str = "mask",
                 size: int = 512, download: bool = True, device: str = "CPU"):
        # spec: "auto" (BIRDANIM_INPAINTER, weights/lama_fp32.onnx, then the Hugging Face download) or
        # an .onnx path; image_input/mask_input: the model's input names; size: its fixed input side
        # in px; download: allow the Hugging Face download under "auto"; device: OpenVINO device.
        self.image_input, self.mask_input, self.size = image_input, mask_input, size
        cands = inpainter_candidates(spec)
        errors = []
        path = next((c for c in cands if Path(c).is_file()), None)
        for c in cands:
            if not Path(c).is_file():
                errors.append(f"{c}: no such file")
        if path is None and spec in (None, "auto") and download:
            try:
                from huggingface_hub import hf_hub_download

                path = hf_hub_download(LAMA_REPO, LAMA_FILE)
            except Exception as e:  # offline, hub unreachable
                errors.append(f"{LAMA_REPO}/{LAMA_FILE}: {type(e).__name__}: {str(e)[:160]}")
        if path is None:
            raise InpainterUnavailableError(
                "no learned inpainter could be loaded (" + ("; ".join(errors) or "nothing to try") + "). Set "
                "BIRDANIM_INPAINTER to a LaMa ONNX file (lama_fp32.onnx) or use the OpenCV fill.")
        try:
            import openvino as ov

            core = ov.Core()
            model = core.read_model(str(path))
            self.compiled = core.compile_model(model, device)
        except Exception as e:
            raise InpainterUnavailableError(f"the inpainter {path} could not be loaded: {type(e).__name__}: {str(e)[:200]}") from e
        names = {n for i in self.compiled.inputs for n in i.get_names()}
        missing = {image_input, mask_input} - names
        if missing:
            raise InpainterUnavailableError(
                f"the inpainter {path} has inputs {sorted(names)}, not {sorted(missing)}: pass image_input/mask_input")
        self.source = str(path)

    def __call__(self, photo: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """uint8 [H, W, 3]: the photo with the hole (0/1) filled, computed on a square around the hole
        with as much context again, at the model's input size."""
        import cv2

        H, W = photo.shape[:2]
        ys, xs = np.nonzero(hole)
        if len(xs) == 0:
            return photo.copy()
        cy, cx = (ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2
        side = int(min(max(H, W), max(2 * (ys.max() - ys.min()), 2 * (xs.max() - xs.min()), 64)))
        y0 = int(np.clip(round(cy - side / 2), 0, max(0, H - side)))
        x0 = int(np.clip(round(cx - side / 2), 0, max(0, W - side)))
        y1, x1 = min(H, y0 + side), min(W, x0 + side)
        crop, mcrop = photo[y0:y1, x0:x1], hole[y0:y1, x0:x1]
        S = self.size
        img = cv2.resize(crop, (S, S), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        m = (cv2.resize(mcrop.astype(np.float32), (S, S), interpolation=cv2.INTER_LINEAR) > 0).astype(np.float32)
        out = self.compiled({self.image_input: img.transpose(2, 0, 1)[None], self.mask_input: m[None, None]})
        res = np.asarray(next(iter(out.values())), np.float32)[0].transpose(1, 2, 0)
        if res.max() <= 2.0:  # 0..1 output
            res = res * 255.0
        res = cv2.resize(np.clip(res, 0, 255), (x1 - x0, y1 - y0), interpolation=cv2.INTER_CUBIC)
        outp = photo.astype(np.float32)
        outp[y0:y1, x0:x1] = np.where(mcrop[..., None] > 0, res, outp[y0:y1, x0:x1])
        return outp
