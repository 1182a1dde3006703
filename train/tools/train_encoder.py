"""Train the W+ encoder (birdanim/engines/gan/encoder.py) on the generator's own samples; save it in weights/encoder/.

Each step draws z, maps it to ws (with style mixing between two z at a random layer half the time,
so the encoder also sees W+ codes that are not a single w), renders the images with constant noise,
and fits the encoder with
    ws loss:    mean squared error of the predicted ws, divided by the per-dimension w variance
    image loss: every --img-every steps, the predicted ws are rendered and compared with the sample
                (pixels at 64 px), weighted by --img-weight; it teaches which ws errors matter.

examples:
  python -m train.tools.train_encoder --weights /tmp/tiny_weights --steps 20 --batch 4            # smoke run
  python -m train.tools.train_encoder --weights weights/ --minutes 15                             # the shipped one
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
import torch.nn.functional as F

from birdanim.checkpoint import WEIGHTS_FILE, load_generator, resolve
from birdanim.device import pick_device, set_cpu_threads
from birdanim.engines.gan.encoder import EncoderConfig, WEncoder, save_encoder
from birdanim.engines.gan.poses import sha256_file


@torch.no_grad()
def sample_batch(G, batch: int, gen: torch.Generator, device, mix_prob: float = 0.5, psi_min: float = 0.7):
    """(ws [B, num_ws, w_dim], images [B, 3, H, W]) from random z, truncation psi ~ U(psi_min, 1)."""
    z = torch.randn(batch, G.z_dim, generator=gen).to(device)
    ws = G.mapping(z)
    if torch.rand((), generator=gen) < mix_prob:  # style mixing: a second w from a random layer on
        cut = int(torch.randint(1, G.num_ws, (), generator=gen))
        ws[:, cut:] = G.mapping(torch.randn(batch, G.z_dim, generator=gen).to(device))[:, cut:]
    psi = psi_min + (1 - psi_min) * torch.rand(batch, 1, 1, generator=gen).to(device)
    ws = G.mapping.w_avg.lerp(ws, psi)
    return ws, G.synthesis(ws, noise_mode="const")


def train_encoder(G, cfg: EncoderConfig, steps: int, batch: int, lr: float, img_weight: float, img_every: int,
                  seed: int = 0, minutes: float | None = None, log=print, clip: float = 1.0) -> tuple[WEncoder, list[float]]:
    """Fit a fresh encoder to G; stops after `steps` or `minutes`, whichever comes first."""
    device = next(G.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    E = WEncoder(cfg).to(device)
    params = [p for p in E.parameters() if p.requires_grad]
    with torch.no_grad():  # the sampled mean, not G's w_avg buffer: that one lags early in training
        w = G.mapping(torch.randn(2000, G.z_dim, generator=gen).to(device))[:, 0]
    E.w_avg.copy_(w.mean(0))
    w_var = w.var(0) + 1e-8
    opt = torch.optim.Adam(params, lr=lr, betas=(0.9, 0.99))
    losses, t0 = [], time.time()
    for step in range(steps):
        ws, img = sample_batch(G, batch, gen, device)
        pred = E(img)
        loss = ((pred - ws).square() / w_var).mean()
        if img_weight > 0 and img_every > 0 and step % img_every == 0:
            recon = G.synthesis(pred, noise_mode="const")
            loss = loss + img_weight * (F.avg_pool2d(recon, recon.shape[-1] // 64 or 1)
                                        - F.avg_pool2d(img, img.shape[-1] // 64 or 1)).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, max_norm=clip)  # the image loss can spike early on
        opt.step()
        losses.append(loss.item())
        if step % 25 == 0 or step == steps - 1:
            log(f"step {step:5d}  loss {loss.item():.4f}  {time.time() - t0:6.0f} s")
        if minutes is not None and time.time() - t0 > 60 * minutes:
            log(f"time budget of {minutes} min reached after {step + 1} steps")
            break
    return E.eval().requires_grad_(False), losses


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True, help="generator weights folder")
    p.add_argument("--out", default=None, help="weights folder to write encoder/ into (default: --weights)")
    p.add_argument("--steps", type=int, default=100000, help="maximum steps")
    p.add_argument("--minutes", type=float, default=None, help="stop after this many minutes")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--img-weight", type=float, default=0.1, help="weight of the image reconstruction loss")
    p.add_argument("--img-every", type=int, default=4, help="image loss every N steps (it costs a G forward+backward)")
    p.add_argument("--input-res", type=int, default=128, help="encoder input side in pixels")
    p.add_argument("--backbone", choices=["lite0", "cnn"], default="lite0",
                   help="lite0: frozen pretrained features + trained head (default); cnn: small CNN from scratch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)

    set_cpu_threads(args.threads)
    device = pick_device(args.device)
    G = load_generator(args.weights, device)
    weights_file = resolve(args.weights, WEIGHTS_FILE)
    cfg = EncoderConfig(num_ws=G.num_ws, w_dim=G.w_dim, input_res=min(args.input_res, G.img_resolution),
                        backbone=args.backbone, generator_sha256=sha256_file(weights_file))
    E, losses = train_encoder(G, cfg, args.steps, args.batch, args.lr, args.img_weight, args.img_every, args.seed,
                              args.minutes)
    folder = save_encoder(E.cpu(), args.out or args.weights)
    print(f"saved {folder} after {len(losses)} steps; loss {losses[0]:.4f} -> {sum(losses[-10:]) / min(10, len(losses)):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
