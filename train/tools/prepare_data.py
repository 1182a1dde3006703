"""Prepare a training dataset: find the bird, square crop, resize, drop near-duplicates, split 90/10.

examples:
  python -m train.tools.prepare_data photos/ more_photos.zip -o data/mybirds                  # YOLO finds the birds
  python -m train.tools.prepare_data CUB_200_2011/ -o data/cub                                # uses bounding_boxes.txt
  python -m train.tools.prepare_data clip.mp4 --every 10 -o data/clip                         # every 10th video frame
  python -m train.tools.prepare_data crops/ --detector none -o data/crops                     # already cropped: resize only
  python -m train.loop.train --data data/mybirds/train.zip ...                               # then train on it

Writes OUT/train.zip and OUT/test.zip (JPEG crops, resolution x resolution) and OUT/manifest.csv
(file, split, source, box, detector confidence). Inputs: folders (searched recursively) or zips of
photos, CUB-200-2011-style folders (images.txt + bounding_boxes.txt: those boxes are used as they are),
and videos. Photos without a box go through YOLOv8 (COCO class 14, bird): images with exactly one
bird after merging overlapping boxes are kept, boxes whose short side is below --min-box pixels
are dropped (too low resolution). Near-duplicates (64-bit difference hash within --dup-bits bits) are
dropped, the first one kept. The split is a hash of the source name: deterministic, and stable when
inputs are added.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from birdanim.stages.detect import Box, crop_square, merge_boxes, square_window

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
VIDEO_EXTS = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v"}


@dataclass
class Item:
    source: str  # where it came from: path, zip member or video#frame
    image: Image.Image
    box: Box | None  # a known bird box (CUB), or None: ask the detector


@dataclass
class Kept:
    source: str
    crop: Image.Image
    box: Box | None
    dhash: int


# ---------------------------------------------------------------- reading inputs


def _open(data: bytes | Path) -> Image.Image | None:
    try:
        im = Image.open(io.BytesIO(data) if isinstance(data, bytes) else data)
        im.load()
        return im.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError):
        return None  # unreadable file: skipped (counted by the caller)


def cub_items(root: Path) -> Iterator[Item]:
    """CUB-200-2011 layout: images.txt (id path), bounding_boxes.txt (id x y w h), images/."""
    paths = dict(line.split(maxsplit=1) for line in (root / "images.txt").read_text().splitlines() if line.strip())
    for line in (root / "bounding_boxes.txt").read_text().splitlines():
        if not line.strip():
            continue
        i, x, y, w, h = line.split()
        x, y, w, h = map(float, (x, y, w, h))
        rel = paths[i].strip()
        im = _open(root / "images" / rel)
        yield Item(f"{root.name}/images/{rel}", im, Box(x, y, x + w, y + h)) if im else Item(rel, None, None)


def video_items(path: Path, every: int) -> Iterator[Item]:
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    w, h = meta["size"]
    for k, frame in enumerate(gen):
        if k % every == 0:
            arr = np.frombuffer(frame, np.uint8).reshape(h, w, 3)
            yield Item(f"{path.name}#{k:06d}", Image.fromarray(arr.copy()), None)


def iter_items(inputs: list[Path], every: int) -> Iterator[Item]:
    for p in inputs:
        if p.is_dir() and (p / "bounding_boxes.txt").is_file() and (p / "images.txt").is_file():
            yield from cub_items(p)
        elif p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.suffix.lower() in IMAGE_EXTS:
                    yield Item(str(f.relative_to(p.parent)), _open(f), None)
                elif f.suffix.lower() in VIDEO_EXTS:
                    yield from video_items(f, every)
        elif p.suffix.lower() == ".zip":
            with zipfile.ZipFile(p) as z:
                for name in sorted(z.namelist()):
                    if Path(name).suffix.lower() in IMAGE_EXTS:
                        yield Item(f"{p.name}/{name}", _open(z.read(name)), None)
        elif p.suffix.lower() in VIDEO_EXTS:
            yield from video_items(p, every)
        elif p.suffix.lower() in IMAGE_EXTS:
            yield Item(p.name, _open(p), None)
        else:
            raise ValueError(f"{p}: not a folder, zip, image or video")


# ---------------------------------------------------------------- the pieces


def dhash(img: Image.Image) -> int:
    """64-bit difference hash: robust to resizing and recompression, cheap."""
    g = np.asarray(img.convert("L").resize((9, 8), Image.Resampling.BILINEAR), dtype=np.int16)
    bits = (g[:, 1:] > g[:, :-1]).flatten()
    return int("".join("1" if b else "0" for b in bits), 2)


def is_test(source: str, test_fraction: float) -> bool:
    h = int(hashlib.sha1(source.encode()).hexdigest()[:8], 16)
    return h / 2**32 < test_fraction


class Deduper:
    def __init__(self, max_bits: int):
        self.max_bits = max_bits
        self.hashes = np.zeros(0, dtype=np.uint64)

    def seen(self, h: int) -> bool:
        """True if `h` is within max_bits of a kept hash; otherwise remember it."""
        if len(self.hashes):
            x = np.bitwise_xor(self.hashes, np.uint64(h))
            dist = np.unpackbits(x.view(np.uint8).reshape(-1, 8), axis=1).sum(1)
            if dist.min() <= self.max_bits:
                return True
        self.hashes = np.append(self.hashes, np.uint64(h))
        return False


def choose_box(item: Item, detector, min_box: int) -> tuple[Box | None, str]:
    """(box, "") to keep, or (None, reason) to drop. detector None: the whole image (already a crop)."""
    if item.box is not None:
        box = item.box
    elif detector is None:
        return Box(0, 0, *item.image.size), ""
    else:
        boxes = merge_boxes(detector(item.image))
        if not boxes:
            return None, "no bird"
        if len(boxes) > 1:
            return None, "several birds"
        box = boxes[0]
    if min(box.width, box.height) < min_box:
        return None, "bird too small"
    return box, ""


# ---------------------------------------------------------------- main


def prepare(inputs: list[Path], out: Path, resolution: int = 256, margin: float = 0.25, min_box: int = 64,
            every: int = 10, detector=None, dup_bits: int = 4, test_fraction: float = 0.1, quality: int = 95) -> dict:
    """Run the whole preparation; returns counts (kept per split and dropped per reason)."""
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {"train": 0, "test": 0}
    dedupe = Deduper(dup_bits)
    rows = []
    zips = {s: zipfile.ZipFile(out / f"{s}.zip.tmp", "w", zipfile.ZIP_STORED) for s in ("train", "test")}
    try:
        for item in iter_items(inputs, every):
            if item.image is None:
                counts["unreadable"] = counts.get("unreadable", 0) + 1
                continue
            box, why = choose_box(item, detector, min_box)
            if box is None:
                counts[why] = counts.get(why, 0) + 1
                continue
            w, h = item.image.size
            whole = detector is None and item.box is None
            crop = crop_square(item.image, square_window(None if whole else box, w, h, margin), resolution)
            if dedupe.seen(dhash(crop)):
                counts["near-duplicate"] = counts.get("near-duplicate", 0) + 1
                continue
            split = "test" if is_test(item.source, test_fraction) else "train"
            name = f"{len(rows):06d}.jpg"
            buf = io.BytesIO()
            crop.save(buf, "JPEG", quality=quality)
            zips[split].writestr(name, buf.getvalue())
            counts[split] += 1
            rows.append([name, split, item.source, *(round(v, 1) for v in (box.x0, box.y0, box.x1, box.y1)), round(box.conf, 3)])
    finally:
        for z in zips.values():
            z.close()
    for s in ("train", "test"):
        (out / f"{s}.zip.tmp").replace(out / f"{s}.zip")
    with open(out / "manifest.csv", "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["file", "split", "source", "box_x0", "box_y0", "box_x1", "box_y1", "conf"])
        wr.writerows(rows)
    return counts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="birdanim prepare", description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n", 2)[2], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+", type=Path, help="folders, zips, CUB folders, videos")
    ap.add_argument("-o", "--out", type=Path, required=True, help="output folder (train.zip, test.zip, manifest.csv)")
    ap.add_argument("--resolution", type=int, default=256, help="crop side in pixels")
    ap.add_argument("--margin", type=float, default=0.25, help="square side = (1 + margin) x the box's long side")
    ap.add_argument("--min-box", type=int, default=64, help="drop birds whose box's short side is below this (pixels)")
    ap.add_argument("--every", type=int, default=10, help="videos: keep every k-th frame")
    ap.add_argument("--detector", default="auto", help="'auto' (shared OpenVINO YOLOv8n, or yolov8n.pt online), a path, or 'none' (inputs are crops)")
    ap.add_argument("--conf", type=float, default=0.25, help="detector confidence threshold")
    ap.add_argument("--dup-bits", type=int, default=4, help="near-duplicate if difference hashes differ in <= this many of 64 bits (-1: keep all)")
    ap.add_argument("--test-fraction", type=float, default=0.1)
    args = ap.parse_args(argv)
    missing = [str(p) for p in args.inputs if not p.exists()]
    if missing:
        print(f"error: inputs not found: {missing}", file=sys.stderr)
        return 2
    detector = None
    if args.detector != "none":
        from birdanim.stages.detect import BirdDetector
        from birdanim.errors import DetectorUnavailableError

        try:
            detector = BirdDetector(args.detector, min_conf=args.conf)
        except DetectorUnavailableError as e:
            print(f"error: {e}\n(use --detector none for inputs that are already crops)", file=sys.stderr)
            return 2
    try:
        counts = prepare(args.inputs, args.out, args.resolution, args.margin, args.min_box, args.every, detector, args.dup_bits, args.test_fraction)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
