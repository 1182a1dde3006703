"""Cut the chosen bird out of its photo: a soft alpha mask at the photo's resolution.

Two methods:

* ``YoloSegmenter`` (ultralytics YOLOv8-seg, COCO "bird") when its weights can be had: its instance
  mask for the bird that best overlaps the chosen box.
* Offline, always available: OpenCV GrabCut seeded by the detector box. The box's inner ellipse is
  probable bird, its corners and a thin ring just outside it probable background (the detector's box
  may clip a wing tip, so the mask may grow a little past it), everything further out definite
  background; other birds' boxes are background. GrabCut runs on a downscaled region around the box
  (about 0.05-0.15 s). The result is cleaned: an opening scaled to the bird's size cuts thin
  structures such as a perch, the component over the box's centre is kept, holes are filled.

Meta's AnimatedDrawings segments a figure with an adaptive threshold, closing, a flood fill from the
border and the largest contour: right for a drawing on white paper, wrong for a photo whose background
has texture and colour, hence GrabCut (colour models of bird and background) here.

Either mask is checked (a mask covering almost none or almost all of the box is not a bird cut-out);
when it fails, an oval inscribed in the box is used and the ``Cutout`` says so in ``notes``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from birdanim.errors import SegmenterUnavailableError
from birdanim.paths import WEIGHTS, env_path
from birdanim.stages.detect import BIRD_CLASS


# Sanity limits on the share of the chosen box that the mask covers.
MIN_BOX_COVER = 0.15
MAX_BOX_COVER = 0.95
MIN_THIN_COVER = 0.06  # accepted when the mask reaches across the box (a flying bird's spread wings)

FALLBACK_NOTE = "Could not cut the bird out cleanly; using an oval around it."


@dataclass
class Cutout:
    alpha: np.ndarray  # float32 [H, W] in 0..1 at the photo's resolution: the bird, soft 2-3 px edge
    method: str  # "yolov8-seg" | "grabcut" | "box-ellipse" (fallback)
    notes: list[str] = field(default_factory=list)  # what the user should know, in a person's words
    # uint8 0/1 [H, W] or None: what to remove from the scene, when more than the alpha: the bird plus
    # the thin parts the clean-up cut off it (legs, toes, a thin tail), so no ghost legs stay behind
    hole: np.ndarray | None = None


def _xyxy(box) -> tuple[float, float, float, float]:
    if hasattr(box, "x0"):
        return float(box.x0), float(box.y0), float(box.x1), float(box.y1)
    x0, y0, x1, y1 = box[:4]
    return float(x0), float(y0), float(x1), float(y1)


# ---------------------------------------------------------------- mask helpers (pure functions)


def soft_edge(binary: np.ndarray, width: float = 3.0) -> np.ndarray:
    """float32 alpha from a binary mask: a linear ramp `width` px wide centred on the border (by the
    distance transform on both sides), so 0 < alpha < 1 only within width/2 px of the edge."""
    import cv2

    m = (binary > 0).astype(np.uint8)
    if not m.any():
        return np.zeros(m.shape, np.float32)
    inside = cv2.distanceTransform(m, cv2.DIST_L2, 3)
    outside = cv2.distanceTransform(1 - m, cv2.DIST_L2, 3)
    signed = np.where(m > 0, inside - 0.5, 0.5 - outside)  # ~ distance from the pixel edge
    return np.clip(signed / width + 0.5, 0.0, 1.0).astype(np.float32)


def fill_holes(binary: np.ndarray) -> np.ndarray:
    """uint8 0/1 mask with every background region that does not reach the border filled."""
    import cv2

    m = (binary > 0).astype(np.uint8)
    h, w = m.shape
    padded = np.zeros((h + 2, w + 2), np.uint8)
    padded[1:-1, 1:-1] = m
    flood = padded.copy()
    cv2.floodFill(flood, np.zeros((h + 4, w + 4), np.uint8), (0, 0), 1)
    return (padded | (1 - flood))[1:-1, 1:-1]


def keep_component(binary: np.ndarray, prefer: np.ndarray | None = None) -> np.ndarray:
    """The connected component overlapping `prefer` (a 0/1 mask, e.g. the box's central ellipse) the
    most; the largest one when none overlaps."""
    import cv2

    m = (binary > 0).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if n <= 2:
        return m
    score = stats[1:, cv2.CC_STAT_AREA].astype(np.float64)
    if prefer is not None:
        over = np.bincount(labels[prefer > 0].ravel(), minlength=n)[1:].astype(np.float64)
        if over.max() > 0:
            score = over + 1e-3 * score  # overlap first, size breaks ties
    return (labels == 1 + int(np.argmax(score))).astype(np.uint8)


def rejoin_parts(main: np.ndarray, all_fg: np.ndarray, inbox: np.ndarray, min_area: float, max_gap: float) -> np.ndarray:
    """Add back pieces of the bird cut off from `main` by something thin in front of it (a branch
    across the body) or by the opening (a spread wing's thin root): components of `all_fg` of at least
    `min_area` px lying mostly (>= 80%) inside `inbox` (the box grown by `allow`) and within `max_gap` px of `main`,
    bridged by a closing just wider than the gap (so only the gap, not the outline, changes much)."""
    import cv2

    out = (main > 0).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats((all_fg > 0).astype(np.uint8), connectivity=8)
    if n <= 2:
        return out
    dist = cv2.distanceTransform(1 - out, cv2.DIST_L2, 3)
    for i in range(1, n):
        comp = labels == i
        area = int(stats[i, cv2.CC_STAT_AREA])
        if area < min_area or (out[comp] > 0).any() or (inbox[comp] > 0).mean() < 0.8:
            continue
        gap = float(dist[comp].min())
        if gap > max_gap:
            continue
        k = int(gap) + 3 | 1
        joined = cv2.morphologyEx(out | comp.astype(np.uint8), cv2.MORPH_CLOSE,
                                  cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
        if cv2.connectedComponents(joined, connectivity=8)[0] == 2:  # background + one piece: bridged
            out = joined
            dist = cv2.distanceTransform(1 - out, cv2.DIST_L2, 3)
    return out


def ellipse_mask(shape: tuple[int, int], box, scale: float = 1.0) -> np.ndarray:
    """uint8 0/1 [H, W]: the ellipse inscribed in the box, its axes times `scale`."""
    import cv2

    x0, y0, x1, y1 = _xyxy(box)
    m = np.zeros(shape, np.uint8)
    c = (int(round((x0 + x1) / 2)), int(round((y0 + y1) / 2)))
    ax = (max(1, int(round(scale * (x1 - x0) / 2))), max(1, int(round(scale * (y1 - y0) / 2))))
    cv2.ellipse(m, c, ax, 0, 0, 360, 1, -1)
    return m


def mask_is_plausible(binary: np.ndarray, box) -> tuple[bool, str]:
    """(ok, why not): the mask must cover MIN..MAX_BOX_COVER of the box (down to MIN_THIN_COVER when
    it spans >= 70% of the box's width and height), and must not fill the box to its edge on all four
    sides (then GrabCut took the whole box, background included)."""
    h, w = binary.shape
    x0, y0, x1, y1 = _xyxy(box)
    c0, r0 = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
    c1, r1 = min(w, int(np.ceil(x1))), min(h, int(np.ceil(y1)))
    if c1 - c0 < 2 or r1 - r0 < 2:
        return False, "box too small"
    sub = binary[r0:r1, c0:c1] > 0
    cover = float(sub.mean())
    ys, xs = np.nonzero(sub)
    reach = min((xs.max() - xs.min() + 1) / sub.shape[1], (ys.max() - ys.min() + 1) / sub.shape[0]) if len(xs) else 0.0
    # a thin bird with spread wings covers little of its box but reaches across it
    if cover < MIN_BOX_COVER and not (cover >= MIN_THIN_COVER and reach >= 0.7):
        return False, f"mask covers {cover:.0%} of the box"
    if cover > MAX_BOX_COVER:
        return False, f"mask covers {cover:.0%} of the box"
    sides = [sub[0].mean(), sub[-1].mean(), sub[:, 0].mean(), sub[:, -1].mean()]
    if min(sides) > 0.6:
        return False, "mask fills the box to all four sides"
    return True, ""


def other_birds(box, others: Sequence, nested: float = 0.5) -> list:
    """The boxes of other birds, without those lying mostly (>= `nested` of their area) inside the
    chosen box: the detector's second box on a part of the same bird (a wing, the lower body)."""
    x0, y0, x1, y1 = _xyxy(box)
    out = []
    for o in others:
        a0, b0, a1, b1 = _xyxy(o)
        area = max(0.0, a1 - a0) * max(0.0, b1 - b0)
        inter = max(0.0, min(a1, x1) - max(a0, x0)) * max(0.0, min(b1, y1) - max(b0, y0))
        if area > 0 and inter / area < nested:
            out.append(o)
    return out


def exclude_boxes(binary: np.ndarray, box, others: Sequence) -> np.ndarray:
    """Zero the other birds' boxes, except where they overlap the chosen box."""
    out = binary.copy()
    h, w = out.shape
    keep = np.zeros_like(out, dtype=bool)
    x0, y0, x1, y1 = _xyxy(box)
    keep[max(0, int(y0)) : min(h, int(np.ceil(y1))), max(0, int(x0)) : min(w, int(np.ceil(x1)))] = True
    for o in others:
        a0, b0, a1, b1 = _xyxy(o)
        r = np.zeros_like(keep)
        r[max(0, int(b0)) : min(h, int(np.ceil(b1))), max(0, int(a0)) : min(w, int(np.ceil(a1)))] = True
        out[r & ~keep] = 0
    return out


# ---------------------------------------------------------------- GrabCut (offline)


def grabcut_mask(photo: np.ndarray, box, others: Sequence = (), work_side: int = 200, iters: int = 5,
                 allow: float = 0.06, context: float = 0.3, core: float = 0.0, raw: list | None = None,
                 seeds: Sequence = ()) -> np.ndarray:
    """uint8 0/1 [H, W] binary mask of the bird in `box` by GrabCut, cleaned (see the module doc).

    work_side: long side in px of the region GrabCut runs on (speed); iters: GrabCut iterations;
    allow: how far past the box (fraction of its size per side) the bird may still reach;
    context: how much surrounding background (fraction of the box size per side) feeds the colour model;
    core: axes (fraction of the box's) of a central ellipse taken as certainly bird (0: none; a flying
    bird's box centre may be sky, so it is only the second try); raw: if a list, GrabCut's mask before
    the clean-up (uint8 0/1 [H, W], thin parts included) is appended to it; seeds: (x, y) photo pixels
    known to be on the bird (its keypoints: a dark head on a dark background is otherwise easily lost).
    """
    import cv2

    H, W = photo.shape[:2]
    x0, y0, x1, y1 = _xyxy(box)
    bw, bh = max(1.0, x1 - x0), max(1.0, y1 - y0)
    # the region of interest: the box with context around it, inside the photo
    R0, C0 = max(0, int(np.floor(y0 - context * bh))), max(0, int(np.floor(x0 - context * bw)))
    R1, C1 = min(H, int(np.ceil(y1 + context * bh))), min(W, int(np.ceil(x1 + context * bw)))
    s = min(1.0, work_side / max(R1 - R0, C1 - C0))
    rw, rh = max(8, round((C1 - C0) * s)), max(8, round((R1 - R0) * s))
    sx, sy = rw / (C1 - C0), rh / (R1 - R0)
    roi = cv2.resize(np.ascontiguousarray(photo[R0:R1, C0:C1]), (rw, rh), interpolation=cv2.INTER_AREA)

    def to_roi(b):  # a box in photo pixels -> ROI pixels
        a0, b0, a1, b1 = _xyxy(b)
        return ((a0 - C0) * sx, (b0 - R0) * sy, (a1 - C0) * sx, (b1 - R0) * sy)

    rb = to_roi(box)
    gc = np.full((rh, rw), cv2.GC_BGD, np.uint8)
    grown = (rb[0] - allow * bw * sx, rb[1] - allow * bh * sy, rb[2] + allow * bw * sx, rb[3] + allow * bh * sy)

    def fill_rect(b, v):
        a0, b0, a1, b1 = b
        gc[max(0, int(np.floor(b0))) : max(0, int(np.ceil(b1))), max(0, int(np.floor(a0))) : max(0, int(np.ceil(a1)))] = v

    fill_rect(grown, cv2.GC_PR_BGD)  # the ring just outside the box: the bird may reach into it
    fill_rect(rb, cv2.GC_PR_BGD)  # the box's corners: often background
    inner = ellipse_mask((rh, rw), rb, 1.0)
    gc[inner > 0] = cv2.GC_PR_FGD  # (no definite core: a flying bird's box centre may be sky)
    # Where the photo's border cuts the context ring, GrabCut lacks background samples (a bird filling
    # the frame): the photo's outer rim outside the box's ellipse is then taken as background.
    rim = max(2, int(round(0.03 * max(rw, rh))))
    edge = np.zeros((rh, rw), bool)
    if R0 == 0:
        edge[:rim] = True
    if C0 == 0:
        edge[:, :rim] = True
    if R1 == H:
        edge[-rim:] = True
    if C1 == W:
        edge[:, -rim:] = True
    gc[edge & (inner == 0)] = cv2.GC_BGD
    if core > 0:
        gc[ellipse_mask((rh, rw), rb, core) > 0] = cv2.GC_FGD
    dot = max(1, int(round(0.025 * min(rb[2] - rb[0], rb[3] - rb[1]))))
    for x, y in seeds:
        cv2.circle(gc, (int(round((x - C0) * sx)), int(round((y - R0) * sy))), dot, int(cv2.GC_FGD), -1)
    inbox = np.zeros((rh, rw), bool)
    inbox[max(0, int(rb[1])) : int(np.ceil(rb[3])), max(0, int(rb[0])) : int(np.ceil(rb[2]))] = True
    for o in others:  # the other birds: background (probable where they overlap the chosen box)
        ob = to_roi(o)
        r = np.zeros((rh, rw), bool)
        r[max(0, int(ob[1])) : max(0, int(np.ceil(ob[3]))), max(0, int(ob[0])) : max(0, int(np.ceil(ob[2])))] = True
        gc[r & ~inbox] = cv2.GC_BGD
        gc[r & inbox] = cv2.GC_PR_BGD
    if not ((gc == cv2.GC_BGD) | (gc == cv2.GC_PR_BGD)).any():
        gc[0, :] = cv2.GC_PR_BGD  # GrabCut needs some background samples
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        cv2.setRNGSeed(0)
        cv2.grabCut(roi[..., ::-1].copy(), gc, None, bgd, fgd, iters, cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return np.zeros((H, W), np.uint8)
    fg = ((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)).astype(np.uint8)
    fg_raw = fg
    # Cut thin structures (a perch, a twig): an opening with a disc ~5% of the box's short side, but
    # no wider than the mask's typical thickness (a flying bird's long thin wings must survive it).
    # Legs and the thinnest beaks go too: acceptable, the rig tucks the legs.
    thick = 2.0 * float(np.median(cv2.distanceTransform(fg, cv2.DIST_L2, 3)[fg > 0])) if fg.any() else 0.0
    k = int(min(0.05 * min(rb[2] - rb[0], rb[3] - rb[1]), thick))
    k = max(3, k - 1 if k % 2 == 0 else k)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    opened = cv2.morphologyEx(fg, cv2.MORPH_OPEN, disc)
    fg = opened if opened.any() else fg
    fg_before_keep = fg
    fg = keep_component(fg, ellipse_mask((rh, rw), rb, 0.5))
    ingrown = np.zeros((rh, rw), bool)
    ingrown[max(0, int(grown[1])) : max(0, int(np.ceil(grown[3]))), max(0, int(grown[0])) : max(0, int(np.ceil(grown[2])))] = True
    fg = rejoin_parts(fg, fg_before_keep, ingrown, min_area=0.01 * (rb[2] - rb[0]) * (rb[3] - rb[1]),
                      max_gap=0.15 * min(rb[2] - rb[0], rb[3] - rb[1]))
    fg = fill_holes(fg)
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    # back to photo pixels: upsample the float mask and threshold, for a smooth (not blocky) outline
    big = cv2.resize(fg.astype(np.float32), (C1 - C0, R1 - R0), interpolation=cv2.INTER_LINEAR)
    out = np.zeros((H, W), np.uint8)
    out[R0:R1, C0:C1] = big >= 0.5
    out = exclude_boxes(out, box, others)
    if raw is not None:
        # the raw mask's pieces touching the clean one (legs, toes), within the box grown by `allow`
        lab = cv2.connectedComponents(fg_raw, connectivity=8)[1]
        keep = np.unique(lab[(fg > 0) & (fg_raw > 0)])
        near = np.isin(lab, keep[keep > 0]) & ingrown
        rbig = cv2.resize(near.astype(np.uint8), (C1 - C0, R1 - R0), interpolation=cv2.INTER_NEAREST)
        full = np.zeros((H, W), np.uint8)
        full[R0:R1, C0:C1] = rbig
        raw.append(exclude_boxes(full | out, box, others))
    return out


# ---------------------------------------------------------------- YOLOv8-seg (when available)


def segmenter_candidates(spec: str | os.PathLike | None = "auto") -> list[str]:
    """Which weights to try, in order. "auto": $BIRDANIM_SEGMENTER, a local weights/yolov8n-seg.pt,
    then "yolov8n-seg.pt" (ultralytics downloads it when online)."""
    if spec not in (None, "auto"):
        return [str(spec)]
    cands = [c for c in [env_path("BIRDANIM_SEGMENTER")] if c]
    for p in (WEIGHTS / "yolov8n-seg.pt", Path("yolov8n-seg.pt")):
        if p.exists():
            cands.append(str(p))
    cands.append("yolov8n-seg.pt")
    return list(dict.fromkeys(cands))


def _np(x) -> np.ndarray:
    """A torch tensor or array-like -> numpy."""
    if hasattr(x, "cpu"):
        x = x.cpu()
    if hasattr(x, "numpy"):
        x = x.numpy()
    return np.asarray(x)


def select_instance(result, shape: tuple[int, int], box) -> np.ndarray | None:
    """uint8 0/1 [H, W]: of the bird instances in one ultralytics segmentation result, the one whose
    mask best matches the chosen box (IoU of its polygon's box with the chosen box, weighted by how much
    of the mask lies inside the box); None when there is no bird instance."""
    import cv2

    if result is None or getattr(result, "masks", None) is None or result.boxes is None:
        return None
    cls = _np(result.boxes.cls).reshape(-1).astype(int)
    polys = list(result.masks.xy)
    x0, y0, x1, y1 = _xyxy(box)
    best, best_score = None, 0.0
    for k, poly in zip(cls, polys):
        if k != BIRD_CLASS or len(poly) < 3:
            continue
        m = np.zeros(shape, np.uint8)
        cv2.fillPoly(m, [np.round(np.asarray(poly, np.float32)).astype(np.int32)], 1)
        ys, xs = np.nonzero(m)
        if len(xs) == 0:
            continue
        a0, b0, a1, b1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        iw, ih = min(a1, x1) - max(a0, x0), min(b1, y1) - max(b0, y0)
        inter = max(0.0, iw) * max(0.0, ih)
        union = (a1 - a0) * (b1 - b0) + (x1 - x0) * (y1 - y0) - inter
        iou = inter / union if union > 0 else 0.0
        r = m[max(0, int(y0)) : int(np.ceil(y1)), max(0, int(x0)) : int(np.ceil(x1))]
        inside = r.sum() / max(1, m.sum())
        score = iou * inside
        if score > best_score:
            best, best_score = m, score
    return best


class YoloSegmenter:
    """YOLOv8-seg restricted to birds. Loads once; ``mask(photo, box, others)`` -> uint8 0/1 or None."""

    def __init__(self, spec: str | os.PathLike | None = "auto", min_conf: float = 0.2, imgsz: int = 640):
        # spec: "auto" (see segmenter_candidates) or a path to YOLOv8-seg weights; min_conf: instance
        # score threshold 0..1 (low: the chosen box already says a bird is there); imgsz: input side px.
        self.min_conf, self.imgsz = min_conf, imgsz
        self.model, self.source = self._load(segmenter_candidates(spec))

    @staticmethod
    def _load(candidates: list[str]):
        from birdanim.stages.detect import keep_thread_settings, _prepare_ultralytics_env

        _prepare_ultralytics_env()
        try:
            with keep_thread_settings():  # importing ultralytics sets cv2's threads to 0 and OMP_NUM_THREADS=1
                from ultralytics import YOLO
        except ImportError as e:
            raise SegmenterUnavailableError("the ultralytics package is not installed: pip install ultralytics") from e
        errors = []
        for c in candidates:
            if c == "yolov8n-seg.pt" and not Path(c).exists():
                os.environ["YOLO_OFFLINE"] = "false"  # allow ultralytics' own download of its weights
            elif not Path(c).exists():
                errors.append(f"{c}: no such file")
                continue
            try:
                return YOLO(c, task="segment"), c
            except Exception as e:  # no network, a broken file: try the next one
                errors.append(f"{c}: {type(e).__name__}: {str(e)[:200]}")
        raise SegmenterUnavailableError(
            "no bird segmenter could be loaded (tried " + "; ".join(errors) + "). Give a local YOLOv8-seg "
            "file (e.g. yolov8n-seg.pt) with BIRDANIM_SEGMENTER, or use the offline cut-out (GrabCut)."
        )

    def mask(self, photo: np.ndarray, box, others: Sequence = ()) -> np.ndarray | None:
        from birdanim.stages.detect import keep_thread_settings

        with keep_thread_settings():  # ultralytics' predict leaves torch at min(8, cores - 1) threads otherwise
            res = self.model.predict(np.ascontiguousarray(photo[..., ::-1]), imgsz=self.imgsz, conf=self.min_conf,
                                     classes=[BIRD_CLASS], verbose=False, retina_masks=True)[0]
        m = select_instance(res, photo.shape[:2], box)
        return None if m is None else exclude_boxes(m, box, others)


# ---------------------------------------------------------------- the entry point


def segment_bird(photo: np.ndarray, box, others: Sequence = (), segmenter: YoloSegmenter | None = None,
                 seeds: Sequence = ()) -> Cutout:
    """The chosen bird's soft mask. photo: uint8 [H, W, 3] RGB; box: its Box (photo pixels); others:
    the other birds' boxes (kept out of the mask); segmenter: a loaded YoloSegmenter, or None for GrabCut;
    seeds: (x, y) points known to lie on the bird (its keypoints), certain foreground for GrabCut."""
    photo = np.asarray(photo)
    if photo.ndim != 3 or photo.shape[2] != 3:
        raise ValueError("photo must be uint8 [H, W, 3] RGB")
    H, W = photo.shape[:2]
    others = other_birds(box, others)
    notes: list[str] = []
    if segmenter is not None:
        try:
            m = segmenter.mask(photo, box, others)
        except Exception as e:  # a model failing at run time must not stop the video
            m, why = None, f"{type(e).__name__}"
            notes.append(f"The segmentation model failed ({why}); cut the bird out with GrabCut instead.")
        if m is not None:
            ok, why = mask_is_plausible(m, box)
            if ok:
                return Cutout(soft_edge(fill_holes(m)), "yolov8-seg", notes)
            notes.append(f"The segmentation model's mask looked wrong ({why}); cut the bird out with GrabCut instead.")
        elif not notes:
            notes.append("The segmentation model found no bird in the box; cut the bird out with GrabCut instead.")
    # GrabCut finds a local optimum that can lose half a bird; a second try from other seeds (a certain
    # core, another working size) runs only when the first mask fails the checks
    for kw in (dict(), dict(core=0.2, work_side=160)):
        raw: list = []
        m = grabcut_mask(photo, box, others, raw=raw, seeds=seeds, **kw)
        ok, why = mask_is_plausible(m, box)
        if ok:
            return Cutout(soft_edge(m), "grabcut", notes, hole=raw[0] if raw else None)
    notes.append(FALLBACK_NOTE)
    oval = exclude_boxes(ellipse_mask((H, W), box, 1.0), box, others)
    return Cutout(soft_edge(oval), "box-ellipse", notes)
