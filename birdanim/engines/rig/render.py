"""Render a textured triangle mesh at deformed vertex positions, on the CPU without OpenGL.

How: over the output region the deformed mesh covers, every triangle's id is rasterised into an id
buffer (cv2.fillConvexPoly, one call per triangle, subpixel vertices); every pixel is then mapped back
to the texture through the affine map of its triangle (deformed -> rest, all triangles' inverse affines
computed at once with numpy), and the premultiplied RGBA texture is sampled there with one bilinear
cv2.remap. Premultiplied alpha means colour never bleeds in from transparent texels (no dark fringes).

- Fold-overs: where the deformed mesh overlaps itself, the triangle drawn later (higher id) wins, pixel
  by pixel; triangles of the two overlapping sheets interleave in id order, so a fold inside one mesh
  shows speckles (docs/arap-demo.png, at the wing's root). Parts that overlap (wings over the body)
  should be separate meshes rendered as layers, back to front.
- Cracks: pixels on no triangle but next to one take a neighbour's id (a 3x3 dilation of the id buffer),
  so seams between triangles never open, and the mesh grows 1 px outwards, where the texture's alpha is
  already ~0 because meshes extend `margin` px beyond the soft mask.
- Edges are antialiased by the texture's own soft alpha, sampled bilinearly.

Conventions: pixel centres at integer (x, y); `texture` and `rest` in texture pixels; `deformed` in
output pixels, shifted by `offset` (output pixel (col, row) is the point (col + ox, row + oy)).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["premultiply", "render_mesh", "render_sprite", "over", "mesh_bbox"]

_SHIFT = 4  # subpixel bits for the rasteriser: 1/16 px vertex precision
_K3 = np.ones((3, 3), np.uint8)
# affine of pixels on no triangle: maps them far outside the texture, where remap reads 0
_OFF_MESH = np.array([0, 0, -1e4, 0, 0, -1e4], np.float32)


def premultiply(rgba: np.ndarray) -> np.ndarray:
    """uint8 (0..255) or float (0..1) RGBA [H, W, 4] -> float32 premultiplied RGBA in 0..1."""
    x = np.asarray(rgba)
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    out = x.copy()
    out[..., :3] *= x[..., 3:4]
    return out


def mesh_bbox(deformed: np.ndarray, pad: int = 2) -> tuple[int, int, int, int]:
    """(x0, y0, w, h): integer box holding every pixel `render_mesh` can touch for these vertices."""
    lo = np.floor(deformed.min(0)).astype(int) - pad
    hi = np.ceil(deformed.max(0)).astype(int) + pad
    return int(lo[0]), int(lo[1]), int(hi[0] - lo[0] + 1), int(hi[1] - lo[1] + 1)


def _inverse_affines(rest: np.ndarray, deformed: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """[T, 6] float32 rows (a, b, c, d, e, f): rest = (a x + b y + c, d x + e y + f) for deformed (x, y)."""
    d0, d1, d2 = (deformed[triangles[:, k]] for k in range(3))
    r0, r1, r2 = (rest[triangles[:, k]] for k in range(3))
    Dm = np.stack([d1 - d0, d2 - d0], axis=2)  # [T, 2, 2], columns = edge vectors
    Rm = np.stack([r1 - r0, r2 - r0], axis=2)
    det = Dm[:, 0, 0] * Dm[:, 1, 1] - Dm[:, 0, 1] * Dm[:, 1, 0]
    ok = np.abs(det) > 1e-9
    inv = np.zeros_like(Dm)
    sdet = np.where(ok, det, 1.0)
    inv[:, 0, 0], inv[:, 1, 1] = Dm[:, 1, 1] / sdet, Dm[:, 0, 0] / sdet
    inv[:, 0, 1], inv[:, 1, 0] = -Dm[:, 0, 1] / sdet, -Dm[:, 1, 0] / sdet
    M = Rm @ inv  # [T, 2, 2]
    M[~ok] = 0.0  # a collapsed triangle covers no pixel centre; keep it finite anyway
    t = r0 - np.einsum("tij,tj->ti", M, d0)
    coef = np.empty((len(triangles), 6), np.float32)
    coef[:, 0:2], coef[:, 2] = M[:, 0], t[:, 0]
    coef[:, 3:5], coef[:, 5] = M[:, 1], t[:, 1]
    return coef


def render_mesh(
    texture: np.ndarray,
    rest: np.ndarray,
    deformed: np.ndarray,
    triangles: np.ndarray,
    out_shape: tuple[int, int],
    offset: tuple[float, float] = (0, 0),
) -> np.ndarray:
    """Warp `texture` (float32 premultiplied RGBA [H, W, 4], or any channel count) from the mesh at
    `rest` to the mesh at `deformed`. Returns float32 [h, w, C] premultiplied, zero off the mesh.

    out_shape: (h, w) of the output; offset: (ox, oy) of its top-left pixel in deformed coordinates.
    """
    h, w = out_shape
    tex = np.asarray(texture, dtype=np.float32)
    C = 1 if tex.ndim == 2 else tex.shape[2]
    out = np.zeros((h, w) if tex.ndim == 2 else (h, w, C), np.float32)
    dv = np.asarray(deformed, np.float64) - np.asarray(offset, np.float64)
    bx, by, bw, bh = mesh_bbox(dv)
    x0, y0, x1, y1 = max(bx, 0), max(by, 0), min(bx + bw, w), min(by + bh, h)
    if x1 <= x0 or y1 <= y0:
        return out
    tris = np.asarray(triangles)

    # id buffer over the region (float32 holds ids exactly up to 2^24, and cv2.dilate accepts it)
    ids = np.full((y1 - y0, x1 - x0), -1.0, np.float32)
    fixed = np.round((dv - (x0, y0)) * (1 << _SHIFT)).astype(np.int32)
    polys = fixed[tris]  # [T, 3, 2]
    fill = cv2.fillConvexPoly
    for t, poly in enumerate(polys):
        fill(ids, poly, t, cv2.LINE_8, _SHIFT)
    grown = cv2.dilate(ids, _K3)
    hole = ids < 0
    ids[hole] = grown[hole]
    ids = ids.astype(np.int32)  # -1 left = on no triangle: indexes the sentinel (last) row below

    # per-pixel affine coefficients, gathered plane by plane (contiguous planes combine fastest;
    # measured faster than gathering with a nearest-neighbour cv2.remap of a coefficient image)
    c = _inverse_affines(np.asarray(rest, np.float64), dv, tris)
    c = np.concatenate([c, _OFF_MESH[None]]).T.copy()  # [6, T + 1]
    a, b, cc, d, e, f = (np.take(c[k], ids) for k in range(6))
    xs = np.arange(x0, x1, dtype=np.float32)[None, :]
    ys = np.arange(y0, y1, dtype=np.float32)[:, None]
    a *= xs
    b *= ys
    a += b
    map_x = np.add(a, cc, out=a)
    d *= xs
    e *= ys
    d += e
    map_y = np.add(d, f, out=d)
    out[y0:y1, x0:x1] = cv2.remap(
        tex, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    ).reshape(out[y0:y1, x0:x1].shape)
    return out


def render_sprite(
    texture: np.ndarray, rest: np.ndarray, deformed: np.ndarray, triangles: np.ndarray
) -> tuple[np.ndarray, tuple[int, int]]:
    """Render into the tight box of the deformed mesh: (premultiplied sprite [h, w, C], (x0, y0)).
    Cache these (e.g. one per wing phase) and place them each frame with `over(frame, sprite, (x0, y0))`."""
    x0, y0, w, h = mesh_bbox(np.asarray(deformed, np.float64))
    return render_mesh(texture, rest, deformed, triangles, (h, w), (x0, y0)), (x0, y0)


def over(dst: np.ndarray, src: np.ndarray, at: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Composite premultiplied `src` [h, w, C+1] over `dst` [H, W, C] (float, same scale as src's
    colour) with src's top-left pixel at integer `at` = (x, y); clipped to dst. In place; returns dst.
    For a premultiplied dst with alpha, pass all 4 channels as C+1 = 4 in both (Porter-Duff 'over')."""
    H, W = dst.shape[:2]
    x, y = int(at[0]), int(at[1])
    h, w = src.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x1 <= x0 or y1 <= y0:
        return dst
    s = src[y0 - y : y1 - y, x0 - x : x1 - x]
    d = dst[y0:y1, x0:x1]
    nc = dst.shape[2]
    if dst.dtype == np.float32 and src.dtype == np.float32 and nc in (3, 4):
        # OpenCV's per-element ops: numpy broadcasting over a 3-wide last axis is ~20x slower here
        inv = 1.0 - s[..., 3]
        cv2.multiply(d, cv2.merge([inv] * nc), dst=d)
        cv2.add(d, cv2.cvtColor(s, cv2.COLOR_RGBA2RGB) if nc == 3 else s, dst=d)
    else:
        d *= 1.0 - s[..., 3:4]
        d += s[..., :nc]
    return dst
