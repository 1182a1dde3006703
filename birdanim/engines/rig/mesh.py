"""Triangle meshes over a cut-out (a soft alpha mask) or over an outline polygon.

Coordinates are pixels, (x, y) = (column, row), with integer values at pixel centres (the convention of
cv2.remap and of the drawing functions), y pointing down. A triangle (a, b, c) is *positively oriented*
when cross(b - a, c - a) > 0 in these coordinates (clockwise as seen on screen); every mesh made here
is, and `Mesh.signed_areas()` says so.

Joints: the rig's joints are forced to be mesh vertices (not barycentric points inside triangles), so
that ARAP handles are plain vertex ids. Pass them as `joints=`: they become vertices 0..J-1, in the
order given. A joint outside the mask is joined to it by a strip of mesh (invisible: the texture's alpha
is 0 there), so every joint is on the one connected mesh.

Typical size: `spacing=12` gives ~250-350 triangles for a 200 px bird; `spacing_for(alpha, n)` picks it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import Delaunay

__all__ = ["Mesh", "mesh_from_mask", "mesh_from_polygon", "spacing_for"]


@dataclass
class Mesh:
    """A 2-D triangle mesh.

    vertices:  [V, 2] float64, (x, y) in pixels.
    triangles: [T, 3] int32 vertex ids, each positively oriented (see the module docstring).
    """

    vertices: np.ndarray
    triangles: np.ndarray

    def signed_areas(self, vertices: np.ndarray | None = None) -> np.ndarray:
        """[T] signed areas (px^2) of the triangles over `vertices` (default: the rest vertices)."""
        return triangle_signed_areas(self.vertices if vertices is None else vertices, self.triangles)

    def edges(self) -> np.ndarray:
        """[E, 2] unique undirected edges (i < j)."""
        t = self.triangles
        e = np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]])
        return np.unique(np.sort(e, axis=1), axis=0)


def triangle_signed_areas(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    a, b, c = (vertices[triangles[:, k]] for k in range(3))
    u, v = b - a, c - a
    return 0.5 * (u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0])


def _min_angles(p: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """[T] smallest interior angle (degrees) of each triangle."""
    a, b, c = p[tris[:, 0]], p[tris[:, 1]], p[tris[:, 2]]
    la, lb, lc = (np.linalg.norm(x, axis=1) for x in (b - c, c - a, a - b))  # side opposite a, b, c
    eps = 1e-12

    def ang(opp, s1, s2):
        return np.degrees(np.arccos(np.clip((s1**2 + s2**2 - opp**2) / (2 * s1 * s2 + eps), -1, 1)))

    return np.minimum(np.minimum(ang(la, lb, lc), ang(lb, lc, la)), ang(lc, la, lb))


def _resample_closed(poly: np.ndarray, step: float) -> np.ndarray:
    """Insert points on a closed polyline so that no segment is longer than `step`."""
    out = []
    n = len(poly)
    for i in range(n):
        p, q = poly[i], poly[(i + 1) % n]
        k = max(1, int(np.ceil(np.linalg.norm(q - p) / step)))
        out.append(p + (q - p) * (np.arange(k)[:, None] / k))
    return np.concatenate(out)


def _largest_component_mask(m: np.ndarray) -> np.ndarray:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if n <= 1:
        return m
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return (labels == best).astype(np.uint8)


def mesh_from_mask(
    alpha: np.ndarray,
    spacing: float,
    margin: float = 2.0,
    joints: np.ndarray | None = None,
    threshold: float = 0.05,
) -> Mesh:
    """A triangle mesh covering the soft mask `alpha` ([H, W], 0..1).

    spacing:   distance (px) between interior vertices (a hexagonal grid); boundary points every
               ~spacing/2. Smaller = more triangles (about 2 * area / spacing^2 + the boundary ring).
    margin:    the region meshed is `alpha > threshold` dilated by this many px, so that soft edges lie
               inside the mesh and the rendered alpha fades out before the mesh ends.
    joints:    [J, 2] points forced to be vertices 0..J-1 (see the module docstring).
    threshold: alpha above which a pixel belongs to the shape.

    Only the largest connected piece of the mask is meshed. Raises ValueError on an empty mask.
    """
    if spacing <= 1:
        raise ValueError(f"spacing must be > 1 px, got {spacing}")
    alpha = np.asarray(alpha, dtype=np.float32)
    joints = np.zeros((0, 2)) if joints is None else np.asarray(joints, dtype=np.float64).reshape(-1, 2)
    m = (alpha > threshold).astype(np.uint8)
    if not m.any():
        raise ValueError("the mask is empty: nothing to mesh")
    if len(joints) > 1:
        d = np.linalg.norm(joints[:, None] - joints[None], axis=-1) + np.eye(len(joints)) * 1e9
        if d.min() < 0.5:
            raise ValueError("two joints are closer than 0.5 px; give distinct joint positions")

    # Work on a padded crop around the mask and joints (speed; room for the margin and joint strips).
    ys, xs = np.nonzero(m)
    pad = int(np.ceil(margin)) + int(np.ceil(spacing)) + 2
    lo = np.floor(np.minimum([xs.min(), ys.min()], joints.min(0) if len(joints) else np.inf)).astype(int) - pad
    hi = np.ceil(np.maximum([xs.max(), ys.max()], joints.max(0) if len(joints) else -np.inf)).astype(int) + pad
    h, w = int(hi[1] - lo[1] + 1), int(hi[0] - lo[0] + 1)
    canvas = np.zeros((h, w), np.uint8)
    sx0, sy0 = max(lo[0], 0), max(lo[1], 0)
    sx1, sy1 = min(hi[0] + 1, m.shape[1]), min(hi[1] + 1, m.shape[0])
    canvas[sy0 - lo[1] : sy1 - lo[1], sx0 - lo[0] : sx1 - lo[0]] = m[sy0:sy1, sx0:sx1]
    jl = joints - lo  # joints in crop coordinates

    # Dilate by `margin` (a Euclidean distance, so fractional margins work), keep the largest piece.
    if margin > 0:
        dist_out = cv2.distanceTransform(1 - canvas, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        region = (dist_out <= margin).astype(np.uint8)
    else:
        region = canvas.copy()
    region = _largest_component_mask(region)

    # Joints outside the region: a strip from the joint to the nearest region pixel, and a disc at it,
    # so the joint's triangles are kept and the mesh stays one piece.
    if len(jl):
        ry, rx = np.nonzero(region)
        rpts = np.stack([rx, ry], 1).astype(np.float64)
        thick = max(3, int(round(spacing / 2)))
        for p in jl:
            ix, iy = int(round(p[0])), int(round(p[1]))
            if region[iy, ix]:
                continue
            q = rpts[np.argmin(((rpts - p) ** 2).sum(1))]
            cv2.line(region, (ix, iy), (int(q[0]), int(q[1])), 1, thickness=thick)
            cv2.circle(region, (ix, iy), thick, 1, thickness=-1)

    # Boundary points: contours (outer and holes), simplified within half the margin, then resampled.
    contours, _ = cv2.findContours(region, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    eps = max(0.5, min(spacing / 4, margin / 2 if margin > 0 else 0.5))
    bpts = []
    for c in contours:
        if len(c) < 3 or (abs(cv2.contourArea(c)) < spacing**2 / 2 and len(contours) > 1):
            continue  # tiny holes: meshed over (the texture's alpha is 0 there anyway)
        ap = cv2.approxPolyDP(c, eps, True).reshape(-1, 2).astype(np.float64)
        if len(ap) >= 3:
            bpts.append(_resample_closed(ap, spacing / 2))
    bpts = np.concatenate(bpts) if bpts else np.zeros((0, 2))

    # Interior points: a hexagonal grid, kept at least ~spacing/2 from the boundary (no slivers).
    dist_in = cv2.distanceTransform(region, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    dy = spacing * np.sqrt(3) / 2
    gy = np.arange(dy / 2, h, dy)
    rows = []
    for i, y in enumerate(gy):
        gx = np.arange((i % 2) * spacing / 2 + spacing / 4, w, spacing)  # odd rows shifted by half
        rows.append(np.stack([gx, np.full_like(gx, y)], 1))
    grid = np.concatenate(rows)
    gi = np.round(grid).astype(int)
    ok = (gi[:, 0] < w) & (gi[:, 1] < h)
    grid, gi = grid[ok], gi[ok]
    grid = grid[dist_in[gi[:, 1], gi[:, 0]] >= 0.55 * spacing]

    others = np.concatenate([bpts, grid])
    if len(jl):  # make room for the joints
        d = np.linalg.norm(others[:, None] - jl[None], axis=-1).min(1)
        others = others[d >= 0.4 * spacing]
    # Exact-duplicate boundary points (contours touching themselves) would break Delaunay.
    others = np.unique(np.round(others, 6), axis=0)
    points = np.concatenate([jl, others])
    if len(points) < 3:
        raise ValueError("the mask is too small for this spacing; lower `spacing`")

    tris = Delaunay(points).simplices.astype(np.int64)
    area = triangle_signed_areas(points, tris)
    flip = area < 0
    tris[flip] = tris[flip][:, [0, 2, 1]]
    area = np.abs(area)
    cen = points[tris].mean(1)
    ci = np.clip(np.round(cen).astype(int), 0, [w - 1, h - 1])
    keep = (region[ci[:, 1], ci[:, 0]] > 0) & (area > 1e-3 * spacing**2)
    tris = tris[keep]

    # Peel slivers off the boundary (Delaunay's hull and concave corners leave flat triangles there).
    for _ in range(3):
        e = np.sort(np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]]), axis=1)
        _, inv, cnt = np.unique(e, axis=0, return_inverse=True, return_counts=True)
        on_boundary = (cnt[inv.reshape(3, -1)] == 1).any(0)
        bad = on_boundary & (_min_angles(points, tris) < 8.0) & (tris >= len(jl)).all(1)  # joints keep theirs
        if not bad.any():
            break
        tris = tris[~bad]

    tris = _largest_piece(tris, len(points))
    used = np.zeros(len(points), bool)
    used[tris.ravel()] = True
    if len(jl) and not used[: len(jl)].all():
        lost = np.nonzero(~used[: len(jl)])[0].tolist()
        raise ValueError(f"joints {lost} could not be attached to the mesh; move them onto the bird")
    remap = np.cumsum(used) - 1  # keeps the order, so joints stay vertices 0..J-1
    vertices = points[used] + lo
    return Mesh(vertices=vertices.astype(np.float64), triangles=remap[tris].astype(np.int32))


def spacing_for(alpha: np.ndarray, n_triangles: int = 250, threshold: float = 0.5) -> float:
    """The `spacing` that gives about `n_triangles` (within ~30%) for this mask, whatever the bird's
    size: interior triangles number ~2 area / spacing^2, and the boundary ring adds ~60% to that
    (measured on drawn birds of 60-400 px; more on tiny or thin shapes)."""
    area = float((np.asarray(alpha) > threshold).sum())
    return max(1.5, float(np.sqrt(3.3 * area / n_triangles)))


def _largest_piece(tris: np.ndarray, n_points: int) -> np.ndarray:
    """The triangles of the largest piece connected through shared edges."""
    if len(tris) == 0:
        raise ValueError("no triangles left: the mask is too thin for this spacing; lower `spacing`")
    e = np.sort(np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]]), axis=1)
    _, inv = np.unique(e, axis=0, return_inverse=True)
    inv = inv.ravel()
    t_of = np.tile(np.arange(len(tris)), 3)
    # Triangles sharing an edge id are neighbours: a bipartite triangle-edge graph.
    n_t, n_e = len(tris), inv.max() + 1
    g = coo_matrix((np.ones(len(inv)), (t_of, n_t + inv)), shape=(n_t + n_e, n_t + n_e))
    n, labels = connected_components(g, directed=False)
    lab = labels[:n_t]
    best = np.bincount(lab).argmax()
    return tris[lab == best]


def mesh_from_polygon(
    points: np.ndarray, spacing: float, margin: float = 1.0, joints: np.ndarray | None = None
) -> Mesh:
    """A triangle mesh covering a closed outline ([N, 2] x, y in px), e.g. a wing template's outline.

    The outline is rasterised (subpixel) and meshed as by `mesh_from_mask`; `margin` (px) extends the
    mesh beyond the outline so the rendered edge is antialiased by the texture's own alpha.
    """
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    allp = p if joints is None else np.concatenate([p, np.asarray(joints, np.float64).reshape(-1, 2)])
    pad = int(np.ceil(margin + spacing)) + 2
    lo = np.floor(allp.min(0)).astype(int) - pad
    hi = np.ceil(allp.max(0)).astype(int) + pad
    mask = np.zeros((hi[1] - lo[1] + 1, hi[0] - lo[0] + 1), np.uint8)
    cv2.fillPoly(mask, [np.round((p - lo) * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    j = None if joints is None else np.asarray(joints, np.float64).reshape(-1, 2) - lo
    mesh = mesh_from_mask(mask.astype(np.float32), spacing, margin=margin, joints=j, threshold=0.5)
    mesh.vertices = mesh.vertices + lo
    return mesh
