"""As-rigid-as-possible (ARAP) deformation of a 2-D triangle mesh driven by handle vertices.

After Igarashi, Moscovich & Hughes, "As-rigid-as-possible shape manipulation", SIGGRAPH 2005 (the
two-step closed-form version; AnimatedDrawings uses the edge-based variant of Igarashi & Igarashi 2009).
Both steps are linear least squares whose matrices depend only on the rest mesh and the handle ids, so
they are built and factorised once (`__init__`); a frame costs a small mat-vec (step 1, whose solution is
linear in the handles and precomputed) and one pair of sparse triangular solves (step 2).

1. Similarity step: each vertex of a rest triangle is written in the local frame of the opposite edge,
   v_k = v_i + x (v_j - v_i) + y R90 (v_j - v_i). Keeping (x, y) for every triangle and vertex while
   the handles move gives an intermediate mesh in which each triangle is a *similarity* transform of its
   rest shape (rotation and uniform scale are free).
2. Scale adjustment: each intermediate triangle is fitted by a similarity of its rest triangle
   (closed-form Procrustes), the scale is dropped (a pure rotation R_t is kept), and the final vertices
   minimise sum_t sum_{edges ij of t} |(v'_j - v'_i) - R_t (v_j - v_i)|^2: rotations survive, stretching
   is penalised, so rigid parts stay rigid. x and y separate: one V x V matrix for both.

Handles are soft constraints: each adds handle_weight^2 * |v'_h - target|^2 to both energies, so any
number of handles (even conflicting ones) gives a well-posed, factorisable system, and a handle whose
target disagrees with the others yields a little instead of tearing the mesh; with the default weight
a handle lands within ~1e-4 px of its target (measured: one of 4 handles on a 200 px blob moved 36 px),
i.e. the handles are exact for rendering purposes. A rigid motion of the
handles is reproduced exactly (both energies are zero there). With 0 handles the rest mesh is returned;
with 1 handle the rest mesh is translated (step 1's energy cannot fix rotation and scale from one
point). The mesh must be one connected piece (as `mesh_from_mask` makes it).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from birdanim.engines.rig.mesh import Mesh

__all__ = ["ARAP"]


class ARAP:
    """Factorise once per mesh and handle set; `solve` per frame.

    mesh:          the rest mesh (vertices [V, 2] px, triangles [T, 3]).
    handles:       [K] vertex ids that the caller moves (e.g. the rig's joints, vertices 0..J-1).
    handle_weight: weight of a handle's squared distance to its target, relative to one triangle's
                   shape term (px^2). Large = handles nearly exact; 1000 (as AnimatedDrawings) keeps
                   them within a small fraction of a pixel while the system stays well conditioned.
    """

    def __init__(self, mesh: Mesh, handles: np.ndarray, handle_weight: float = 1000.0):
        self.rest = np.asarray(mesh.vertices, dtype=np.float64)
        self.triangles = np.asarray(mesh.triangles, dtype=np.int64)
        self.handles = np.asarray(handles, dtype=np.int64).reshape(-1)
        self.handle_weight = float(handle_weight)
        V, T, K = len(self.rest), len(self.triangles), len(self.handles)
        if K and (self.handles.min() < 0 or self.handles.max() >= V):
            raise ValueError("handle ids must be vertex ids of the mesh")
        if len(np.unique(self.handles)) != K:
            raise ValueError("handle ids must be distinct")
        w2 = self.handle_weight**2
        tri = self.triangles
        p = self.rest

        # --- step 1: rows (r_x, r_y) for every triangle t and every rotation (i, j, k) of its corners
        #     r = v_k - v_i - x (v_j - v_i) - y R90 (v_j - v_i), R90(a, b) = (-b, a).
        rows, cols, vals = [], [], []
        r = 0
        for i_, j_, k_ in ((0, 1, 2), (1, 2, 0), (2, 0, 1)):
            i, j, k = tri[:, i_], tri[:, j_], tri[:, k_]
            e, f = p[j] - p[i], p[k] - p[i]
            n2 = (e**2).sum(1)
            x = (f * e).sum(1) / n2
            y = (f[:, 1] * e[:, 0] - f[:, 0] * e[:, 1]) / n2  # f . R90(e)
            rx = r + 2 * np.arange(T)
            ry = rx + 1
            # r_x = k_x - (1 - x) i_x - x j_x + y j_y - y i_y
            for rr, cc, vv in (
                (rx, 2 * k, 1.0), (rx, 2 * i, x - 1), (rx, 2 * j, -x), (rx, 2 * j + 1, y), (rx, 2 * i + 1, -y),
                # r_y = k_y - (1 - x) i_y - x j_y - y j_x + y i_x
                (ry, 2 * k + 1, 1.0), (ry, 2 * i + 1, x - 1), (ry, 2 * j + 1, -x), (ry, 2 * j, -y), (ry, 2 * i, y),
            ):
                rows.append(rr)
                cols.append(cc)
                vals.append(np.broadcast_to(vv, rr.shape))
            r += 2 * T
        A1 = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(6 * T, 2 * V)
        )
        h2 = np.concatenate([2 * self.handles, 2 * self.handles + 1])
        P1 = sp.csr_matrix((np.ones(2 * K), (np.arange(2 * K), h2)), shape=(2 * K, 2 * V))
        self._P1T = (w2 * P1.T).tocsr()

        # --- step 2: one row per (triangle, directed edge): v'_b - v'_a
        ea = np.concatenate([tri[:, 0], tri[:, 1], tri[:, 2]])
        eb = np.concatenate([tri[:, 1], tri[:, 2], tri[:, 0]])
        E = len(ea)
        D = sp.csr_matrix(
            (np.concatenate([-np.ones(E), np.ones(E)]), (np.tile(np.arange(E), 2), np.concatenate([ea, eb]))),
            shape=(E, V),
        )
        P2 = sp.csr_matrix((np.ones(K), (np.arange(K), self.handles)), shape=(K, V))
        self._DT = D.T.tocsr()
        self._P2T = (w2 * P2.T).tocsr()
        self._rest_edges = p[eb] - p[ea]  # [3T, 2], rows in the order of D
        # centred rest triangles for the per-triangle similarity fit
        self._rest_c = p[tri] - p[tri].mean(1, keepdims=True)  # [T, 3, 2]
        self._rest_n2 = (self._rest_c**2).sum((1, 2))

        self._step1 = self._lu2 = None
        if K >= 2:
            try:
                lu1 = splu((A1.T @ A1 + w2 * P1.T @ P1).tocsc())
                self._lu2 = splu((D.T @ D + w2 * P2.T @ P2).tocsc())
            except RuntimeError as err:  # "Factor is exactly singular"
                raise ValueError(
                    "the ARAP system is singular: is the mesh in several pieces, or do all handles coincide?"
                ) from err
            # Step 1's right-hand side depends on the handles only, so its solution is a fixed linear
            # map of them: [2V, 2K], precomputed with 2K solves (a frame then costs one mat-vec).
            self._step1 = lu1.solve(self._P1T.toarray())

    def solve(self, handle_xy: np.ndarray) -> np.ndarray:
        """[V, 2] deformed vertices for handle targets `handle_xy` [K, 2] (same order as `handles`)."""
        h = np.asarray(handle_xy, dtype=np.float64).reshape(-1, 2)
        if len(h) != len(self.handles):
            raise ValueError(f"expected {len(self.handles)} handle positions, got {len(h)}")
        if len(h) == 0:
            return self.rest.copy()
        if self._step1 is None:  # one handle: translate
            return self.rest + (h[0] - self.rest[self.handles[0]])
        # step 1: intermediate mesh, each triangle a similarity transform of its rest shape
        v1 = (self._step1 @ np.concatenate([h[:, 0], h[:, 1]])).reshape(-1, 2)
        # step 2a: per-triangle rotation from a similarity fit of rest -> intermediate, scale dropped
        q = v1[self.triangles]
        q = q - q.mean(1, keepdims=True)
        pc = self._rest_c
        a = (pc * q).sum((1, 2))
        b = (pc[..., 0] * q[..., 1] - pc[..., 1] * q[..., 0]).sum(1)
        n = np.hypot(a, b)
        n[n == 0] = 1.0
        c, s = np.tile(a / n, 3), np.tile(b / n, 3)  # rows ordered like D: edge (0,1) of all t, ...
        ex, ey = self._rest_edges[:, 0], self._rest_edges[:, 1]
        target = np.stack([c * ex - s * ey, s * ex + c * ey], 1)
        # step 2b: fit the rotated rest edges, keep the handles
        b2 = self._DT @ target + self._P2T @ h
        return self._lu2.solve(b2)
