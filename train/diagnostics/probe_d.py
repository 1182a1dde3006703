"""Does a run's discriminator memorise its training photos? (the overfitting check of the ADA paper)

Loads one snapshot of a run (D and G_ema) and prints D's mean logit and r_t (share of images whose
mean patch logit is positive) on n training photos, n held-out test photos and n G_ema samples, each
with and without the run's augmentation. D runs as in training: train mode (its BatchNorm uses the
statistics of each batch), one batch per source. A D that generalises scores test photos like
training photos; a D that memorises scores them between training photos and fakes, and the gap
grows as training goes on: then more data or stronger augmentation, not more steps, is what helps.
The logits are also shown per feature scale (one head per projected feature map), to see at which
scale D tells the generator's samples from photos.

    python -m train.diagnostics.probe_d ~/.cache/birdanim/runs/00000-default --n 512
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from birdanim.checkpoint import CheckpointError
from birdanim.device import set_cpu_threads
from train.loop.data import ImageDataset, default_test_zips
from train.loop.networks import build_augment, build_discriminator, build_generator
from train.loop.presets import TrainConfig
from train.loop.snapshot import load_snapshot, module_state, snapshot_of_run


def load_run(path: Path, feature_net=None) -> tuple[TrainConfig, torch.nn.Module, torch.nn.Module, torch.nn.Module, dict]:
    """(config, D, G_ema, augment pipe, state) of a snapshot folder, or of a run folder's latest snapshot."""
    path = Path(path)
    snap = path if (path / "state.json").is_file() else snapshot_of_run(path)
    tensors, state = load_snapshot(snap)
    cfg = TrainConfig.from_dict(state["config"])
    D = build_discriminator(cfg, feature_net)
    D.load_state_dict(module_state(tensors, "D"))
    G = build_generator(cfg)
    G.load_state_dict(module_state(tensors, "G_ema"))
    aug = build_augment(cfg)
    aug.load_state_dict(module_state(tensors, "augment"))
    return cfg, D.train(), G.eval(), aug, {**state, "snapshot": str(snap)}


@torch.no_grad()
def d_scores(D, aug, images, augment: bool) -> tuple[np.ndarray, np.ndarray]:
    """(mean patch logit per image [N], mean logit of each feature scale's head per image [N, heads]);
    `images` yields float [B, 3, R, R] batches in [-1, 1]."""
    out, per_head = [], []
    for x in images:
        if augment:
            x = aug(x)
        heads = [h(f).flatten(1) for h, f in zip(D.heads, D.project(x))]  # = D(x), kept apart by scale
        out.append(torch.cat(heads, 1).mean(1))
        per_head.append(torch.stack([h.mean(1) for h in heads], 1))
    return torch.cat(out).numpy(), torch.cat(per_head).numpy()


def batches_of(ds: ImageDataset, idx: np.ndarray, batch: int):
    for i in range(0, len(idx) - batch + 1, batch):  # whole batches only: BatchNorm and minibatch-std see full groups
        yield ds.batch(torch.from_numpy(idx[i : i + batch]), False, None)


def fakes(G, n: int, batch: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n // batch):
        z = torch.randn(batch, G.z_dim, generator=g)
        with torch.no_grad():
            yield G(z, psi=1.0, noise_mode="random")  # raw, as D saw fakes in training


def probe(D, G, aug, train_ds: ImageDataset, test_ds: ImageDataset, n: int, batch: int = 16, seed: int = 0) -> dict:
    """{source: {aug: {"logit": mean, "rt": share > 0}}} for train photos, test photos and G samples."""
    n = max(batch, n - n % batch)
    idx_train = np.random.default_rng(seed).choice(len(train_ds), min(n, len(train_ds)), replace=False)
    idx_test = np.random.default_rng(seed).choice(len(test_ds), min(n, len(test_ds)), replace=False)
    # In train mode every forward steps spectral norm's power iteration (and BatchNorm's running
    # statistics): each source starts from the D as loaded, so the order of the sources does not matter.
    d_state = {k: v.clone() for k, v in D.state_dict().items()}
    res = {}
    for augment in (False, True):
        sources = {
            "train": batches_of(train_ds, idx_train, batch),
            "test": batches_of(test_ds, idx_test, batch),
            "fake": fakes(G, n, batch, seed),
        }
        for name, it in sources.items():
            D.load_state_dict(d_state)
            torch.manual_seed(seed)  # the same augmentations for each source
            s, heads = d_scores(D, aug, it, augment)
            res.setdefault(name, {})["aug" if augment else "plain"] = {
                "logit": float(s.mean()), "rt": float((s > 0).mean()), "n": int(len(s)),
                "head_logits": [float(v) for v in heads.mean(0)],  # finest feature scale first
            }
    D.load_state_dict(d_state)  # leave D as it came
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="run folder (its latest snapshot) or one snapshot folder")
    ap.add_argument("--n", type=int, default=512, help="images per source (whole batches)")
    ap.add_argument("--batch", type=int, default=16, help="batch size (the run's batch is what D saw in training)")
    ap.add_argument("--test-zips", nargs="+", default=[str(p) for p in default_test_zips()])
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    set_cpu_threads(args.threads or None)
    try:
        cfg, D, G, aug, state = load_run(args.run)
    except (CheckpointError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if cfg.generator.arch != "stylegan2" or cfg.discriminator.kind != "projected":
        print("error: only StyleGAN2 runs with the projected discriminator can be probed", file=sys.stderr)
        return 2
    missing = [p for p in list(cfg.data) + list(args.test_zips) if not Path(p).is_file()]
    if missing:
        print(f"error: data not found: {missing}", file=sys.stderr)
        return 2
    train_ds = ImageDataset.from_zips(cfg.data, cfg.generator.resolution)
    test_ds = ImageDataset.from_zips(args.test_zips, cfg.generator.resolution)
    res = probe(D, G, aug, train_ds, test_ds, args.n, args.batch, args.seed)
    kimg = state["images_seen"] / 1000
    print(f"{state['snapshot']} ({kimg:.3f} kimg): D's mean patch logit / r_t per source")
    print(f"{'source':8s} {'plain logit':>12s} {'plain r_t':>10s} {'aug logit':>10s} {'aug r_t':>8s}")
    for name, r in res.items():
        print(f"{name:8s} {r['plain']['logit']:12.3f} {r['plain']['rt']:10.3f} {r['aug']['logit']:10.3f} {r['aug']['rt']:8.3f}")
    sides = [cfg.discriminator.feat_res // k for k in (4, 8, 16, 32)]
    print("per feature scale (aug), mean logit: " + "; ".join(
        f"{name} " + " ".join(f"{v:.2f}" for v in r["aug"]["head_logits"]) for name, r in res.items()
    ) + f"  (heads on {'/'.join(f'{s}x{s}' for s in sides)} feature maps)")
    gap = res["train"]["aug"]["logit"] - res["test"]["aug"]["logit"]
    span = res["train"]["aug"]["logit"] - res["fake"]["aug"]["logit"]
    print(f"train - test logit (aug): {gap:.3f} = {gap / span if span else float('nan'):.2f} of the train - fake gap")
    print(json.dumps({"snapshot": state["snapshot"], "kimg": kimg, "n": args.n, **res}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
