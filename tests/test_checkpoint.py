import json
import pickle

import pytest
import torch

from birdanim.checkpoint import CheckpointError, load_generator, load_meta, save_generator
from birdanim.models import DCGANConfig, DCGANGenerator, Generator
from tests.conftest import tiny_generator_config


def _perturb(G):
    for m in G.modules():
        if hasattr(m, "noise_strength"):
            m.noise_strength.data.fill_(0.2)
    G.mapping.w_avg.normal_()
    return G


def test_round_trip_is_bit_exact_and_rebuilds_from_config(tmp_path, tiny_G):
    G = _perturb(tiny_G)
    save_generator(G, tmp_path / "g", meta={"kimg": 1.5})
    G2 = load_generator(tmp_path / "g")
    assert G2.cfg == G.cfg and G2 is not G
    for (k, a), (k2, b) in zip(G.state_dict().items(), G2.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k
    z = torch.randn(2, G.z_dim)
    assert torch.equal(G(z), G2(z))
    cfg = json.loads((tmp_path / "g" / "config.json").read_text())
    assert cfg["arch"] == "stylegan2" and cfg["config"]["img_resolution"] == 32
    meta = load_meta(tmp_path / "g")
    assert meta["kimg"] == 1.5 and "birdanim_version" in meta


def test_fp16_storage_computes_in_fp32(tmp_path, tiny_G):
    save_generator(tiny_G, tmp_path / "g16", fp16=True)
    G2 = load_generator(tmp_path / "g16")
    assert all(p.dtype == torch.float32 for p in G2.parameters())
    z = torch.randn(2, tiny_G.z_dim)
    assert torch.allclose(tiny_G(z), G2(z), atol=0.05)


def test_dcgan_round_trip(tmp_path):
    G = DCGANGenerator(DCGANConfig(img_resolution=32, ngf=8)).eval()
    save_generator(G, tmp_path / "d")
    G2 = load_generator(tmp_path / "d")
    assert isinstance(G2, DCGANGenerator)
    z = torch.randn(2, 100)
    assert torch.equal(G(z), G2(z))


def test_pickle_payload_is_refused(tmp_path, tiny_G):
    save_generator(tiny_G, tmp_path / "g")

    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('pickle executed')",))

    (tmp_path / "g" / "model.safetensors").write_bytes(pickle.dumps({"w": Boom()}))
    with pytest.raises(CheckpointError, match="safetensors"):
        load_generator(tmp_path / "g")
    torch.save(tiny_G.state_dict(), tmp_path / "g" / "model.safetensors")  # a torch pickle zip
    with pytest.raises(CheckpointError):
        load_generator(tmp_path / "g")


def test_weights_must_match_config(tmp_path, tiny_G):
    save_generator(tiny_G, tmp_path / "g")
    cfg = json.loads((tmp_path / "g" / "config.json").read_text())
    cfg["config"]["mapping_layers"] = 3
    (tmp_path / "g" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="do not match"):
        load_generator(tmp_path / "g")


def test_missing_folder_and_offline_hub_give_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(CheckpointError, match="neither a checkpoint folder"):
        load_generator(tmp_path / "nope" / "deeper")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointError, match="Hugging Face repo"):
        load_generator("birdanim-test/does-not-exist")


def test_saves_unwrapped_module(tmp_path, tiny_G):
    class Wrapper(torch.nn.Module):  # stands in for DDP's .module
        def __init__(self, m):
            super().__init__()
            self.module = m

    save_generator(Wrapper(tiny_G), tmp_path / "w")
    assert isinstance(load_generator(tmp_path / "w"), Generator)


def test_atomic_path_renames_on_success_and_cleans_up_on_error(tmp_path):
    import os

    from birdanim.checkpoint import atomic_path

    target = tmp_path / "cache.npy"
    with atomic_path(target) as tmp:
        assert str(os.getpid()) in tmp.name and tmp.suffix == ".npy"  # per process; numpy keeps the name
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and list(tmp_path.iterdir()) == [target]
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"new" and list(tmp_path.iterdir()) == [target]
