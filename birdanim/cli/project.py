"""`birdanim project PHOTO -o ws.npy`: the W+ code of the bird in a photo (and its reconstruction)."""

from __future__ import annotations

from pathlib import Path

from birdanim.cli._common import add_model_arguments, add_perceptual_argument, fail
from birdanim.errors import BirdanimError

HELP = "project the bird in a photo into the generator's W+ space (saves ws as .npy)"
EXAMPLES = """\
  birdanim project bird.jpg -o ws.npy
  birdanim project bird.jpg -o ws.npy --quality best --png recon.png
  birdanim project crop.png -o ws.npy --detector none --steps 200
"""


def add_arguments(p) -> None:
    p.add_argument("photo", help="the bird photo")
    p.add_argument("-o", "--out", required=True, help="output .npy: float32 [num_ws, w_dim]")
    p.add_argument("--quality", choices=["fast", "balanced", "best"], default="balanced", help="projection preset")
    p.add_argument("--steps", type=int, default=None, help="override the preset's number of W + W+ steps")
    p.add_argument("--seed", type=int, default=0, help="seed of the projection's noise")
    p.add_argument("--png", default=None, help="also save crop | reconstruction side by side here")
    p.add_argument("--detector", default="auto", help="'auto', a YOLOv8 path, or 'none' (centred crop)")
    add_perceptual_argument(p)
    add_model_arguments(p)


def run(args) -> int:
    import numpy as np
    import torch
    from PIL import Image
    from tqdm import tqdm

    from birdanim.device import set_cpu_threads
    from birdanim.imageops import make_grid, tensor_to_uint8
    from birdanim.service import Animator

    set_cpu_threads()
    try:
        a = Animator(weights=args.weights, device=args.device, detector=None if args.detector == "none" else args.detector,
                     perceptual=args.perceptual)
        if a.detector is None:
            print("note: no bird detector: using a centred square crop")
        bar = tqdm(total=100, desc="project", unit="%")

        def step(fraction, loss):
            bar.n = round(100 * fraction)
            bar.set_postfix(loss=f"{loss:.3f}", refresh=True)

        try:
            res, crop = a.project(args.photo, quality=args.quality, seed=args.seed, steps=args.steps, progress=step)
        finally:
            bar.close()
    except BirdanimError as e:
        return fail(e)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, res.ws[0].cpu().numpy().astype(np.float32))
    if args.png:
        with torch.no_grad():
            recon = tensor_to_uint8((res.G_tuned or a.G).synthesis(res.ws, noise_mode="const"))[0]
        Image.fromarray(make_grid(np.stack([np.asarray(crop), recon]), cols=2)).save(args.png)
    print(f"wrote {out} (ws {tuple(res.ws.shape[1:])}, final loss {res.losses[-1]:.4f})")
    if res.G_tuned is not None:
        print("note: this projection tuned a copy of the generator (PTI or noise maps); the .npy alone reproduces the bird less exactly")
    return 0
