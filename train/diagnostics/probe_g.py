"""Where does a generator's variety come from? (a diagnosis of the one shared layout)

Measurements on one generator (a weights folder or a G_ema export):

- Sample spread: the mean absolute difference over all pairs of n samples, in full and at 16x16
  (layout); with --real, the same for n test photos, for scale.
- W spread: how far the mapped w of n random z lie from w_avg, the mean cosine similarity of their
  offsets w - w_avg, and the effective rank of those offsets. A mapping network that has collapsed
  puts every z near one w (small spread, cosine near 1, low rank).
- Layer sensitivity: n pairs of ws; for each synthesis block (a resolution), the ws rows its convs
  read come from the second of the pair alone (the first of them also styles the previous block's
  toRGB, as in StyleGAN2; the last block's rows include the final toRGB row). Reported: the mean absolute pixel
  change, and the change of the 16x16 average-pooled image (the layout: where the bird and the
  background are). In a healthy StyleGAN the coarse rows (4-16 px) move the layout most and the
  fine rows mostly texture and colour detail.
- Finest toRGB share: in the skip architecture the image is upsample(image at R/2) + toRGB(R).
  The standard deviation of that last toRGB term, in full and low-passed (8x8 pooling), against the
  image's own: a last layer that carries the low frequencies paints the layout's colours itself.
- Red pixels: the share of pixels that are strongly red (uint8 R > G + 70 and R > B + 70), over all
  pixels and as the share of images with more than 0.2% of them; with --real, for test photos too.
  A generator that draws red edges on most samples while fewer photos have red in them averages
  its modes (the red of red birds spread thinly over all).

    python -m train.diagnostics.probe_g weights/ --n 64 --real
    python -m train.diagnostics.probe_g weights/ --n 128 --real --real-n 512    # more photos for the red share
    python -m train.diagnostics.probe_g ~/.cache/birdanim/runs/00001-default/gema/000029648 --json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from birdanim.checkpoint import CheckpointError, load_generator
from birdanim.device import set_cpu_threads
from birdanim.imageops import tensor_to_uint8
from birdanim.models.layers import upsample2x


@torch.no_grad()
def w_spread(G, n: int, gen: torch.Generator) -> dict:
    w = G.mapping(torch.randn(n, G.z_dim, generator=gen))[:, 0]
    d = w - G.mapping.w_avg
    dn = F.normalize(d, dim=1)
    off = ~torch.eye(n, dtype=torch.bool)
    s2 = torch.linalg.svdvals(d).square()
    return {
        "w_avg_norm": float(G.mapping.w_avg.norm()),
        "offset_norm": float(d.norm(dim=1).mean()),
        "offset_cosine": float((dn @ dn.T)[off].mean()),
        "offset_effective_rank": float(s2.sum().square() / s2.square().sum()),
    }


def _pool(x: torch.Tensor, side: int) -> torch.Tensor:
    return F.adaptive_avg_pool2d(x, side)


@torch.no_grad()
def layer_sensitivity(G, n: int, gen: torch.Generator) -> list[dict]:
    """Per synthesis block (resolution): n pairs of ws; the rows of that block alone come from the second."""
    base = G.mapping(torch.randn(n, G.z_dim, generator=gen))
    others = G.mapping(torch.randn(n, G.z_dim, generator=gen))
    ref = G.synthesis(base, noise_mode="const")
    rows, out = 0, []
    for block in G.synthesis.blocks:
        lo, hi = rows, rows + block.num_conv  # the block's conv rows (its toRGB row is the next block's first)
        rows = hi
        if block is G.synthesis.blocks[-1]:
            hi += 1  # the last toRGB row
        ws = base.clone()
        ws[:, lo:hi] = others[:, lo:hi]
        img = G.synthesis(ws, noise_mode="const")
        out.append({"resolution": block.resolution, "rows": [lo, hi], "pixel_change": float((img - ref).abs().mean()),
                    "layout_change": float((_pool(img, 16) - _pool(ref, 16)).abs().mean())})
    img = G.synthesis(others, noise_mode="const")
    out.append({"resolution": "all", "rows": [0, G.num_ws], "pixel_change": float((img - ref).abs().mean()),
                "layout_change": float((_pool(img, 16) - _pool(ref, 16)).abs().mean())})
    return out


@torch.no_grad()
def finest_torgb_share(G, n: int, gen: torch.Generator) -> dict:
    ws = G.mapping(torch.randn(n, G.z_dim, generator=gen))
    x = img = prev = None
    i = 0
    for block in G.synthesis.blocks:
        prev = img
        x, img = block(x, img, ws[:, i : i + block.num_conv + 1], "const")
        i += block.num_conv
    last = img - upsample2x(prev)
    side = max(img.shape[-1] // 8, 1)
    return {"image_std": float(img.std()), "last_torgb_std": float(last.std()),
            "last_torgb_lowpass_std": float(_pool(last, side).std()), "image_lowpass_std": float(_pool(img, side).std())}


def pairwise_spread(images: torch.Tensor) -> dict:
    """Mean absolute difference over all pairs of images [N, 3, H, W] in [-1, 1]: in full and at 16x16."""
    n = images.shape[0]
    off = ~torch.eye(n, dtype=torch.bool)
    pooled = _pool(images, 16)
    layout = (pooled[:, None] - pooled[None]).abs().mean(dim=(2, 3, 4))[off].mean()
    pixel = torch.stack([(images - im).abs().mean(dim=(1, 2, 3)) for im in images])[off].mean()
    return {"pixel": float(pixel), "layout": float(layout)}


RED_MARGIN = 70  # uint8 levels by which red must exceed green and blue
RED_IMAGE_SHARE = 0.002  # an image "has red" when more than this share of its pixels is


def red_share(images: torch.Tensor) -> dict:
    """Strongly red pixels of images [N, 3, H, W] in [-1, 1]: their share of all pixels, and the share of
    images in which more than RED_IMAGE_SHARE of the pixels are."""
    u8 = torch.from_numpy(tensor_to_uint8(images)).int()  # as a user sees them
    r, g, b = u8[..., 0], u8[..., 1], u8[..., 2]
    per_image = ((r > g + RED_MARGIN) & (r > b + RED_MARGIN)).float().mean(dim=(1, 2))
    return {"pixel_share": float(per_image.mean()), "image_share": float((per_image > RED_IMAGE_SHARE).float().mean())}


def real_images(n: int) -> torch.Tensor | None:
    """The first n test photos of ../shared in [-1, 1] (None when they are not there)."""
    from train.loop.data import ImageDataset, default_test_zips

    zips = default_test_zips()
    if not all(Path(z).is_file() for z in zips):
        return None
    ds = ImageDataset.from_zips(zips, 256, n)
    return ds.batch(list(range(len(ds))), False, None, torch.device("cpu")).float()


def real_spread(n: int, n_red: int | None = None) -> dict | None:
    """pairwise_spread of the first n test photos of ../shared, and the red_share of the first n_red (default n);
    None when the photos are not there."""
    images = real_images(max(n, n_red or n))
    if images is None:
        return None
    return {**pairwise_spread(images[:n]), "red": red_share(images[: n_red or n])}


def probe(G, n: int = 64, seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    G = G.eval()
    with torch.no_grad():
        samples = G.synthesis(G.mapping(torch.randn(n, G.z_dim, generator=gen)), noise_mode="const").clamp(-1, 1)
    return {"w_spread": w_spread(G, max(n, 16) * 4, gen), "samples": {**pairwise_spread(samples), "red": red_share(samples)},
            "layers": layer_sensitivity(G, n, gen), "finest_torgb": finest_torgb_share(G, n, gen)}


def print_report(r: dict) -> None:
    w = r["w_spread"]
    print(f"W: |w_avg| {w['w_avg_norm']:.2f}, mean |w - w_avg| {w['offset_norm']:.2f}, mean cosine of the offsets "
          f"{w['offset_cosine']:.3f}, effective rank {w['offset_effective_rank']:.1f}")
    for name in ("samples", "real"):
        if r.get(name):
            what = "G's samples" if name == "samples" else "test photos"
            print(f"{what}, mean over all pairs: pixel difference {r[name]['pixel']:.3f}, layout (16x16) difference {r[name]['layout']:.3f}")
            red = r[name]["red"]
            print(f"{what}: strongly red pixels (R > G + {RED_MARGIN} and R > B + {RED_MARGIN}) {100 * red['pixel_share']:.2f}% of all, "
                  f"in {100 * red['image_share']:.1f}% of the images (> {100 * RED_IMAGE_SHARE:.1f}% of their pixels)")
    print("a ws with the rows of one block taken from another ws (mean over n pairs):")
    print(f"{'block':>6} {'ws rows':>8} {'pixel change':>13} {'layout (16x16) change':>22}")
    for row in r["layers"]:
        print(f"{row['resolution']:>6} {'%d-%d' % tuple(row['rows']):>8} {row['pixel_change']:13.3f} {row['layout_change']:22.3f}")
    t = r["finest_torgb"]
    print(f"finest toRGB term: std {t['last_torgb_std']:.3f} (image {t['image_std']:.3f}); low-passed "
          f"{t['last_torgb_lowpass_std']:.3f} (image {t['image_lowpass_std']:.3f})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n", 2)[2],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", help="weights folder or G_ema export (RUN/gema/N)")
    ap.add_argument("--n", type=int, default=64, help="samples per measurement")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print the numbers as JSON")
    ap.add_argument("--real", action="store_true", help="also the pairwise spread of n test photos of ../shared (for scale)")
    ap.add_argument("--real-n", type=int, default=None, help="test photos for the red share (default --n)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    set_cpu_threads(args.threads)
    try:
        G = load_generator(args.weights, device=torch.device("cpu"))
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    r = probe(G, args.n, args.seed)
    if args.real:
        r["real"] = real_spread(args.n, args.real_n)
        if r["real"] is None:
            print("note: the test photos of ../shared are not there; --real skipped", file=sys.stderr)
    if args.json:
        print(json.dumps(r))
    else:
        print_report(r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
