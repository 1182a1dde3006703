"""Training speed: images/s of one full iteration (G step + D step) for each D option and resolution,
and where the time goes (G forward/backward, augmentation, feature network, D heads).

    python -m benchmarks.bench_train                         # 128 and 256 px, projected and classic D
    python -m benchmarks.bench_train --res 256 --d projected --feat-res 128 160 --steps 4
    python -m benchmarks.bench_train --res 128 256 --d projected --channel-base 2048 4096 8192   # wider G

Uses random images (speed does not depend on content). The machine is shared: numbers vary +-30%;
the reference line (a fixed 3x3 conv) measured in the same run shows how busy the CPU was.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
import torch.nn.functional as F

from train.loop.data import ImageDataset
from train.loop.presets import make_config
from train.loop.train import Dist, Trainer


def reference_gflops(seconds: float = 2.0) -> float:
    """Throughput of a dense 3x3 conv (batch 8, 64 ch, 64x64, channels_last): how fast the CPU is now."""
    x = torch.randn(8, 64, 64, 64).contiguous(memory_format=torch.channels_last)
    w = torch.randn(64, 64, 3, 3).contiguous(memory_format=torch.channels_last)
    F.conv2d(x, w, padding=1)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        F.conv2d(x, w, padding=1)
        n += 1
    return n * 2 * 9 * 64 * 64 * 64 * 64 * 8 / (time.perf_counter() - t0) / 1e9


class Timer:
    def __init__(self):
        self.t: dict[str, float] = {}

    def add(self, k, dt):
        self.t[k] = self.t.get(k, 0.0) + dt


def profile_step(tr: Trainer, timer: Timer) -> None:
    """The same work as Trainer.gan_step, timed part by part."""
    from train.loop import loss as L

    cfg, n, D = tr.cfg, tr.batch_gpu, tr.D
    projected = hasattr(D, "project")

    def timed(name, fn):
        t0 = time.perf_counter()
        out = fn()
        timer.add(name, time.perf_counter() - t0)
        return out

    tr.G.requires_grad_(True)
    D.requires_grad_(False)
    fake = timed("G fwd", lambda: tr._fakes(n, True))
    fake_in = timed("augment", lambda: tr.augment(fake))
    if projected:
        fake_in = timed("feature net fwd", lambda: D.project(fake_in))
    D.requires_grad_(True)
    tr.opt_D.zero_grad(set_to_none=True)
    real = timed("augment", lambda: tr.augment(tr._reals()))
    if projected:
        with torch.no_grad():
            real_feats = timed("feature net fwd", lambda: D.project(real))
        logits = timed("D fwd (heads or classic D)", lambda: torch.cat([D.logits([f.detach() for f in fake_in]), D.logits(real_feats)]))
    else:
        logits = timed("D fwd (heads or classic D)", lambda: torch.cat([D(fake_in.detach()), D(real)]))
    lossd = L.d_loss(logits[n:], logits[:n], cfg.optimiser.loss)
    timed("D bwd (heads or classic D)", lambda: lossd.backward())
    timed("optimisers", lambda: tr.opt_D.step())
    D.requires_grad_(False)
    tr.opt_G.zero_grad(set_to_none=True)
    lossg = L.g_loss(timed("D fwd (heads or classic D)", lambda: D.logits(fake_in) if projected else D(fake_in)), cfg.optimiser.loss)
    timed("G bwd (through D/F and G)", lambda: lossg.backward())
    timed("optimisers", lambda: tr.opt_G.step())


def bench(res: int, d: str, feat_res: int, batch: int, steps: int, feature_net, channel_base: int = 2048) -> dict:
    preset = "default" if d == "projected" else "classic"
    cfg = make_config(preset, {"resolution": res, "feat_res": feat_res, "batch": batch, "aug_p": 0.3,
                               "channel_base": channel_base})
    imgs = torch.randint(0, 256, (64, 3, res, res), dtype=torch.uint8)
    tr = Trainer(cfg, torch.device("cpu"), Dist(torch.device("cpu")), ImageDataset.from_tensor(imgs), feature_net)
    tr.step()  # warm-up (oneDNN primitive creation)
    t0 = time.perf_counter()
    for _ in range(steps):
        tr.step()
    whole = (time.perf_counter() - t0) / steps
    timer = Timer()
    for _ in range(max(1, steps // 2)):
        profile_step(tr, timer)
    total = sum(timer.t.values())
    g_params = sum(p.numel() for p in tr.G.parameters())
    return {"img_s": batch / whole, "step_s": whole, "g_mparams": g_params / 1e6,
            "parts": {k: v / total for k, v in timer.t.items()}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--res", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--d", nargs="+", default=["projected", "classic"], choices=["projected", "classic"])
    ap.add_argument("--feat-res", type=int, nargs="+", default=[128])
    ap.add_argument("--channel-base", type=int, nargs="+", default=[2048],
                    help="G widths to time (channels at r px = min(base / r, 256), at least 16; 2048 is the shipped G)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    from birdanim.device import set_cpu_threads

    set_cpu_threads(args.threads)
    from birdanim.models.features import load_efficientnet_lite

    lite0 = load_efficientnet_lite(0)
    print(f"reference 3x3 conv before: {reference_gflops():.0f} GFLOP/s ({args.threads} threads)")
    print(f"{'res':>4} {'G base':>6} {'G M':>5} {'D':>10} {'feat':>5} {'img/s':>7} {'s/step':>7}  where the time goes")
    for res in args.res:
        for cb in args.channel_base:
            for d in args.d:
                for fr in args.feat_res if d == "projected" else [0]:
                    r = bench(res, d, fr or 128, args.batch, args.steps, lite0, cb)
                    parts = ", ".join(f"{k} {v:.0%}" for k, v in sorted(r["parts"].items(), key=lambda kv: -kv[1]))
                    print(f"{res:>4} {cb:>6} {r['g_mparams']:5.2f} {d:>10} {fr or '-':>5} {r['img_s']:7.2f} "
                          f"{r['step_s']:7.2f}  {parts}", flush=True)
    print(f"reference 3x3 conv after: {reference_gflops():.0f} GFLOP/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
