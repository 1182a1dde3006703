"""Checkpoints without pickled code: safetensors weights + config.json + meta.json.

A generator folder holds

    model.safetensors   the state dict (fp32, or fp16 for shipping; always computed in fp32)
    config.json         {"arch": "stylegan2" | "dcgan", "config": {...dataclass fields...}}
    meta.json           package version, images seen, metrics, anything else worth keeping

`load_generator` rebuilds the module from config.json alone and loads the weights. A local folder
works offline; anything else that looks like "owner/name" is fetched with
`huggingface_hub.hf_hub_download`. Nothing here ever unpickles.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
from pathlib import Path

import torch
from torch import nn

from birdanim.errors import WeightsError
from birdanim.paths import REPO_ROOT
from birdanim.models import DCGANConfig, DCGANGenerator, Generator, GeneratorConfig

WEIGHTS_FILE, CONFIG_FILE, META_FILE = "model.safetensors", "config.json", "meta.json"
ARCHS = {"stylegan2": (GeneratorConfig, Generator), "dcgan": (DCGANConfig, DCGANGenerator)}
HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+(@[\w./-]+)?$")


class CheckpointError(WeightsError, RuntimeError):
    """A checkpoint could not be found, read or trusted."""


def default_weights() -> str:
    """`$BIRDANIM_WEIGHTS` (a folder or a Hub repo id) or the repository's `weights/` folder."""
    return os.environ.get("BIRDANIM_WEIGHTS") or str(REPO_ROOT / "weights")


def arch_of(module: nn.Module) -> str:
    for name, (_, cls) in ARCHS.items():
        if isinstance(module, cls):
            return name
    raise CheckpointError(f"no registered architecture for {type(module).__name__}")


def config_dict(module: nn.Module) -> dict:
    return {"arch": arch_of(module), "config": dataclasses.asdict(module.cfg)}


def build_from_config(cfg: dict) -> nn.Module:
    try:
        cfg_cls, cls = ARCHS[cfg["arch"]]
        return cls(cfg_cls(**cfg["config"]))
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"invalid generator config {cfg!r}: {e}") from e


@contextlib.contextmanager
def atomic_path(path: Path):
    """Yields a temporary path beside `path`; on success it is renamed onto `path` (atomic), on error
    removed. The name carries the process id (several processes, e.g. torchrun ranks, may write the
    same file at once) and keeps the suffix (numpy appends .npy/.npz to names without it)."""
    path = Path(path)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: Path, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def save_state_dict(state: dict[str, torch.Tensor], path: Path, dtype: torch.dtype | None = None) -> None:
    """Write a state dict as safetensors atomically (temp file + rename)."""
    from safetensors.torch import save_file

    tensors = {}
    for k, v in state.items():
        v = v.detach().cpu()
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        tensors[k] = v.contiguous()
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file; anything else (a pickle above all) is refused."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is not a readable safetensors file ({e}); pickles are never loaded") from e


def save_generator(G: nn.Module, folder: str | os.PathLike, meta: dict | None = None, fp16: bool = False) -> Path:
    """Write `G` (unwrapped: not DDP, not compiled) as weights + config + meta into `folder`."""
    from birdanim import __version__

    G = getattr(G, "module", G)
    G = getattr(G, "_orig_mod", G)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_state_dict(G.state_dict(), folder / WEIGHTS_FILE, torch.float16 if fp16 else None)
    write_json_atomic(folder / CONFIG_FILE, config_dict(G))
    write_json_atomic(folder / META_FILE, {"birdanim_version": __version__, **(meta or {})})
    return folder


def resolve(path_or_hub_id: str | os.PathLike, filename: str, revision: str | None = None) -> Path:
    """Local path of `filename` in a checkpoint folder, or downloaded from a Hugging Face repo."""
    p = Path(path_or_hub_id)
    if p.is_dir():
        f = p / filename
        if not f.is_file():
            raise CheckpointError(f"{f} does not exist")
        return f
    s = str(path_or_hub_id)
    if not HUB_ID.match(s) or s.startswith((".", "/")):
        raise CheckpointError(f"{s} is neither a checkpoint folder nor a Hugging Face repo id (owner/name)")
    repo_id, _, rev = s.partition("@")
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as e:
        raise CheckpointError(f"{s} is not a local folder and huggingface_hub is not installed") from e
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision or rev or None))
    except Exception as e:  # offline, missing repo or file: one clear message
        raise CheckpointError(
            f"could not get {filename} from the Hugging Face repo {repo_id!r} ({type(e).__name__}: {e}). "
            "Offline? Pass a local weights folder instead (or set BIRDANIM_WEIGHTS to one)."
        ) from e


def load_config(path_or_hub_id) -> dict:
    return json.loads(resolve(path_or_hub_id, CONFIG_FILE).read_text())


def load_meta(path_or_hub_id) -> dict:
    try:
        return json.loads(resolve(path_or_hub_id, META_FILE).read_text())
    except CheckpointError:
        return {}


def load_generator(
    path_or_hub_id: str | os.PathLike | None = None, device: torch.device | str = "cpu", revision: str | None = None
) -> nn.Module:
    """Rebuild a generator from its config.json and load its weights, in fp32, in eval mode."""
    src = default_weights() if path_or_hub_id is None else path_or_hub_id
    cfg = json.loads(resolve(src, CONFIG_FILE, revision).read_text())
    G = build_from_config(cfg)
    state = load_state_dict(resolve(src, WEIGHTS_FILE, revision))
    expected = G.state_dict()
    missing, unexpected = expected.keys() - state.keys(), state.keys() - expected.keys()
    if missing or unexpected:
        raise CheckpointError(f"weights do not match config: missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}")
    G.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return G.to(device).eval().requires_grad_(False)
