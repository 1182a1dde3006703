"""Resumable training snapshots that survive kill -9: safetensors + JSON, never pickle.

A run folder holds

    snapshots/snapshot-000012345/tensors.safetensors   G, G_ema, D, optimiser tensors, RNG states, ADA p
    snapshots/snapshot-000012345/state.json            images seen, optimiser hyper-parameters, RNG scalars...
    latest                                             {"snapshot": "snapshots/snapshot-000012345"}

Writing: everything goes into `snapshots/.tmp-...` first, which is renamed (`os.replace`) to its final
name only when complete; then the `latest` pointer is replaced atomically; only then are older
snapshots deleted (the previous one is always kept). A kill at any moment leaves `latest` pointing at a
complete snapshot; a half-written temp folder is ignored and cleaned up by the next save.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from birdanim.checkpoint import CheckpointError, load_state_dict, save_state_dict, write_json_atomic

TENSORS, STATE, LATEST = "tensors.safetensors", "state.json", "latest"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


# ---- optimisers and RNGs <-> (tensors, JSON) ----


def flatten_optimizer(name: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"opt.{name}.state.{idx}.{k}"] = v
            else:
                scalars[f"{idx}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def unflatten_optimizer(name: str, tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    prefix = f"opt.{name}.state."
    for key, v in tensors.items():
        if key.startswith(prefix):
            idx, k = key[len(prefix) :].split(".", 1)
            state.setdefault(int(idx), {})[k] = v
    for key, v in meta["scalars"].items():
        idx, k = key.split(".", 1)
        state.setdefault(int(idx), {})[k] = v
    return {"state": state, "param_groups": meta["param_groups"]}


def rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    np_state = np.random.get_state()
    py_state = random.getstate()
    tensors = {"rng.torch": torch.get_rng_state(), "rng.numpy": torch.from_numpy(np_state[1].astype(np.int64))}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    meta = {"numpy": [np_state[0], int(np_state[2]), int(np_state[3]), float(np_state[4])], "python": [py_state[0], list(py_state[1]), py_state[2]]}
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    name, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((name, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = meta["python"]
    random.setstate((version, tuple(internal), gauss))


# ---- save / load ----


def save_snapshot(
    run_dir: Path,
    images_seen: int,
    modules: dict[str, nn.Module],  # e.g. {"G": G, "G_ema": G_ema, "D": D, "augment": pipe}
    optimizers: dict[str, torch.optim.Optimizer],
    state: dict,  # JSON-able training state (config, counters, sampler position, cpu time...)
    keep: int = 2,  # snapshots kept (>= 2: the previous one survives until the new one is complete)
) -> Path:
    snaps = Path(run_dir) / "snapshots"
    snaps.mkdir(parents=True, exist_ok=True)
    for stale in snaps.glob(".tmp-*"):  # leftovers of a killed save
        shutil.rmtree(stale, ignore_errors=True)
    name = f"snapshot-{images_seen:09d}"
    tmp = snaps / f".tmp-{name}-{os.getpid()}"
    tmp.mkdir()
    tensors: dict[str, torch.Tensor] = {}
    for mname, m in modules.items():
        m = getattr(m, "module", m)
        for k, v in m.state_dict().items():
            tensors[f"{mname}.{k}"] = v
    opt_meta = {}
    for oname, opt in optimizers.items():
        t, meta = flatten_optimizer(oname, opt)
        tensors.update(t)
        opt_meta[oname] = meta
    t, rng_meta = rng_state()
    tensors.update(t)
    save_state_dict(tensors, tmp / TENSORS)
    full_state = {**state, "images_seen": images_seen, "optimizers": opt_meta, "rng": rng_meta, "saved_at": time.time()}
    (tmp / STATE).write_text(json.dumps(full_state))
    for f in (TENSORS, STATE):
        _fsync_file(tmp / f)
    final = snaps / name
    if final.exists():  # same images_seen saved twice (e.g. save at exit right after a periodic save)
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_dir(snaps)
    write_json_atomic(Path(run_dir) / LATEST, {"snapshot": f"snapshots/{name}", "images_seen": images_seen})
    _fsync_dir(Path(run_dir))
    old = sorted(p for p in snaps.glob("snapshot-*") if p.name != name)
    for p in old[: max(0, len(old) - (keep - 1))]:
        shutil.rmtree(p, ignore_errors=True)
    return final


def load_snapshot(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, state) of one snapshot folder; CheckpointError if incomplete or unreadable."""
    path = Path(path)
    if not (path / STATE).is_file() or not (path / TENSORS).is_file():
        raise CheckpointError(f"{path} is not a complete snapshot (needs {TENSORS} and {STATE})")
    try:
        state = json.loads((path / STATE).read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path / STATE} is unreadable: {e}") from e
    return load_state_dict(path / TENSORS), state


