"""The test and train photos of ../shared/data/birds256{,_more} for the fidelity metrics, and their Lite2
features cached under ~/.cache/birdanim/fidelity ($BIRDANIM_CACHE).

    photos = read_meta("test")                         # rows of meta.csv, both packs
    imgs = read_images(photos[:4])                     # uint8 [4, 256, 256, 3]
    feats = cached_features(photos, load_lite2)        # float32 [N, 1280], computed once per photo

The photos are the packs' 256x256 crops, made with the same 1.25 margin rule as the benchmark's crops,
so their features are taken as they are (no second detection).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from birdanim import paths
from birdanim.paths import data_dir

PACKS = ("birds256", "birds256_more")


@dataclass(frozen=True)
class Photo:
    file: str  # name inside the pack's zip, e.g. 000002.jpg (unique across packs and splits)
    pack: str  # birds256 or birds256_more
    split: str  # train or test
    species: str  # CUB class (e.g. 001.Black_footed_Albatross) or Kaggle species name
    dataset: str  # "CUB" or "Kaggle"
    pose: str  # flying, perched, unusable or "" (aps360_pose; empty for Kaggle and most of birds256_more)

    @property
    def zip_path(self) -> Path:
        return data_dir() / self.pack / f"{self.split}.zip"


def read_meta(split: str, data: Path | None = None) -> list[Photo]:
    """All rows of `split` in both packs' meta.csv (FileNotFoundError when the data are missing)."""
    root = Path(data) if data is not None else data_dir()
    out = []
    for pack in PACKS:
        with open(root / pack / "meta.csv", newline="") as f:
            for r in csv.DictReader(f):
                if r["split"] == split:
                    ds = "CUB" if r["source_dataset"].startswith("CUB") else "Kaggle"
                    out.append(Photo(r["file"], pack, split, r["species_or_class"], ds, r.get("aps360_pose", "")))
    return out


def read_images(photos: list[Photo]) -> np.ndarray:
    """uint8 [N, 256, 256, 3] RGB in the order of `photos` (each zip opened once)."""
    out: list[np.ndarray | None] = [None] * len(photos)
    by_zip: dict[Path, list[int]] = {}
    for i, p in enumerate(photos):
        by_zip.setdefault(p.zip_path, []).append(i)
    for zp, idx in by_zip.items():
        with zipfile.ZipFile(zp) as z:
            members = {Path(n).name: n for n in z.namelist()}
            for i in idx:
                out[i] = np.asarray(Image.open(io.BytesIO(z.read(members[photos[i].file]))).convert("RGB"))
    return np.stack(out) if out else np.zeros((0, 256, 256, 3), np.uint8)


def labelled(split: str, max_perched: int | None = None, seed: int = 0) -> tuple[list[Photo], np.ndarray]:
    """CUB photos of `split` labelled flying or perched, and y (1 = flying). max_perched: keep all flying
    photos and a random (seeded) subset of that many perched ones (None or 0: all)."""
    photos = [p for p in read_meta(split) if p.pose in ("flying", "perched")]
    if max_perched:
        perched = [i for i, p in enumerate(photos) if p.pose == "perched"]
        if len(perched) > max_perched:
            drop = set(np.random.default_rng(seed).permutation(perched)[max_perched:].tolist())
            photos = [p for i, p in enumerate(photos) if i not in drop]
    return photos, np.array([p.pose == "flying" for p in photos], np.float64)


def _zip_key(zp: Path) -> str:
    st = zp.stat()
    return hashlib.sha256(f"{zp.resolve()}:{st.st_size}:{int(st.st_mtime)}".encode()).hexdigest()[:12]


def cached_features(photos: list[Photo], load_net: Callable[[], object], cache_dir: Path | None = None,
                    batch: int = 32, tag: str = "lite2") -> np.ndarray:
    """Pooled features [N, 1280] of the photos as they are (by default Lite2's; `tag` names the network
    `load_net()` returns); each (pack, split) zip's features are kept in
    cache_dir()/fidelity/<tag>-<pack>-<split>-<zip key>.npz and only missing photos are computed (the network
    is loaded only then)."""
    from birdanim.metrics.fidelity import embed

    cache_dir = Path(cache_dir) if cache_dir is not None else paths.cache_dir() / "fidelity"
    cache_dir.mkdir(parents=True, exist_ok=True)
    net = None
    out = np.zeros((len(photos), 1280), np.float32)
    groups: dict[tuple[str, str], list[int]] = {}
    for i, p in enumerate(photos):
        groups.setdefault((p.pack, p.split), []).append(i)
    for (pack, split), idx in groups.items():
        path = cache_dir / f"{tag}-{pack}-{split}-{_zip_key(photos[idx[0]].zip_path)}.npz"
        known: dict[str, np.ndarray] = {}
        if path.is_file():
            with np.load(path, allow_pickle=False) as z:
                known = dict(zip(z["names"].tolist(), z["feats"]))
        missing = sorted({photos[i].file for i in idx} - set(known), key=str)
        if missing:
            net = net or load_net()
            by_name = {photos[i].file: photos[i] for i in idx}
            todo = [by_name[m] for m in missing]
            for k in range(0, len(todo), 128):  # bounded memory; saved after each chunk, so a killed run resumes
                chunk = todo[k : k + 128]
                feats = embed(net, read_images(chunk), batch=batch)
                known.update(zip([p.file for p in chunk], feats))
                names = sorted(known)
                tmp = path.with_name(path.name + ".tmp.npz")
                np.savez(tmp, names=np.array(names), feats=np.stack([known[n] for n in names]).astype(np.float32))
                os.replace(tmp, path)
        for i in idx:
            out[i] = known[photos[i].file]
    return out
