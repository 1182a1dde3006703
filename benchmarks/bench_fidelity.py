"""Fidelity benchmark: does each animation mode keep *the user's* bird, make it fly, and move it?

    python benchmarks/bench_fidelity.py                          # both modes, 48 test photos, 300 frames
    python -m benchmarks.bench_fidelity --modes gan --n 6 --frames 60    # a quick check
    python benchmarks/bench_fidelity.py --json out/fidelity/results.json

Engine-agnostic: each mode runs in its own fresh process (`--worker`), which loads the service
(`birdanim.service.Animator`), animates every photo and writes the MP4s, its seconds per photo and its
peak memory (ru_maxrss of that process: the honest per-mode peak, models included). This process then
reads the MP4s and measures (see birdanim/metrics/fidelity.py for the exact definitions and crops):

- identity: mean over frames of the Lite2 cosine between the bird crop of each frame and of the input,
  printed beside its scale measured in the same run: the mean cosine between two test photos of the
  same CUB species, of different species, and of a perched photo and one of its species in flight
  (--pairs random pairs each);
- flight: mean over frames of P(flight) of the shipped probe (assets/probes/flight_lite2, made by
  `python -m train.tools.train_flight_probe`; its test accuracy and its mean P on the real test photos
  in flight and perched are recomputed and printed), on the bird crop of each frame; frames without a
  detected bird count 0 (printed: also the mean over frames with a bird);
- bird-detect: share of frames where YOLOv8n finds a bird (conf >= 0.25);
- motion: std over frames of the bird box's aspect ratio and of its area / mean area;
- seconds per photo end to end from a loaded service (mean, max), loading apart, and peak memory.

Photos: --n from the test splits (seed --seed): a quarter CUB crops labelled flying, a quarter Kaggle
(CC0) photos, the rest CUB crops labelled perched; one per species where possible. The 256x256 crops are
used as the user's photos. --sample-frames frames per video, evenly spread, are measured.

Writes contact sheets (input, then 8 frames evenly over the video; a row per photo, 12 rows a sheet)
to out/fidelity/<mode>-sheet-N.jpg, a 6-row docs/fidelity-<mode>.jpg for the README (Kaggle CC0 photos
only when the selection has 6 of them: CUB crops must not be committed), and --json. Lite2 features of
the scale photos are cached in ~/.cache/birdanim/fidelity.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from birdanim.paths import ASSETS, REPO_ROOT, shared_detector

MODES = ("rig", "gan")
PROBE = ASSETS / "probes" / "flight_lite2"
OUT = REPO_ROOT / "out" / "fidelity"
SHEET_ROWS, SHEET_FRAMES, DOCS_ROWS = 12, 8, 6


# ---------------------------------------------------------------- the photos


def select_photos(n: int, seed: int = 0):
    """n test photos: n/4 CUB flying, n/4 Kaggle, the rest CUB perched; interleaved so any first rows mix them."""
    from birdanim.metrics.photos import read_meta

    test = read_meta("test")
    groups = {
        "flying": [p for p in test if p.dataset == "CUB" and p.pose == "flying"],
        "kaggle": [p for p in test if p.dataset == "Kaggle"],
        "perched": [p for p in test if p.dataset == "CUB" and p.pose == "perched"],
    }
    want = {"flying": round(n / 4), "kaggle": n // 4}
    want["perched"] = n - want["flying"] - want["kaggle"]
    rng = random.Random(seed)
    picked = {}
    for name, pool in groups.items():
        pool = sorted(pool, key=lambda p: p.file)
        rng.shuffle(pool)
        out, seen = [], set()
        for p in pool:  # one per species first, then the rest
            if p.species not in seen and len(out) < want[name]:
                out.append(p)
                seen.add(p.species)
        out += [p for p in pool if p not in out][: want[name] - len(out)]
        picked[name] = out
    order = []
    for i in range(n):  # flying, perched, kaggle, perched, ... (the groups' shares)
        for name in ("flying", "perched", "kaggle", "perched"):
            if picked[name]:
                order.append(picked[name].pop(0))
    return order[:n]


def extract_photos(photos, folder: Path) -> list[Path]:
    """Write each photo's JPEG bytes as they are in its zip to folder/<file>."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for p in photos:
        with zipfile.ZipFile(p.zip_path) as z:
            member = next(m for m in z.namelist() if Path(m).name == p.file)
            (folder / p.file).write_bytes(z.read(member))
        paths.append(folder / p.file)
    return paths


