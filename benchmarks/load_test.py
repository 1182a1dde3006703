"""Load test of the app: N concurrent animate requests through gradio_client against `python app.py`.

    python -m benchmarks.load_test                          # weights/ + assets/target_poses, 8 x 300 frames
    python -m benchmarks.load_test --short                  # 8 x 30 frames (a quick check)
    python -m benchmarks.load_test --random-weights         # no trained weights yet: the shipped 256 px
                                                            # architecture, randomly initialised (same cost)

Starts the app in a subprocess on 127.0.0.1 (a free port), sends the requests at once (one client
per request, like N users), and while they queue, times a light request (Random birds, 4 birds) and
compares it with the same request on the idle server. Prints latency p50/p90/max, the server's peak
RSS (process tree: the app and its ffmpeg encoders), failures (must be 0), the render folders left
behind (must be 0) and checks every returned MP4 (H.264, frame count, fps).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_random_weights(folder: Path) -> tuple[Path, Path]:
    """The shipped generator config with random weights, and 10 poses mapped from seeded z."""
    import torch

    from birdanim.checkpoint import save_generator
    from birdanim.models.stylegan2 import Generator, GeneratorConfig, z_from_seeds
    from birdanim.engines.gan.poses import save_poses

    torch.manual_seed(0)
    G = Generator(GeneratorConfig()).eval()
    with torch.no_grad():
        G.mapping.w_avg.copy_(G.mapping(torch.randn(512, G.z_dim))[:, 0].mean(0))
        poses = G.mapping(z_from_seeds(list(range(10)), G.z_dim, "cpu"))
    save_generator(G, folder, meta={"note": "random weights for the load test"})
    save_poses(folder / "poses", poses, None, folder / "model.safetensors", {"source": "load_test random"})
    return folder, folder / "poses"


def test_photo(path: Path) -> Path:
    """A project example if there is one, else a plain synthetic 640x480 scene."""
    examples = sorted((REPO / "assets" / "examples").glob("*.jpg"))
    if examples:
        return examples[0]
    import numpy as np
    from PIL import Image

    a = np.zeros((480, 640, 3), np.uint8)
    a[...] = (120, 170, 230)
    a[180:300, 260:400] = (70, 50, 40)
    Image.fromarray(a).save(path)
    return path


class RssSampler(threading.Thread):
    """Samples the resident memory of a process and its children every `every` seconds."""

    def __init__(self, pid: int, every: float = 0.2):
        super().__init__(daemon=True)
        self.pid, self.every, self.peak, self.stop = pid, every, 0, threading.Event()

    def rss(self) -> int:
        try:
            import psutil

            p = psutil.Process(self.pid)
            procs = [p, *p.children(recursive=True)]
            total = 0
            for q in procs:
                try:
                    total += q.memory_info().rss
                except psutil.Error:
                    pass
            return total
        except ImportError:  # the app process alone, from /proc
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except Exception:
            return 0
        return 0

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, self.rss())
            self.stop.wait(self.every)


def start_app(port: int, env: dict) -> subprocess.Popen:
    log = open(Path(tempfile.gettempdir()) / f"birdanim-load-test-{port}.log", "w")
    return subprocess.Popen([sys.executable, str(REPO / "app.py")], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def wait_until_up(url: str, proc: subprocess.Popen, timeout: float) -> float:
    import httpx

    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"the app exited with code {proc.returncode}; see its log in {tempfile.gettempdir()}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return time.monotonic() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the app did not answer at {url} within {timeout:.0f} s")


def animate_once(url: str, photo: Path, frames: int, fps: int, quality: str) -> dict:
    from gradio_client import Client, handle_file

    from birdanim.stages.video import probe

    t0 = time.monotonic()
    try:
        client = Client(url, verbose=False, download_files=tempfile.mkdtemp(prefix="birdanim-load-client-"))
        # photo, crop (cx, cy, size), mode, scene, path, beats/s, cutoff, frames, fps, quality, seed, strength, gif,
        # background blur, wings
        _, video, _, _ = client.predict(handle_file(str(photo)), 50, 50, 60, "gan", "crop", "hover", 3.0, 7, frames, fps,
                                        quality, 0, 1.0, False, 2.0, "real", api_name="/animate")
        latency = time.monotonic() - t0
        info = probe(video["video"] if isinstance(video, dict) else video)
        ok = info.get("codec") == "h264" and info["frames"] == frames and info["fps"] == fps
        return {"ok": ok, "latency": latency, "info": info, "error": None if ok else f"bad video {info}"}
    except Exception as e:  # counted as a failure, reported below
        return {"ok": False, "latency": time.monotonic() - t0, "info": None, "error": f"{type(e).__name__}: {e}"}


def light_request(url: str) -> float:
    from gradio_client import Client

    client = Client(url, verbose=False, download_files=tempfile.mkdtemp(prefix="birdanim-load-client-"))
    t0 = time.monotonic()
    client.predict(0, 4, 0.7, api_name="/random_birds")
    return time.monotonic() - t0


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=8, help="concurrent animate requests")
    ap.add_argument("--frames", type=int, default=300, help="frames per video (the app's default)")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--quality", default="fast", choices=["fast", "balanced", "best"])
    ap.add_argument("--short", action="store_true", help="30-frame videos: a quick check")
    ap.add_argument("--weights", default=None, help="weights folder or Hub id (default: $BIRDANIM_WEIGHTS or weights/)")
    ap.add_argument("--poses", default=None, help="target poses folder (default: assets/target_poses)")
    ap.add_argument("--random-weights", action="store_true",
                    help="use the shipped 256 px architecture with random weights (same compute as trained ones)")
    ap.add_argument("--startup-timeout", type=float, default=600)
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (random weights, example cache)")
    a = ap.parse_args(argv)
    frames = 30 if a.short else a.frames

    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False")
    tmp = Path(tempfile.mkdtemp(prefix="birdanim-load-"))
    if a.random_weights:
        w, poses = make_random_weights(tmp / "weights")
        env.update(BIRDANIM_WEIGHTS=str(w), BIRDANIM_POSES=str(poses))
    else:
        if a.weights:
            env["BIRDANIM_WEIGHTS"] = a.weights
        if a.poses:
            env["BIRDANIM_POSES"] = a.poses
    port = free_port()
    env.update(GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port),
               GRADIO_EXAMPLES_CACHE=str(tmp / "example_cache"))
    url = f"http://127.0.0.1:{port}/"
    photo = test_photo(tmp / "photo.jpg")

    proc = start_app(port, env)
    try:
        startup = wait_until_up(url, proc, a.startup_timeout)
        import app as app_module  # for WORK_ROOT only (no models are loaded by importing it)

        before = set(app_module.WORK_ROOT.iterdir()) if app_module.WORK_ROOT.exists() else set()
        sampler = RssSampler(proc.pid)
        sampler.start()
        idle_light = [light_request(url) for _ in range(3)]
        print(f"app up in {startup:.1f} s at {url}; photo {photo.name}; {a.requests} x {frames} frames, "
              f"quality {a.quality}", flush=True)

        t0 = time.monotonic()
        with ThreadPoolExecutor(a.requests) as pool:
            futures = [pool.submit(animate_once, url, photo, frames, a.fps, a.quality) for _ in range(a.requests)]
            time.sleep(5)  # the first render is under way, the others are queued
            busy_light = [light_request(url) for _ in range(3)]
            results = [f.result() for f in futures]
        wall = time.monotonic() - t0
        time.sleep(1)
        sampler.stop.set()
        left = set(app_module.WORK_ROOT.iterdir()) - before if app_module.WORK_ROOT.exists() else set()
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    lat = [r["latency"] for r in results]
    failures = [r for r in results if not r["ok"]]
    print(f"\n{'requests':<34}{a.requests} concurrent, {frames} frames each, all sent at once")
    print(f"{'wall time':<34}{wall:.1f} s ({wall / a.requests:.1f} s per video)")
    print(f"{'latency p50 / p90 / max':<34}{percentile(lat, .5):.1f} / {percentile(lat, .9):.1f} / {max(lat):.1f} s")
    print(f"{'peak RSS (app + ffmpeg)':<34}{sampler.peak / 2**20:.0f} MiB")
    print(f"{'failures':<34}{len(failures)}")
    for r in failures:
        print(f"    {r['error']}")
    print(f"{'light request idle (median of 3)':<34}{statistics.median(idle_light):.2f} s")
    print(f"{'light request under load':<34}{statistics.median(busy_light):.2f} s (max {max(busy_light):.2f} s)")
    print(f"{'render folders left behind':<34}{len(left)}")
    return 1 if failures or left else 0


if __name__ == "__main__":
    raise SystemExit(main())
