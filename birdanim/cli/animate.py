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
  birdanim animate bird.jpg -o bird.mp4                      # rig mode: your bird's own wings beat, in its photo
  birdanim animate bird.jpg -o bird.mp4 --path cross --beats-per-second 4 --scene sky
  birdanim animate bird.jpg -o bird.mp4 --rig rig.json       # joints you corrected (see --save-rig)
  birdanim animate bird.jpg -o gan.mp4 --mode gan --cutoff 6 --strength 0.8 --quality balanced
  birdanim animate bird.jpg -o bird.mp4 --detector none --box 40,20,300,260 --frames 120 --fps 24 --gif
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from birdanim.options import FIELDS, AnimateOptions

    defaults = AnimateOptions()
    p.add_argument("photo", help="the bird photo (JPEG, PNG, WebP, ...)")
    p.add_argument("-o", "--out", required=True, help="output MP4 path (a GIF goes beside it with --gif)")
    for name, spec in FIELDS.items():  # one flag per option; ranges are checked by the service
        default = getattr(defaults, name)
        kind = spec.choices and str or type(default)
        rng = f"{spec.lo:g}..{spec.hi:g}" if spec.lo is not None and spec.hi is not None and spec.hi < 1e6 else ""
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=default, choices=spec.choices,
                       help=f"{spec.help} ({rng + ', ' if rng else ''}default {default})")
    p.add_argument("--gif", action="store_true", help="also write a GIF next to the MP4")
    p.add_argument("--box", default=None, help="bird box x0,y0,x1,y1 in the photo's pixels, as an image viewer shows "
                   "the photo (skips detection)")
    p.add_argument("--rig", default=None, help="rig mode: a rig JSON (joints) to use instead of the estimated one")
    p.add_argument("--save-rig", default=None, help="rig mode: write the rig used to this JSON file (to correct it)")
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


def options_from(args):
    """The AnimateOptions the flags describe."""
    from birdanim.options import FIELDS, AnimateOptions

    return AnimateOptions(**{n: getattr(args, n) for n in FIELDS}, gif=args.gif, require_bird=args.require_bird)


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
        rig = None
        if args.rig:
            from birdanim.engines.rig.rig import Rig

            try:
                rig = Rig.from_json(Path(args.rig).read_text())
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise argparse.ArgumentTypeError(f"--rig {args.rig}: not a rig file ({e})") from e
        with tempfile.TemporaryDirectory(prefix="birdanim-") as tmp:
            res = animator.animate(photo, options_from(args), box=box, rig=rig, out_dir=Path(tmp), progress=progress)
            if args.save_rig and res.rig is not None:
                Path(args.save_rig).write_text(res.rig.to_json())
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
