"""Small sweeps of the GAN mode's settings, in one process: projection (pivotal tuning) and mixing.

    python -m benchmarks.sweep_gan project --n 8                  # PTI variants: PSNR, Lite0 distance, identity, s
    python -m benchmarks.sweep_gan mix --n 12 --frames 5         # swap cutoffs 2..10 vs offsets: identity, flight
    python -m benchmarks.sweep_gan poses                          # the flight probe on each target pose's render

Cheaper than benchmarks/bench_fidelity.py (no video, no encode, keyframes only) so that many settings fit
on a shared 2-core machine; the metrics are the benchmark's own (birdanim.metrics.fidelity): Lite2
identity of the detected bird's training-style crop against the photo's, and the flight probe on that
crop (0 when the detector finds no bird). The frames measured here are the *crop* renders (256 px, the
bird at the crop's scale) at the pose keyframes, not the composited video frames: numbers compare
settings with each other; the benchmark gives the product's numbers.

Photos: the benchmark's selection (`select_photos(n, seed)`), each detected and cropped by the service.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks.bench_fidelity import PROBE, extract_photos, select_photos
from birdanim.paths import REPO_ROOT

OUT = REPO_ROOT / "out" / "sweep_gan"


class Setup:
    """The service, the judge's models and the photos, loaded once."""

    def __init__(self, n: int, seed: int = 0, probe: bool = True):
        from birdanim.imageops import pil_to_tensor
        from birdanim.metrics.fidelity import FlightProbe, bird_crop, embed, largest_bird, load_lite2
        from birdanim.service import Animator

        self.a = Animator()
        self.lite2 = load_lite2()
        self.probe = FlightProbe.load(PROBE) if probe and PROBE.with_suffix(".safetensors").is_file() else None
        self.photos = []
        with tempfile.TemporaryDirectory() as tmp:
            sel = select_photos(n, seed)
            for p, path in zip(sel, extract_photos(sel, Path(tmp))):
                photo = self.a.load_photo(path)
                photo.load()
                boxes = self.a.detect(photo)
                box = boxes[0] if boxes else None
                crop = self.a.crop(photo, box)
                feat = embed(self.lite2, [bird_crop(photo, largest_bird(self.a.detector, photo))])[0]
                self.photos.append({"file": p.file, "pose": p.pose, "dataset": p.dataset, "crop": crop,
                                    "target": pil_to_tensor(crop, self.a.device), "feat": feat})

    def judge(self, frames: np.ndarray, feat: np.ndarray) -> dict:
        """identity and flight (0 without a detected bird) of uint8 frames [N, H, W, 3] against feat."""
        from birdanim.metrics.fidelity import bird_crop, cosine, embed, largest_bird

        boxes = [largest_bird(self.a.detector, f) for f in frames]
        feats = embed(self.lite2, np.stack([bird_crop(f, b) for f, b in zip(frames, boxes)]))
        has = np.array([b is not None for b in boxes])
        out = {"identity": float(cosine(feats, feat).mean()), "bird_detect": float(has.mean())}
        if self.probe is not None:
            out["flight"] = float(np.where(has, self.probe.proba(feats), 0.0).mean())
        return out


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two [-1, 1] images (peak-to-peak 2)."""
    mse = float((a.clamp(-1, 1) - b).square().mean())
    return 10 * np.log10(4.0 / max(mse, 1e-12))


PTI_VARIANTS = {
    # name: pivotal-tuning settings applied after the "fast" preset's encoder start + W+ fit (shared by all
    # variants of one photo), or a preset name (projected from scratch)
    "none": {},
    "all 10 @128 lr1e-3": dict(pti_steps=10, pti_lr=1e-3, pti_loss_res=128),
    "all 10 @128 lr3e-3": dict(pti_steps=10, pti_lr=3e-3, pti_loss_res=128),
    "all 20 @128 lr3e-3": dict(pti_steps=20, pti_lr=3e-3, pti_loss_res=128),
    "affine 20 @128 lr3e-3": dict(pti_steps=20, pti_lr=3e-3, pti_params="affine", pti_loss_res=128),
    "fine>=64 20 @128 lr3e-3": dict(pti_steps=20, pti_lr=3e-3, pti_params="fine", pti_min_res=64, pti_loss_res=128),
    "all 10 @256 lr3e-3": dict(pti_steps=10, pti_lr=3e-3, pti_loss_res=256),
    "affine 10 @128 lr3e-3": dict(pti_steps=10, pti_lr=3e-3, pti_params="affine", pti_loss_res=128),
    "affine 20 @128 synth128 lr3e-3": dict(pti_steps=20, pti_lr=3e-3, pti_params="affine", pti_loss_res=128, pti_synth_res=128),
    "affine 20 @128 lr1e-2": dict(pti_steps=20, pti_lr=1e-2, pti_params="affine", pti_loss_res=128),
    "all 10 @128 synth128 lr3e-3": dict(pti_steps=10, pti_lr=3e-3, pti_loss_res=128, pti_synth_res=128),
    "all 20 @128 synth128 lr3e-3": dict(pti_steps=20, pti_lr=3e-3, pti_loss_res=128, pti_synth_res=128),
}


def config_of(spec):
    from birdanim.engines.gan.projector import PRESETS

    return PRESETS[spec] if isinstance(spec, str) else replace(PRESETS["fast"], **spec)


def run_projection(s: Setup, ph: dict, cfg, seed: int = 0):
    from birdanim.engines.gan.projector import projection

    t = time.perf_counter()
    proj = projection(s.a.G, ph["target"], config=cfg, encoder=s.a.encoder, seed=seed, features=s.a.features)
    return proj, time.perf_counter() - t


def measure(s: Setup, ph: dict, G, ws) -> dict:
    from birdanim.imageops import tensor_to_uint8

    with torch.no_grad():
        img = G.synthesis(ws, noise_mode="const")
        f = s.a.features
        dist = float(f.distance(f.forward_features(img), f.forward_features(ph["target"])).mean())
        return {"psnr": psnr(img, ph["target"]), "lite0": dist, **s.judge(tensor_to_uint8(img), ph["feat"])}


def cmd_project(s: Setup, variants: list[str]) -> list[dict]:
    """Each photo: the fast preset's W+ fit once, then each PTI variant from its ws (CPU seconds of this
    process for the PTI alone, wall seconds beside: both inflated on a loaded machine); presets from scratch."""
    from birdanim.engines.gan.projector import PRESETS, projection

    per = {v: [] for v in variants}
    for i, ph in enumerate(s.photos):
        base, base_s = run_projection(s, ph, PRESETS["fast"])
        for name in variants:
            spec = PTI_VARIANTS.get(name, name)
            c0, t0 = time.process_time(), time.perf_counter()
            if isinstance(spec, str):
                proj = projection(s.a.G, ph["target"], config=PRESETS[spec], encoder=s.a.encoder, features=s.a.features)
                extra = 0.0
            elif spec:
                cfg = replace(PRESETS["fast"], w_steps=0, wplus_steps=0, **spec)
                proj = projection(s.a.G, ph["target"], config=cfg, init_ws=base.ws, features=s.a.features)
                extra = base_s
            else:
                proj, extra = base, base_s
            rec = {"cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - t0 + extra,
                   **measure(s, ph, proj.G_tuned or s.a.G, proj.ws)}
            per[name].append(rec)
        print(f"  photo {i + 1}/{len(s.photos)}: " + ", ".join(f"{v}: {per[v][-1]['psnr']:.1f} dB {per[v][-1]['identity']:.3f}"
                                                          for v in variants), flush=True)
    rows = []
    for name, recs in per.items():
        row = {"variant": name, "n": len(recs), **{k: float(np.mean([r[k] for r in recs])) for k in recs[0]}}
        rows.append(row)
        print(f"{name:<26} n {row['n']}: PSNR {row['psnr']:.2f} dB, Lite0 dist {row['lite0']:.3f}, identity "
              f"{row['identity']:.3f}, detect {row['bird_detect']:.2f}, PTI cpu {row['cpu_s']:.1f} s, wall {row['wall_s']:.1f} s",
              flush=True)
    return rows


MIX_SETTINGS = ([("swap", c, 1.0) for c in range(2, 11)]
                + [("offset", c, st) for c in (4, 6, 8, 10) for st in (1.0, 2.0)] + [("offset", 6, 1.5), ("offset", 8, 1.5)])


@torch.no_grad()
def cmd_mix(s: Setup, projector: str, n_frames: int, settings) -> list[dict]:
    from birdanim.engines.gan.mixing import mix_with_poses
    from birdanim.imageops import tensor_to_uint8

    poses = s.a.poses.ws.to(s.a.device)
    pick = np.unique(np.floor(np.arange(n_frames) * len(poses) / n_frames).astype(int))
    per = {st: [] for st in settings}
    for i, ph in enumerate(s.photos):
        with torch.enable_grad():
            proj, _ = run_projection(s, ph, config_of(PTI_VARIANTS.get(projector, projector)))
        G = proj.G_tuned or s.a.G
        for st in settings:
            mixing, cutoff, strength = st
            keys = mix_with_poses(proj.ws, poses, cutoff=cutoff, strength=strength, mixing=mixing)[pick]
            per[st].append(s.judge(tensor_to_uint8(G.synthesis(keys, noise_mode="const")), ph["feat"]))
        print(f"  photo {i + 1}/{len(s.photos)} done", flush=True)
    rows = []
    for st, recs in per.items():
        row = {"mixing": st[0], "cutoff": st[1], "strength": st[2], "n": len(recs), "frames": len(pick),
               **{k: float(np.mean([r[k] for r in recs])) for k in recs[0]}}
        rows.append(row)
        print(f"{st[0]:<7} cutoff {st[1]:>2} strength {st[2]:.2f}: identity {row['identity']:.3f}, flight "
              f"{row.get('flight', float('nan')):.3f}, detect {row['bird_detect']:.2f}  (n {row['n']} photos x "
              f"{row['frames']} poses)")
    return rows


def cmd_combo(s: Setup, variants: list[str], mix_variant: str, n_frames: int, settings, out: Path | None) -> None:
    """Per photo, one W+ fit shared by everything: each PTI variant's reconstruction (as `project`), then
    every mixing setting with `mix_variant`'s tuned generator (as `mix`); a JSON line per photo to `out`
    (partial runs stay usable; summarise with `summary`)."""
    from birdanim.engines.gan.mixing import mix_with_poses
    from birdanim.engines.gan.projector import PRESETS, projection
    from birdanim.imageops import tensor_to_uint8

    poses = s.a.poses.ws.to(s.a.device)
    pick = np.unique(np.floor(np.arange(n_frames) * len(poses) / n_frames).astype(int))
    for i, ph in enumerate(s.photos):
        base, base_s = run_projection(s, ph, PRESETS["fast"])
        rec = {"file": ph["file"], "pose": ph["pose"], "project": {}, "mix": {}}
        tuned = {}
        for name in variants:
            spec = PTI_VARIANTS[name]
            c0, t0 = time.process_time(), time.perf_counter()
            if spec:
                cfg = replace(PRESETS["fast"], w_steps=0, wplus_steps=0, **spec)
                proj = projection(s.a.G, ph["target"], config=cfg, init_ws=base.ws, features=s.a.features)
            else:
                proj = base
            tuned[name] = proj.G_tuned or s.a.G
            rec["project"][name] = {"cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - t0,
                                    "base_wall_s": base_s, **measure(s, ph, tuned[name], base.ws)}
        G = tuned[mix_variant]
        with torch.no_grad():
            for mixing, cutoff, strength in settings:
                keys = mix_with_poses(base.ws, poses, cutoff=cutoff, strength=strength, mixing=mixing)[pick]
                rec["mix"][f"{mixing}:{cutoff}:{strength}"] = s.judge(tensor_to_uint8(G.synthesis(keys, noise_mode="const")), ph["feat"])
        print(json.dumps({"file": rec["file"], **{k: round(v["identity"], 3) for k, v in rec["project"].items()}}), flush=True)
        if out is not None:
            with open(out, "a") as f:
                f.write(json.dumps(rec) + "\n")


def summary(paths: list[Path]) -> None:
    recs = [json.loads(line) for p in paths for line in p.read_text().splitlines() if line.strip()]
    print(f"{len(recs)} photos")
    for name in recs[0]["project"]:
        v = [r["project"][name] for r in recs]
        m = {k: float(np.mean([x[k] for x in v])) for k in v[0]}
        print(f"  PTI {name:<24} n {len(v)}: PSNR {m['psnr']:.2f} dB, Lite0 dist {m['lite0']:.3f}, identity {m['identity']:.3f}, "
              f"detect {m['bird_detect']:.2f}, flight {m.get('flight', float('nan')):.3f}, PTI cpu {m['cpu_s']:.1f} s")
    for key in recs[0]["mix"]:
        v = [r["mix"][key] for r in recs]
        m = {k: float(np.mean([x[k] for x in v])) for k in v[0]}
        print(f"  mix {key:<16} n {len(v)}: identity {m['identity']:.3f}, flight {m.get('flight', float('nan')):.3f}, "
              f"detect {m['bird_detect']:.2f}")


def plot(paths: list[Path], out: Path, title: str = "") -> None:
    """identity vs flight of every mixing setting in the combo files (mean over photos): docs/gan-tradeoff.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = [json.loads(line) for p in paths for line in p.read_text().splitlines() if line.strip()]
    pts = {}
    for key in recs[0]["mix"]:
        v = [r["mix"][key] for r in recs]
        pts[key] = (float(np.mean([x["flight"] for x in v])), float(np.mean([x["identity"] for x in v])))
    fig, ax = plt.subplots(figsize=(6.4, 4.6), dpi=100)
    ax.axvspan(0.6, 1.0, ymin=0, ymax=1, color="#e8f5e9")
    ax.axhline(0.55, color="#2e7d32", lw=1, ls="--")
    ax.text(0.61, 0.555, "target: identity >= 0.55, flight >= 0.6", color="#2e7d32", fontsize=8, va="bottom")
    swap = sorted((int(k.split(":")[1]), v) for k, v in pts.items() if k.startswith("swap") and float(k.split(":")[2]) == 1.0)
    for k, v in pts.items():  # partial swaps (a blend of the coarse rows)
        if k.startswith("swap") and float(k.split(":")[2]) != 1.0:
            ax.plot(*v, "D", color="#6a1b9a")
            ax.annotate(f"swap {k.split(':')[1]} at {float(k.split(':')[2]):g}", v, textcoords="offset points",
                        xytext=(4, 3), fontsize=7, color="#6a1b9a")
    name = next(iter(recs[0]["project"]))  # the reconstruction without any pose
    rec = (float(np.mean([r["project"][name]["flight"] for r in recs])), float(np.mean([r["project"][name]["identity"] for r in recs])))
    ax.plot(*rec, "*", ms=11, color="#ef6c00", label="no pose: the projected crop itself")
    ax.plot([v[0] for _, v in swap], [v[1] for _, v in swap], "o-", color="#1565c0", label="swap (cutoff beside each point)")
    for c, v in swap:
        ax.annotate(str(c), v, textcoords="offset points", xytext=(4, 3), fontsize=8, color="#1565c0")
    off = [(k, v) for k, v in pts.items() if k.startswith("offset")]
    ax.plot([v[0] for _, v in off], [v[1] for _, v in off], "s", color="#c62828", label="offset (cutoff:strength)")
    for k, v in off:
        ax.annotate(":".join(k.split(":")[1:]).replace(".0", ""), v, textcoords="offset points", xytext=(4, -9), fontsize=7,
                    color="#c62828")
    ax.axhline(0.41, color="grey", lw=0.8, ls=":")
    ax.text(0.99, 0.412, "two different species (0.41)", color="grey", fontsize=7, ha="right", va="bottom")
    ax.axhline(0.65, color="grey", lw=0.8, ls=":")
    ax.text(0.99, 0.652, "same species (0.65)", color="grey", fontsize=7, ha="right", va="bottom")
    ax.set_xlim(0, 1)
    ax.set_ylim(0.25, 0.75)
    ax.set_xlabel("flight (flight probe on the keyframes' bird; 0 where no bird is detected)")
    ax.set_ylabel("identity (Lite2 cosine to the photo's bird)")
    ax.set_title(title or f"GAN mode: identity vs flight, n = {len(recs)} photos", fontsize=10)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    print(f"wrote {out}")


