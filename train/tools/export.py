"""Export G_ema of a training snapshot as shippable generator weights (fp16 safetensors + config + meta).

examples:
  python -m train.tools.export ~/.cache/birdanim/runs/00000-default -o weights/            # the run's latest snapshot
  python -m train.tools.export RUN/snapshots/snapshot-000040000 -o /tmp/w --fp32
  python -m train.tools.export RUN -o weights/ --if-better                                 # only if FD improved
  python -m train.tools.export RUN/gema/000004776 -o weights/ --if-better                  # an older G_ema export

--if-better compares FDs measured the same way only: the same n and the same pixels (uint8).
meta.json records images seen, CPU-hours, the run, the dataset, the snapshots the run branched from
(train.py --branch-from) and the metrics measured for that snapshot (RUN/metrics.jsonl, matched by
images seen: "metrics" at the evaluation loop's n, "metrics_n2000" from
`train/metrics/evaluate.py RUN/gema/N --n 2000`), so the model card can be written from it.
--if-better compares at the largest n both have.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from birdanim.checkpoint import CheckpointError, load_generator, load_meta, save_generator
from train.loop.networks import build_generator
from train.loop.presets import BOOKKEEPING, PRESETS, TrainConfig, make_config
from train.loop.snapshot import branch_chain, load_snapshot, module_state, snapshot_of_run

METRIC_KEYS = ("fd_lite2", "kid_lite2", "precision_lite2", "recall_lite2", "bird_detect", "fid_inception", "n", "pixels")


def snapshot_metrics(run_dir: Path, images_seen: int) -> dict[int, dict]:
    """Metrics recorded in RUN/metrics.jsonl for the G_ema export at `images_seen`, by number of samples
    (the evaluation loop's n = 500, a closer look's n = 2,000; the latest line of each n wins). Records of
    truncated samples, other seeds or another scale (--psi, --seed0, --side) are not the metric: left out."""
    path = run_dir / "metrics.jsonl"
    found: dict[int, dict] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            if round(rec.get("kimg", -1) * 1000) == images_seen and not {"psi", "seed0", "side"} & rec.keys():
                found[int(rec.get("n") or 0)] = {k: rec[k] for k in METRIC_KEYS if k in rec}
    return found


def metrics_fields(by_n: dict[int, dict]) -> dict:
    """meta.json fields: "metrics" at the smallest n measured (the routine curve's), "metrics_nN" at each larger N."""
    ns = sorted(by_n)
    return {"metrics": by_n[ns[0]] if ns else {}, **{f"metrics_n{n}": by_n[n] for n in ns[1:]}}


def fd_by_n(meta: dict) -> dict[int, dict]:
    """{n: metrics record} of every FD a meta.json holds ("metrics" and "metrics_nN")."""
    recs = [v for k, v in meta.items() if k == "metrics" or k.startswith("metrics_n")]
    return {int(r.get("n") or 0): r for r in recs if isinstance(r, dict) and r.get("fd_lite2") is not None}


def preset_overrides(cfg: TrainConfig) -> dict:
    """The recipe fields of a run's config that differ from its preset as this code defines it (bookkeeping left out), so
    meta.json says exactly how the weights were trained (e.g. the default preset with d_equal_heads)."""
    if cfg.preset not in PRESETS:
        return {}
    base = make_config(cfg.preset).flat()
    return {k: v for k, v in cfg.flat().items() if k not in BOOKKEEPING and base[k] != v}


def export(src: Path, out: Path, fp16: bool = True, if_better: bool = False) -> tuple[bool, dict]:
    """Write G_ema of `src` (run folder, snapshot folder, or a G_ema export RUN/gema/NNNNNNNNN) to `out`.
    Returns (written, meta)."""
    if (src / "model.safetensors").is_file() and src.parent.name == "gema":  # G_ema export of a snapshot
        run_dir = src.parent.parent
        G = load_generator(src)
        own = load_meta(src)
        cfg = TrainConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
        state = {"images_seen": int(own["images_seen"]), "cpu_seconds": float(own["cpu_hours"]) * 3600,
                 "wall_seconds": float(own["wall_hours"]) * 3600 if own.get("wall_hours") is not None else None, "dataset_key": own.get("dataset"),
                 "ada_p": own.get("ada_p")}
        snap_name = f"gema/{src.name}"
    else:
        snap = src if (src / "state.json").is_file() else snapshot_of_run(src)
        run_dir = snap.parent.parent
        tensors, state = load_snapshot(snap)
        cfg = TrainConfig.from_dict(state["config"])
        G = build_generator(cfg)
        G.load_state_dict(module_state(tensors, "G_ema"))
        snap_name = snap.name
    by_n = snapshot_metrics(run_dir, state["images_seen"])
    meta = {
        "images_seen": state["images_seen"],
        "kimg": state["images_seen"] / 1000,
        "cpu_hours": state["cpu_seconds"] / 3600,
        "wall_hours": state["wall_seconds"] / 3600 if state.get("wall_seconds") is not None else None,
        "run": run_dir.name,
        "snapshot": snap_name,
        "preset": cfg.preset,
        "preset_overrides": preset_overrides(cfg),
        "discriminator": cfg.discriminator.kind if cfg.generator.arch == "stylegan2" else "dcgan",
        "dataset": [Path(p).parent.name + "/" + Path(p).name for p in cfg.data],
        "dataset_key": state.get("dataset_key"),
        "ada_p": state.get("ada_p"),
        **metrics_fields(by_n),
    }
    chain = branch_chain(run_dir)
    if chain:  # the run continued another run's snapshot (train.py --branch-from): which, and what it changed in the recipe
        meta["branched_from"] = [{**c, "changed": {k: v for k, v in c.get("changed", {}).items() if k not in BOOKKEEPING}} for c in chain]
    lineage = run_dir / "init_from.json"
    if lineage.is_file():  # the run started from other weights: count what went into them too
        src = json.loads(lineage.read_text())
        # the shipped meta.json names the source by its last two path parts, not this machine's layout
        meta["init_from"] = {**src, "source": "/".join(Path(src["source"]).parts[-2:])}
        meta["total_images_seen"] = meta["images_seen"] + int(src.get("images_seen") or 0)
        meta["total_cpu_hours"] = meta["cpu_hours"] + float(src.get("cpu_hours") or 0.0)
    if if_better:
        old = fd_by_n(load_meta(out)) if (out / "config.json").is_file() else {}
        new = fd_by_n(meta)
        if not new:
            raise CheckpointError(f"--if-better: no fd_lite2 measured for {snap_name} (run train/metrics/evaluate.py {run_dir} first)")
        if old:
            common = set(old) & set(new)
            if not common:  # FD falls as n grows: only the same n compares
                n = max(old)
                raise CheckpointError(f"--if-better: {out}'s FD was measured on n = {sorted(old)} samples, {snap_name}'s on n = {sorted(new)}; "
                                      f"measure the candidate at the same n (train/metrics/evaluate.py {run_dir}/gema/{state['images_seen']:09d} --n {n})")
            n = max(common)  # the largest n both have: the steadier number
            if old[n].get("pixels") != new[n].get("pixels"):  # raw outputs read 4-5 FD lower than what users see
                raise CheckpointError(f"--if-better: {out}'s FD and {snap_name}'s were measured on different pixels "
                                      f"({old[n].get('pixels') or 'raw'} vs {new[n].get('pixels') or 'raw'}); re-measure the older one with train/metrics/evaluate.py")
            if new[n]["fd_lite2"] >= old[n]["fd_lite2"]:
                return False, meta
    save_generator(G, out, meta, fp16=fp16)
    return True, meta


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="birdanim export", description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n", 2)[2], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path, help="run folder (its latest snapshot), snapshot folder, or RUN/gema/NNNNNNNNN")
    ap.add_argument("-o", "--out", type=Path, required=True, help="output weights folder (e.g. weights/)")
    ap.add_argument("--fp32", action="store_true", help="keep fp32 weights (default fp16: half the size)")
    ap.add_argument("--if-better", action="store_true", help="write only if fd_lite2 beats the one in OUT/meta.json")
    args = ap.parse_args(argv)
    try:
        written, meta = export(args.source.expanduser(), args.out, fp16=not args.fp32, if_better=args.if_better)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    verb = "exported" if written else "kept the existing weights (not better):"
    print(f"{verb} {meta['run']}/{meta['snapshot']} ({meta['kimg']:.1f} kimg, {meta['cpu_hours']:.2f} CPU-hours, metrics {meta['metrics']}) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
