"""Cold CLI and warm service times of `birdanim animate`, per engine, against the targets.

    python -m benchmarks.bench_cold                          # both modes, the first Kaggle example photo
    python -m benchmarks.bench_cold --modes rig --repeats 3 --photo bird.jpg

Cold: `birdanim animate PHOTO -o OUT.mp4 --mode M` as a fresh process (interpreter start, imports,
model loading, detection, the video), wall clock, best and median of --repeats. Warm: the same
animation from an `Animator` already loaded and warmed up (what the app pays per request). The
reference measured in the same run is a fresh interpreter that only imports torch: the floor every
cold run pays, so the ratio cold / floor shows how much is ours. The machine is shared: compare
numbers of one run, not across runs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from birdanim.paths import ASSETS

TARGETS = {"cold": 15.0, "warm": 8.0}  # seconds for 300 frames (issue targets; warm: rig at 512 px)


def _run(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def cold(photo: Path, mode: str, frames: int, repeats: int) -> list[float]:
    exe = [sys.executable, "-m", "birdanim.cli"]
    with tempfile.TemporaryDirectory() as d:
        return [_run([*exe, "animate", str(photo), "-o", str(Path(d) / "bird.mp4"), "--mode", mode,
                      "--frames", str(frames), "--quiet"]) for _ in range(repeats)]


def warm(photo: Path, modes: list[str], frames: int, repeats: int) -> dict[str, list[float]]:
    from birdanim.device import set_cpu_threads
    from birdanim.service import Animator

    set_cpu_threads()
    a = Animator()
    a.warmup()
    out = {}
    for mode in modes:
        with tempfile.TemporaryDirectory() as d:
            a.animate(photo, mode=mode, frames=frames, out_dir=Path(d) / "w")  # first request: lazy loads
            times = []
            for i in range(repeats):
                t = time.perf_counter()
                a.animate(photo, mode=mode, frames=frames, out_dir=Path(d) / str(i))
                times.append(time.perf_counter() - t)
        out[mode] = times
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photo", type=Path, default=None, help="default: the first example photo in assets/examples")
    ap.add_argument("--modes", nargs="+", default=["rig", "gan"], choices=["rig", "gan"])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    photo = args.photo or sorted((ASSETS / "examples").glob("*.jpg"))[0]
    floor = [_run([sys.executable, "-c", "import torch"]) for _ in range(args.repeats)]
    print(f"photo {photo.name}, {args.frames} frames, best / median of {args.repeats}")
    print(f"reference: fresh interpreter importing torch  {min(floor):6.2f} / {statistics.median(floor):6.2f} s")
    rows = {m: cold(photo, m, args.frames, args.repeats) for m in args.modes}
    hot = warm(photo, args.modes, args.frames, args.repeats)
    for m in args.modes:
        c, w = rows[m], hot[m]
        print(f"{m:4s} cold CLI    {min(c):6.2f} / {statistics.median(c):6.2f} s  (x{min(c) / min(floor):.1f} the reference; "
              f"target {TARGETS['cold']:.0f} s: {'OK' if min(c) <= TARGETS['cold'] else 'OVER'})")
        print(f"{m:4s} warm service {min(w):6.2f} / {statistics.median(w):6.2f} s  (target {TARGETS['warm']:.0f} s: "
              f"{'OK' if min(w) <= TARGETS['warm'] else 'OVER'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
