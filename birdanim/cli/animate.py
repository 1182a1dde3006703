"""`birdanim animate PHOTO -o OUT.mp4`: the whole flow from a photo to a video of the bird flying."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from birdanim.cli._common import TqdmProgress, add_model_arguments, add_perceptual_argument, fail
from birdanim.errors import BirdanimError

HELP = "animate a bird photo into an MP4 of that bird flying"
EXAMPLES = """\
  birdanim animate bird.jpg -o bird.mp4
  birdanim animate bird.jpg -o bird.mp4 --frames 120 --fps 24 --quality balanced --gif
  birdanim animate bird.jpg -o scene.mp4 --in-scene --cutoff 6 --strength 0.8 --seed 3
  birdanim animate bird.jpg -o bird.mp4 --detector none --box 40,20,300,260
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("photo", help="the bird photo (JPEG, PNG, WebP, ...)")
    p.add_argument("-o", "--out", required=True, help="output MP4 path (a GIF goes beside it with --gif)")
    p.add_argument("--frames", type=int, default=300, help="number of frames, 2..600 (default 300)")
    p.add_argument("--fps", type=float, default=30, help="frames per second (default 30)")
    p.add_argument("--cycles", type=int, default=1, help="wing-beat cycles in the video (default 1)")
    p.add_argument("--cutoff", type=int, default=7, help="layers [0, cutoff) come from the pose (default 7)")
    p.add_argument("--strength", type=float, default=1.0, help="pose strength 0..1 (default 1: full swap)")
    p.add_argument("--quality", choices=["fast", "balanced", "best"], default="fast", help="projection preset")
    p.add_argument("--seed", type=int, default=0, help="seed of the projection's noise (default 0)")
    p.add_argument("--in-scene", action="store_true", help="paste the animated bird back into the photo")
    p.add_argument("--gif", action="store_true", help="also write a GIF next to the MP4")
    p.add_argument("--box", default=None, help="bird box x0,y0,x1,y1 in the photo's pixels, as an image viewer shows "
                   "the photo (skips detection)")
    p.add_argument("--require-bird", action="store_true", help="fail when no bird is detected (default: centred crop)")
    p.add_argument("--detector", default="auto", help="'auto', a YOLOv8 .pt / OpenVINO folder, or 'none'")
    p.add_argument("--poses", default=None, help="target poses folder (default: $BIRDANIM_POSES or assets/target_poses)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_perceptual_argument(p)
    add_model_arguments(p)


def parse_box(text: str | None):
    from birdanim.stages.detect import Box

    if text is None:
        return None
    try:
        x0, y0, x1, y1 = (float(v) for v in text.split(","))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"--box must be x0,y0,x1,y1, got {text!r}") from e
    if x1 <= x0 or y1 <= y0:
        raise argparse.ArgumentTypeError(f"--box needs x1 > x0 and y1 > y0, got {text!r}")
    return Box(x0, y0, x1, y1)


def scale_box(box, s: float):
    from birdanim.stages.detect import Box

    return box if s == 1 else Box(box.x0 * s, box.y0 * s, box.x1 * s, box.y1 * s)


def run(args) -> int:
    from birdanim.device import set_cpu_threads
    from birdanim.stages.photo import oriented_size
    from birdanim.service import Animator

    set_cpu_threads()
    progress = TqdmProgress(not args.quiet)
    try:
        box = parse_box(args.box)
        detector = None if args.detector == "none" else args.detector
        animator = Animator(weights=args.weights, device=args.device, detector=detector, poses_dir=args.poses,
                            perceptual=args.perceptual)
        if animator.detector_error is not None and not args.quiet:
            print(f"note: {animator.detector_error}")
        photo = animator.load_photo(args.photo)
        if box is not None:  # the photo may have been shrunk on loading: the box follows
            box = scale_box(box, photo.width / oriented_size(args.photo)[0])
        with tempfile.TemporaryDirectory(prefix="birdanim-") as tmp:
            res = animator.animate(photo, box=box, frames=args.frames, fps=args.fps, cutoff=args.cutoff,
                                   strength=args.strength, quality=args.quality, seed=args.seed,
                                   in_scene=args.in_scene, gif=args.gif, out_dir=Path(tmp), progress=progress,
                                   cycles=args.cycles, require_bird=args.require_bird)
            progress.close()
            out = Path(args.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(res.mp4_path), out)
            if res.gif_path is not None:
                shutil.move(str(res.gif_path), out.with_suffix(".gif"))
    except argparse.ArgumentTypeError as e:
        print(f"birdanim: error: {e}", file=sys.stderr)
        return 2
    except BirdanimError as e:
        progress.close()
        return fail(e)
    for note in res.notes:
        print(f"note: {note}")
    print(f"wrote {out} ({res.num_frames} frames at {res.fps:g} fps)")
    print("timings (s): " + json.dumps({k: round(v, 2) for k, v in res.timings.items()}))
    return 0
