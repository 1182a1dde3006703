"""`birdanim mix --rows 1,2,3 --cols 4,5,6 --cutoff 7 -o mix.png`: a style-mixing grid."""

from __future__ import annotations

from pathlib import Path

from birdanim.cli._common import add_model_arguments, fail, parse_seeds
from birdanim.errors import BirdanimError

HELP = "style-mixing grid: coarse layers (pose, shape) from row seeds, fine layers (colour) from column seeds"
EXAMPLES = """\
  birdanim mix --rows 1,2,3 --cols 4,5,6 --cutoff 7 -o mix.png
  birdanim mix --rows 0-4 --cols 10-14 --cutoff 4 --psi 0.7 -o mix.png
"""


def add_arguments(p) -> None:
    p.add_argument("--rows", type=parse_seeds, required=True, help="row seeds: their coarse layers [0, cutoff)")
    p.add_argument("--cols", type=parse_seeds, required=True, help="column seeds: their fine layers [cutoff, num_ws)")
    p.add_argument("--cutoff", type=int, default=7, help="first layer taken from the column seed (default 7)")
    p.add_argument("--psi", type=float, default=1.0, help="truncation 0..1 (default 1: none)")
    p.add_argument("-o", "--out", required=True, help="output PNG")
    add_model_arguments(p)


def run(args) -> int:
    from PIL import Image
    from tqdm import tqdm

    from birdanim.device import set_cpu_threads
    from birdanim.service import Animator

    set_cpu_threads()
    try:
        a = Animator(weights=args.weights, device=args.device, detector=None, encoder=None)
        total = len(args.rows) + len(args.cols) + len(args.rows) * len(args.cols)
        with tqdm(total=total, desc="mix", unit="img") as bar:

            def step(fraction, _frame):
                bar.update(round(fraction * total) - bar.n)

            grid = a.mixing_grid(args.rows, args.cols, cutoff=args.cutoff, psi=args.psi, progress=step)
    except BirdanimError as e:
        return fail(e)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(out)
    print(f"wrote {out} ({len(args.rows)} x {len(args.cols)} mixes; first row/column: the sources)")
    return 0
