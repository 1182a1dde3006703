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


def similarity_figure(sim: np.ndarray, thumbs: list[np.ndarray], labels: list[str], title: str = "") -> np.ndarray:
    """Cosine-similarity heatmap with the birds' thumbnails along both axes (the original Figure 14).

    sim: [N, N] float matrix; thumbs: N uint8 [h, w, 3] images (any size, shown as squares);
    labels: N short strings (e.g. "seed 3"). Returns the figure as uint8 [H, W, 3].
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    n = len(thumbs)
    if sim.shape != (n, n) or len(labels) != n:
        raise ValueError(f"sim {sim.shape}, {n} thumbnails and {len(labels)} labels do not match")
    cell = 0.9 if n <= 8 else 0.6  # inches per matrix cell: readable numbers for small N
    fig, ax = plt.subplots(figsize=(1.6 + cell * (n + 1.2), 1.0 + cell * (n + 1.2)), dpi=100)
    im = ax.imshow(sim, extent=(0, n, n, 0), cmap="viridis", vmin=min(0.0, float(sim.min())), vmax=1.0)
    for i, t in enumerate(thumbs):  # a thumbnail above column i and left of row i, in data coordinates
        ax.imshow(t, extent=(i + 0.05, i + 0.95, -0.1, -1.0), clip_on=False)
        ax.imshow(t, extent=(-1.0, -0.1, i + 0.95, i + 0.05), clip_on=False)
    if n <= 12:
        for r in range(n):
            for c in range(n):
                v = float(sim[r, c])
                ax.text(c + 0.5, r + 0.5, f"{v:.2f}", ha="center", va="center", fontsize=8,
                        color="black" if v > 0.6 else "white")
    ax.set_xlim(-1.05, n)
    ax.set_ylim(n, -1.05)
    ax.set_xticks(np.arange(n) + 0.5, labels, rotation=90, fontsize=8)
    ax.set_yticks(np.arange(n) + 0.5, labels, fontsize=8)
    ax.tick_params(length=0)
    for s in ax.spines.values():
        s.set_visible(False)
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02, label="cosine similarity of w")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return figure_to_uint8(fig)
