"""Benchmark of the animate flow: photo -> 300-frame 256 px MP4, time per stage vs the 15 s target,
the reference recipe timed in the same run, quality figures, and projection of unseen test photos.

    python -m benchmarks.bench_animate                         # everything, on weights/ (slow: see --n)
    python -m benchmarks.bench_animate --n 8 --presets fast    # quick run
    python -m benchmarks.bench_animate --random-g --n 0        # timings only, untrained default-config G

Sections:
1. End to end (Animator.animate with default settings on --photo): detect, project, render, encode,
   total; model loading and warm-up are reported apart (the app pays them once at start-up).
2. Reference recipe: NVlabs' projector runs 1000 W steps with a VGG perceptual loss at 256 px. We
   time --ref-steps steps of a W-only projection with our loss at 256 px and extrapolate to 1000.
3. Quality of that video: reconstruction of the crop (Lite0 perceptual distance, PSNR), identity
   across frames (cosine similarity of Lite0 pooled features of each frame to the crop), smoothness
   (mean and max frame-to-frame mean absolute difference, seam included), bird-detect rate over frames.
4. New data (--n photos from the test splits for "fast", --n-slow for balanced and best): Fréchet distance in EfficientNet-Lite2
   pooled features between the reconstructions and the photos (train/metrics/evaluate.py's FD), seconds per
   photo (FD needs n >= 2). With n photos the FD has a large bias: compare presets at the same n, not with FID tables.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from birdanim.device import set_cpu_threads
from birdanim.imageops import pil_to_tensor, tensor_to_uint8, uint8_to_float, uint8_to_tensor
from birdanim.paths import SHARED, WEIGHTS

DEFAULT_PHOTO = SHARED / "reference" / "aps360" / "stylegan2-ada-pytorch-copy" / "good_birds" / "2" / "frame_0000.jpg"
TARGET_S = 15.0


def row(name: str, value, unit: str = "") -> None:
    print(f"  {name:<44} {value}{(' ' + unit) if unit else ''}")


def read_frames(path: Path) -> np.ndarray:
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    w, h = meta["size"]
    return np.stack([np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in gen])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / max(mse, 1e-12)))


def make_random_weights(folder: Path) -> str:
    """An UNTRAINED generator of the shipped architecture, plus poses from random seeds (timings only)."""
    from birdanim.checkpoint import save_generator
    from birdanim.models import Generator, GeneratorConfig
    from birdanim.engines.gan.poses import save_poses

    torch.manual_seed(0)
    G = Generator(GeneratorConfig()).eval()
    with torch.no_grad():
        G.mapping.w_avg.copy_(G.mapping(torch.randn(1000, G.z_dim))[:, 0].mean(0))
        poses = G.mapping(torch.randn(10, G.z_dim))
    save_generator(G, folder)
    save_poses(folder / "poses", poses, None, folder / "model.safetensors", {"note": "random seeds, untrained G"})
    return str(folder)


def end_to_end(a, photo_path: Path, frames: int, quality: str, out_dir: Path):
    print(f"\n== 1. end to end: {photo_path.name} -> {frames} frames, quality {quality} ==")
    photo = a.load_photo(photo_path)
    res = a.animate(photo, mode="gan", scene="crop", frames=frames, quality=quality, out_dir=out_dir)
    for k in ("detect", "project", "render", "encode"):
        row(k, f"{res.timings[k]:6.2f}", "s")
    verdict = "OK" if res.timings["total"] <= TARGET_S else "OVER"
    row("total (photo loaded -> MP4 closed)", f"{res.timings['total']:6.2f} s  vs target {TARGET_S:.0f} s: {verdict}")
    row("render per frame", f"{1000 * res.timings['render'] / frames:6.1f}", "ms")
    for n in res.notes:
        row("note", n)
    return photo, res


def reference_recipe(a, crop, ref_steps: int, ours_s: float) -> None:
    from birdanim.engines.gan.projector import ProjectorConfig, projection

    print(f"\n== 2. reference recipe: 1000 W steps, perceptual loss at 256 px (timed {ref_steps} steps) ==")
    print("  (with OUR generator; NVlabs' 30-GFLOP generator would make each step far slower still)")
    cfg = ProjectorConfig(w_steps=ref_steps, wplus_steps=0, loss_res=256, w_noise=0.05)
    target = pil_to_tensor(crop, a.device)
    projection(a.G, target, config=ProjectorConfig(w_steps=1, wplus_steps=0, loss_res=256), features=a.features)
    t = time.perf_counter()
    projection(a.G, target, config=cfg, features=a.features)
    per_step = (time.perf_counter() - t) / ref_steps
    row("per step", f"{per_step:6.3f}", "s")
    row("1000 steps (extrapolated)", f"{1000 * per_step:6.0f} s = {1000 * per_step / 60:.1f} min")
    row("ours (project stage above)", f"{ours_s:6.2f} s  -> {1000 * per_step / max(ours_s, 1e-9):.0f}x faster")


def quality_figures(a, res, detect_every: int) -> None:
    from birdanim.models.features import perceptual_distance

    print("\n== 3. quality of the video ==")
    frames = read_frames(res.mp4_path)
    crop = np.asarray(res.crop)
    G = res.G_tuned or a.G  # the generator that rendered the video (PTI's copy for "best")
    with torch.no_grad():
        recon = tensor_to_uint8(G.synthesis(res.ws.to(a.device), noise_mode="const"))[0]
        f = a.features
        pd = perceptual_distance(f.forward_features(uint8_to_tensor(recon)), f.forward_features(uint8_to_tensor(crop)))
        ref = f.pooled(uint8_to_tensor(crop))
        sims = torch.cat([torch.nn.functional.cosine_similarity(f.pooled(uint8_to_tensor(frames[i : i + 16])), ref)
                          for i in range(0, len(frames), 16)])
    row("reconstruction perceptual distance (Lite0)", f"{float(pd):.4f}", "(0 = identical)")
    row("reconstruction PSNR", f"{psnr(recon, crop):.2f}", "dB")
    row("identity: cos sim frame vs crop mean/min", f"{float(sims.mean()):.3f} / {float(sims.min()):.3f}")
    loop = np.concatenate([frames, frames[:1]]).astype(np.int16)
    diffs = np.abs(np.diff(loop, axis=0)).mean(axis=(1, 2, 3))
    row("smoothness: frame-to-frame MAD mean/max", f"{diffs.mean():.2f} / {diffs.max():.2f}", "(0..255)")
    row("seam (last -> first frame) MAD, decoded", f"{diffs[-1]:.2f}  (H.264: frame 0 is an I-frame)")
    from birdanim.engines.gan.mixing import loop_ws, mix_with_poses

    ws = loop_ws(mix_with_poses(res.ws, a.poses.ws, cutoff=res.cutoff), frames=len(frames))
    with torch.no_grad():
        raw = tensor_to_uint8(G.synthesis(ws[[-3, -2, -1, 0, 1, 2]].to(a.device), noise_mode="const")).astype(np.int16)
    raw_d = np.abs(np.diff(raw, axis=0)).mean(axis=(1, 2, 3))
    row("raw frames around the seam: MAD per step", " ".join(f"{d:.2f}" for d in raw_d) + "  (seam = 3rd)")
    if a.detector is not None:
        idx = range(0, len(frames), detect_every)
        hits = [bool(a.detector(__import__("PIL.Image", fromlist=["Image"]).fromarray(frames[i]))) for i in idx]
        row(f"bird-detect rate (every {detect_every}th frame)", f"{np.mean(hits):.3f}", f"({sum(hits)}/{len(hits)})")
    else:
        row("bird-detect rate", "n/a (no detector)")


def _file_sha(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:12]


class PhotoCache:
    """Per-photo results of section 4, one JSONL file per preset, so a long run (best on 200 photos is
    hours on this CPU) can be stopped and resumed: a finished photo is never projected again. The
    folder name keys the generator, the encoder and the test set, so other weights never mix in."""

    def __init__(self, root: Path, weights_file: Path, data_key: str, writer: str = ""):
        # writer: a tag for this process's own file ("" or e.g. "shard0of2"), so that concurrent shards
        # never append to the same file; load() reads every writer's file.
        enc = Path(weights_file).parent / "encoder" / "model.safetensors"
        key = f"g{_file_sha(Path(weights_file))}-e{_file_sha(enc) if enc.is_file() else 'none'}-{data_key[:12]}"
        self.dir = Path(root) / key
        self.dir.mkdir(parents=True, exist_ok=True)
        self.writer = writer

    def load(self, preset: str) -> dict[int, dict]:
        import json

        done = {}
        for path in sorted([*self.dir.glob(f"{preset}.jsonl"), *self.dir.glob(f"{preset}.*.jsonl")]):
            for line in path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:  # a line cut short by a kill: that photo is simply redone
                    continue
                done[rec["index"]] = rec
        return done

    def add(self, preset: str, rec: dict) -> None:
        import json

        name = f"{preset}.{self.writer}.jsonl" if self.writer else f"{preset}.jsonl"
        with open(self.dir / name, "a") as f:
            f.write(json.dumps(rec) + "\n")


def new_data(a, n: int, presets: list[str], n_slow: int, cache_dir: Path | None, seed: int = 0,
             shard: tuple[int, int] | None = None) -> None:
    """shard (k, m): project only the photos at positions i with i % m == k (the others are taken from
    the cache when there, else left out of this run's figures); run m such processes at once on a
    shared --cache, then once without --shard to report all photos."""
    from birdanim.models.features import load_efficientnet_lite
    from birdanim.engines.gan.projector import projection
    from train.metrics.evaluate import embed, frechet_distance, real_test_images, stats

    print("\n== 4. projection of unseen test photos (FD in Lite2 pooled features, recon vs the same photos) ==")
    try:
        images, data_key = real_test_images(resolution=a.G.img_resolution)
    except FileNotFoundError as e:
        row("skipped", str(e))
        return
    pick = np.sort(np.random.RandomState(seed).choice(len(images), size=min(n, len(images)), replace=False))
    photos = images[torch.from_numpy(pick)]  # uint8 [n, 3, R, R]
    lite2 = load_efficientnet_lite(2, a.device)
    real = embed(lite2, photos)
    writer = f"shard{shard[0]}of{shard[1]}" if shard else ""
    cache = PhotoCache(cache_dir, a.weights_file, data_key, writer) if cache_dir is not None else None
    if cache is not None:
        row("per-photo cache", str(cache.dir))
    feats = {}
    for preset in presets:
        m = n if preset == "fast" else min(n, n_slow)  # balanced / best cost ~10-30x more per photo
        done = cache.load(preset) if cache is not None else {}
        recs, pos = [], []  # results and their positions in `photos` (a shard leaves gaps)
        for i, img in enumerate(photos[:m]):
            idx = int(pick[i])
            if idx in done:
                recs.append(done[idx])
                pos.append(i)
                continue
            if shard is not None and i % shard[1] != shard[0]:
                continue
            t = time.perf_counter()
            target = uint8_to_float(img[None]).to(a.device)
            res = projection(a.G, target, quality=preset, encoder=a.encoder, features=a.features)
            with torch.no_grad():
                rec = (res.G_tuned or a.G).synthesis(res.ws, noise_mode="const").cpu()
            seconds = time.perf_counter() - t
            rec_u8 = tensor_to_uint8(rec)[0]
            recs.append({
                "index": idx, "seconds": seconds, "start": res.start,
                "psnr": psnr(rec_u8, img.permute(1, 2, 0).numpy()),
                "feat": embed(lite2, rec)[0].tolist(), "threads": torch.get_num_threads(),
                "load1": os.getloadavg()[0],
            })
            pos.append(i)
            if cache is not None:
                cache.add(preset, recs[-1])
        feats[preset] = dict(zip(pos, np.array([r["feat"] for r in recs], dtype=np.float64)))
        if len(recs) < m:
            row(f"{preset}: photos with results", f"{len(recs)} of {m} (this shard's share; rerun without --shard when all are done)")
            m = len(recs)
        fd = frechet_distance(*stats(np.stack(list(feats[preset].values()))), *stats(real[pos])) if m >= 2 else float("nan")
        secs = np.array([r["seconds"] for r in recs])
        starts = [r["start"] for r in recs].count("encoder")
        row(f"{preset} (n={m}): FD / mean PSNR / s per photo (median, mean)",
            f"{fd:8.2f} / {np.mean([r['psnr'] for r in recs]):5.2f} dB / {np.median(secs):6.2f}, {secs.mean():6.2f} s"
            f"  (encoder start kept {starts}/{m}; {m - sum(int(r['index']) in done for r in recs)} projected now)")
    common = sorted(set.intersection(*(set(f) for f in feats.values()))) if feats else []
    if len(feats) > 1 and len(common) >= 2:  # FD depends strongly on n: compare the presets on the same photos
        cells = ", ".join(f"{k} {frechet_distance(*stats(np.stack([f[i] for i in common])), *stats(real[common])):.2f}" for k, f in feats.items())
        row(f"same {len(common)} photos: FD", cells)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default=str(WEIGHTS), help="generator weights folder")
    p.add_argument("--poses", default=None, help="target poses (default assets/target_poses)")
    p.add_argument("--photo", default=str(DEFAULT_PHOTO), help="the photo to animate")
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--quality", default="fast")
    p.add_argument("--ref-steps", type=int, default=3, help="steps of the reference recipe to time")
    p.add_argument("--n", type=int, default=200, help="test photos per preset in section 4 (0: skip)")
    p.add_argument("--n-slow", type=int, default=20, help="test photos for the balanced and best presets")
    p.add_argument("--presets", default="fast,balanced,best", help="presets for section 4")
    p.add_argument("--detect-every", type=int, default=5, help="run the detector on every k-th frame")
    p.add_argument("--only-new-data", action="store_true", help="run section 4 only")
    p.add_argument("--random-g", action="store_true", help="use an UNTRAINED default-config G (timings only)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--shard", default=None, metavar="K/M", help="section 4: project only photo positions i %% M == K "
                   "(run M processes on one --cache, then once without --shard for the figures)")
    p.add_argument("--cache", type=Path, default=None, metavar="DIR",
                   help="keep section 4's per-photo results here and reuse them (stop and resume long runs), "
                        "e.g. ~/.cache/birdanim/bench-newdata")
    args = p.parse_args(argv)

    threads = set_cpu_threads(args.threads)
    from birdanim.service import Animator

    tmp = Path(tempfile.mkdtemp(prefix="bench-animate-"))
    weights, poses = args.weights, args.poses
    if args.random_g:
        weights = make_random_weights(tmp / "random_g")
        poses = str(Path(weights) / "poses")
        print("NOTE: untrained generator: timings are real, quality figures are meaningless")
    elif not (Path(weights) / "model.safetensors").is_file():
        print(f"skipped: no generator in {weights} (export weights first, or pass --random-g for timings)")
        return 0
    if not Path(args.photo).is_file():
        print(f"skipped: photo {args.photo} not found (../shared missing?)")
        return 0
    print(f"torch {torch.__version__}, {threads} threads, weights {weights}")
    t = time.perf_counter()
    a = Animator(weights=weights, poses_dir=poses)
    row("load models", f"{time.perf_counter() - t:6.2f}", "s")
    t = time.perf_counter()
    a.warmup()
    row("warm-up", f"{time.perf_counter() - t:6.2f}", "s")
    row("encoder", "yes" if a.encoder is not None else "no (projection starts from w_avg)")
    row("detector", a.detector.source if a.detector is not None else f"none ({a.detector_error})")
    if not args.only_new_data:
        _, res = end_to_end(a, Path(args.photo), args.frames, args.quality, tmp / "video")
        reference_recipe(a, res.crop, args.ref_steps, res.timings["project"])
        quality_figures(a, res, args.detect_every)
    if args.n > 0:
        shard = tuple(int(x) for x in args.shard.split("/")) if args.shard else None
        if shard is not None and (args.cache is None or not 0 <= shard[0] < shard[1]):
            p.error("--shard K/M needs 0 <= K < M and a --cache shared by the shards")
        new_data(a, args.n, [s for s in args.presets.split(",") if s], args.n_slow, args.cache, shard=shard)
    return 0


if __name__ == "__main__":
    sys.exit(main())