# ---------------------------------------------------------------- the worker: one mode in a fresh process


def call_animate(a, photo, mode: str, frames: int, scene: str, out_dir: Path, extra: dict | None = None):
    """The one adapter to the service's animate(): the options form when the service has it, else the
    older keyword form (GAN only)."""
    params = [p for p in inspect.signature(a.animate).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(params) >= 2:  # animate(photo, options, ...)
        from birdanim.options import AnimateOptions

        return a.animate(photo, AnimateOptions(mode=mode, frames=frames, scene=scene, **(extra or {})), out_dir=out_dir)
    if mode != "gan":
        raise SystemExit(f"this service's animate() has no mode {mode!r} yet (no animate(photo, options))")
    if scene not in ("photo", "crop"):
        raise SystemExit(f"this service's animate() has no scene {scene!r} (photo or crop only)")
    return a.animate(photo, frames=frames, in_scene=scene == "photo", out_dir=out_dir)


def worker(mode: str, photo_paths: list[Path], frames: int, scene: str, videos: Path, result: Path,
           extra: dict | None = None) -> int:
    from birdanim.device import set_cpu_threads
    from birdanim.service import Animator

    set_cpu_threads(int(os.environ.get("BIRDANIM_THREADS", 0)) or None)
    t0 = time.perf_counter()
    a = Animator()
    load_s = time.perf_counter() - t0
    t = time.perf_counter()
    if hasattr(a, "warmup"):
        a.warmup()
    warm_s = time.perf_counter() - t
    recs = []
    for i, path in enumerate(photo_paths):
        out_dir = videos / mode / path.stem
        t = time.perf_counter()
        photo = a.load_photo(path)
        res = call_animate(a, photo, mode, frames, scene, out_dir, extra)
        wall = time.perf_counter() - t
        recs.append({"file": path.name, "seconds": wall, "total": float(res.timings.get("total", wall)),
                     "timings": {k: float(v) for k, v in res.timings.items()}, "mp4": str(res.mp4_path),
                     "notes": list(getattr(res, "notes", []))})
        print(f"  [{mode}] {i + 1}/{len(photo_paths)} {path.name}: {wall:.1f} s", flush=True)
    rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    # The largest child's peak: an upper bound only, since a forked child counts the parent's pages it
    # shared before exec (measured ~1 GB here while ffmpeg itself is far smaller); kept in the json.
    rss_child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result.write_text(json.dumps({"mode": mode, "load_s": load_s, "warmup_s": warm_s, "photos": recs,
                                  "peak_rss_mb": rss_self, "peak_child_rss_mb": rss_child}, indent=1))
    return 0


def mode_options(args, mode: str) -> list[str]:
    """The KEY=VALUE options given for one mode (--gan-options / --rig-options)."""
    return getattr(args, f"{mode}_options") or []


def run_mode(mode: str, photo_paths: list[Path], args, videos: Path, tmp: Path) -> dict:
    result = tmp / f"worker-{mode}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", mode, "--frames", str(args.frames),
           "--scene", args.scene, "--videos", str(videos), "--result", str(result), "--photos", *map(str, photo_paths),
           *(["--options", *opts] if (opts := mode_options(args, mode)) else [])]
    print(f"[{mode}] animating {len(photo_paths)} photos in a fresh process ...", flush=True)
    subprocess.run(cmd, check=True, cwd=REPO_ROOT)
    return json.loads(result.read_text())


# ---------------------------------------------------------------- measuring