@torch.no_grad()
def cmd_poses(s: Setup, poses_dir: Path | None) -> list[dict]:
    from birdanim.metrics.fidelity import bird_crop, embed, largest_bird

    d = poses_dir or (REPO_ROOT / "assets" / "target_poses")
    names = json.loads((d / "manifest.json").read_text())["poses"]
    rows = []
    for n in names:
        img = np.asarray(Image.open(d / f"{n}.png").convert("RGB"))
        box = largest_bird(s.a.detector, img)
        f = embed(s.lite2, [bird_crop(img, box)])
        p = float(s.probe.proba(f)[0]) if box is not None else 0.0
        rows.append({"pose": n, "flight": p, "bird": box is not None})
        print(f"{n}: P(flight) {p:.3f}{'' if box is not None else ' (no bird detected)'}")
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["project", "mix", "poses", "combo", "summary", "plot"])
    ap.add_argument("--plot-out", type=Path, default=REPO_ROOT / "docs" / "gan-tradeoff.png")
    ap.add_argument("--title", default="")
    ap.add_argument("--only", default=None, help="combo: photo indices to run, e.g. 0,2 (split a run over processes)")
    ap.add_argument("--mix-variant", default="none", help="combo: the PTI variant whose generator renders the mixes")
    ap.add_argument("--lines", nargs="*", type=Path, default=[], help="summary: the combo JSON-lines files")
    ap.add_argument("--n", type=int, default=8, help="photos (the benchmark's selection)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variants", nargs="*", default=None, help="project: names of PTI_VARIANTS or presets")
    ap.add_argument("--projector", default="fast", help="mix: the projection used (a PTI_VARIANTS name or preset)")
    ap.add_argument("--frames", type=int, default=5, help="mix: pose keyframes measured per photo")
    ap.add_argument("--settings", nargs="*", default=None, help="mix: mixing:cutoff:strength, e.g. offset:6:1.0")
    ap.add_argument("--poses-dir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.what == "summary":
        summary(args.lines)
        return 0
    if args.what == "plot":
        plot(args.lines, args.plot_out, args.title)
        return 0
    s = Setup(0 if args.what == "poses" else args.n, args.seed)
    if args.only:
        s.photos = [s.photos[int(i)] for i in args.only.split(",")]
    settings = [(m, int(c), float(st)) for m, c, st in (x.split(":") for x in args.settings)] if args.settings else MIX_SETTINGS
    if args.what == "combo":
        cmd_combo(s, args.variants or list(PTI_VARIANTS), args.mix_variant, args.frames, settings, args.json)
        return 0
    if args.what == "project":
        rows = cmd_project(s, args.variants or list(PTI_VARIANTS))
    elif args.what == "mix":
        rows = cmd_mix(s, args.projector, args.frames, settings)
    else:
        rows = cmd_poses(s, args.poses_dir)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
