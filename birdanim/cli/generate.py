"""`birdanim generate --seeds 0-15 -o grid.png`: random birds from the generator, as a grid."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from birdanim.cli._common import add_model_arguments, fail, parse_seeds
from birdanim.errors import BirdanimError

HELP = "generate random birds (one per seed) into a grid image"
EXAMPLES = """\
  birdanim generate --seeds 0-15 -o grid.png
  birdanim generate --seeds 1,2,5-7 --psi 0.7 -o grid.png --cols 5
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", type=parse_seeds, default="0-15", help="seeds, e.g. 0-15 or 1,2,5-7 (default 0-15)")
    p.add_argument("-o", "--out", required=True, help="output PNG")
    p.add_argument("--psi", type=float, default=1.0, help="truncation 0..1 (1: none; lower: more typical birds)")
    p.add_argument("--cols", type=int, default=None, help="grid columns (default: about square)")
    add_model_arguments(p)


def run(args) -> int:
    import numpy as np
    from PIL import Image
    from tqdm import tqdm

    from birdanim.device import set_cpu_threads
    from birdanim.imageops import make_grid
    from birdanim.service import Animator

    set_cpu_threads()
    try:
        a = Animator(weights=args.weights, device=args.device, detector=None, encoder=None)
    except BirdanimError as e:
        return fail(e)
    imgs = [a.random_birds([s], psi=args.psi)[0] for s in tqdm(args.seeds, desc="generate", unit="bird")]
    cols = args.cols or math.ceil(math.sqrt(len(imgs)))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(make_grid(np.stack(imgs), cols=cols)).save(out)
    print(f"wrote {out} ({len(imgs)} birds)")
    return 0