class Judge:
    """The metrics' models, loaded once: Lite2, the detector and the flight probe."""

    def __init__(self, probe_path: Path = PROBE):
        from birdanim.metrics.fidelity import FlightProbe, load_lite2
        from birdanim.stages.detect import BirdDetector

        if not probe_path.with_suffix(".safetensors").is_file():
            raise SystemExit(f"no flight probe at {probe_path}.safetensors: run python -m train.tools.train_flight_probe")
        self.probe = FlightProbe.load(probe_path)
        self.net = load_lite2()
        det = shared_detector()
        self.detector = BirdDetector(str(det) if det.exists() else "auto")

    def video(self, photo: np.ndarray, mp4: Path, k: int) -> dict:
        from birdanim.metrics.fidelity import (bird_crop, count_frames, embed, identity, largest_bird, motion,
                                               read_frames, sample_indices)

        pbox = largest_bird(self.detector, photo)
        pfeat = embed(self.net, [bird_crop(photo, pbox)])[0]
        n = count_frames(mp4)
        frames, _ = read_frames(mp4, sample_indices(n, k))
        boxes = [largest_bird(self.detector, f) for f in frames]
        feats = embed(self.net, np.stack([bird_crop(f, b) for f, b in zip(frames, boxes)]))
        has = np.array([b is not None for b in boxes])
        p = self.probe.proba(feats)
        sheet_idx = sample_indices(len(frames), SHEET_FRAMES)
        return {
            "identity": identity(feats, pfeat),
            "flight": float(np.where(has, p, 0.0).mean()),
            "flight_with_bird": float(p[has].mean()) if has.any() else float("nan"),
            "bird_detect": float(has.mean()),
            **motion(boxes),
            "input_bird_found": pbox is not None,
            "input_flight": float(self.probe.proba(pfeat)[0]),
            "frames_in_video": n, "frames_measured": len(frames), "frame_size": list(frames.shape[1:3]),
            "_sheet": [photo] + [frames[i] for i in sheet_idx],
        }


def scale(judge: Judge, n_pairs: int, seed: int) -> dict:
    """Mean Lite2 cosine of n_pairs random pairs of CUB test photos of the same species, of different species,
    and of a perched photo and a photo of its species in flight (among the photos with a pose label)."""
    from birdanim.metrics.fidelity import pair_cosine, pose_pairs, scale_pairs
    from birdanim.metrics.photos import cached_features, read_meta

    cub = [p for p in read_meta("test") if p.dataset == "CUB"]
    same, diff = scale_pairs([p.species for p in cub], n_pairs, seed)
    # a perched photo against a photo of its species in flight, among the photos with a pose label
    posed = [i for i, p in enumerate(cub) if p.pose in ("flying", "perched")]
    flight = np.array(posed)[pose_pairs([cub[i].species for i in posed], [cub[i].pose == "flying" for i in posed],
                                        n_pairs, seed)]
    used = np.unique(np.concatenate([same.ravel(), diff.ravel(), flight.ravel()]))
    feats = np.zeros((len(cub), 1280), np.float32)
    feats[used] = cached_features([cub[i] for i in used], lambda: judge.net)
    return {"same_species": pair_cosine(feats, same), "different_species": pair_cosine(feats, diff),
            "same_species_perched_to_flying": pair_cosine(feats, flight),
            "pairs": n_pairs, "photos": int(len(used)), "from": f"{len(cub)} CUB test photos"}


def probe_accuracy(judge: Judge) -> dict:
    from birdanim.metrics.fidelity import classification_report
    from birdanim.metrics.photos import cached_features, labelled

    test, _ = labelled("test")
    used = set(judge.probe.info.get("test", {}).get("files", []))  # the photos the probe's json reports on
    test = [p for p in test if p.file in used] if used else test
    X = cached_features(test, lambda: judge.net)
    return classification_report(judge.probe.proba(X), np.array([p.pose == "flying" for p in test]))


# ---------------------------------------------------------------- report


def summarise(recs: list[dict], worker_out: dict) -> dict:
    def col(k, sub=None):
        v = np.array([r[k] for r in (sub if sub is not None else recs)], np.float64)
        return v[~np.isnan(v)]

    secs = np.array([p["seconds"] for p in worker_out["photos"]])
    s = {k: float(col(k).mean()) if len(col(k)) else float("nan")
         for k in ("identity", "flight", "flight_with_bird", "bird_detect", "aspect_std", "area_std", "input_flight")}
    s.update(identity_sd=float(col("identity").std()), identity_min=float(col("identity").min()),
             identity_max=float(col("identity").max()), seconds_mean=float(secs.mean()), seconds_max=float(secs.max()),
             load_s=worker_out["load_s"], warmup_s=worker_out["warmup_s"], peak_rss_mb=worker_out["peak_rss_mb"],
             peak_child_rss_mb=worker_out["peak_child_rss_mb"], photos=len(recs),
             motion_photos=int(sum(not np.isnan(r["aspect_std"]) for r in recs)))
    for group in ("flying", "other"):
        sub = [r for r in recs if (r["pose"] == "flying") == (group == "flying")]
        if sub:
            s[f"by_input_{group}"] = {"n": len(sub), "identity": float(col("identity", sub).mean()),
                                      "flight": float(col("flight", sub).mean()),
                                      "bird_detect": float(col("bird_detect", sub).mean())}
    return s


