"""Build the rig engine's wing donors: real spread wings cut from the train splits' photos of birds in
flight, kept as outline + luminance in the wing's own frame (birdanim/engines/rig/donors.py).

    python -m train.tools.make_wing_donors                 # -> assets/wings/donors.npz, out/wing-donors-sheet.png
    python -m train.tools.make_wing_donors --out /tmp/w.npz

For each CUB train crop labelled flying (`aps360_pose`) whose head, tail and at least one wing keypoint
are visible: the bird is cut out (stages.segment: GrabCut seeded by the detector's box and the body's
keypoints); the body's axis runs from the tail keypoint to the head; a wing is the part of the cut-out
on its wing keypoint's side of the axis, further from it than the body's half-thickness, the piece
holding (or nearest) that keypoint; its root is its point nearest the axis, its tip its point furthest
from the root. It is kept when it is long enough (0.45..2.2 body lengths), whole (it does not run off
the crop) and has wing along its whole span; it is stored with u along root -> tip and v towards the
tail (the trailing edge), so near and far wings, seen from above or below, share one frame.

Research and non-commercial use only: derived from CUB-200-2011 photos (assets/wings/README.md).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from birdanim.engines.rig.donors import (
    SIDE,
    DonorLibrary,
    canvas_origin,
    canvas_shape,
    default_path,
    donor_handles,
    edges,
    save_donors,
)
from birdanim.engines.rig.keypoints import KEYPOINT_NAMES
from birdanim.paths import data_dir

# Crops whose wings passed the checks but are not wings, looked at on the numbered contact sheet: a bill
# and a dark blob (000005), sky and blur (000042), blobs without feathers (000086, 002504), a piece of
# body and head (002517, 005695), two wings on top of each other (002629, 006032), legs (005923), white
# on white (006017).
EXCLUDE = ("000005.jpg", "000042.jpg", "000086.jpg", "002504.jpg", "002517.jpg", "002629.jpg", "005695.jpg",
           "005923.jpg", "006017.jpg", "006032.jpg")
HEAD = ("crown", "forehead", "left eye", "right eye", "nape")
BODY_SEEDS = ("back", "belly", "breast", "crown", "forehead", "nape", "throat")


def _kp(xy: np.ndarray, vis: np.ndarray) -> dict[str, np.ndarray]:
    return {n: xy[i].astype(np.float64) for i, n in enumerate(KEYPOINT_NAMES) if vis[i]}


def extract_wings(crop: np.ndarray, kp: dict[str, np.ndarray], detector=None) -> list[tuple[np.ndarray, np.ndarray, float, float]]:
    """[(alpha uint8 [h, w], luminance uint8 [h, w], chord, wing/body length)] for each whole spread wing
    of the flying bird in `crop` (uint8 [S, S, 3]) with keypoints `kp` ({name: xy} of the visible parts)."""
    from PIL import Image

    from birdanim.stages.detect import Box
    from birdanim.stages.segment import segment_bird

    heads = [kp[n] for n in HEAD if n in kp]
    if "tail" not in kp or not (heads or "beak" in kp):
        return []
    head = np.mean(heads, 0) if heads else kp["beak"]
    tail = kp["tail"]
    S = crop.shape[0]
    boxes = detector(Image.fromarray(crop)) if detector is not None else []
    box = boxes[0] if boxes else Box(0.05 * S, 0.05 * S, 0.95 * S, 0.95 * S)
    cut = segment_bird(crop, box, [], None, seeds=[tuple(kp[n]) for n in BODY_SEEDS if n in kp])
    if cut.method == "box-ellipse":  # the cut-out failed: an oval, no wing outline in it
        return []
    m = cut.alpha > 0.5
    ys, xs = np.nonzero(m)
    pts = np.stack([xs, ys], 1).astype(np.float64)
    axis = head - tail
    body = float(np.linalg.norm(axis))
    if body < 12:
        return []
    axis /= body
    body_len = body * 1.25 if "beak" not in kp else float(np.linalg.norm(kp["beak"] - tail))
    normal = np.array([-axis[1], axis[0]])
    across = (pts - tail) @ normal
    half = 0.13 * body_len  # the body's half-thickness, about
    out = []
    taken = np.zeros(m.shape, bool)  # both wing keypoints on one piece: one wing, kept once
    for wing_name in ("left wing", "right wing"):
        if wing_name not in kp:
            continue
        w = kp[wing_name]
        side = np.sign(np.dot(w - tail, normal))
        if abs(np.dot(w - tail, normal)) < 0.25 * body_len:  # a folded or edge-on wing
            continue
        sel = across * side > half
        region = np.zeros(m.shape, np.uint8)
        region[ys[sel], xs[sel]] = 1
        n, labels = cv2.connectedComponents(region, connectivity=8)
        if n < 2:
            continue
        wx, wy = int(round(min(max(w[0], 0), S - 1))), int(round(min(max(w[1], 0), S - 1)))
        lab = labels[wy, wx]
        if lab == 0:  # the keypoint just outside the cut-out: the nearest piece
            cy, cx = np.nonzero(labels)
            k = np.argmin((cx - w[0]) ** 2 + (cy - w[1]) ** 2)
            lab = labels[cy[k], cx[k]]
        piece = labels == lab
        if (piece & taken).sum() > 0.3 * piece.sum():
            continue
        taken |= piece
        py, px = np.nonzero(piece)
        if px.size < 60:
            continue
        if (px.min() <= 1) or (py.min() <= 1) or (px.max() >= S - 2) or (py.max() >= S - 2):
            continue  # runs off the crop: a cut wing
        ppts = np.stack([px, py], 1).astype(np.float64)
        dist = np.abs((ppts - tail) @ normal)
        near = dist <= dist.min() + 2.0
        root = ppts[near].mean(0)
        tip = ppts[np.argmax(((ppts - root) ** 2).sum(1))]
        length = float(np.linalg.norm(tip - root))
        ratio = length / body_len
        if not 0.45 <= ratio <= 2.2:
            continue
        u = (tip - root) / length
        v = np.array([-u[1], u[0]])
        if np.dot(v, -axis) < 0:  # v towards the tail: the trailing edge
            v = -v
        # canonical pixel -> crop pixel
        h, wdt = canvas_shape()
        o = canvas_origin()
        k = length / SIDE
        M = np.array([[u[0] * k, v[0] * k, root[0] - (o[0] * u[0] + o[1] * v[0]) * k],
                      [u[1] * k, v[1] * k, root[1] - (o[0] * u[1] + o[1] * v[1]) * k]])
        soft = cut.alpha.astype(np.float32) * cv2.dilate(piece.astype(np.uint8), np.ones((3, 3), np.uint8))
        a = cv2.warpAffine(soft, M, (wdt, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
        lum = cv2.warpAffine(gray, M, (wdt, h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_REFLECT)
        a8 = np.clip(a * 255, 0, 255).astype(np.uint8)
        if donor_handles(a8) is None:
            continue
        if not wing_like(a8):
            continue
        chords = [e[1] - e[0] for e in (edges(a8, t) for t in np.linspace(0.1, 0.9, 9))]
        if feather_detail(lum, a8) < MIN_DETAIL:
            continue  # a blurred or flat wing (motion blur, backlight, a piece of sky): no feathers to lend
        out.append((a8, np.clip(lum * (a > 0.02), 0, 255).astype(np.uint8), float(np.mean(chords)), ratio))
    return out


MIN_DETAIL = 0.17  # below it (measured on the flying train crops): blurred wings, backlit ones, pieces of sky


def feather_detail(lum: np.ndarray, a8: np.ndarray) -> float:
    """Fine structure inside the wing (feather edges and shafts): the high-pass luminance's spread over
    the wing's own luminance spread (0: flat or blurred)."""
    inside = cv2.erode((a8 > 127).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    if inside.sum() < 50:
        return 0.0
    hp = lum - cv2.GaussianBlur(lum, (0, 0), 1.5)
    return float(hp[inside].std() / (lum[inside].std() + 8.0))


def wing_like(a8: np.ndarray) -> bool:
    """Is this stored outline a whole spread wing, not a piece of sky or body the cut-out took with it?
    Wing along the whole span; inside the frame (not cut by it); a chord of at most 0.45 of the span
    that does not widen towards the tip; the leading edge not far ahead of the root-tip line (a tip
    swept back puts it ahead, a piece of sky far more); a compact outline (solidity >= 0.75)."""
    on = a8 > 127
    if on[:2].any() or on[-2:].any() or on[:, -2:].any():
        return False
    e = [edges(a8, t) for t in np.linspace(0.1, 0.9, 9)]
    if any(x is None for x in e):
        return False
    lead = np.array([x[0] for x in e])
    chord = np.array([x[1] - x[0] for x in e])
    if chord.mean() > 0.5 or chord[6:].mean() > 1.15 * chord[2:5].mean() or lead[1:8].mean() < -0.35:
        return False
    cs, _ = cv2.findContours(on.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    c = max(cs, key=cv2.contourArea)
    hull = cv2.contourArea(cv2.convexHull(c))
    return hull > 0 and on.sum() / hull >= 0.75


def score_donors(lib: DonorLibrary, photos, crops: np.ndarray, detector, phases: int = 8) -> np.ndarray:
    """float [N]: for each donor, the mean over perched train photos and over a beat's phases of the
    rig engine's own P(in flight) (the keypoint model's Lite0 probe) of the bird crop in the rendered
    frame, 0 when the detector finds no bird there. Train photos only: the benchmark's test photos and
    its Lite2 probe stay out of it."""
    from PIL import Image

    from birdanim.engines.rig.engine import FlightPath, RigEngine, _paste
    from birdanim.engines.rig.keypoints import load_keypoint_model
    from birdanim.metrics.fidelity import bird_crop, largest_bird

    model = load_keypoint_model()
    eng = RigEngine(keypoints=model, donors=lib)
    scores = np.zeros((len(photos), len(lib)))
    for j, img in enumerate(crops):
        boxes = detector(Image.fromarray(img))
        bird = eng.prepare(img, boxes[0] if boxes else None, boxes[1:], size=384)
        if bird.rig.in_flight:
            scores[j] = np.nan
            continue
        scene = cv2.GaussianBlur(bird.scene, (0, 0), 1.5)  # the default background_blur (2 px at 512) at 384 px
        for i in range(len(lib)):
            sprites = eng.sprites(bird, phases, donor=i)
            anchor = eng._anchor(bird, sprites, FlightPath())
            p = []
            for colour, (sx, sy) in sprites:
                frame = scene.copy()
                _paste(frame, colour[..., :3] * 255, 1 - colour[..., 3:], int(round(sx + anchor[0])),
                       int(round(sy + anchor[1])))
                b = largest_bird(detector, frame)
                p.append(0.0 if b is None else model.analyse(bird_crop(frame, b))[2])
            scores[j, i] = np.mean(p)
        print(f"  scored on {photos[j].file}: mean {np.nanmean(scores[j]):.2f}", flush=True)
    return np.nanmean(scores, 0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=default_path(), help="donor library .npz (default: %(default)s)")
    ap.add_argument("--score-photos", type=int, default=8, help="perched train photos each donor is scored on")
    ap.add_argument("--sheet", type=Path, default=Path("out") / "wing-donors-sheet.png",
                    help="numbered contact sheet of the wings kept (default: %(default)s; not for the repository: "
                         "it shows pieces of CUB photos)")
    args = ap.parse_args(argv)

    from PIL import Image

    from birdanim.metrics.photos import read_images, read_meta
    from birdanim.paths import shared_detector
    from birdanim.stages.detect import BirdDetector
    from train.tools.train_keypoints import read_keypoints

    t0 = time.perf_counter()
    photos = [p for p in read_meta("train") if p.pose == "flying"]
    kps = {}
    for pack in sorted({p.pack for p in photos}):
        kps.update(read_keypoints(data_dir() / pack / "keypoints.csv", "train"))
    photos = [p for p in photos if p.file in kps and p.file not in EXCLUDE]
    detector = BirdDetector(shared_detector())
    alphas, lums, chords, ratios, sources = [], [], [], [], []
    for p, crop in zip(photos, read_images(photos)):
        xy, vis = kps[p.file]
        for a, lum, chord, ratio in extract_wings(crop, _kp(xy, vis), detector):
            alphas.append(a)
            lums.append(lum)
            chords.append(chord)
            ratios.append(ratio)
            sources.append(f"{p.pack}/{p.split}/{p.file}")
    lib = DonorLibrary(np.stack(alphas), np.stack(lums), np.array(chords), np.array(ratios), sources)
    if args.score_photos:
        perched = [p for p in read_meta("train") if p.pose == "perched" and p.dataset == "CUB"]
        pick = [perched[i] for i in np.random.default_rng(0).choice(len(perched), args.score_photos, replace=False)]
        lib.score = score_donors(lib, pick, read_images(pick), detector)
    path = save_donors(lib, args.out)
    sheet = args.sheet
    sheet.parent.mkdir(parents=True, exist_ok=True)
    tiles = [(np.dstack([lum, lum, lum]) * (a[..., None] / 255.0) + 255 * (1 - a[..., None] / 255.0)).astype(np.uint8)
             for a, lum in zip(lib.alpha, lib.lum)]
    for i, t in enumerate(tiles):  # numbered, to be checked by eye (EXCLUDE lists the crops left out)
        cv2.putText(t, str(i), (3, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (200, 0, 0), 1, cv2.LINE_AA)
    cols = 10
    rows = [np.concatenate(tiles[i: i + cols] + [np.full_like(tiles[0], 255)] * (cols - len(tiles[i: i + cols])), 1)
            for i in range(0, len(tiles), cols)]
    Image.fromarray(np.concatenate(rows, 0).astype(np.uint8)).save(sheet)
    if lib.score is not None:
        print("scores (best first):", " ".join(f"{i}:{lib.score[i]:.2f}" for i in np.argsort(-lib.score)))
    print(f"{len(lib)} wings from {len(photos)} flying train crops with keypoints -> {path} "
          f"({path.stat().st_size / 1e6:.2f} MB), sheet {sheet}; chord {np.median(lib.chord):.2f}, "
          f"length/body {np.median(lib.ratio):.2f} (medians); {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
