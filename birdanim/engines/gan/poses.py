"""Target poses of one wing-beat cycle: ws of real flying-bird frames projected into OUR generator.

assets/target_poses/ holds pose_00.npy ... (float32 [num_ws, w_dim]), pose_00.png ... (renders by our
generator) and manifest.json naming the generator weights they were made for (sha256 of
model.safetensors). Poses only mean something for the weights they were projected into, so loading
checks that hash against the generator actually loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from birdanim.checkpoint import write_json_atomic
from birdanim.errors import WeightsError
from birdanim.paths import ASSETS

DEFAULT_POSES_DIR = ASSETS / "target_poses"
MANIFEST = "manifest.json"


@dataclass
class Poses:
    ws: torch.Tensor  # [K, num_ws, w_dim] float32, in cycle order
    names: list[str]  # pose file stems, e.g. pose_00
    manifest: dict  # what manifest.json says (weights hash, sources, settings)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def load_poses(poses_dir: str | Path | None = None, weights_file: str | Path | None = None,
               num_ws: int | None = None, w_dim: int | None = None) -> Poses:
    """Load the poses; raise WeightsError when they are missing, malformed, or made for other weights.

    weights_file: the generator's model.safetensors (None skips the hash check, e.g. for a G that was
    never saved); num_ws, w_dim: the generator's ws shape, checked when given. poses_dir None:
    $BIRDANIM_POSES, else the repository's assets/target_poses/ (the app and the CLI alike).
    """
    d = Path(poses_dir) if poses_dir is not None else Path(os.environ.get("BIRDANIM_POSES") or DEFAULT_POSES_DIR)
    man_path = d / MANIFEST
    if not man_path.is_file():
        raise WeightsError(f"no target poses in {d} (missing {MANIFEST}); make them with "
                           "`python -m train.tools.make_target_poses --weights <weights folder> --out <folder>`")
    manifest = json.loads(man_path.read_text())
    if weights_file is not None:
        have, want = sha256_file(weights_file), manifest.get("weights_sha256")
        if have != want:
            raise WeightsError(f"the target poses in {d} were made for generator weights {str(want)[:12]}..., "
                               f"but the loaded weights are {have[:12]}...; re-run train/tools/make_target_poses.py")
    names = manifest.get("poses") or sorted(p.stem for p in d.glob("pose_*.npy"))
    if len(names) < 2:
        raise WeightsError(f"{d} holds {len(names)} poses; at least 2 are needed for a cycle")
    try:
        ws = np.stack([np.load(d / f"{n}.npy", allow_pickle=False) for n in names]).astype(np.float32)
    except (OSError, ValueError) as e:
        raise WeightsError(f"could not read the poses in {d}: {e}") from e
    if ws.ndim != 3 or (num_ws is not None and ws.shape[1] != num_ws) or (w_dim is not None and ws.shape[2] != w_dim):
        raise WeightsError(f"poses have shape {ws.shape[1:]}, the generator needs [{num_ws}, {w_dim}]")
    return Poses(torch.from_numpy(ws), list(names), manifest)


def save_poses(out_dir: str | Path, ws: torch.Tensor, renders: np.ndarray | None, weights_file: str | Path | None,
               extra: dict | None = None) -> Path:
    """Write pose_XX.npy (+ pose_XX.png renders, uint8 [K, H, W, 3]) and manifest.json."""
    from PIL import Image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = [f"pose_{i:02d}" for i in range(ws.shape[0])]
    for i, n in enumerate(names):
        np.save(out / f"{n}.npy", ws[i].detach().cpu().float().numpy())
        if renders is not None:
            Image.fromarray(renders[i]).save(out / f"{n}.png")
    manifest = {
        "poses": names,
        "weights_sha256": sha256_file(weights_file) if weights_file is not None else None,
        "weights_path": _display_path(weights_file) if weights_file is not None else None,
        **(extra or {}),
    }
    write_json_atomic(out / MANIFEST, manifest)
    return out


def _display_path(path: str | Path) -> str:
    """Relative to the repository when inside it (no machine-specific absolute paths in the manifest)."""
    p = Path(path).resolve()
    try:
        return str(p.relative_to(DEFAULT_POSES_DIR.parent.parent))
    except ValueError:
        return str(p)
