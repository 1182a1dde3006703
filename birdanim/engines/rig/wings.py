"""Spread wings for a bird photographed with its wings folded, painted in that bird's own plumage.

A perched bird shows no open wing to animate, and stretching its body pixels into a wing shape reads as
a paper cut-out. So the wing is built: the outline and feather layout of a real bird wing (coverts over
a row of secondaries along the arm, primaries fanning from the hand; proportions as in the avian-mesh
flying template of Badger et al. 2020: the hand about half the span, the chord about a third of it),
each feather drawn as its own shape with a pale edge and a dark shaft, coloured from the bird's own
plumage (`Palette`, sampled where its folded wing lies) and carrying the bird's own feather grain (the
fine detail of that region, tiled over the wing).

Canonical wing frame: u along the span (0 at the shoulder, 1 at the tip), v along the chord (0 at the
leading edge, growing towards the trailing edge). `WING_HANDLES` are the joints the motion drives
(shoulder, elbow, wrist, tip, and three trailing points); the rest of the wing follows them by ARAP.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Canonical positions (u, v) of the wing's joints, in units of the wing's length.
WING_HANDLES: dict[str, tuple[float, float]] = {
    "shoulder": (0.02, 0.02),
    "root_trail": (0.03, 0.17),
    "elbow": (0.25, 0.0),
    "wrist": (0.48, -0.01),
    "tip": (0.98, 0.075),
    "inner_primary": (0.575, 0.335),  # near the tip of the innermost primary: the hand's trailing corner
    "mid_primary": (0.84, 0.25),
    "secondary": (0.26, 0.27),  # trailing edge of the arm
}
PAD = 0.08  # texture margin around the wing, in units of the wing's length
SUPERSAMPLE = 2  # feathers are drawn at this scale and reduced (antialiased edges)


@dataclass
class Palette:
    """The colours a wing is painted with, RGB floats 0..255."""

    covert: np.ndarray  # the wing's upper surface near the body (the folded wing's median colour)
    flight: np.ndarray  # flight feathers: the darker part of the folded wing
    edge: np.ndarray  # pale feather edges
    shaft: np.ndarray  # feather shafts and shadows
    detail: np.ndarray | None = None  # [h, w] high-pass luminance of the folded wing, tiled over the wing
    coverts: np.ndarray | None = None  # [h, w, 3] the folded wing itself, cut along the body: the wing's coverts


def _lum(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114])


def folded_wing_region(alpha: np.ndarray, rig) -> np.ndarray:
    """Boolean [H, W]: where the folded wing lies on a perched bird's side: an ellipse from the shoulder
    towards the tail, on the back's half of the body."""
    h, w = alpha.shape
    start = rig.point("shoulder")
    end = rig.point("tail") + 0.35 * (rig.point("shoulder") - rig.point("tail"))
    centre = 0.5 * (start + end) - rig.dorsal * 0.05 * rig.length
    half_len = 0.55 * np.linalg.norm(end - start) + 1
    half_wid = 0.16 * rig.length + 1
    ang = np.degrees(np.arctan2(end[1] - start[1], end[0] - start[0]))
    m = np.zeros((h, w), np.uint8)
    cv2.ellipse(m, (int(round(centre[0])), int(round(centre[1]))), (int(half_len), int(half_wid)), ang, 0, 360, 1, -1)
    return (m > 0) & (alpha > 0.5)


def wing_plumage(photo: np.ndarray, alpha: np.ndarray, rig) -> tuple[np.ndarray, np.ndarray]:
    """(where the bird's folded wing lies, bool [H, W] (the whole bird when that is too small); its
    pixels float [N, 3], ordered from darkest to lightest)."""
    region = folded_wing_region(alpha, rig)
    if region.sum() < 30:
        region = alpha > 0.5
    px = photo[region].astype(np.float64)
    return region, px[np.argsort(_lum(px))]