def print_table(mode: str, s: dict, sc: dict, args) -> None:
    print(f"\n== mode {mode}: {s['photos']} test photos, {args.frames} frames each, {args.sample_frames} measured per "
          f"video, scene {' '.join([args.scene, *mode_options(args, mode)])} ==")
    rows = [
        ("identity", f"{s['identity']:.3f}  (sd {s['identity_sd']:.3f}, min {s['identity_min']:.3f}, max "
                     f"{s['identity_max']:.3f});  scale: same species {sc['same_species']:.3f}, different species "
                     f"{sc['different_species']:.3f}, perched to in flight {sc['same_species_perched_to_flying']:.3f}"),
        ("flight", f"{s['flight']:.3f}  (frames without a bird count 0; over frames with a bird "
                   f"{s['flight_with_bird']:.3f}; the input photos themselves {s['input_flight']:.3f})"),
        ("bird-detect", f"{s['bird_detect']:.3f}"),
        ("motion", f"aspect std {s['aspect_std']:.3f}, area/mean std {s['area_std']:.3f}  "
                   f"(over {s['motion_photos']} videos with >= 2 detected frames)"),
        ("seconds", f"mean {s['seconds_mean']:.1f}, max {s['seconds_max']:.1f} per photo end to end from a loaded "
                    f"service (loading {s['load_s']:.1f} s + warm-up {s['warmup_s']:.1f} s apart)"),
        ("peak memory", f"{s['peak_rss_mb']:.0f} MB (ru_maxrss of the mode's own process, models included; "
                        "ffmpeg's own process not included)"),
    ]
    for g in ("flying", "other"):
        if f"by_input_{g}" in s:
            b = s[f"by_input_{g}"]
            rows.append((f"inputs {g}", f"n {b['n']}: identity {b['identity']:.3f}, flight {b['flight']:.3f}, "
                                        f"bird-detect {b['bird_detect']:.3f}"))
    for name, text in rows:
        print(f"  {name:<14} {text}")


