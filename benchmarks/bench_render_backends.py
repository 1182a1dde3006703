"""The generator's synthesis network under eager PyTorch and OpenVINO, in one run (issue 27, item 4).

    python -m benchmarks.bench_render_backends                  # weights/, batch 8, 2 threads
    python -m benchmarks.bench_render_backends --batch 1 --repeats 5

OpenVINO gets the network through ov.convert_model (traced at the given batch, noise const) and runs it
on the CPU plugin with the same thread count as torch. Prints frames/s, achieved GFLOP/s (convolutions),
the speed ratio to eager, and the largest absolute pixel difference from eager ([-1, 1] scale) on the
same ws. The machine is shared: each figure is the best of --repeats, eager and OpenVINO interleaved.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from birdanim.checkpoint import load_generator
from birdanim.device import set_cpu_threads
from birdanim.models.stylegan2 import conv_gflops
from birdanim.paths import WEIGHTS


class Synthesis(torch.nn.Module):
    """ws [B, num_ws, w_dim] -> images [B, 3, R, R], noise const (what a render calls)."""

    def __init__(self, G):
        super().__init__()
        self.synthesis = G.synthesis

    def forward(self, ws):
        return self.synthesis(ws, noise_mode="const")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=str(WEIGHTS))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)

    threads = set_cpu_threads(args.threads)
    G = load_generator(args.weights)
    net = Synthesis(G).eval().requires_grad_(False)
    gf = conv_gflops(G.cfg)
    with torch.no_grad():
        ws = G.mapping(torch.randn(args.batch, G.z_dim, generator=torch.Generator().manual_seed(0)))
        ref = net(ws)
    print(f"threads {threads}, batch {args.batch}, {G.img_resolution} px, {gf:.2f} GFLOPs/frame, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

    import openvino as ov

    t = time.perf_counter()
    with torch.no_grad():
        ov_model = ov.convert_model(net, example_input=ws)
    t_convert = time.perf_counter() - t
    t = time.perf_counter()
    compiled = ov.Core().compile_model(ov_model, "CPU", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads,
                                                         "INFERENCE_PRECISION_HINT": "f32"})
    t_compile = time.perf_counter() - t
    ws_np = ws.numpy()
    out_ov = compiled(ws_np)[compiled.output(0)]
    diff = float(np.abs(out_ov - ref.numpy()).max())
    print(f"openvino: convert {t_convert:.1f} s, compile {t_compile:.1f} s, max |diff| vs eager {diff:.2e}")

    best = {"eager": float("inf"), "openvino": float("inf")}
    with torch.no_grad():
        net(ws)  # warm-up
        for _ in range(args.repeats):
            t = time.perf_counter()
            net(ws)
            best["eager"] = min(best["eager"], time.perf_counter() - t)
            t = time.perf_counter()
            compiled(ws_np)
            best["openvino"] = min(best["openvino"], time.perf_counter() - t)
    print("\n| backend | frames/s | GFLOP/s | vs eager | max abs diff |")
    print("|---|---|---|---|---|")
    for name, s in best.items():
        fps = args.batch / s
        print(f"| {name} | {fps:.1f} | {gf * fps:.0f} | {best['eager'] / s:.2f}x | "
              f"{'0' if name == 'eager' else f'{diff:.1e}'} |")


if __name__ == "__main__":
    main()