def bird_palette(photo: np.ndarray, alpha: np.ndarray, rig) -> Palette:
    """Colours and grain of the bird's own wing plumage (photo uint8 [H, W, 3], alpha [H, W])."""
    region, px = wing_plumage(photo, alpha, rig)

    def q(lo, hi):
        return px[int(lo * len(px)): max(int(hi * len(px)), int(lo * len(px)) + 1)].mean(0)

    covert = q(0.35, 0.75)
    flight = q(0.05, 0.40)
    edge = q(0.80, 0.98)
    # the flight feathers' contrast: real flight feathers are a little darker than the coverts
    flight = np.clip(0.85 * flight + 0.15 * covert * 0.6, 0, 255)
    shaft = np.clip(flight * 0.55, 0, 255)
    # feather grain: the luminance detail of the region (its own scale), cut to a rectangle
    ys, xs = np.nonzero(region)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    patch = _lum(photo[y0:y1, x0:x1].astype(np.float64)).astype(np.float32)
    blur = cv2.GaussianBlur(patch, (0, 0), 3.0)
    detail = (patch - blur) * region[y0:y1, x0:x1]
    return Palette(covert, flight, edge, shaft, detail if detail.size >= 64 else None, _folded_wing_strip(photo, alpha, rig))


def _folded_wing_strip(photo: np.ndarray, alpha: np.ndarray, rig) -> np.ndarray | None:
    """The folded wing's pixels as a rectangle [h, w, 3] float, its long side along the wing (from the
    shoulder towards the tail): the bird's real coverts and tertials, to be laid along the spread wing."""
    start = rig.point("shoulder")
    end = rig.point("tail") + 0.45 * (rig.point("shoulder") - rig.point("tail"))
    length = float(np.linalg.norm(end - start))
    if length < 8:
        return None
    width = 0.22 * rig.length
    u = (end - start) / length
    n = -rig.dorsal  # from the back towards the belly: the strip's rows run from the wing's leading edge
    # affine map: strip pixel (x along the wing, y across it) -> photo pixel
    M = np.array([[u[0], n[0], start[0] - n[0] * 0.15 * width], [u[1], n[1], start[1] - n[1] * 0.15 * width]])
    W, H = int(max(8, round(length))), int(max(4, round(width)))
    strip = cv2.warpAffine(photo.astype(np.float32), M, (W, H), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REFLECT)
    inside = cv2.warpAffine(alpha.astype(np.float32), M, (W, H), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    if (inside > 0.5).mean() < 0.6:  # the strip leaves the bird: no real plumage to lay down
        return None
    return strip


@dataclass
class WingTexture:
    """A painted spread wing: premultiplied RGBA float32 [H, W, 4] in 0..1, and where its joints are."""

    rgba: np.ndarray
    handles: dict[str, np.ndarray]  # joint -> (x, y) in texture pixels
    length: float  # the wing's length (shoulder to tip) in texture pixels
    origin: np.ndarray  # texture pixel of canonical (0, 0)



def _feather(c: np.ndarray, root: np.ndarray, tip: np.ndarray, width: float, round_tip: float = 0.5) -> np.ndarray:
    """Outline (int32 [N, 2], supersampled px) of one feather from root to tip: a vane that widens from
    the root and ends in a rounded tip."""
    d = tip - root
    n = np.linalg.norm(d) + 1e-9
    a, p = d / n, np.array([-d[1], d[0]]) / n
    pts = []
    for t in np.linspace(0, 1, 9):  # one side from root to the start of the tip
        wid = width * (0.55 + 0.45 * np.sqrt(t)) * (1 - round_tip * max(0, t - 0.8) / 0.2 * 0.3)
        pts.append(root + a * n * t * (1 - 0.5 * width / n) + p * wid / 2)
    for ang in np.linspace(0, np.pi, 9)[1:-1]:  # the rounded tip
        pts.append(tip - a * width / 2 + (p * np.cos(ang) + a * np.sin(ang)) * width / 2)
    for t in np.linspace(1, 0, 9):
        wid = width * (0.55 + 0.45 * np.sqrt(t)) * (1 - round_tip * max(0, t - 0.8) / 0.2 * 0.3)
        pts.append(root + a * n * t * (1 - 0.5 * width / n) - p * wid / 2)
    return np.round(np.asarray(pts) * c).astype(np.int32)


def _primary_tip(k: float) -> np.ndarray:
    """Tip of primary k (0 innermost .. 1 outermost) on a curve from the hand's trailing corner to the
    wing tip (a quadratic Bezier)."""
    p0, p1, p2 = np.array([0.58, 0.36]), np.array([0.92, 0.36]), np.array([1.0, 0.07])
    return (1 - k) ** 2 * p0 + 2 * (1 - k) * k * p1 + k**2 * p2


def paint_wing(palette: Palette, length: float, seed: int = 0, n_primaries: int = 9, n_secondaries: int = 10) -> WingTexture:
    """Paint a spread wing `length` px long (shoulder to tip) in the palette's colours."""
    rng = np.random.default_rng(seed)
    L = float(max(length, 16.0))
    W, H = int(np.ceil(L * (1.0 + 2 * PAD + 0.04))), int(np.ceil(L * (0.45 + 2 * PAD)))
    origin = np.array([PAD * L, PAD * L])
    s = SUPERSAMPLE
    c = s  # supersampled px per texture px
    img = np.zeros((H * s, W * s, 3), np.float32)
    cover = np.zeros((H * s, W * s), np.float32)

    def uv(p):
        return origin + np.asarray(p, np.float64) * L

    def draw(poly, colour, edge_colour, shaft_from=None, shaft_to=None):
        cv2.fillPoly(img, [poly], colour.tolist(), cv2.LINE_AA)
        cv2.fillPoly(cover, [poly], 1.0, cv2.LINE_AA)
        soft_edge = 0.45 * edge_colour + 0.55 * colour  # a pale fringe, not a drawn outline
        cv2.polylines(img, [poly], True, soft_edge.tolist(), max(1, int(round(0.005 * L * s))), cv2.LINE_AA)
        if shaft_from is not None:
            a, b = np.round(shaft_from * c).astype(int), np.round(shaft_to * c).astype(int)
            cv2.line(img, tuple(a), tuple(b), palette.shaft.tolist(), max(1, int(round(0.004 * L * s))), cv2.LINE_AA)

    def jitter(col, amount=0.06):
        return np.clip(col * (1 + rng.normal(0, amount)), 0, 255)

    # primaries, outermost first so the inner ones overlap them (as on a real wing seen from above)
    for i in reversed(range(n_primaries)):
        k = i / (n_primaries - 1)
        root = uv((0.50 + 0.36 * k, 0.035 + 0.01 * k))
        tip = uv(_primary_tip(k))
        width = L * (0.085 - 0.025 * k)
        col = jitter(palette.flight * (1.0 - 0.12 * k))
        draw(_feather(c, root, tip, width), col, jitter(palette.edge * 0.9 + col * 0.1), root, tip)
    # secondaries along the arm's trailing edge
    for i in range(n_secondaries):
        k = i / (n_secondaries - 1)
        u = 0.03 + 0.47 * k
        root = uv((u, 0.06))
        tip = uv((u + 0.03, 0.285 + 0.04 * np.sin(np.pi * k) + rng.normal(0, 0.006)))
        col = jitter(palette.flight * 1.05)
        draw(_feather(c, root, tip, L * 0.085, round_tip=1.0), col, jitter(palette.edge), root, tip)
    # coverts: the covered leading part, then rows of small scalloped feathers over the flight feathers' bases
    lead = np.array([uv(p) for p in [(0.0, 0.0), (0.1, -0.012), (0.25, -0.02), (0.48, -0.03), (0.7, 0.0),
                                      (0.9, 0.05), (0.86, 0.09), (0.6, 0.13), (0.48, 0.17), (0.2, 0.19), (0.0, 0.18)]])
    poly = np.round(lead * c).astype(np.int32)
    cv2.fillPoly(img, [poly], palette.covert.tolist(), cv2.LINE_AA)
    cv2.fillPoly(cover, [poly], 1.0, cv2.LINE_AA)
    if palette.coverts is not None:  # the bird's own folded wing, laid along the span: its real plumage
        x0, y0 = np.floor(lead.min(0) * c).astype(int)
        x1, y1 = np.ceil(lead.max(0) * c).astype(int)
        band = cv2.resize(palette.coverts, (x1 - x0, y1 - y0), interpolation=cv2.INTER_CUBIC)
        m = np.zeros(img.shape[:2], np.float32)
        cv2.fillPoly(m, [poly], 1.0, cv2.LINE_AA)
        m = cv2.GaussianBlur(m, (0, 0), 0.02 * L * c)[y0:y1, x0:x1, None] * (m[y0:y1, x0:x1, None] > 0)
        img[y0:y1, x0:x1] = m * band + (1 - m) * img[y0:y1, x0:x1]
    rows = [] if palette.coverts is not None else [(0.10, 0.045, 0.8), (0.045, 0.035, 0.88)]
    for row, (v, size, u_end) in enumerate([(0.16, 0.055, 0.55), *rows]):
        col_row = palette.covert * (0.92 + 0.05 * row)
        for u in np.arange(0.02 + 0.5 * size * (row % 2), u_end, size * 0.9):
            centre = uv((u, v + 0.02 * np.sin(u * 3)))
            axes = (int(size * L * c * 0.55), int(size * L * c * 0.75))
            col = jitter(col_row, 0.04)
            cv2.ellipse(img, tuple(np.round(centre * c).astype(int)), axes, 80, 0, 180, col.tolist(), -1, cv2.LINE_AA)
            cv2.ellipse(img, tuple(np.round(centre * c).astype(int)), axes, 80, 10, 170, (palette.edge * 0.6 + col * 0.4).tolist(),
                        max(1, int(round(0.004 * L * c))), cv2.LINE_AA)

    img = cv2.resize(img, (W, H), interpolation=cv2.INTER_AREA)
    cover = np.clip(cv2.resize(cover, (W, H), interpolation=cv2.INTER_AREA), 0, 1)
    # shading: lighter along the leading edge, darker towards the trailing edge and the body
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    v_norm = (yy - origin[1]) / L
    u_norm = (xx - origin[0]) / L
    shade = 1.06 - 0.25 * np.clip(v_norm / 0.4, 0, 1) - 0.10 * np.clip(1 - u_norm / 0.12, 0, 1)
    img *= shade[..., None]
    if palette.detail is not None:  # the bird's own feather grain
        d = palette.detail
        reps = (int(np.ceil(H / d.shape[0])) + 1, int(np.ceil(W / d.shape[1])) + 1)
        grain = np.tile(d, reps)[:H, :W]
        img += 0.8 * grain[..., None]
    img = np.clip(img, 0, 255) / 255.0
    rgba = np.concatenate([img * cover[..., None], cover[..., None]], axis=2).astype(np.float32)
    handles = {k: uv(v) for k, v in WING_HANDLES.items()}
    return WingTexture(rgba, handles, L, origin)


def rotation(degrees: float) -> np.ndarray:
    """The 2x2 matrix turning image vectors by `degrees` (clockwise on screen: y points down)."""
    t = np.radians(degrees)
    return np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])


