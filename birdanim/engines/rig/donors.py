"""Real spread wings for a perched bird: the outline and feather structure of wings cut from photos of
birds in flight, recoloured with the bird's own plumage.

    library = load_donors()                               # assets/wings/donors.npz (None when missing)
    ramp = plumage_ramp(photo, alpha, rig)                # the bird's own wing colours, dark to light
    wing = donor_wing(library, choose(library, seed, key), ramp, length)   # a WingTexture, like paint_wing's

A donor is one wing of a flying bird (CUB-200-2011 train crops labelled flying, located with their wing
keypoints; `python -m train.tools.make_wing_donors`), stored in the wing's own frame, the frame
`wings.paint_wing` draws in: u along the span (0 at the shoulder, 1 at the tip), v along the chord
(towards the trailing edge), both in units of the wing's length. Only its outline (alpha) and its
luminance (the feathers' structure: shafts, pale edges, the shadows between primaries) are kept, not
its colours. At render time each donor luminance is replaced by the colour of the bird's own folded
wing at the same rank (the darkest donor feathers take the bird's darkest wing colour, and so on), so
the wing keeps the donor's feathering and wears this bird's plumage.

The donors are derived from CUB-200-2011 photos: research and non-commercial use only (assets/wings/README.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from birdanim.engines.rig.wings import WingTexture, wing_plumage

# The stored frame: canonical (u, v) -> pixel origin + (u, v) * SIDE.
SIDE = 128  # px per wing length in the stored arrays
U_RANGE = (-0.08, 1.08)
V_RANGE = (-0.50, 0.70)
BEST_SHARE = 0.25  # choose() picks among this share of the library, the best scored
HANDLE_U = {  # where each of the motion's handles sits along the span; "lead"/"trail": on which edge
    "shoulder": (0.02, "mid"), "root_trail": (0.03, "trail"), "elbow": (0.25, "lead"), "wrist": (0.48, "lead"),
    "tip": (0.97, "mid"), "inner_primary": (0.575, "trail"), "mid_primary": (0.84, "trail"), "secondary": (0.26, "trail"),
}


def canvas_shape() -> tuple[int, int]:
    """(height, width) of a stored donor."""
    return int(round((V_RANGE[1] - V_RANGE[0]) * SIDE)), int(round((U_RANGE[1] - U_RANGE[0]) * SIDE))


def canvas_origin() -> np.ndarray:
    """Pixel of canonical (0, 0) in a stored donor."""
    return np.array([-U_RANGE[0] * SIDE, -V_RANGE[0] * SIDE])


@dataclass
class DonorLibrary:
    alpha: np.ndarray  # uint8 [N, h, w] the wings' outlines (255 = wing)
    lum: np.ndarray  # uint8 [N, h, w] their luminance (0 outside)
    chord: np.ndarray  # float [N] mean chord as a share of the wing's length (broad or narrow wings)
    ratio: np.ndarray  # float [N] the wing's length over its bird's body length
    source: list[str]  # the crop each wing came from (file name in ../shared, for the record)
    score: np.ndarray | None = None  # float [N]: how well each made perched (train) birds read as flying

    def __len__(self) -> int:
        return len(self.alpha)


def default_path() -> Path:
    from birdanim.paths import ASSETS

    return ASSETS / "wings" / "donors.npz"


def load_donors(path: str | Path | None = None) -> DonorLibrary | None:
    """The donor library (None when the file is missing: the engine paints its wings instead)."""
    path = Path(path) if path is not None else default_path()
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as z:
        return DonorLibrary(z["alpha"], z["lum"], z["chord"].astype(np.float64), z["ratio"].astype(np.float64),
                            [str(s) for s in z["source"]], z["score"].astype(np.float64) if "score" in z else None)


def save_donors(lib: DonorLibrary, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {} if lib.score is None else {"score": lib.score.astype(np.float32)}
    np.savez_compressed(path, alpha=lib.alpha, lum=lib.lum, chord=lib.chord.astype(np.float32),
                        ratio=lib.ratio.astype(np.float32), source=np.array(lib.source), **extra)
    return path


def edges(alpha: np.ndarray, u: float) -> tuple[float, float] | None:
    """(leading, trailing) v of the wing at span position u in a stored donor (None: no wing there)."""
    o = canvas_origin()
    x = int(round(o[0] + u * SIDE))
    col = np.nonzero(alpha[:, min(max(x, 0), alpha.shape[1] - 1)] > 127)[0]
    if col.size == 0:
        return None
    return (col.min() - o[1]) / SIDE, (col.max() - o[1]) / SIDE


def donor_handles(alpha: np.ndarray) -> dict[str, np.ndarray] | None:
    """The motion's handles in canonical (u, v), placed on this donor's own outline (None if it lacks
    part of its span)."""
    out = {}
    for name, (u, where) in HANDLE_U.items():
        e = edges(alpha, u)
        if e is None:
            return None
        lead, trail = e
        inset = 0.15 * (trail - lead)
        v = {"lead": lead + inset, "trail": trail - inset, "mid": 0.5 * (lead + trail)}[where]
        out[name] = np.array([u, v])
    return out


def choose(lib: DonorLibrary, seed: int = 0, key: int = 0) -> int:
    """A donor, picked by `seed` and `key` (something of the bird's own, so that different birds get
    different wings and the same photo the same one) among the best: those whose wings made perched
    birds read best as flying when the library was built (`score`, see train.tools.make_wing_donors),
    else among all."""
    if not len(lib):
        raise ValueError("the donor library is empty")
    rng = np.random.default_rng([int(seed), int(key) & 0xFFFFFFFF])
    if lib.score is None:
        return int(rng.integers(len(lib)))
    best = np.argsort(-lib.score)[: max(1, int(np.ceil(BEST_SHARE * len(lib))))]
    return int(rng.choice(best))


def plumage_ramp(photo: np.ndarray, alpha: np.ndarray, rig, n: int = 256) -> np.ndarray:
    """float [n, 3]: the bird's own wing colours ordered from darkest to lightest (RGB 0..255), sampled
    where its folded wing lies (the whole bird when that region is too small)."""
    _, px = wing_plumage(photo, alpha, rig)
    idx = np.linspace(0, len(px) - 1, n)
    ramp = np.stack([np.interp(idx, np.arange(len(px)), px[:, c]) for c in range(3)], 1)
    k = max(1, n // 32)  # smooth: a single odd pixel must not become a band of the wing
    return cv2.blur(ramp[:, None, :].astype(np.float32), (1, 2 * k + 1))[:, 0, :].astype(np.float64)


def donor_wing(lib: DonorLibrary, index: int, ramp: np.ndarray, length: float) -> WingTexture:
    """Donor `index` at `length` px (shoulder to tip), each luminance replaced by the ramp's colour of
    the same rank, as a WingTexture in paint_wing's frame (u along x, v along y)."""
    a = lib.alpha[index].astype(np.float32) / 255.0
    lum = lib.lum[index].astype(np.float32)
    inside = a > 0.5
    # rank of each luminance within the donor (its own histogram), then the bird's colour at that rank
    vals = np.sort(lum[inside])
    rank = np.searchsorted(vals, lum, side="left") / max(len(vals) - 1, 1)
    colour = ramp[np.clip((rank * (len(ramp) - 1)).round().astype(int), 0, len(ramp) - 1)]
    L = float(max(length, 16.0))
    s = L / SIDE
    h, w = a.shape
    out_w, out_h = int(np.ceil(w * s)), int(np.ceil(h * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    # resized premultiplied: the colour outside the wing (rank 0, the darkest) must not bleed into its edge
    premul = cv2.resize((np.clip(colour, 0, 255) / 255.0 * a[..., None]).astype(np.float32), (out_w, out_h),
                        interpolation=interp)
    a = np.clip(cv2.resize(a, (out_w, out_h), interpolation=interp), 0, 1)
    rgba = np.concatenate([np.clip(premul, 0, a[..., None]), a[..., None]], 2).astype(np.float32)
    origin = canvas_origin() * s
    handles = donor_handles(lib.alpha[index])
    if handles is None:
        raise ValueError(f"donor {index} has no wing along part of its span")
    return WingTexture(rgba, {k: origin + v * L for k, v in handles.items()}, L, origin)
