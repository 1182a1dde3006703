"""Contact sheet of bird cut-outs and filled backgrounds on test photos of different species.

    python -m benchmarks.masks_sheet --out docs/masks-sheet.png [--n 24] [--panel 160]

For each photo: the photo with its box (blue: from the detector, orange: from meta.csv when the
detector found nothing), the photo with the mask (bird kept, the rest dimmed, outline in yellow; the
method in the corner: G GrabCut, Y YOLOv8-seg, E the oval fallback), and the background with the bird
removed by ``fill_hole``. Prints per-photo seconds for segmentation and fill.

The photos are test crops of ../shared/data/birds256*/test.zip: CUB-200-2011 (research-only, Flickr
photographers keep the copyright) and Kaggle BIRDS-525 (CC0). The sheet is a small documentation
image; the photos themselves are never committed.
"""

from __future__ import annotations

import argparse
import os
import csv
import io
import random
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from birdanim.paths import data_dir, shared_detector


def pick_photos(n: int, seed: int = 0) -> list[tuple[dict, Path]]:
    """n test rows of distinct species: about a quarter flying (CUB aps360_pose), a sixth Kaggle, the
    rest perched CUB, from both packs."""
    rows = []
    for pack in ("birds256", "birds256_more"):
        meta = data_dir() / pack / "meta.csv"
        if not meta.exists():
            continue
        for r in csv.DictReader(open(meta, newline="")):
            if r["split"] == "test":
                rows.append((r, data_dir() / pack / "test.zip"))
    if not rows:
        raise SystemExit(f"no test photos under {data_dir()} (birds256*/meta.csv)")
    random.Random(seed).shuffle(rows)
    want = {"flying": n // 4, "kaggle": n // 6}
    want["perched"] = n - want["flying"] - want["kaggle"]
    got: dict[str, list] = {k: [] for k in want}
    species = set()
    for r, z in rows:
        kind = "kaggle" if not r["source_dataset"].startswith("CUB") else r["aps360_pose"]
        if kind not in want or len(got[kind]) >= want[kind] or r["species_or_class"] in species:
            continue
        got[kind].append((r, z))
        species.add(r["species_or_class"])
    return got["flying"] + got["perched"] + got["kaggle"]


def meta_box(r: dict, size: int = 256):
    """The CUB box in the crop's pixels (the crop geometry of birds256/README.md), or the whole frame."""
    from birdanim.stages.detect import Box, _place

    if not r["source_dataset"].startswith("CUB"):
        return Box(0, 0, size, size)
    bx, by, bw, bh = (float(r[k]) for k in ("bbox_x", "bbox_y", "bbox_w", "bbox_h"))
    W, H, side = float(r["src_width"]), float(r["src_height"]), float(r["crop_side"])
    side_i = int(round(side))
    x0, y0 = _place(bx + bw / 2, side_i, int(W)), _place(by + bh / 2, side_i, int(H))
    s = size / side_i
    return Box((bx - x0) * s, (by - y0) * s, (bx + bw - x0) * s, (by + bh - y0) * s)


def outline(alpha: np.ndarray) -> np.ndarray:
    import cv2

    m = (alpha > 0.5).astype(np.uint8)
    return (m - cv2.erode(m, np.ones((3, 3), np.uint8))) > 0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="docs/masks-sheet.png")
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--panel", type=int, default=160, help="side of each panel in px")
    ap.add_argument("--cols", type=int, default=4, help="photos per row")
    ap.add_argument("--no-detector", action="store_true", help="use meta.csv boxes only")
    ap.add_argument("--seg", default=None, help="a YOLOv8-seg weights file (default: GrabCut)")
    args = ap.parse_args(argv)

    import cv2

    cv2.setNumThreads(1)  # one core, as the app's worker has; times are comparable across runs
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (times grow with it)")
    from birdanim.stages.scene import fill_hole
    from birdanim.stages.segment import YoloSegmenter, segment_bird

    detector = None
    if not args.no_detector:
        try:
            from birdanim.stages.detect import BirdDetector

            detector = BirdDetector(shared_detector() if shared_detector().exists() else "auto")
        except Exception as e:
            print(f"detector unavailable ({e}); using meta.csv boxes")
    segmenter = YoloSegmenter(args.seg) if args.seg else None

    P = args.panel
    tiles, lines = [], []
    t_seg, t_fill, c_seg = [], [], []
    for r, zpath in pick_photos(args.n):
        with zipfile.ZipFile(zpath) as z:
            photo = np.asarray(Image.open(io.BytesIO(z.read(r["file"]))).convert("RGB"))
        boxes, src = [], "meta"
        if detector is not None:
            boxes = detector(Image.fromarray(photo))
            src = "det" if boxes else "meta"
        box = boxes[0] if boxes else meta_box(r, photo.shape[1])
        t0, c0 = time.perf_counter(), time.process_time()
        cut = segment_bird(photo, box, boxes[1:], segmenter)
        t1, c1 = time.perf_counter(), time.process_time()
        bg = fill_hole(photo, cut.alpha if cut.hole is None else np.maximum(cut.alpha, cut.hole))
        t2 = time.perf_counter()
        t_seg.append(t1 - t0)
        t_fill.append(t2 - t1)
        c_seg.append(c1 - c0)
        a = cut.alpha[..., None]
        over = (photo * (0.35 + 0.65 * a)).astype(np.uint8)
        over[outline(cut.alpha)] = (255, 230, 0)
        p1 = Image.fromarray(photo)
        d = ImageDraw.Draw(p1)
        d.rectangle((box.x0, box.y0, box.x1 - 1, box.y1 - 1), outline=(40, 120, 255) if src == "det" else (255, 140, 0), width=2)
        for o in boxes[1:]:
            d.rectangle((o.x0, o.y0, o.x1 - 1, o.y1 - 1), outline=(255, 40, 40), width=1)
        p2 = Image.fromarray(over)
        ImageDraw.Draw(p2).text((4, 2), {"grabcut": "G", "yolov8-seg": "Y", "box-ellipse": "E"}[cut.method], fill=(255, 255, 255))
        tiles.append([im.resize((P, P), Image.Resampling.LANCZOS) for im in (p1, p2, Image.fromarray(bg))])
        name = r["species_or_class"].split(".")[-1][:22]
        pose = r["aps360_pose"] or "kaggle"
        lines.append((name, pose))
        cover = float((cut.alpha > 0.5).mean())
        print(f"{r['file']}  {name:24s} {pose:8s} box={src:4s} {cut.method:11s} mask={cover:5.1%}  "
              f"segment {t1 - t0:.3f} s (cpu {c1 - c0:.3f})  fill {t2 - t1:.3f} s  {' '.join(cut.notes)}")
    cols = args.cols
    rows = (len(tiles) + cols - 1) // cols
    gap, cap = 6, 14
    sheet = Image.new("RGB", (cols * (3 * P + gap) - gap, rows * (P + cap + gap)), (255, 255, 255))
    d = ImageDraw.Draw(sheet)
    for i, (trip, (name, pose)) in enumerate(zip(tiles, lines)):
        x, y = (i % cols) * (3 * P + gap), (i // cols) * (P + cap + gap)
        d.text((x + 2, y + 1), f"{i + 1}. {name} ({pose})", fill=(0, 0, 0))
        for j, t in enumerate(trip):
            sheet.paste(t, (x + j * P, y + cap))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # a 256-colour palette keeps the documentation sheet small (about a JPEG's size)
    sheet.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG).save(out, optimize=True)
    ts, tf = np.array(t_seg), np.array(t_fill)
    print(f"segment: mean {ts.mean():.3f} s, max {ts.max():.3f} s (cpu mean {np.mean(c_seg):.3f} s); fill: mean {tf.mean():.3f} s, max {tf.max():.3f} s "
          f"(256 px photos); sheet {out} {out.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
