"""train/diagnostics/probe_d.py: loads a snapshot's D and G_ema as trained, and scores sources the same way."""

import torch

from train.loop import snapshot as S
from train.loop.presets import make_config
from train.diagnostics.probe_d import d_scores, load_run, main, probe
from train.loop.train import Dist, Trainer

from tests.test_train import CPU, lite0, tiny_data  # noqa: F401  (lite0 is a fixture)


def _snapshot(tmp_path, lite0):
    tr = Trainer(make_config("tiny", {"d_mbstd": 2}), CPU, Dist(CPU), tiny_data(), lite0)
    tr.step(), tr.step()
    S.save_snapshot(tmp_path, tr.images_seen, tr.modules(), tr.optimizers(), tr.train_state())
    return tr


def test_load_run_restores_the_trained_d_and_g_ema(tmp_path, lite0):
    tr = _snapshot(tmp_path, lite0)
    cfg, D, G, aug, state = load_run(tmp_path, lite0)  # a run folder: its latest snapshot
    assert cfg == tr.cfg and state["images_seen"] == tr.images_seen
    for k, v in tr.D.state_dict().items():
        assert torch.equal(D.state_dict()[k], v), k
    for k, v in tr.G_ema.state_dict().items():
        assert torch.equal(G.state_dict()[k], v), k
    assert D.training and not G.training  # D scored as in training (batch statistics), G_ema as exported


def test_probe_scores_the_same_photos_alike_and_different_photos_differently(tmp_path, lite0):
    _snapshot(tmp_path, lite0)
    _, D, G, aug, _ = load_run(tmp_path, lite0)
    train_ds = tiny_data(16, seed=0)
    same = probe(D, G, aug, train_ds, train_ds, n=8, batch=4)
    assert set(same) == {"train", "test", "fake"}
    for src in same.values():
        for r in src.values():
            assert r["n"] == 8 and 0.0 <= r["rt"] <= 1.0 and torch.isfinite(torch.tensor(r["logit"]))
        assert len(src["aug"]["head_logits"]) == 4
    assert same["train"] == same["test"]  # the same photos, batches and augmentations: the same scores
    other = probe(D, G, aug, train_ds, tiny_data(16, seed=1), n=8, batch=4)
    assert other["train"] == same["train"]
    assert other["test"]["plain"]["logit"] != same["test"]["plain"]["logit"]


def test_missing_run_is_a_clear_error(tmp_path, capsys):
    assert main([str(tmp_path / "nope"), "--threads", "1"]) == 2
    assert "no complete snapshot" in capsys.readouterr().err


def test_d_scores_split_d_by_scale_without_changing_it(tmp_path, lite0):
    _snapshot(tmp_path, lite0)
    _, D, _, aug, _ = load_run(tmp_path, lite0)
    x = tiny_data(8, seed=2).batch(torch.arange(8), False, None)
    state = {k: v.clone() for k, v in D.state_dict().items()}
    overall, heads = d_scores(D, aug, [x], augment=False)
    D.load_state_dict(state)  # the same spectral-norm step again
    with torch.no_grad():
        direct = D(x).mean(1).numpy()
    assert heads.shape == (8, 4)
    assert abs(overall - direct).max() < 1e-5