def write_sheets(mode: str, rows: list[list[np.ndarray]], kaggle: list[bool], out: Path, docs: Path | None) -> list[Path]:
    from birdanim.metrics.fidelity import contact_sheet

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(0, len(rows), SHEET_ROWS):
        p = out / f"{mode}-sheet-{k // SHEET_ROWS + 1}.jpg"
        Image.fromarray(contact_sheet(rows[k : k + SHEET_ROWS], cell=128)).save(p, quality=88)
        paths.append(p)
    if docs is not None:
        cc0 = [r for r, kg in zip(rows, kaggle) if kg]
        pick = cc0[:DOCS_ROWS]
        if len(pick) < DOCS_ROWS:
            pick += [r for r, kg in zip(rows, kaggle) if not kg][: DOCS_ROWS - len(pick)]
            print(f"  note: docs/fidelity-{mode}.jpg has CUB crops (only {len(cc0)} Kaggle photos in this run): "
                  "research-only, do not commit it")
        docs.mkdir(parents=True, exist_ok=True)
        p = docs / f"fidelity-{mode}.jpg"
        Image.fromarray(contact_sheet(pick, cell=112)).save(p, quality=85)
        paths.append(p)
    return paths


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    ap.add_argument("--n", type=int, default=48, help="test photos (default %(default)s)")
    ap.add_argument("--frames", type=int, default=300, help="frames per video (default %(default)s)")
    ap.add_argument("--sample-frames", type=int, default=16, help="frames measured per video, evenly spread")
    ap.add_argument("--scene", default="photo", help="the service's scene option (default %(default)s)")
    ap.add_argument("--pairs", type=int, default=200, help="random photo pairs per scale value")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT, help="sheets and videos (default %(default)s)")
    ap.add_argument("--docs", type=Path, default=REPO_ROOT / "docs", help="where docs/fidelity-<mode>.jpg goes")
    ap.add_argument("--json", type=Path, default=None, help="write every number here, e.g. out/fidelity/results.json")
    ap.add_argument("--gan-options", nargs="*", default=None, metavar="KEY=VALUE",
                    help="GAN mode options other than the defaults, e.g. quality=balanced mixing=swap cutoff=7")
    ap.add_argument("--rig-options", nargs="*", default=None, metavar="KEY=VALUE",
                    help="rig mode options other than the defaults, e.g. background_blur=5 wings=painted")
    ap.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    ap.add_argument("--options", nargs="*", default=None, help=argparse.SUPPRESS)  # the worker's mode's
    ap.add_argument("--photos", nargs="*", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--videos", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        # strings as given: the service's AnimateOptions.checked() coerces them and names a bad one
        extra = dict(o.split("=", 1) for o in args.options or [])
        return worker(args.worker, args.photos, args.frames, args.scene, args.videos, args.result, extra)

    import torch

    torch.set_num_threads(int(os.environ.get("BIRDANIM_THREADS", 0)) or min(2, os.cpu_count() or 1))
    t_start = time.perf_counter()
    photos = select_photos(args.n, args.seed)
    print(f"{len(photos)} photos: {sum(p.pose == 'flying' for p in photos)} CUB flying, "
          f"{sum(p.dataset == 'Kaggle' for p in photos)} Kaggle, {sum(p.pose == 'perched' for p in photos)} CUB perched; "
          f"{len({p.species for p in photos})} species")
    results: dict = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
                              if k not in ("worker", "photos", "videos", "result")},
                     "photos": [p.file for p in photos], "modes": {}}
    with tempfile.TemporaryDirectory(prefix="bench-fidelity-") as tmp:
        tmp = Path(tmp)
        paths = extract_photos(photos, tmp / "photos")
        workers = {m: run_mode(m, paths, args, args.out / "videos", tmp) for m in args.modes}

        judge = Judge()
        acc = probe_accuracy(judge)
        print(f"\nflight probe ({PROBE.name}) on the test splits' labels: accuracy {acc['accuracy']:.3f}, balanced "
              f"accuracy {acc['balanced_accuracy']:.3f} (flying recall {acc['recall_flying']:.3f} of "
              f"{acc['n_flying']}, perched recall {acc['recall_perched']:.3f} of {acc['n_perched']}), AUC {acc['auc']:.3f}; "
              f"mean P(flight) of the real photos in flight {acc['mean_p_flying']:.3f}, perched {acc['mean_p_perched']:.3f}")
        sc = scale(judge, args.pairs, args.seed)
        print(f"identity scale: same CUB species {sc['same_species']:.3f}, different species "
              f"{sc['different_species']:.3f} ({sc['pairs']} random pairs each, {sc['from']}); a perched photo "
              f"against a photo of its species in flight {sc['same_species_perched_to_flying']:.3f}")
        results.update(probe_test=acc, scale=sc)
        imgs = {p.file: np.asarray(Image.open(pp).convert("RGB")) for p, pp in zip(photos, paths)}
        for mode, wo in workers.items():
            recs, rows = [], []
            for p, w in zip(photos, wo["photos"]):
                r = judge.video(imgs[p.file], Path(w["mp4"]), args.sample_frames)
                rows.append(r.pop("_sheet"))
                recs.append({"file": p.file, "species": p.species, "dataset": p.dataset, "pose": p.pose,
                             "seconds": w["seconds"], "notes": w["notes"], **r})
            s = summarise(recs, wo)
            print_table(mode, s, sc, args)
            sheets = write_sheets(mode, rows, [p.dataset == "Kaggle" for p in photos], args.out, args.docs)
            print("  sheets: " + ", ".join(str(p.relative_to(REPO_ROOT)) if p.is_relative_to(REPO_ROOT) else str(p)
                                          for p in sheets))
            results["modes"][mode] = {"summary": s, "photos": recs, "sheets": [str(p) for p in sheets]}
    if len(args.modes) > 1:
        print("\n  " + f"{'mode':<6}{'identity':>10}{'flight':>8}{'detect':>8}{'aspect sd':>10}{'s mean':>8}{'s max':>7}{'MB':>7}")
        for m in args.modes:
            s = results["modes"][m]["summary"]
            print(f"  {m:<6}{s['identity']:>10.3f}{s['flight']:>8.3f}{s['bird_detect']:>8.3f}{s['aspect_std']:>10.3f}"
                  f"{s['seconds_mean']:>8.1f}{s['seconds_max']:>7.1f}{s['peak_rss_mb']:>7.0f}")
        print(f"  scale: same species {sc['same_species']:.3f}, different species {sc['different_species']:.3f}, "
              f"perched to in flight (same species) {sc['same_species_perched_to_flying']:.3f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1, default=float))
        print(f"wrote {args.json}")
    print(f"benchmark: {time.perf_counter() - t_start:.0f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
