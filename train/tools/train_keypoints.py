"""Train the rig engine's bird keypoint head (15 CUB parts) on frozen EfficientNet-Lite0 features.

    python -m train.tools.train_keypoints --out weights/keypoints          # cache features once, train, test
    python -m train.tools.train_keypoints --out /tmp/kp --epochs 2 --limit 64   # a quick smoke run

Data: `birdanim.paths.data_dir()`/birds256{,_more}/keypoints.csv (file, split, part_id, part, x, y,
visible; x, y in the 256x256 crop's pixels) with the crops in train.zip / test.zip. Only the train
splits are trained on; the test splits give the numbers printed and written to OUT/metrics.json:

- PCK@0.1: share of the test points marked visible that are predicted within 10% of the crop's side
  (25.6 px on a 256 crop), overall and per keypoint;
- visibility accuracy: predicted P(visible) >= 0.5 against the visible flag, over all test points.

The trunk is frozen, so its maps (strides 8, 16, 32, float16) are computed once per crop and cached in
~/.cache/birdanim/keypoints/ ($BIRDANIM_CACHE): for train crops also of the mirrored crop, since the
trunk is not mirror-symmetric. Augmentation is that mirroring, which swaps the bird's left and right
parts (`flip_keypoints`). Runs niced, on 2 threads.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from birdanim.paths import cache_dir
from birdanim.engines.rig.keypoints import (
    KEYPOINT_NAMES,
    KeypointConfig,
    KeypointHead,
    crops_to_input,
    decode_heatmaps,
    flip_keypoints,
    save_head,
)

PACKS = ("birds256", "birds256_more")
CROP = 256  # the crops' side in the packs
PCK_ALPHA = 0.1
CACHE_DIR = cache_dir() / "keypoints"


# ---------------------------------------------------------------- data


def read_keypoints(csv_path: Path, split: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """keypoints.csv -> {file: (xy float32 [15, 2] (NaN where not visible), visible uint8 [15])} for `split`."""
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            if row["split"] != split:
                continue
            xy, vis = out.setdefault(row["file"], (np.full((15, 2), np.nan, np.float32), np.zeros(15, np.uint8)))
            i = int(row["part_id"]) - 1
            if row["part"] != KEYPOINT_NAMES[i]:
                raise ValueError(f"{csv_path}: part_id {i + 1} is {row['part']!r}, expected {KEYPOINT_NAMES[i]!r}")
            if row["visible"] == "1":
                xy[i] = (float(row["x"]), float(row["y"]))
                vis[i] = 1
    return out


def read_crops(zip_path: Path, names: list[str]) -> np.ndarray:
    """uint8 [N, 256, 256, 3] RGB, in the order of `names`."""
    from PIL import Image

    out = np.empty((len(names), CROP, CROP, 3), np.uint8)
    with zipfile.ZipFile(zip_path) as z:
        members = {Path(n).name: n for n in z.namelist()}
        for i, name in enumerate(names):
            out[i] = np.asarray(Image.open(io.BytesIO(z.read(members[name]))).convert("RGB"))
    return out


def load_split(split: str, limit: int | None = None) -> tuple[list[tuple[Path, str]], np.ndarray, np.ndarray]:
    """[(zip, file)], xy [N, 15, 2], visible [N, 15] for one split of both packs (sorted by file name)."""
    from birdanim.paths import data_dir

    items, xys, viss = [], [], []
    for pack in PACKS:
        root = data_dir() / pack
        kp = read_keypoints(root / "keypoints.csv", split)
        names = sorted(kp)[: limit if limit else None]
        for n in names:
            items.append((root / f"{split}.zip", n))
            xys.append(kp[n][0])
            viss.append(kp[n][1])
    return items, np.stack(xys), np.stack(viss)


# ---------------------------------------------------------------- feature cache


def cached_features(trunk, items, size: int, mirrored: bool, batch: int = 32) -> list[torch.Tensor]:
    """float16 trunk maps at strides 8, 16, 32 for every crop in `items` (mirrored crops if `mirrored`),
    computed once and kept in CACHE_DIR (safetensors), keyed by the file list, the input side and the flip."""
    from safetensors.torch import load_file, save_file

    key = hashlib.sha1(("\n".join(f"{z.parent.name}/{n}" for z, n in items) + f"|{size}|{mirrored}").encode()).hexdigest()[:16]
    path = CACHE_DIR / f"lite0_{size}_{'flip' if mirrored else 'orig'}_{len(items)}_{key}.safetensors"
    if path.is_file():
        d = load_file(str(path))
        return [d["f8"], d["f16"], d["f32"]]
    t0 = time.time()
    chunks: list[list[torch.Tensor]] = [[], [], []]
    by_zip: dict[Path, list[int]] = {}
    for i, (z, _) in enumerate(items):
        by_zip.setdefault(z, []).append(i)
    order = []
    for z, idx in by_zip.items():
        for s in range(0, len(idx), batch):
            part = idx[s : s + batch]
            crops = read_crops(z, [items[i][1] for i in part])
            x = crops_to_input(crops, size)
            if mirrored:
                x = torch.flip(x, dims=[3])
            with torch.no_grad():
                feats = trunk.forward_features(x)[1:]
            for c, f in zip(chunks, feats):
                c.append(f.contiguous().to(torch.float16))
            order += part
            print(f"\r  features {'mirrored' if mirrored else 'original'}: {len(order)}/{len(items)} ({time.time() - t0:.0f} s)", end="", flush=True)
    print()
    inv = torch.empty(len(order), dtype=torch.long)
    inv[torch.tensor(order)] = torch.arange(len(order))
    maps = [torch.cat(c)[inv].contiguous() for c in chunks]
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file({"f8": maps[0], "f16": maps[1], "f32": maps[2]}, str(tmp))
    os.replace(tmp, path)
    return maps


# ---------------------------------------------------------------- training


def heatmap_targets(uv: torch.Tensor, h: int, w: int, sigma: float) -> torch.Tensor:
    """uv [B, K, 2] in [0, 1] -> Gaussian distributions [B, K, h, w] (sum 1) centred on the points,
    `sigma` in cells; NaN points give zeros."""
    cx = uv[..., 0] * w - 0.5
    cy = uv[..., 1] * h - 0.5
    gx = torch.exp(-((torch.arange(w).view(1, 1, w) - cx[..., None]) ** 2) / (2 * sigma**2))
    gy = torch.exp(-((torch.arange(h).view(1, 1, h) - cy[..., None]) ** 2) / (2 * sigma**2))
    t = gy[..., :, None] * gx[..., None, :]
    t = t / t.sum(dim=(2, 3), keepdim=True).clamp_min(1e-12)
    return torch.nan_to_num(t, nan=0.0)


def keypoint_loss(heat, vis_logit, uv, visible, sigma: float, vis_weight: float):
    """Cross-entropy of the heatmap softmax against the Gaussian target on visible points, plus the
    visibility BCE on every point."""
    b, k, h, w = heat.shape
    target = heatmap_targets(uv, h, w, sigma)
    logp = F.log_softmax(heat.reshape(b, k, -1), -1).reshape(b, k, h, w)
    ce = -(target * logp).sum(dim=(2, 3))
    m = visible.float()
    loc = (ce * m).sum() / m.sum().clamp_min(1)
    vis = F.binary_cross_entropy_with_logits(vis_logit, m)
    return loc + vis_weight * vis, loc.item(), vis.item()


def evaluate(head, maps, xy, visible, batch: int = 128) -> dict:
    """PCK@0.1 (overall, per keypoint) and visibility accuracy of `head` on cached maps."""
    head.eval()
    preds, probs = [], []
    with torch.no_grad():
        for s in range(0, len(xy), batch):
            heat, vis = head(*(m[s : s + batch].float() for m in maps))
            preds.append(decode_heatmaps(heat) * CROP)
            probs.append(torch.sigmoid(vis))
    return metrics(torch.cat(preds).numpy(), torch.cat(probs).numpy(), xy, visible)


def metrics(pred_xy: np.ndarray, pred_vis: np.ndarray, xy: np.ndarray, visible: np.ndarray, side: float = CROP) -> dict:
    m = visible.astype(bool)
    dist = np.linalg.norm(pred_xy - np.nan_to_num(xy), axis=-1)
    hit = (dist <= PCK_ALPHA * side) & m
    per = {n: float(hit[:, i].sum() / max(1, m[:, i].sum())) for i, n in enumerate(KEYPOINT_NAMES)}
    return {
        "pck@0.1": float(hit.sum() / m.sum()),
        "pck@0.05": float(((dist <= 0.05 * side) & m).sum() / m.sum()),
        "median_px": float(np.median(dist[m])),
        "visibility_acc": float(((pred_vis >= 0.5) == m).mean()),
        "per_keypoint_pck@0.1": per,
        "per_keypoint_visibility_acc": {n: float(((pred_vis[:, i] >= 0.5) == m[:, i]).mean()) for i, n in enumerate(KEYPOINT_NAMES)},
        "n_crops": int(len(xy)),
        "n_visible_points": int(m.sum()),
    }


def train_head(cfg, maps, maps_flip, xy, visible, epochs: int, batch: int, lr: float, sigma: float, seed: int = 0):
    """Train a fresh head; each step, each crop is taken as it is or mirrored (labels flipped to match;
    `maps_flip` None: never mirrored)."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    head = KeypointHead(cfg)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-4)
    n = len(xy)
    steps = epochs * ((n + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    # The mirrored crops' labels: x -> side - x, and the bird's left and right parts swap.
    xy_flip, visible_flip = flip_keypoints(xy, visible, CROP)
    uv = torch.from_numpy(xy / CROP).float()
    uv_flip = torch.from_numpy(xy_flip / CROP).float()
    vis = torch.from_numpy(visible)
    vis_flip = torch.from_numpy(np.ascontiguousarray(visible_flip))
    t0 = time.time()
    for ep in range(epochs):
        head.train()
        perm = torch.randperm(n, generator=g)
        tot = [0.0, 0.0, 0]
        for s in range(0, n, batch):
            idx = perm[s : s + batch]
            flip = torch.rand(len(idx), generator=g) < (0.5 if maps_flip is not None else 0.0)
            if maps_flip is None:
                feats = [m[idx].float() for m in maps]
            else:
                feats = [torch.where(flip.view(-1, 1, 1, 1), mf[idx], m[idx]).float() for m, mf in zip(maps, maps_flip)]
            u = torch.where(flip.view(-1, 1, 1), uv_flip[idx], uv[idx])
            v = torch.where(flip.view(-1, 1), vis_flip[idx], vis[idx])
            heat, vlog = head(*feats)
            loss, l_loc, l_vis = keypoint_loss(heat, vlog, u, v, sigma, vis_weight=1.0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot[0] += l_loc * len(idx)
            tot[1] += l_vis * len(idx)
            tot[2] += len(idx)
        print(f"  epoch {ep + 1}/{epochs}: heatmap CE {tot[0] / tot[2]:.3f}, visibility BCE {tot[1] / tot[2]:.3f} ({time.time() - t0:.0f} s)", flush=True)
    return head.eval()


def print_metrics(title: str, m: dict) -> None:
    print(f"{title}: PCK@0.1 {m['pck@0.1']:.3f} (PCK@0.05 {m['pck@0.05']:.3f}, median error {m['median_px']:.1f} px) "
          f"on {m['n_visible_points']} visible points of {m['n_crops']} crops; visibility accuracy {m['visibility_acc']:.3f}")
    for name in KEYPOINT_NAMES:
        print(f"  {name:<11} PCK@0.1 {m['per_keypoint_pck@0.1'][name]:.3f}   visibility acc {m['per_keypoint_visibility_acc'][name]:.3f}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="folder for head.safetensors, config.json, metrics.json")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--sigma", type=float, default=1.0, help="target Gaussian's sigma in heatmap cells (stride 8)")
    ap.add_argument("--width", type=int, default=64, help="head channels at stride 16")
    ap.add_argument("--size", type=int, default=224, help="trunk input side")
    ap.add_argument("--limit", type=int, default=None, help="use only the first N crops of each pack and split (smoke runs)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--test-every", type=int, default=1, help="measure on every k-th test crop only (k=2: half the test split, in half the time)")
    ap.add_argument("--no-flip", action="store_true", help="train without the mirrored crops (no flip augmentation)")
    ap.add_argument("--cache-only", action="store_true", help="compute and cache the trunk's maps, then stop")
    args = ap.parse_args(argv)

    try:  # a background job on a shared 2-core machine
        os.nice(5)
    except OSError:
        pass
    torch.set_num_threads(args.threads)
    from birdanim.models.features import load_efficientnet_lite

    trunk = load_efficientnet_lite(0, "cpu")
    cfg = KeypointConfig(input_size=args.size, width=args.width, in_channels=tuple(trunk.channels[1:]))

    t0 = time.time()
    train_items, train_xy, train_vis = load_split("train", args.limit)
    test_items, test_xy, test_vis = load_split("test", args.limit)
    if args.test_every > 1:  # a deterministic share of the test crops (every k-th file, both packs)
        test_items, test_xy, test_vis = test_items[:: args.test_every], test_xy[:: args.test_every], test_vis[:: args.test_every]
    print(f"train {len(train_items)} crops ({int(train_vis.sum())} visible points), test {len(test_items)} crops")
    maps = cached_features(trunk, train_items, args.size, mirrored=False)
    test_maps = cached_features(trunk, test_items, args.size, mirrored=False)
    # The mirrored crops' maps (augmentation); --no-flip trains without them (a quicker baseline).
    maps_flip = None if args.no_flip else cached_features(trunk, train_items, args.size, mirrored=True)
    t_cache = time.time() - t0
    if args.cache_only:
        print(f"features cached in {CACHE_DIR} ({t_cache:.0f} s)")
        return

    t1 = time.time()
    head = train_head(cfg, maps, maps_flip, train_xy, train_vis, args.epochs, args.batch, args.lr, args.sigma)
    t_train = time.time() - t1

    train_m = evaluate(head, [m[::4] for m in maps], train_xy[::4], train_vis[::4])  # a quarter: enough to see overfitting
    test_m = evaluate(head, test_maps, test_xy, test_vis)
    print(f"train split (every 4th crop): PCK@0.1 {train_m['pck@0.1']:.3f}, visibility accuracy {train_m['visibility_acc']:.3f}")
    share = "" if args.test_every == 1 else f", every {args.test_every}th file"
    print_metrics(f"TEST split (birds256 + birds256_more CUB test crops{share})", test_m)

    extra = {"trained_on": "CUB-200-2011 part keypoints, train splits of birds256 + birds256_more",
             "epochs": args.epochs, "batch": args.batch, "lr": args.lr, "sigma": args.sigma,
             "flip_augmentation": not args.no_flip}
    save_head(head, cfg, args.out, extra)
    record = {
        "test": test_m,
        "test_crops": "all CUB test crops of both packs" if args.test_every == 1 else f"every {args.test_every}th CUB test crop of both packs (sorted by file name)",
        "train": {k: train_m[k] for k in ("pck@0.1", "pck@0.05", "median_px", "visibility_acc", "n_crops")},
        "pck_definition": "share of visible points with |pred - truth| <= 0.1 * crop side (25.6 px at 256)",
        "visibility_definition": "P(visible) >= 0.5 vs the CSV's visible flag, all points",
        "seconds": {"features": round(t_cache, 1), "training": round(t_train, 1)},
        "threads": args.threads,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    (args.out / "metrics.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}/head.safetensors, config.json, metrics.json (features {t_cache:.0f} s, training {t_train:.0f} s)")


if __name__ == "__main__":
    main()
