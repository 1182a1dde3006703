"""Contact sheet of the keypoint model's predictions on test crops of different species.

    python -m train.tools.keypoints_sheet -o docs/keypoints-sheet.png            # shipped weights
    python -m train.tools.keypoints_sheet -o /tmp/s.png --weights /tmp/kp --n 12

Each tile: one CUB test crop (both packs' test splits, one species per tile), the predicted parts as
filled dots in the part's colour (hollow when the model thinks the part is hidden, P(visible) < 0.5),
the annotated position as a small white cross with a thin line to the prediction, and the tile's
PCK@0.1 over its visible parts. A legend of the colours runs along the bottom.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from birdanim.engines.rig.keypoints import KEYPOINT_NAMES

# One colour per part (RGB); left parts warm, right parts cool, so a left/right swap shows.
COLOURS = {
    "back": (150, 75, 0), "beak": (255, 215, 0), "belly": (255, 160, 200), "breast": (255, 105, 180),
    "crown": (255, 255, 255), "forehead": (200, 200, 200), "left eye": (255, 0, 0), "left leg": (255, 128, 0),
    "left wing": (200, 0, 60), "nape": (128, 0, 255), "right eye": (0, 160, 255), "right leg": (0, 255, 255),
    "right wing": (0, 60, 200), "tail": (0, 200, 0), "throat": (255, 255, 128),
}


def pick_test_crops(n: int) -> list[tuple[Path, str, str]]:
    """(zip, file, species) of `n` test crops, one per species, spread over both packs' species."""
    from birdanim.paths import data_dir

    rows = []
    for pack in ("birds256", "birds256_more"):
        root = data_dir() / pack
        with open(root / "keypoints.csv", newline="") as f:
            has_kp = {r["file"] for r in csv.DictReader(f) if r["split"] == "test"}
        with open(root / "meta.csv", newline="") as f:
            for r in csv.DictReader(f):
                if r["split"] == "test" and r["file"] in has_kp:
                    rows.append((root / "test.zip", r["file"], r["species_or_class"]))
    species = sorted({s for _, _, s in rows})
    chosen = [species[int(i)] for i in np.linspace(0, len(species) - 1, n)]
    out = []
    for sp in chosen:
        files = sorted(r for r in rows if r[2] == sp)
        out.append(files[len(files) // 2])  # the middle file of the species: no hand picking
    return out


def draw_tile(crop: np.ndarray, xy: np.ndarray, vis: np.ndarray, true_xy: np.ndarray, true_vis: np.ndarray, title: str) -> np.ndarray:
    import cv2

    img = np.ascontiguousarray(crop.copy())
    for i, name in enumerate(KEYPOINT_NAMES):
        c = COLOURS[name]
        p = tuple(int(round(v)) for v in xy[i])
        if true_vis[i]:
            t = tuple(int(round(v)) for v in true_xy[i])
            cv2.line(img, t, p, c, 1, cv2.LINE_AA)
            cv2.drawMarker(img, t, (255, 255, 255), cv2.MARKER_CROSS, 7, 1, cv2.LINE_AA)
        if vis[i] >= 0.5:
            cv2.circle(img, p, 5, (0, 0, 0), -1, cv2.LINE_AA)
            cv2.circle(img, p, 4, c, -1, cv2.LINE_AA)
        else:
            cv2.circle(img, p, 4, c, 1, cv2.LINE_AA)
    cv2.rectangle(img, (0, 0), (img.shape[1], 16), (0, 0, 0), -1)
    cv2.putText(img, title, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def legend(width: int) -> np.ndarray:
    import cv2

    rows = 3
    img = np.full((rows * 20 + 6, width, 3), 255, np.uint8)
    per_row = (len(KEYPOINT_NAMES) + rows - 1) // rows
    for i, name in enumerate(KEYPOINT_NAMES):
        x, y = 10 + (i % per_row) * (width // per_row), 14 + (i // per_row) * 20
        cv2.circle(img, (x, y - 4), 6, (0, 0, 0), -1, cv2.LINE_AA)
        cv2.circle(img, (x, y - 4), 5, COLOURS[name], -1, cv2.LINE_AA)
        cv2.putText(img, name, (x + 10, y), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--weights", type=Path, default=None, help="folder of head.safetensors + config.json (default weights/keypoints)")
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--cols", type=int, default=4)
    args = ap.parse_args(argv)

    import torch
    from PIL import Image

    from birdanim.engines.rig.keypoints import load_keypoint_model
    from birdanim.imageops import make_grid
    from train.tools.train_keypoints import read_crops, read_keypoints

    torch.set_num_threads(2)
    model = load_keypoint_model(args.weights)
    tiles = []
    kp_cache: dict[Path, dict] = {}
    for z, name, species in pick_test_crops(args.n):
        if z not in kp_cache:
            kp_cache[z] = read_keypoints(z.parent / "keypoints.csv", "test")
        kp = kp_cache[z]
        crop = read_crops(z, [name])[0]
        xy, vis = model.predict(crop)
        true_xy, true_vis = kp[name]
        d = np.linalg.norm(xy - np.nan_to_num(true_xy), axis=-1)
        pck = float(((d <= 0.1 * crop.shape[0]) & (true_vis > 0)).sum() / max(1, true_vis.sum()))
        label = species.split(".", 1)[-1].replace("_", " ")[:24]
        tiles.append(draw_tile(crop, xy, vis, true_xy, true_vis, f"{label}  PCK {pck:.2f}"))
    grid = make_grid(np.stack(tiles), cols=args.cols, pad=4)
    sheet = np.concatenate([grid, legend(grid.shape[1])], axis=0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(args.out, optimize=True)
    print(f"wrote {args.out} ({sheet.shape[1]}x{sheet.shape[0]})")


if __name__ == "__main__":
    main()