def rotate_about(points: np.ndarray, centre: np.ndarray, degrees: float) -> np.ndarray:
    return (np.asarray(points, np.float64) - centre) @ rotation(degrees).T + centre


def bent_handles(wing: WingTexture, flex: float, fan: float) -> dict[str, np.ndarray]:
    """The joints of the wing in its own (texture) frame when the arm sweeps back and the wrist flexes
    by `flex` (0: fully spread, 1: the upstroke's folded hand) and the primaries fan by `fan` (1: fully
    open, 0: closed onto the outermost). Rotations towards +v sweep the wing back (towards the tail)."""
    h = {k: v.copy() for k, v in wing.handles.items()}
    S = h["shoulder"]
    sweep = 12.0 * flex  # the whole arm swings back a little
    for k in ("elbow", "wrist", "tip", "inner_primary", "mid_primary", "secondary"):
        h[k] = rotate_about(h[k], S, sweep)
    W = h["wrist"]
    hand = 40.0 * flex  # the hand folds back at the wrist
    for k in ("tip", "inner_primary", "mid_primary"):
        h[k] = rotate_about(h[k], W, hand)
    # primaries close towards the outermost: the trailing points rotate about the wrist towards the tip
    close = (1.0 - fan) * 22.0
    h["inner_primary"] = rotate_about(h["inner_primary"], W, -close)
    h["mid_primary"] = rotate_about(h["mid_primary"], W, -0.5 * close)
    return h
