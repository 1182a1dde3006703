"""The W+ encoder learns from the generator's samples, round-trips through safetensors, and is
picked up by the service only for the weights it was trained for."""

import pytest
import torch
from _anim_tiny import one_thread, tiny_generator  # noqa: F401 (autouse fixture)

from birdanim.checkpoint import CheckpointError, save_generator
from birdanim.engines.gan.encoder import EncoderConfig, WEncoder, load_encoder, save_encoder

from train.tools.train_encoder import main as train_main
from train.tools.train_encoder import sample_batch, train_encoder


@pytest.fixture(scope="module")
def G():
    return tiny_generator()


@pytest.mark.parametrize("backbone", ["cnn", "lite0"])
def test_untrained_encoder_predicts_w_avg(G, backbone):
    E = WEncoder(EncoderConfig(num_ws=G.num_ws, w_dim=G.w_dim, input_res=64, channels=(8, 16), backbone=backbone))
    E.w_avg.copy_(G.mapping.w_avg)
    ws = E(torch.zeros(2, 3, 32, 32))
    assert ws.shape == (2, G.num_ws, G.w_dim) and torch.allclose(ws, G.mapping.w_avg.expand_as(ws))


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["cnn", "lite0"])
def test_training_beats_w_avg_on_new_samples(G, backbone):
    cfg = EncoderConfig(num_ws=G.num_ws, w_dim=G.w_dim, input_res=64 if backbone == "lite0" else 32,
                        channels=(16, 32, 32), backbone=backbone)
    E, losses = train_encoder(G, cfg, steps=100, batch=12, lr=1e-3, img_weight=0.0, img_every=0, seed=0, log=lambda s: None, clip=10.0)
    assert sum(losses[-20:]) < 0.95 * sum(losses[:20])
    ws, img = sample_batch(G, 64, torch.Generator().manual_seed(123), "cpu")
    with torch.no_grad():
        err_enc = (E(img) - ws).square().mean()
    err_avg = (G.mapping.w_avg - ws).square().mean()
    print(f"held-out ws error: encoder {err_enc:.4f}, w_avg {err_avg:.4f}")
    # A random tiny G hides much of ws in its images: a modest gain; the pretrained trunk learns faster.
    assert err_enc < (0.85 if backbone == "lite0" else 0.95) * err_avg


def test_script_saves_and_service_checks_weights(G, tmp_path):
    save_generator(G, tmp_path / "w")
    assert train_main(["--weights", str(tmp_path / "w"), "--steps", "3", "--batch", "2", "--threads", "1",
                       "--input-res", "64"]) == 0
    E = load_encoder(tmp_path / "w", G=G, weights_file=tmp_path / "w" / "model.safetensors")
    E2 = load_encoder(tmp_path / "w")
    x = torch.randn(1, 3, 32, 32)
    assert E.cfg.backbone == "lite0" and torch.equal(E(x), E2(x)) and E.w_avg.dtype == torch.float32
    assert not any(k.startswith("trunk._net") for k in E.state_dict())  # the frozen net is not saved
    save_generator(tiny_generator(seed=9), tmp_path / "other")
    with pytest.raises(CheckpointError, match="other generator weights"):
        load_encoder(tmp_path / "w", weights_file=tmp_path / "other" / "model.safetensors")
    with pytest.raises(CheckpointError, match="no encoder"):
        load_encoder(tmp_path / "other")
    save_encoder(E, tmp_path / "copy")
    assert (tmp_path / "copy" / "encoder" / "config.json").is_file()
