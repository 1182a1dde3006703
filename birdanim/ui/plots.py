"""Figures drawn with matplotlib (imported inside the functions, Agg backend), returned as uint8 images."""

from __future__ import annotations

import numpy as np


def figure_to_uint8(fig) -> np.ndarray:
    """Render a matplotlib figure -> uint8 [H, W, 3] and close it."""
    import matplotlib.pyplot as plt

    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    plt.close(fig)
    return np.ascontiguousarray(rgba[..., :3])


def similarity_figure(sim: np.ndarray, thumbs: list[np.ndarray], labels: list[str], title: str = "",
                      centred: bool = False) -> np.ndarray:
    """Cosine-similarity heatmap with the birds' thumbnails along both axes (the original Figure 14).

    sim: [N, N] float matrix; thumbs: N uint8 [h, w, 3] images (any size, shown as squares);
    labels: N short strings (e.g. "seed 3"); centred: the cosines are of w minus the average w, drawn
    on a diverging scale centred at 0 (red: alike, blue: opposite). Returns uint8 [H, W, 3].
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    n = len(thumbs)
    if sim.shape != (n, n) or len(labels) != n:
        raise ValueError(f"sim {sim.shape}, {n} thumbnails and {len(labels)} labels do not match")
    cell = 0.9 if n <= 8 else 0.6  # inches per matrix cell: readable numbers for small N
    fig, ax = plt.subplots(figsize=(1.6 + cell * (n + 1.2), 1.0 + cell * (n + 1.2)), dpi=100)
    if centred:  # stretched to the largest off-diagonal value: random birds' codes are all nearly unrelated
        off = np.abs(sim[~np.eye(n, dtype=bool)]) if n > 1 else np.array([1.0])
        lim = float(np.ceil(max(float(off.max()), 0.05) * 20) / 20)
        im = ax.imshow(sim, extent=(0, n, n, 0), cmap="RdBu_r", vmin=-lim, vmax=lim)
    else:
        im = ax.imshow(sim, extent=(0, n, n, 0), cmap="viridis", vmin=min(0.0, float(sim.min())), vmax=1.0)
    for i, t in enumerate(thumbs):  # a thumbnail above column i and left of row i, in data coordinates
        ax.imshow(t, extent=(i + 0.05, i + 0.95, -0.1, -1.0), clip_on=False)
        ax.imshow(t, extent=(-1.0, -0.1, i + 0.95, i + 0.05), clip_on=False)
    if n <= 12:
        for r in range(n):
            for c in range(n):
                v = float(sim[r, c])
                dark = abs(v) > 0.6 * lim if centred else v <= 0.6  # white text on the dark cells
                ax.text(c + 0.5, r + 0.5, f"{v:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if dark else "black")
    ax.set_xlim(-1.05, n)
    ax.set_ylim(n, -1.05)
    ax.set_xticks(np.arange(n) + 0.5, labels, rotation=90, fontsize=8)
    ax.set_yticks(np.arange(n) + 0.5, labels, fontsize=8)
    ax.tick_params(length=0)
    for s in ax.spines.values():
        s.set_visible(False)
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02,
                 label=f"cosine of (w - average w), scale \u00b1{lim:.2f}" if centred else "cosine similarity of w")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return figure_to_uint8(fig)


def mixing_figure(grid: np.ndarray, row_seeds: list[int], col_seeds: list[int], cutoff: int, num_ws: int,
                  pad: int = 2) -> np.ndarray:
    """The style-mixing grid (birdanim.service.Animator.mixing_grid: top row the column seeds' birds,
    left column the row seeds', cell (r, c) their mix) with its rows and columns named.

    grid: uint8 [H, W, 3] of (rows+1) x (cols+1) square cells `pad` pixels apart. Returns uint8 [H', W', 3].
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rows, cols = len(row_seeds), len(col_seeds)
    cell = (grid.shape[1] + pad) / (cols + 1)  # one cell plus its gap
    inch = 1.25  # per cell: thumbnails stay readable however small the generator's images are
    fig, ax = plt.subplots(figsize=(1.4 + inch * (cols + 1), 1.0 + inch * (rows + 1)), dpi=100)
    ax.imshow(grid, interpolation="lanczos" if grid.shape[1] < 400 else "antialiased")
    ax.set_xticks([cell * (c + 1.5) - pad / 2 for c in range(cols)], [f"seed {s}" for s in col_seeds], fontsize=9)
    ax.set_yticks([cell * (r + 1.5) - pad / 2 for r in range(rows)], [f"seed {s}" for s in row_seeds], fontsize=9)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for s in ax.spines.values():
        s.set_visible(False)
    fine = f"layer {cutoff}" if cutoff == num_ws - 1 else f"layers {cutoff}-{num_ws - 1}"
    coarse = "layer 0" if cutoff == 1 else f"layers 0-{cutoff - 1}"
    ax.set_xlabel(f"Column seeds give colour and texture ({fine}) →", fontsize=10)
    ax.xaxis.set_label_position("top")
    ax.set_ylabel(f"← Row seeds give pose and shape ({coarse})", fontsize=10)
    ax.text(cell * 0.5 - pad / 2, cell * 0.5 - pad / 2, "sources", ha="center", va="center", fontsize=8,
            color="0.4")
    fig.tight_layout()
    return figure_to_uint8(fig)
