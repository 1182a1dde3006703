"""Metrics of a generator: Fréchet distance and KID in EfficientNet-Lite2 features, bird-detect rate,
and (when its weights are available) the standard Inception FID through a maintained library.

examples:
  python -m train.metrics.evaluate weights/ --n 2000                                # the issue-4 numbers
  python -m train.metrics.evaluate ~/.cache/birdanim/runs/00000-default --n 500     # every G_ema export of a run not yet measured
  python -m train.metrics.evaluate RUN/gema/000248448 --n 2000 --threads 1          # a closer look at one export (export.py picks it up)
  python -m train.metrics.evaluate --real-roundtrip 64 128 256                      # real photos at 64/128 px and back (for scale)
  python -m train.metrics.evaluate weights/ --n 200 --metrics fd kid                # quick, no detector
  python -m train.metrics.evaluate weights/ --n 500 --psi 0.5 0.7 1.0               # what truncation does (the app's slider)
  python -m train.metrics.evaluate weights/ --n 500 --seed0 500                     # other seeds: the metrics' sampling noise
  python -m train.metrics.evaluate weights/ --n 2000 --side 64 --real-roundtrip 256   # diagnosis: how far at 64 px only, and its floor

FD/KID: N samples at psi=1 (noise const; --psi for truncated samples, recorded as "psi") vs the union of the test splits of ../shared/data/birds256 and
birds256_more (never seen in training), both resized to 260x260 and embedded by the frozen ImageNet
EfficientNet-Lite2 (1280-d global average pool). Not the Lite0 the projected D uses: a metric in D's
own feature space would flatter the model. Real statistics are cached in ~/.cache/birdanim/stats/,
keyed by the test files and the feature net. Generated images are clipped to [-1, 1] and quantised
to uint8 first, as a user sees them and as the real photos are (records say "pixels": "uint8"; older
records without it embedded raw outputs and read 4-5 FD lower). Results are appended to a JSONL file (--out; for a run
folder or one of its exports RUN/gema/N: RUN/metrics.jsonl).

Bird-detect rate: share of samples in which YOLOv8n (../shared/models/yolov8n_int8_openvino_model or
--detector) finds a bird (COCO class 14) with confidence >= 0.25.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from birdanim.checkpoint import CheckpointError, atomic_path, load_generator, load_meta
from birdanim.device import pick_device, set_cpu_threads
from birdanim.imageops import tensor_to_uint8, uint8_to_float, uint8_to_tensor
from birdanim.models import z_from_seeds
from birdanim.paths import shared_detector
from train.loop.data import CACHE_DIR, decode_zips, default_test_zips, files_key

STATS_DIR = CACHE_DIR / "stats"
FEAT_NET = "efficientnet-lite2-260-pool1280"


# ---------------------------------------------------------------- statistics


def frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrt(S1 S2)) (Heusel et al. 2017).

    Tr(sqrt(S1 S2)) = sum of the square roots of the eigenvalues of S1 S2 (real and >= 0: S1 S2 is
    similar to the PSD S1^1/2 S2 S1^1/2): faster and steadier than a full scipy sqrtm."""
    eig = np.linalg.eigvals(s1.astype(np.float64) @ s2.astype(np.float64))
    tr_covmean = np.sqrt(np.clip(eig.real, 0, None)).sum()
    return float(np.square(mu1 - mu2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def kid(f1: np.ndarray, f2: np.ndarray, num_subsets: int = 100, max_subset: int = 1000, seed: int = 0) -> float:
    """Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD^2 with the cubic polynomial
    kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets (as NVlabs' metrics do)."""
    n = f1.shape[1]
    m = min(len(f1), len(f2), max_subset)
    rng = np.random.RandomState(seed)
    t = 0.0
    for _ in range(num_subsets):
        x = f1[rng.choice(len(f1), m, replace=False)].astype(np.float64)
        y = f2[rng.choice(len(f2), m, replace=False)].astype(np.float64)
        a = (x @ x.T / n + 1) ** 3 + (y @ y.T / n + 1) ** 3
        b = (x @ y.T / n + 1) ** 3
        t += (a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m
    return float(t / num_subsets / m)


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3, max_n: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) in feature space: a point is covered by
    a set when it lies inside the ball around one of the set's points whose radius is that point's
    distance to its k-th nearest neighbour in the set. precision = share of fakes covered by the reals
    (how real the samples look); recall = share of reals covered by the fakes (how much of the data the
    generator covers: low when it collapses onto a few modes). Both sets are cut to the same size n
    (at most max_n, random subsets), since the radii shrink as n grows."""
    import torch

    n = min(len(real), len(fake), max_n)
    rng = np.random.RandomState(seed)
    r = torch.from_numpy(real[rng.choice(len(real), n, replace=False)]).float()
    f = torch.from_numpy(fake[rng.choice(len(fake), n, replace=False)]).float()

    def radii(x):  # distance to the k-th nearest other point (column 0 of the sorted row is the point itself)
        return torch.cdist(x, x).kthvalue(k + 1, dim=1).values

    d_fr = torch.cdist(f, r)  # [n fakes, n reals]
    precision = (d_fr <= radii(r)[None, :]).any(dim=1).float().mean()
    recall = (d_fr.T <= radii(f)[None, :]).any(dim=1).float().mean()
    return float(precision), float(recall)


def stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return feats.mean(0), np.cov(feats, rowvar=False)


# ---------------------------------------------------------------- features


PIXELS = "uint8"  # how generated images reach the feature network (see embed); recorded with every result


def embed(net, images: torch.Tensor, batch: int = 32, desc: str | None = None) -> np.ndarray:
    """uint8 or float [-1, 1] images [N, 3, H, W] -> [N, 1280] Lite2 pooled features.

    Float images (a generator's output) are first turned into the uint8 pixels a user would see:
    clipped to [-1, 1] and quantised, exactly as the real photos are. (Until 2026-12-01 they were
    embedded raw; ~3% of the shipped generator's pixel values lie outside [-1, 1] and that gave it an
    FD of 80.4 where its visible images score 85.0.)"""
    from tqdm import tqdm

    out = []
    with torch.no_grad():
        for i in tqdm(range(0, len(images), batch), desc=desc, disable=desc is None, mininterval=30, unit="batch"):
            x = images[i : i + batch]
            x = uint8_to_float(x) if x.dtype == torch.uint8 else uint8_to_tensor(tensor_to_uint8(x), x.device)
            out.append(net.pooled(x).cpu().numpy())
    return np.concatenate(out)


def roundtrip(images: torch.Tensor, side: int, chunk: int = 64) -> torch.Tensor:
    """uint8 [N, 3, R, R] -> reduced to side x side (antialiased) and back up to R (bicubic), uint8.

    In chunks: the 4,144 test photos as float at 256 px would take 3.3 GB per copy (one such
    evaluation beside two batch-64 trainings ran this machine out of memory)."""
    r = images.shape[-1]
    out = torch.empty_like(images)
    for i in range(0, len(images), chunk):
        x = images[i : i + chunk].float()
        x = F.interpolate(x, size=(side, side), mode="bilinear", antialias=True, align_corners=False)
        x = F.interpolate(x, size=(r, r), mode="bicubic", align_corners=False)
        out[i : i + chunk] = x.round().clamp(0, 255).to(torch.uint8)
    return out


def real_test_images(zips=None, resolution: int = 256) -> tuple[torch.Tensor, str]:
    zips = [Path(p) for p in (zips or default_test_zips())]
    missing = [str(p) for p in zips if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"test zips not found: {missing}")
    arr = decode_zips(zips, resolution)
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous(), files_key(zips, resolution)


def real_features(net, zips=None, resolution: int = 256, roundtrip_side: int | None = None) -> np.ndarray:
    """Lite2 features of the real test images (optionally after a down/up round trip), cached as .npz."""
    zips = [Path(p) for p in (zips or default_test_zips())]
    key = hashlib.sha256(f"{files_key(zips, resolution)}|{FEAT_NET}|rt{roundtrip_side}".encode()).hexdigest()[:16]
    path = STATS_DIR / f"real-{key}.npz"
    if path.is_file():
        return np.load(path)["feats"]
    images, _ = real_test_images(zips, resolution)
    if roundtrip_side:
        images = roundtrip(images, roundtrip_side)
    feats = embed(net, images, desc=f"real test features{f' at {roundtrip_side} px' if roundtrip_side else ''}")
    STATS_DIR.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        np.savez(tmp, feats=feats, zips=np.array([str(p) for p in zips]), roundtrip=roundtrip_side or 0)
    return feats


def generate(G, n: int, batch: int, device, seed0: int = 0, psi: float = 1.0):
    """Yields float [-1, 1] batches of n samples at truncation psi (1: none), noise const, seeds seed0..seed0+n-1."""
    for i in range(0, n, batch):
        z = z_from_seeds(range(seed0 + i, seed0 + min(n, i + batch)), G.z_dim, device)
        with torch.no_grad():
            yield G(z) if not hasattr(G, "mapping") else G(z, psi=psi, noise_mode="const")


# ---------------------------------------------------------------- detector


def load_bird_detector(path: str | Path | None = None, conf: float = 0.25):
    """The project's YOLOv8 bird detector (birdanim.stages.detect; ultralytics is imported there, lazily).
    DetectorUnavailableError with a clear message if none loads."""
    from birdanim.stages.detect import BirdDetector

    return BirdDetector(str(path) if path else str(shared_detector()), min_conf=conf)


def has_bird(detector, images_uint8: np.ndarray) -> np.ndarray:
    """[N] bool: at least one bird (COCO class 14, confidence >= the detector's min_conf) in each
    uint8 [N, H, W, 3] RGB image."""
    from PIL import Image

    return np.array([len(detector(Image.fromarray(np.ascontiguousarray(im)))) > 0 for im in images_uint8])


# ---------------------------------------------------------------- evaluation


def evaluate_generator(G, n: int, metrics: list[str], device, lite2=None, detector=None, batch: int = 16,
                       psi: float = 1.0, seed0: int = 0, side: int | None = None) -> dict:
    """The metrics of `G` on n samples (seeds seed0..seed0+n-1) at truncation psi.

    side: compare at that scale only: the samples and the test photos both reduced to side x side
    and back (`roundtrip`) before the features and the detector see them. Which scales a generator
    is far from the photos at (layout and colour at 32-64 px, or detail above) is a diagnosis the
    full-resolution numbers cannot give."""
    t0 = time.time()
    feats, birds = [], []
    need_feats = any(m in metrics for m in ("fd", "kid", "pr"))
    if need_feats and lite2 is None:
        from birdanim.models.features import load_efficientnet_lite

        lite2 = load_efficientnet_lite(2, device)
    if psi != 1.0 and not hasattr(G, "mapping"):
        raise ValueError("truncation (psi) needs a generator with a mapping network")
    for x in generate(G, n, batch, device, seed0, psi):
        u8 = tensor_to_uint8(x)  # what a user sees; both the features and the detector take it
        if side:
            u8 = roundtrip(torch.from_numpy(u8).permute(0, 3, 1, 2), side).permute(0, 2, 3, 1).numpy()
        if need_feats:
            feats.append(embed(lite2, torch.from_numpy(u8).permute(0, 3, 1, 2)))
        if detector is not None and "detect" in metrics:
            birds.append(has_bird(detector, u8))
    out = {"n": n, "pixels": PIXELS, **({"psi": psi} if psi != 1.0 else {}), **({"seed0": seed0} if seed0 else {}),
           **({"side": side} if side else {})}
    if need_feats:
        fg = np.concatenate(feats)
        fr = real_features(lite2, roundtrip_side=side)
        if "fd" in metrics:
            out["fd_lite2"] = frechet_distance(*stats(fg), *stats(fr))
        if "kid" in metrics:
            out["kid_lite2"] = kid(fg, fr, num_subsets=100, max_subset=min(1000, n))
        if "pr" in metrics:
            out["precision_lite2"], out["recall_lite2"] = precision_recall(fr, fg)
    if birds:
        out["bird_detect"] = float(np.concatenate(birds).mean())
    out["eval_seconds"] = time.time() - t0
    return out


def inception_fid(G, n: int, device, weights: str | None) -> float:
    """Standard FID through torchmetrics (torch-fidelity's Inception), if installed and its weights load."""
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance
    except ImportError as e:
        raise RuntimeError("standard FID needs torchmetrics[image] (not installed here; offline FD/KID in Lite2 features are reported instead)") from e
    try:
        fid = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=weights).to(device)
    except Exception as e:  # offline without a local weights file
        raise RuntimeError(f"Inception weights unavailable ({type(e).__name__}: {e}); pass --inception-weights PATH") from e
    images, _ = real_test_images()
    for i in range(0, len(images), 64):
        fid.update(images[i : i + 64].to(device), real=True)
    for x in generate(G, n, 16, device):
        fid.update(torch.from_numpy(tensor_to_uint8(x)).permute(0, 3, 1, 2).to(device), real=False)
    return float(fid.compute())


def roundtrip_metrics(sides: list[int], lite2, detector, n: int, at_side: int | None = None) -> list[dict]:
    """The same metrics for n real *training* photos (distinct from the test set, like generated
    samples) reduced to `side` px and back, against the test set: a scale for the generator's numbers.
    Side 256 (no reduction) gives the floor that n real samples reach. at_side: against the test set
    reduced to that side and back, the photos reduced to min(side, at_side) (the floor of `--side`)."""
    from train.loop.data import default_train_zips

    arr = decode_zips(default_train_zips(), 256)
    idx = np.random.RandomState(0).choice(len(arr), min(n, len(arr)), replace=False)
    images = torch.from_numpy(arr[np.sort(idx)]).permute(0, 3, 1, 2).contiguous()
    del arr
    fr = real_features(lite2, roundtrip_side=at_side)
    out = []
    for side in sides:
        side = min(side, at_side or side)
        x = images if side >= images.shape[-1] else roundtrip(images, side)
        f = embed(lite2, x, desc=f"train photos at {side} px")
        rec = {"what": f"real train photos at {side} px and back", "n": len(f), "fd_lite2": frechet_distance(*stats(f), *stats(fr)),
               **({"side": at_side} if at_side else {})}
        rec["kid_lite2"] = kid(f, fr, num_subsets=100, max_subset=min(1000, len(f)))
        rec["precision_lite2"], rec["recall_lite2"] = precision_recall(fr, f)
        if detector is not None:
            rec["bird_detect"] = float(has_bird(detector, x.permute(0, 2, 3, 1).numpy()).mean())
        out.append(rec)
    return out


def load_any_generator(path: Path, device):
    """A weights folder (config.json + model.safetensors) or a training snapshot folder (G_ema)."""
    if (path / "model.safetensors").is_file():
        return load_generator(path, device), load_meta(path)
    from train.loop.networks import build_generator
    from train.loop.presets import TrainConfig
    from train.loop.snapshot import load_snapshot, module_state

    tensors, state = load_snapshot(path)
    G = build_generator(TrainConfig.from_dict(state["config"]))
    G.load_state_dict(module_state(tensors, "G_ema"))
    return G.to(device).eval().requires_grad_(False), {"images_seen": state["images_seen"], "cpu_hours": state["cpu_seconds"] / 3600}


def is_run_dir(src: Path) -> bool:
    """A training run folder (config.json, G_ema exports under gema/ once it has snapshotted), not a
    weights or snapshot folder."""
    return (src / "gema").is_dir() or ((src / "config.json").is_file() and not (src / "state.json").is_file()
                                       and not (src / "model.safetensors").is_file())


def run_metrics_file(src: Path) -> Path | None:
    """The metrics file of the run that `src` belongs to: RUN/metrics.jsonl for a run folder and for
    one of its G_ema exports (RUN/gema/N), where plot.py and pending_exports look; else None."""
    if is_run_dir(src):
        return src / "metrics.jsonl"
    if src.parent.name == "gema" and (src.parent.parent / "config.json").is_file():
        return src.parent.parent / "metrics.jsonl"
    return None


def pending_exports(run_dir: Path, out: Path, every: int, n: int) -> list[Path]:
    """G_ema exports of a run not yet measured at n samples in its metrics file (every `every`-th, plus the
    newest): an export measured at n = 2,000 by hand is still due for the loop's n = 500, and the other way round."""
    done = set()
    if out.is_file():
        recs = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
        done = {r.get("source") for r in recs if r.get("n") == n}
    exports = sorted((run_dir / "gema").glob("[0-9]*"))
    chosen = exports[::every] + exports[-1:]
    return [p for p in dict.fromkeys(chosen) if str(p) not in done]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="birdanim metrics", description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n", 2)[2], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", nargs="?", type=Path, help="weights folder, snapshot folder, or run folder (all its gema/ exports)")
    ap.add_argument("--n", type=int, default=2000, help="generated samples")
    ap.add_argument("--metrics", nargs="+", default=["fd", "kid", "pr", "detect"], choices=["fd", "kid", "pr", "detect", "fid"],
                    help="pr: precision and recall (k = 3 nearest neighbours) in Lite2 features")
    ap.add_argument("--out", type=Path, default=None, help="JSONL to append to (default: RUN/metrics.jsonl for a run folder or RUN/gema/N, else ~/.cache/birdanim/metrics.jsonl)")
    ap.add_argument("--every", type=int, default=1, help="run folder: evaluate every k-th export (and the newest)")
    ap.add_argument("--real-roundtrip", type=int, nargs="*", default=None, metavar="SIDE", help="also measure real test photos at SIDE px and back")
    ap.add_argument("--detector", default=None, help=f"YOLO weights (default {shared_detector()})")
    ap.add_argument("--inception-weights", default=None, help="local Inception weights for the standard FID (--metrics fid)")
    ap.add_argument("--psi", type=float, nargs="+", default=[1.0],
                    help="truncation of the samples, one record each (the quality bar is at 1; records at psi != 1 go "
                         "to ~/.cache/birdanim/metrics.jsonl unless --out, so they stay out of a run's curve)")
    ap.add_argument("--seed0", type=int, default=0,
                    help="first seed (samples are seeds seed0..seed0+n-1); another seed0 measures the metrics' sampling "
                         "noise (records at seed0 != 0 go to ~/.cache/birdanim/metrics.jsonl unless --out)")
    ap.add_argument("--side", type=int, default=None, metavar="S",
                    help="diagnosis: compare at S px only (samples, train photos and test photos all reduced to S px and "
                         "back); recorded as \"side\", kept out of a run's curve like --psi")
    ap.add_argument("--device", default=None)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    if args.source is None and not args.real_roundtrip:
        ap.error("give a SOURCE to evaluate and/or --real-roundtrip")
    if any(not 0.0 <= p <= 2.0 for p in args.psi):
        ap.error("--psi: each value must be in [0, 2]")
    if args.side is not None and not 8 <= args.side < 256:
        ap.error("--side: must be in [8, 255] (no --side is the comparison at 256 px)")
    nonstandard = args.psi != [1.0] or args.seed0 != 0 or args.side is not None  # not the standard metric: kept out of a run's curve
    out, sources = args.out, []
    if args.source is not None:
        src = args.source.expanduser()
        if nonstandard and is_run_dir(src):
            ap.error("--psi other than 1, --seed0 or --side: give one export (RUN/gema/N) or a weights folder, not a run folder")
        out = out or (None if nonstandard else run_metrics_file(src))
        sources = pending_exports(src, out, args.every, args.n) if is_run_dir(src) else [src]
        if not sources and not args.real_roundtrip:  # checked before loading any network (a watch loop calls this often)
            print(f"{src}: no G_ema export to measure (all measured, or none written yet)", flush=True)
            return 0
    set_cpu_threads(args.threads)
    device = pick_device(args.device)
    from birdanim.errors import DetectorUnavailableError
    from birdanim.models.features import load_efficientnet_lite

    lite2 = load_efficientnet_lite(2, device)
    detector = None
    if "detect" in args.metrics:
        try:
            detector = load_bird_detector(args.detector)
        except DetectorUnavailableError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    records = []
    if args.real_roundtrip:
        records += roundtrip_metrics(args.real_roundtrip, lite2, detector, args.n, args.side)
    if sources:
        for s in sources:
            try:
                G, meta = load_any_generator(s, device)
            except CheckpointError as e:
                print(f"error: {e}", file=sys.stderr)
                return 2
            for psi in args.psi:
                rec = {"source": str(s), "kimg": meta.get("images_seen", 0) / 1000, "cpu_hours": meta.get("cpu_hours")}
                try:
                    rec.update(evaluate_generator(G, args.n, args.metrics, device, lite2, detector, psi=psi, seed0=args.seed0, side=args.side))
                except ValueError as e:
                    print(f"error: {s}: {e}", file=sys.stderr)
                    return 2
                if "fid" in args.metrics and psi == 1.0:
                    try:
                        rec["fid_inception"] = inception_fid(G, args.n, device, args.inception_weights)
                    except RuntimeError as e:
                        print(f"note: standard FID skipped: {e}", file=sys.stderr)
                records.append(rec)
                _append(out or CACHE_DIR / "metrics.jsonl", rec)
                print(json.dumps(rec), flush=True)
    if args.real_roundtrip:
        for r in records[: len(args.real_roundtrip)]:
            _append(out or CACHE_DIR / "metrics.jsonl", {**r, "time": time.time()})
            print(json.dumps(r), flush=True)
    return 0


def _append(path: Path, rec: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps({**rec, "time": rec.get("time", time.time())}) + "\n")


if __name__ == "__main__":
    sys.exit(main())
