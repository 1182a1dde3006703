"""Does the bird detector slow the generator down, and how long does one detection take?

    python -m benchmarks.bench_detect                 # the shared OpenVINO detector, weights/ generator
    python -m benchmarks.bench_detect --frames 32 --repeats 3 --detects 5
    python -m benchmarks.bench_detect --via-ultralytics   # the path before issue 27: ultralytics' predict

Prints the cold `birdanim --help` time (a fresh interpreter; target <= 0.5 s, no torch import), then, in
one process (the way the app and `birdanim animate` use them):
1. generator render speed (frames/s, batch --batch) before the detector exists;
2. detector load, first detection (OpenVINO compiles the model then) and later detections (s/photo);
3. render speed again after the detector has run, and its ratio to (1).
Each speed is the best of --repeats runs: the machine is shared, so single runs move by +-30%.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import torch
from PIL import Image

from birdanim.checkpoint import load_generator
from birdanim.device import set_cpu_threads
from birdanim.paths import SHARED, WEIGHTS, shared_detector

DEFAULT_PHOTO = SHARED / "reference" / "aps360" / "stylegan2-ada-pytorch-copy" / "good_birds" / "2" / "frame_0000.jpg"


def render_speed(G, frames: int, batch: int, repeats: int) -> float:
    """Best frames/s over `repeats` renders of `frames` frames (noise const, batch `batch`)."""
    ws = G.mapping(torch.randn(frames, G.z_dim, generator=torch.Generator().manual_seed(0)))
    G.synthesis(ws[:batch], noise_mode="const")  # warm-up: oneDNN picks its kernels on the first call
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for i in range(0, frames, batch):
            G.synthesis(ws[i : i + batch], noise_mode="const")
        best = min(best, time.perf_counter() - t)
    return frames / best


class UltralyticsAsBefore:
    """birdanim's detector call before issue 27: ultralytics' YOLO.predict, nothing put back afterwards."""

    def __init__(self, path: str):
        from birdanim.stages.detect import _prepare_ultralytics_env

        _prepare_ultralytics_env()
        from ultralytics import YOLO

        self.model, self.source = YOLO(path, task="detect"), f"{path} via ultralytics"

    def __call__(self, img):
        import numpy as np

        return self.model.predict(np.asarray(img)[..., ::-1], imgsz=640, conf=0.25, classes=[14], verbose=False)[0].boxes


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=str(WEIGHTS), help="generator folder (default weights/)")
    ap.add_argument("--detector", default=str(shared_detector()), help="YOLOv8 .pt or OpenVINO folder")
    ap.add_argument("--photo", default=str(DEFAULT_PHOTO), help="photo to detect in")
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--detects", type=int, default=5, help="detections after the first")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--via-ultralytics", action="store_true",
                    help="ultralytics' YOLO.predict as birdanim called it before issue 27 (for comparison)")
    args = ap.parse_args(argv)

    cold = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "birdanim.cli", "--help"], check=True, stdout=subprocess.DEVNULL)
        cold.append(time.perf_counter() - t)
    print(f"cold `birdanim --help`: best {min(cold):.2f} s of 3 (target <= 0.5 s)")
    threads = set_cpu_threads(args.threads)
    G = load_generator(args.weights)
    print(f"torch threads {threads}, {G.img_resolution} px generator, load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")
    with torch.no_grad():
        before = render_speed(G, args.frames, args.batch, args.repeats)
        print(f"render before the detector: {before:.2f} frames/s")

        from birdanim.stages.detect import BirdDetector
        from birdanim.stages.photo import load_photo

        photo = load_photo(args.photo) if os.path.isfile(args.photo) else Image.new("RGB", (640, 480), (120, 140, 160))
        t = time.perf_counter()
        det = UltralyticsAsBefore(args.detector) if args.via_ultralytics else BirdDetector(args.detector)
        t_load = time.perf_counter() - t
        t = time.perf_counter()
        boxes = det(photo)
        t_first = time.perf_counter() - t
        later = []
        for _ in range(args.detects):
            t = time.perf_counter()
            det(photo)
            later.append(time.perf_counter() - t)
        print(f"detector {det.source}: load {t_load:.2f} s, first detection {t_first:.2f} s, "
              f"then {min(later):.3f}-{max(later):.3f} s/photo (median {sorted(later)[len(later) // 2]:.3f}); "
              f"{len(boxes)} bird(s) in {photo.size[0]}x{photo.size[1]}")

        after = render_speed(G, args.frames, args.batch, args.repeats)
        print(f"render after the detector:  {after:.2f} frames/s ({after / before:.2f}x of before)")
        print(f"torch threads now {torch.get_num_threads()}, process threads {len(os.listdir('/proc/self/task'))}, "
              f"affinity {sorted(os.sched_getaffinity(0))}")


if __name__ == "__main__":
    main()
