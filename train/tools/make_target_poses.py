"""Project real flying-bird frames into OUR generator to make the target poses of one wing-beat cycle.

For each frame (sorted by name): detect the bird (a missed frame reuses the previous frame's box),
square-crop it like the training data, project it
into W+ (starting from the previous frame's ws, so consecutive poses stay consistent; if the detector
finds no bird in that render, the fit can have settled on empty sky: it is redone from the encoder's /
the average w start and the manifest lists the frame under "restarted"), and save
pose_XX.npy (float32 [num_ws, w_dim]) with its render pose_XX.png and a manifest.json naming the
weights (sha256 of model.safetensors), the settings and the source frame names. The frames
themselves are never written to the output.

Target2 holds nine frames of one wing-beat. To reach --min-poses (default 10) keyframes, in-between
poses are inserted in W+ (the midpoint of the two neighbouring poses) where consecutive poses are
furthest apart, the wrap-around from the last frame back to the first included; the manifest marks
them as in-betweens of which frames.

With --probe (the fidelity benchmark's flight probe, assets/probes/flight_lite2), every pose's render is
scored P(flight) on its detected bird's crop and poses below --min-flight are dropped (the cycle keeps
its order); --filter DIR does only that on poses already made (no projection: seconds, not minutes),
keeping their manifest (weights hash, sources) and adding the scores and what was dropped.

examples:
  python -m train.tools.make_target_poses --filter assets/target_poses --weights weights/ --out assets/target_poses/
  python -m train.tools.make_target_poses --frames ../shared/reference/aps360/Target2 --weights weights/ --out assets/target_poses/ --steps 80
  python -m train.tools.make_target_poses --frames ../shared/reference/aps360/Target2 --weights /tmp/w --out /tmp/poses --steps 10
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from birdanim.engines.gan.mixing import render_frames
from birdanim.checkpoint import WEIGHTS_FILE, resolve
from birdanim.device import set_cpu_threads
from birdanim.imageops import pil_to_tensor
from birdanim.engines.gan.poses import save_poses
from birdanim.engines.gan.projector import projection
from birdanim.paths import ASSETS, REPO_ROOT

PROBE = ASSETS / "probes" / "flight_lite2"
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def list_frames(folders: list[str]) -> list[Path]:
    frames = []
    for f in folders:
        p = Path(f)
        frames += sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_EXTS) if p.is_dir() else [p]
    return frames


def add_inbetweens(ws: list[torch.Tensor], labels: list[str], min_poses: int) -> tuple[list[torch.Tensor], list[str]]:
    """Insert W+ midpoints into the widest gaps of the closed cycle until there are min_poses."""
    ws, labels = list(ws), list(labels)
    while len(ws) < min_poses:
        gaps = [float((ws[(i + 1) % len(ws)] - ws[i]).norm()) for i in range(len(ws))]
        i = int(np.argmax(gaps))
        j = (i + 1) % len(ws)
        ws.insert(i + 1, (ws[i] + ws[j]) / 2)
        labels.insert(i + 1, f"in-between of {labels[i]} and {labels[j]}")
    return ws, labels


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", nargs="+", default=None, help="folders (or files) of flying-bird frames, in cycle order")
    p.add_argument("--filter", default=None, help="instead of projecting: drop the perched poses of this poses folder")
    p.add_argument("--probe", default=str(PROBE), help="flight probe (.safetensors stem) scoring each pose ('none': keep all)")
    p.add_argument("--min-flight", type=float, default=0.5, help="poses whose render scores below this P(flight) are dropped")
    p.add_argument("--weights", required=True, help="the generator weights folder the poses are for")
    p.add_argument("--out", required=True, help="output folder (e.g. assets/target_poses/)")
    p.add_argument("--quality", default="balanced", choices=["fast", "balanced", "best"],
                   help="projector preset (PTI is never used: the poses must work with the shipped G)")
    p.add_argument("--steps", type=int, default=None, help="override the preset's W + W+ steps per frame")
    p.add_argument("--min-poses", type=int, default=10, help="insert in-betweens up to this many poses")
    p.add_argument("--detector", default="auto", help="'auto', a YOLOv8 path, or 'none' (centred crops)")
    p.add_argument("--min-conf", type=float, default=0.1,
                   help="detector score threshold (lower than the app's 0.25: every frame shows one bird, and "
                        "Target2/frame_0018 scores 0.24)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)

    set_cpu_threads(args.threads)
    from dataclasses import replace

    from birdanim.engines.gan.projector import resolve_config
    from birdanim.service import Animator

    a = Animator(weights=args.weights, detector=None if args.detector == "none" else args.detector, poses_dir=None)
    if a.detector is not None:
        a.detector.min_conf = args.min_conf
    if args.filter:
        return filter_poses(a, Path(args.filter), Path(args.out), args)
    if not args.frames:
        p.error("--frames (or --filter) is required")
    cfg = replace(resolve_config(args.quality, a.encoder is not None, args.steps), pti_steps=0)
    frames = list_frames(args.frames)
    if not frames:
        print(f"no frames found in {args.frames}", file=sys.stderr)
        return 2
    ws_list, labels, losses, t0, prev, prev_box, restarted = [], [], [], time.time(), None, None, []
    for f in frames:
        photo = a.load_photo(f)
        boxes = a.detect(photo)
        box = boxes[0] if boxes else prev_box  # a missed frame: the bird is near where it just was
        prev_box = box
        crop = a.crop(photo, box)
        target = pil_to_tensor(crop, a.device)
        res = projection(a.G, target, config=cfg, init_ws=prev, encoder=a.encoder, seed=args.seed, features=a.features)
        refit = False
        if prev is not None and not shows_bird(a, res.ws):
            # The fit can settle on empty sky (most of a flight frame's pixels are sky): start again from
            # the encoder's guess / the average w instead of the previous pose, and keep a render with a bird.
            again = projection(a.G, target, config=cfg, init_ws=None, encoder=a.encoder, seed=args.seed + 1, features=a.features)
            refit = shows_bird(a, again.ws) or again.losses[-1] < res.losses[-1]
            if refit:
                res = again
                restarted.append(f.name)
        prev = res.ws
        ws_list.append(res.ws[0].cpu())
        labels.append(f.name)
        losses.append(res.losses[-1])
        print(f"{f.name}: box {'found' if boxes else 'missed (previous frame box)' if box else 'none (centred crop)'}, final loss {res.losses[-1]:.4f}, "
              f"{'restarted (the fit from the previous pose showed no bird), ' if refit else ''}"
              f"{time.time() - t0:.0f} s")
    ws_list, labels = add_inbetweens(ws_list, labels, args.min_poses)
    ws = torch.stack(ws_list)
    renders = render_frames(a.G, ws)
    flight = score_flight(a, renders, args.probe)
    dropped = {}
    if flight is not None:
        keep = [i for i, f in enumerate(flight) if f >= args.min_flight]
        if len(keep) < 2:  # a cycle needs two poses: keep them all and say so (e.g. a generator still training)
            print(f"only {len(keep)} poses score P(flight) >= {args.min_flight}: all {len(flight)} kept", file=sys.stderr)
            keep = list(range(len(flight)))
        dropped = {labels[i]: round(flight[i], 3) for i in range(len(labels)) if i not in keep}
        ws, renders, labels, flight = ws[keep], renders[keep], [labels[i] for i in keep], [flight[i] for i in keep]
    weights_file = resolve(args.weights, WEIGHTS_FILE)
    extra = {
        "sources": labels,  # file names only: the frames are not redistributed
        "source_folders": [portable(x) for x in args.frames],
        "projector": {**cfg.__dict__, "quality": args.quality, "seed": args.seed, "init": "previous frame's ws (restarted frames: the encoder's / the average w)"},
        "final_losses": [round(x, 5) for x in losses],
        "restarted": restarted,  # frames whose fit from the previous pose rendered no bird: refit from the encoder / w_avg
        "detector": portable(a.detector.source) if a.detector is not None else None,
        "seconds": round(time.time() - t0, 1),
        **({"flight_probe": {"probe": portable(args.probe), "min_flight": args.min_flight,
                             "p_flight": [round(f, 3) for f in flight], "dropped": dropped}} if flight is not None else {}),
    }
    out = save_poses(args.out, ws, renders, weights_file, extra)
    print(f"wrote {len(ws)} poses to {out} in {time.time() - t0:.0f} s")
    return 0


def score_flight(a, renders: np.ndarray, probe_path) -> list[float] | None:
    """P(flight) of the flight probe on each render's detected bird (training-style crop); 0 when no bird
    is detected; None when probe_path is 'none'."""
    if probe_path in (None, "none"):
        return None
    from birdanim.metrics.fidelity import FlightProbe, bird_crop, embed, largest_bird, load_lite2

    probe, net = FlightProbe.load(probe_path), load_lite2(a.device)
    out = []
    for img in renders:
        box = largest_bird(a.detector, img) if a.detector is not None else None
        out.append(float(probe.proba(embed(net, [bird_crop(img, box)]))[0]) if box is not None or a.detector is None else 0.0)
    return out


def filter_poses(a, src: Path, out: Path, args) -> int:
    """Drop the poses of `src` whose render the flight probe calls perched; write the rest to `out`."""
    from PIL import Image

    from birdanim.engines.gan.poses import load_poses

    poses = load_poses(src, resolve(args.weights, WEIGHTS_FILE), a.G.num_ws, a.G.w_dim)
    renders = np.stack([np.asarray(Image.open(src / f"{n}.png").convert("RGB")) for n in poses.names])
    flight = score_flight(a, renders, args.probe)
    if flight is None:
        print("--filter needs a probe", file=sys.stderr)
        return 2
    keep = [i for i, f in enumerate(flight) if f >= args.min_flight]
    if len(keep) < 2:
        print(f"only {len(keep)} poses score P(flight) >= {args.min_flight}: nothing written", file=sys.stderr)
        return 1
    man = dict(poses.manifest)
    sources = man.get("sources") or poses.names
    for name, f in zip(poses.names, flight):
        print(f"{name} ({sources[poses.names.index(name)]}): P(flight) {f:.3f}{'' if f >= args.min_flight else '  dropped'}")
    extra = {k: v for k, v in man.items() if k not in ("poses", "weights_sha256", "weights_path")}
    extra["sources"] = [sources[i] for i in keep]
    if "final_losses" in man:  # one per projected frame (in-betweens have none): keep the kept frames'
        frames = [s_ for s_ in sources if not s_.startswith("in-between")]
        extra["final_losses"] = [man["final_losses"][frames.index(sources[i])] for i in keep if sources[i] in frames]
    extra["flight_probe"] = {"probe": portable(args.probe), "min_flight": args.min_flight,
                             "p_flight": [round(flight[i], 3) for i in keep],
                             "dropped": {sources[i]: round(flight[i], 3) for i in range(len(flight)) if i not in keep},
                             "filtered_from": list(sources)}
    ws = poses.ws[keep]
    tmp = out.with_name(out.name + ".tmp") if out.resolve() == src.resolve() else out
    save_poses(tmp, ws, renders[keep], resolve(args.weights, WEIGHTS_FILE), extra)
    if tmp != out:  # replace the folder's poses: the old pose_XX files beyond the kept count go
        for f in out.glob("pose_*"):
            f.unlink()
        for f in tmp.iterdir():
            f.replace(out / f.name)
        tmp.rmdir()
    print(f"kept {len(keep)} of {len(flight)} poses in {out}")
    return 0


def shows_bird(a, ws: torch.Tensor) -> bool:
    """Does the detector find a bird in the pose rendered from ws? True when there is no detector."""
    if a.detector is None:
        return True
    from PIL import Image

    return bool(a.detect(Image.fromarray(render_frames(a.G, ws)[0])))


def portable(path) -> str:
    """A path for the committed manifest: relative to the repo when it is beside it (../shared/...),
    never this machine's absolute layout; names like 'yolov8n.pt' pass through."""
    p = Path(path)
    if not p.is_absolute():
        return str(path)
    try:
        return os.path.relpath(p.resolve(), REPO_ROOT)
    except ValueError:  # another drive (Windows)
        return p.name


if __name__ == "__main__":
    sys.exit(main())
