"""`birdanim project PHOTO -o ws.npy`: the W+ code of the bird in a photo (and its reconstruction)."""

from __future__ import annotations

from pathlib import Path

from birdanim.cli._common import add_model_arguments, add_perceptual_argument, fail
from birdanim.errors import BadArgument, BirdanimError

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
    from birdanim.imageops import make_grid, pil_to_tensor, tensor_to_uint8
    from birdanim.engines.gan.projector import projection
    from birdanim.service import Animator

    set_cpu_threads()
    try:
        a = Animator(weights=args.weights, device=args.device, detector=None if args.detector == "none" else args.detector,
                     perceptual=args.perceptual)
        photo = a.load_photo(args.photo)
        boxes = a.detect(photo)
        crop = a.crop(photo, boxes[0] if boxes else None)
        if not boxes:
            print("note: no bird box (no detector or none found): using a centred square crop")
    except BirdanimError as e:
        return fail(e)
    bar = tqdm(total=100, desc="project", unit="%")

    def step(fraction, loss):
        bar.n = round(100 * fraction)
        bar.set_postfix(loss=f"{loss:.3f}", refresh=True)

    try:
        res = projection(a.G, pil_to_tensor(crop, a.device), quality=args.quality, encoder=a.encoder, steps=args.steps,
                         seed=args.seed, progress=step, features=a.features)
    except ValueError as e:  # a bad --quality / --steps: one line for the user, not a traceback
        bar.close()
        return fail(BadArgument(str(e)))
    bar.close()
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