def module_state(tensors: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    prefix = name + "."
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def is_complete(snap: Path) -> bool:
    """Both files present, state.json parses and the safetensors header covers the whole file
    (cheap: the tensors are not read)."""
    from safetensors import safe_open

    try:
        json.loads((snap / STATE).read_text())
        with safe_open(str(snap / TENSORS), framework="pt") as f:
            f.keys()
        return True
    except Exception:  # missing, truncated, garbage: not a snapshot to resume from
        return False


def snapshot_of_run(run_dir: Path) -> Path:
    """The snapshot `latest` points to; if that one is unreadable, the newest complete one."""
    run_dir = Path(run_dir)
    candidates = []
    try:
        candidates.append(run_dir / json.loads((run_dir / LATEST).read_text())["snapshot"])
    except (OSError, ValueError, KeyError):
        pass
    candidates += sorted((run_dir / "snapshots").glob("snapshot-*"), reverse=True)
    for c in candidates:
        if is_complete(c):
            return c
    raise CheckpointError(f"no complete snapshot in {run_dir}")


def run_number(p: Path) -> int:
    head = p.name.split("-", 1)[0]
    return int(head) if head.isdigit() else -1


def resolve_resume(spec: str, outdir: Path) -> tuple[Path, Path]:
    """`--resume` value -> (run folder, snapshot folder). `latest` = the run in outdir whose snapshot was
    written last (the run that was training most recently, not the highest-numbered one: an older run
    resumed after newer experiments is the one to continue); otherwise a run folder or a snapshot folder."""
    if spec == "latest":
        found = []
        for run in (p for p in Path(outdir).glob("*") if p.is_dir() and run_number(p) >= 0):
            try:
                snap = snapshot_of_run(run)
            except CheckpointError:
                continue
            found.append(((snap / STATE).stat().st_mtime, run_number(run), run, snap))
        if not found:
            raise CheckpointError(f"--resume latest: no run with a complete snapshot under {outdir}")
        _, _, run, snap = max(found, key=lambda f: f[:2])
        return run, snap
    p = Path(spec).expanduser()
    if (p / STATE).is_file():
        return p.parent.parent, p
    if p.is_dir():
        return p, snapshot_of_run(p)
    raise CheckpointError(f"--resume {spec}: not a run folder or snapshot folder")


BRANCH = "BRANCH.json"


def branch_run(snap: Path, new_run: Path, changed: dict) -> Path:
    """Start run folder `new_run` (made by the caller, empty) as a branch of snapshot `snap`: a copy of the
    snapshot (its D, Adam state, EMA and counters: images seen and CPU-hours carry on), the source run's
    lineage (init_from.json), and BRANCH.json naming the source snapshot and what the branch changes.
    Returns the copied snapshot, to be resumed. The copy gets fresh file times, so `--resume latest`
    picks the branch (the run started last) until another run snapshots."""
    snap, new_run = Path(snap), Path(new_run)
    src_run = snap.parent.parent
    dst = new_run / "snapshots" / snap.name
    shutil.copytree(snap, dst, copy_function=shutil.copy)
    if (src_run / "init_from.json").is_file():
        shutil.copy(src_run / "init_from.json", new_run / "init_from.json")
    write_json_atomic(new_run / BRANCH, {"branched_from": f"{src_run.name}/snapshots/{snap.name}", "changed": changed, "time": time.time()})
    write_json_atomic(new_run / LATEST, {"snapshot": f"snapshots/{snap.name}", "images_seen": json.loads((snap / STATE).read_text())["images_seen"]})
    return dst


def branch_chain(run_dir: Path) -> list[dict]:
    """The snapshots a run branched from, nearest first ([] for a run that was never branched): each
    BRANCH.json record, followed through the source runs that sit beside it (a chain stops where a
    source run folder is gone)."""
    chain, run_dir, seen = [], Path(run_dir), set()
    while (run_dir / BRANCH).is_file() and run_dir.name not in seen:
        seen.add(run_dir.name)
        rec = json.loads((run_dir / BRANCH).read_text())
        chain.append({k: rec[k] for k in ("branched_from", "changed") if k in rec})
        run_dir = run_dir.parent / Path(rec["branched_from"]).parts[0]
    return chain
