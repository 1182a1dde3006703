"""Render speed of the default 256 px generator vs an NVlabs-style reference, in the same run.

    python -m benchmarks.bench_render            # default config, random weights (speed only)
    python -m benchmarks.bench_render --weights weights/ --frames 300

Prints frames/s at batch 1 and batched, GFLOPs per frame, achieved GFLOP/s, the time for a full
300-frame render, and the ratios to the reference. The machine is shared: numbers move +-30%, the
ratios less; each figure is the best of `--repeats` runs.
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmarks.reference_nvlabs import ReferenceSynthesis
from birdanim.checkpoint import load_generator
from birdanim.device import set_cpu_threads
from birdanim.models import Generator, GeneratorConfig
from birdanim.models.stylegan2 import conv_gflops


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up: oneDNN picks its kernels on the first call
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None, help="generator folder (default: random default config)")
    ap.add_argument("--batch", type=int, default=8, help="batch size of the batched figures")
    ap.add_argument("--frames", type=int, default=300, help="frames of the full-render timing")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-malloc-tuning", action="store_true", help="measure without birdanim.device.tune_allocator")
    args = ap.parse_args(argv)

    if args.no_malloc_tuning:
        import os

        os.environ["BIRDANIM_NO_MALLOPT"] = "1"
    threads = set_cpu_threads(args.threads)
    G = load_generator(args.weights) if args.weights else Generator(GeneratorConfig()).eval().requires_grad_(False)
    ref = ReferenceSynthesis(G)
    gf = conv_gflops(G.cfg)
    print(f"threads {threads}, {G.img_resolution} px, {sum(p.numel() for p in G.parameters()) / 1e6:.2f} M params, "
          f"{gf:.2f} GFLOPs/frame (convolutions)")

    rows = []
    with torch.no_grad():
        for bs in (1, args.batch):
            ws = G.mapping(torch.randn(bs, G.z_dim, generator=torch.Generator().manual_seed(0)))
            t_ours = best_time(lambda: G.synthesis(ws, noise_mode="const"), args.repeats)
            t_ref = best_time(lambda: ref(ws, noise_mode="const"), args.repeats)
            rows.append((bs, t_ours / bs, t_ref / bs))
        ws = G.mapping(torch.randn(args.frames, G.z_dim, generator=torch.Generator().manual_seed(1)))

        def full_render():
            for i in range(0, args.frames, args.batch):
                G.synthesis(ws[i : i + args.batch], noise_mode="const")

        t_full = best_time(full_render, 1)

    print(f"\n| batch | birdanim frames/s | GFLOP/s | reference frames/s | GFLOP/s | speed-up |")
    print("|---|---|---|---|---|---|")
    for bs, a, b in rows:
        print(f"| {bs} | {1 / a:.1f} | {gf / a:.0f} | {1 / b:.1f} | {gf / b:.0f} | {b / a:.2f}x |")
    print(f"\n{args.frames} frames at {G.img_resolution}x{G.img_resolution}, batch {args.batch}: {t_full:.2f} s "
          f"(target <= 10 s); reference estimate {rows[-1][2] * args.frames:.1f} s")


if __name__ == "__main__":
    main()
