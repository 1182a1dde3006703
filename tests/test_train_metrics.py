"""Metrics maths, evaluation of a tiny generator, export of G_ema and the comparison table."""

import copy
import json

import numpy as np
import pytest
import torch

from birdanim.checkpoint import load_generator, load_meta
from birdanim.imageops import tensor_to_uint8
from train.metrics import evaluate as E
from train.tools.export import export
from train.metrics.plot import table
from train.loop.presets import make_config
from train.loop.snapshot import load_snapshot, module_state, snapshot_of_run
from train.loop.train import Dist, Trainer, snapshot

CPU = torch.device("cpu")


def test_frechet_distance_matches_scipy_sqrtm():
    import scipy.linalg

    rng = np.random.RandomState(2)
    a, b = rng.randn(200, 16), rng.randn(200, 16) @ rng.randn(16, 16) * 0.3 + 1
    (m1, s1), (m2, s2) = E.stats(a), E.stats(b)
    ref = np.square(m1 - m2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(np.real(scipy.linalg.sqrtm(s1 @ s2)))
    assert E.frechet_distance(m1, s1, m2, s2) == pytest.approx(ref, rel=1e-6)


def test_frechet_distance_matches_closed_form():
    rng = np.random.RandomState(0)
    mu1, mu2 = rng.randn(8), rng.randn(8)
    s1, s2 = np.diag(rng.rand(8) + 0.5), np.diag(rng.rand(8) + 0.5)
    expected = np.square(mu1 - mu2).sum() + np.sum(np.diag(s1) + np.diag(s2) - 2 * np.sqrt(np.diag(s1) * np.diag(s2)))
    assert E.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-6)
    assert E.frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-6)


def test_kid_near_zero_for_same_distribution_and_positive_when_shifted():
    rng = np.random.RandomState(1)
    a, b = rng.randn(400, 32), rng.randn(400, 32)
    same = E.kid(a, b, num_subsets=20, max_subset=200)
    shifted = E.kid(a, b + 0.5, num_subsets=20, max_subset=200)
    assert abs(same) < 0.02 and shifted > 10 * abs(same) and shifted > 0.05


def test_precision_recall_see_quality_and_mode_collapse_apart():
    rng = np.random.RandomState(2)
    real = rng.randn(600, 16)
    same = rng.randn(600, 16)
    collapsed = real[rng.choice(600, 1)] + 0.1 * rng.randn(600, 16)  # every fake near one real point
    off = rng.randn(600, 16) + 4.0  # a different place altogether
    p, r = E.precision_recall(real, same)
    assert p > 0.6 and r > 0.6  # k = 3 in 16-d: the same distribution covers ~0.77, not 1
    p, r = E.precision_recall(real, collapsed)
    assert p > 0.9 and r < 0.05  # real-looking but covering almost nothing: recall shows the collapse
    p, r = E.precision_recall(real, off)
    assert p < 0.05 and r < 0.05


def test_roundtrip_keeps_shape_and_blurs():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8, generator=g)
    y = E.roundtrip(x, 16)
    assert y.shape == x.shape and y.dtype == torch.uint8
    assert (y.float() - x.float()).abs().mean() > 10  # detail is gone
    assert torch.equal(E.roundtrip(x, 64), x) or (E.roundtrip(x, 64).float() - x.float()).abs().max() <= 1
    assert torch.equal(E.roundtrip(x, 16, chunk=1), y)  # chunking (for memory) changes nothing


@pytest.fixture(scope="module")
def lite0():
    from birdanim.models.features import load_efficientnet_lite

    return load_efficientnet_lite(0)


@pytest.fixture(scope="module")
def lite2():
    from birdanim.models.features import load_efficientnet_lite

    return load_efficientnet_lite(2)


@pytest.mark.slow
def test_evaluate_tiny_generator(monkeypatch, lite2):
    torch.manual_seed(0)
    G = Trainer(make_config("tiny", {"d": "classic"}), CPU, Dist(CPU), _data(), None).G_ema
    real = np.random.RandomState(0).randn(64, 1280).astype(np.float32)
    monkeypatch.setattr(E, "real_features", lambda net, roundtrip_side=None: real)  # no 4k-image test set in a unit test
    rec = E.evaluate_generator(G, 16, ["fd", "kid"], CPU, lite2, None, batch=8)
    assert rec["n"] == 16 and rec["pixels"] == "uint8" and np.isfinite(rec["fd_lite2"]) and rec["fd_lite2"] > 0 and np.isfinite(rec["kid_lite2"])
    # Deterministic: seeds 0..n-1, constant noise.
    assert E.evaluate_generator(G, 16, ["kid"], CPU, lite2, None, batch=8)["kid_lite2"] == pytest.approx(rec["kid_lite2"])


def test_metrics_of_a_run_or_one_of_its_exports_go_to_the_runs_file(tmp_path):
    run = tmp_path / "00000-pg"
    (run / "gema" / "000004352").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    assert E.run_metrics_file(run) == run / "metrics.jsonl"
    assert E.run_metrics_file(run / "gema" / "000004352") == run / "metrics.jsonl"
    (tmp_path / "weights").mkdir()
    assert E.run_metrics_file(tmp_path / "weights") is None  # a weights folder: the shared cache file


def test_a_run_with_no_export_yet_is_nothing_to_measure(tmp_path, monkeypatch, capsys):
    """A new run (config.json, no gema/ yet) is a run, not a broken snapshot; with nothing pending no
    network is loaded (an evaluation loop polls its runs)."""
    run = tmp_path / "00003-default"
    run.mkdir()
    (run / "config.json").write_text("{}")
    monkeypatch.setattr("birdanim.models.features.load_efficientnet_lite", lambda *a, **k: pytest.fail("loaded Lite2"))
    assert E.main([str(run), "--n", "8"]) == 0
    assert "no G_ema export to measure" in capsys.readouterr().out
    assert E.run_metrics_file(run) == run / "metrics.jsonl"


def _data(side: int = 32):
    from train.loop.data import ImageDataset

    g = torch.Generator().manual_seed(0)
    return ImageDataset.from_tensor(torch.randint(0, 256, (8, 3, side, side), dtype=torch.uint8, generator=g))


def test_export_gema_and_if_better(tmp_path, lite0):
    cfg = make_config("tiny", {"export_gema": True, "d_equal_heads": True, "threads": 1})
    tr = Trainer(cfg, CPU, Dist(CPU), _data(), lite0)
    tr.step()
    run = tmp_path / "00000-tiny"
    run.mkdir()
    snapshot(tr, cfg, run)
    (run / "metrics.jsonl").write_text(json.dumps({"kimg": tr.images_seen / 1000, "fd_lite2": 50.0, "n": 16}) + "\n")
    written, meta = export(run, tmp_path / "w")
    assert written and meta["metrics"]["fd_lite2"] == 50.0 and meta["images_seen"] == 4
    # the recipe beyond the preset's name: export_gema and threads are bookkeeping, d_equal_heads is not
    assert meta["preset_overrides"] == {"d_equal_heads": True} and load_meta(tmp_path / "w")["preset_overrides"] == {"d_equal_heads": True}
    G = load_generator(tmp_path / "w")
    tensors, _ = load_snapshot(snapshot_of_run(run))
    ref = module_state(tensors, "G_ema")
    for k, v in G.state_dict().items():
        assert torch.allclose(v, ref[k].float(), rtol=1e-2, atol=1e-3), k  # fp16 storage
    assert load_meta(tmp_path / "w")["run"] == "00000-tiny"
    assert (run / "gema" / f"{tr.images_seen:09d}" / "model.safetensors").is_file()
    # --if-better: an equal FD does not overwrite; a better one does.
    assert export(run, tmp_path / "w", if_better=True)[0] is False
    # ... an FD measured on another number of samples is not compared (FD falls as n grows)
    (run / "metrics.jsonl").write_text(json.dumps({"kimg": tr.images_seen / 1000, "fd_lite2": 40.0, "n": 32}) + "\n")
    with pytest.raises(Exception, match="same n"):
        export(run, tmp_path / "w", if_better=True)
    # ... nor one measured on other pixels (raw outputs vs uint8)
    (run / "metrics.jsonl").write_text(json.dumps({"kimg": tr.images_seen / 1000, "fd_lite2": 40.0, "n": 16, "pixels": "uint8"}) + "\n")
    with pytest.raises(Exception, match="different pixels"):
        export(run, tmp_path / "w", if_better=True)
    (run / "metrics.jsonl").write_text(json.dumps({"kimg": tr.images_seen / 1000, "fd_lite2": 40.0, "n": 16}) + "\n")
    assert export(run, tmp_path / "w", if_better=True)[0] is True
    assert load_meta(tmp_path / "w")["metrics"]["fd_lite2"] == 40.0
    # A G_ema export (RUN/gema/N: what is left of a snapshot after keep_snapshots removed it) exports the same weights.
    import dataclasses

    (run / "config.json").write_text(json.dumps(dataclasses.asdict(cfg)))
    written, meta2 = export(run / "gema" / f"{tr.images_seen:09d}", tmp_path / "w2")
    assert written and meta2["images_seen"] == 4 and meta2["metrics"]["fd_lite2"] == 40.0 and meta2["snapshot"].startswith("gema/")
    for k, v in load_generator(tmp_path / "w2").state_dict().items():
        assert torch.equal(v, G.state_dict()[k]), k


def test_comparison_table(tmp_path):
    run = tmp_path / "00001-dcgan"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"arch": "dcgan", "d": "classic", "resolution": 64}))
    (run / "log.jsonl").write_text("\n".join(json.dumps({"kimg": k, "img_s": 10.0, "cpu_hours": k / 20}) for k in (1, 2)) + "\n")
    (run / "metrics.jsonl").write_text("\n".join(json.dumps({"kimg": k, "fd_lite2": f, "cpu_hours": k / 20}) for k, f in ((1, 90.0), (2, 70.0))) + "\n")
    t = table([run], budgets=(0.06, 0.1, 0.5))
    row = t.splitlines()[-1]
    assert "dcgan" in row and "0.05: 90, 0.10: 70" in row and "| 10.00 |" in row
    # best within 0.06 CPU-h = 90 (only the first point), within 0.1 = 70, 0.5 not reached by this run
    assert row.endswith("| 90 | 70 | - |"), row
    # recall: higher is better, so the best within a budget is the largest value
    (run / "metrics.jsonl").write_text("\n".join(json.dumps({"kimg": k, "recall_lite2": r, "cpu_hours": k / 20}) for k, r in ((1, 0.3), (2, 0.1))) + "\n")
    assert table([run], "recall_lite2", budgets=(0.06, 0.1)).splitlines()[-1].endswith("| 0.3 | 0.3 |")


def test_curve_from_scratch_adds_the_lineage_of_init_from(tmp_path):
    from train.metrics.plot import curve

    run = tmp_path / "00002-default"
    run.mkdir()
    (run / "metrics.jsonl").write_text(json.dumps({"kimg": 2.0, "fd_lite2": 80.0, "cpu_hours": 0.1}) + "\n")
    k, h, m = curve(run)
    assert (k.tolist(), h.tolist(), m.tolist()) == ([2.0], [0.1], [80.0])
    assert curve(run, with_lineage=True)[1].tolist() == [0.1]  # no init_from.json: a run from scratch
    (run / "init_from.json").write_text(json.dumps({"source": "weights", "images_seen": 38056, "cpu_hours": 2.5}))
    k, h, _ = curve(run, with_lineage=True)
    assert abs(k[0] - 40.056) < 1e-9 and abs(h[0] - 2.6) < 1e-9


def test_init_from_exported_weights(tmp_path, lite0):
    cfg = make_config("tiny")
    tr = Trainer(cfg, CPU, Dist(CPU), _data(), lite0)
    tr.step()
    from birdanim.checkpoint import save_generator

    save_generator(tr.G_ema, tmp_path / "w")
    fresh = Trainer(make_config("tiny", {"seed": 5}), CPU, Dist(CPU), _data(), lite0)
    fresh.init_generator_from(str(tmp_path / "w"))
    for a, b in zip(fresh.G.state_dict().values(), tr.G_ema.state_dict().values()):
        assert torch.equal(a, b)
    other = Trainer(make_config("tiny", {"w_dim": 16}), CPU, Dist(CPU), _data(), lite0)
    with pytest.raises(Exception, match="differs"):
        other.init_generator_from(str(tmp_path / "w"))


def test_run_started_from_weights_counts_their_images_and_cpu_hours(tmp_path, lite0):
    """--init-from writes init_from.json; export adds the source's images and CPU-hours to the run's own."""
    from birdanim.checkpoint import save_generator
    from train.loop.train import train as run_training

    src = tmp_path / "src"
    tr = Trainer(make_config("tiny"), CPU, Dist(CPU), _data(), lite0)
    save_generator(tr.G_ema, src, {"run": "00007-default", "images_seen": 5000, "cpu_hours": 2.5})
    cfg = make_config("tiny", {"kimg": 0.008})
    assert run_training(cfg, CPU, Dist(CPU), tmp_path / "runs", None, None, str(src), False, dataset=_data(), feature_net=lite0) == 0
    run = next((tmp_path / "runs").iterdir())
    assert json.loads((run / "init_from.json").read_text()) == {"source": str(src), "run": "00007-default", "images_seen": 5000, "cpu_hours": 2.5}
    _, meta = export(run, tmp_path / "w")
    assert meta["total_images_seen"] == 5000 + meta["images_seen"] and meta["images_seen"] >= 8
    assert meta["total_cpu_hours"] == pytest.approx(2.5 + meta["cpu_hours"])
    assert load_meta(tmp_path / "w")["init_from"]["run"] == "00007-default"
    assert load_meta(tmp_path / "w")["init_from"]["source"] == f"{tmp_path.name}/src"  # no absolute local path


def test_run_from_weights_warms_up_d_with_g_frozen_then_trains_both(tmp_path, lite0):
    """--init-from: the first d_warmup_kimg images train D only (G, its w_avg and G_ema bit-identical);
    then G trains and G_ema follows at the full half-life, with no ramp-up. A resume mid-warm-up
    continues it; a run from scratch has no warm-up."""
    from birdanim.checkpoint import save_generator

    save_generator(Trainer(make_config("tiny", {"seed": 3}), CPU, Dist(CPU), _data(), lite0).G_ema, tmp_path / "w")
    cfg = make_config("tiny", {"d_warmup_kimg": 0.008, "ema_kimg": 1.0})  # 2 D-only steps of batch 4
    tr = Trainer(cfg, CPU, Dist(CPU), _data(), lite0)
    tr.init_generator_from(str(tmp_path / "w"))
    g0, e0, d0 = (copy.deepcopy(m.state_dict()) for m in (tr.G, tr.G_ema, tr.D))
    s = tr.step()
    assert s["d_warmup"] == 1.0 and np.isfinite(s["loss_g"]) and tr.images_seen == 4
    state = tr.train_state()  # resume mid-warm-up: one D-only step left
    tr2 = Trainer(cfg, CPU, Dist(CPU), _data(), lite0)
    tr2.g_from_weights, tr2.d_warmup_images = state["g_from_weights"], state["d_warmup_images"]
    assert tr2.step()["d_warmup"] == 1.0 and "d_warmup" not in tr2.step()
    tr.step()
    for a, b in ((tr.G, g0), (tr.G_ema, e0)):
        assert all(torch.equal(v, b[k]) for k, v in a.state_dict().items())
    assert any(not torch.equal(v, d0[k]) for k, v in tr.D.state_dict().items())
    assert "d_warmup" not in tr.step()  # warm-up over: G moves, G_ema by 0.5 ** (4 / 1000) of the way only
    moved = [(k, v) for k, v in tr.G.state_dict().items() if not torch.equal(v, g0[k])]
    assert moved
    k, v = next((k, v) for k, v in moved if v.is_floating_point() and k in dict(tr.G.named_parameters()))
    beta = 0.5 ** (4 / 1000)
    torch.testing.assert_close(tr.G_ema.state_dict()[k], v.lerp(g0[k], beta))
    scratch = Trainer(cfg, CPU, Dist(CPU), _data(), lite0)
    assert "d_warmup" not in scratch.step()


def test_init_from_lower_resolution_grows_the_generator(tmp_path, lite0):
    """A 16 px generator grows into a 32 px one: its blocks are loaded, the new block is fresh, and
    with the new toRGB silenced the output is exactly the upsampled 16 px image (skip architecture)."""
    from birdanim.checkpoint import save_generator
    from birdanim.models.layers import upsample2x
    from train.loop.networks import build_generator

    small = build_generator(make_config("tiny", {"resolution": 16, "seed": 3})).eval()
    save_generator(small, tmp_path / "w16")
    tr = Trainer(make_config("tiny"), CPU, Dist(CPU), _data(), lite0)
    msg = tr.init_generator_from(str(tmp_path / "w16"))
    assert "16 px -> 32 px" in msg
    big = tr.G_ema
    for k, v in small.state_dict().items():
        assert torch.equal(big.state_dict()[k], v) and torch.equal(tr.G.state_dict()[k], v), k
    last = big.synthesis.blocks[-1]
    assert last.resolution == 32 and not torch.equal(last.conv1.weight, torch.zeros_like(last.conv1.weight))
    with torch.no_grad():
        last.torgb.weight.zero_()
        last.torgb.bias.zero_()
        z = torch.randn(2, small.z_dim)
        torch.testing.assert_close(big(z), upsample2x(small(z)), rtol=1e-5, atol=1e-5)
    # a larger source, or a wider one, is refused
    with pytest.raises(Exception, match="differs"):
        Trainer(make_config("tiny", {"resolution": 8}), CPU, Dist(CPU), _data(8), lite0).init_generator_from(str(tmp_path / "w16"))
    with pytest.raises(Exception, match="differs"):
        Trainer(make_config("tiny", {"channel_base": 128}), CPU, Dist(CPU), _data(), lite0).init_generator_from(str(tmp_path / "w16"))


def test_init_from_narrower_generator_widens_it_and_keeps_its_images(tmp_path, lite0):
    """A trained tiny generator loaded into one with twice the channels (channel_base 256 -> 512, so
    8/16/32 -> 16/32/64 channels at 32/16/8 px) draws the same images; one training step then moves
    the zero weights that connect the new channels to the old ones (they are not dead)."""
    from birdanim.checkpoint import save_generator

    src_tr = Trainer(make_config("tiny", {"seed": 3}), CPU, Dist(CPU), _data(), lite0)
    src_tr.step()
    src_tr.step()  # trained a little: biases, noise strengths and toRGB no longer at their init
    src = src_tr.G_ema.eval()
    save_generator(src, tmp_path / "w")  # fp32: the comparison below is exact up to float rounding
    cfg = make_config("tiny", {"channel_base": 512, "d_warmup_kimg": 0.0})
    tr = Trainer(cfg, CPU, Dist(CPU), _data(), lite0)
    msg = tr.init_generator_from(str(tmp_path / "w"))
    assert "channels" in msg and "32: 8 -> 16" in msg, msg
    assert tr.G.synthesis.blocks[-1].conv1.weight.shape == (16, 16, 3, 3)
    z = torch.randn(3, src.z_dim)
    with torch.no_grad():
        torch.testing.assert_close(tr.G_ema.eval()(z), src(z), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(tr.G(z), src(z), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(tr.G(z, noise_mode="none"), src(z, noise_mode="none"), rtol=1e-4, atol=1e-5)
    w = tr.G.synthesis.blocks[-1].conv1.weight
    assert torch.count_nonzero(w[:8, 8:]) == 0 and torch.count_nonzero(w[8:]) > 0
    tr.step()
    assert torch.count_nonzero(tr.G.synthesis.blocks[-1].conv1.weight[:8, 8:]) > 0


def test_embed_sees_generated_images_as_the_user_does():
    """A generator's float output is clipped and quantised to uint8 before the feature network, like
    the real photos: out-of-range values must not reach the metric."""

    class MeanNet:  # stands in for Lite2: the per-channel mean is enough to see clipping
        def pooled(self, x):
            assert x.min() >= -1 and x.max() <= 1
            return x.mean(dim=(2, 3))

    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 8, 8, generator=g) * 1.5  # ~50% of values outside [-1, 1]
    u8 = torch.from_numpy(tensor_to_uint8(x)).permute(0, 3, 1, 2)
    got = E.embed(MeanNet(), x)
    assert np.allclose(got, E.embed(MeanNet(), u8))
    assert np.abs(got - x.mean(dim=(2, 3)).numpy()).max() > 0.01  # the raw values would differ


def test_presets_default_is_the_recipe_of_the_shipped_weights():
    """default = the pg recipe (which trained weights/ since 2026-12-01) at batch 64 with a 10 kimg G EMA
    half-life (the weights of 2026-12-05); fast128 is default at 128 px. (pg and proj-v1 are retired:
    test_train_config.py.)"""
    d, f128 = (make_config(p).flat() for p in ("default", "fast128"))
    assert tuple(d[k] for k in ("aug", "aug_p", "d_end_res", "d_separable", "dlr", "batch", "ema_kimg", "d_equal_heads")) == (
        "diffaug", 1.0, 8, True, 0.002, 64, 10.0, True)
    assert {**f128, "resolution": 256} == d and f128["feat_res"] == 128


def test_history_file_keeps_a_runs_curve_from_scratch(tmp_path):
    """--add-history copies a run's metric records (with label, date and lineage, without local paths)
    once; history_curves counts them from scratch and leaves CPU-hours NaN where a record has none."""
    from train.metrics.plot import add_history, history_curves, history_records, plot

    run = tmp_path / "00003-default"
    run.mkdir()
    (run / "init_from.json").write_text(json.dumps({"source": "weights", "images_seen": 10000, "cpu_hours": 1.0}))
    (run / "metrics.jsonl").write_text("".join(json.dumps({"source": str(run / "gema" / str(k)), "kimg": k, "cpu_hours": k / 20, "n": 500,
                                                           "fd_lite2": f, "time": 1.0}) + "\n" for k, f in ((4.0, 90.0), (2.0, 95.0), (2.0, 95.0))))
    hist = tmp_path / "history.jsonl"
    recs = history_records(run, "E: wide", "2026-12-05")  # the export at 2 kimg was measured twice
    assert add_history(hist, recs) == 2 and add_history(hist, recs) == 0  # a second call adds nothing
    line = json.loads(hist.read_text().splitlines()[0])
    assert line["label"] == "E: wide" and line["lineage_kimg"] == 10.0 and "source" not in line and "time" not in line
    with open(hist, "a") as f:  # a transcribed record without CPU-hours
        f.write(json.dumps({"label": "A", "kimg": 1.0, "cpu_hours": None, "fd_lite2": 99.0, "lineage_kimg": 5.0}) + "\n")
    curves = history_curves(hist)
    k, h, m = curves["E: wide"]
    assert k.tolist() == [12.0, 14.0] and m.tolist() == [95.0, 90.0] and np.allclose(h, [1.1, 1.2])
    k, h, m = curves["A"]
    assert k.tolist() == [6.0] and np.isnan(h[0])
    plot([], tmp_path / "c.png", history=hist, bar=30)
    assert (tmp_path / "c.png").stat().st_size > 1000


@pytest.mark.slow
def test_truncated_or_other_samples_are_measured_and_recorded_with_their_psi_and_seed0(monkeypatch, lite2):
    torch.manual_seed(0)
    G = Trainer(make_config("tiny", {"d": "classic"}), CPU, Dist(CPU), _data(), None).G_ema
    real = np.random.RandomState(0).randn(64, 1280).astype(np.float32)
    monkeypatch.setattr(E, "real_features", lambda net, roundtrip_side=None: real)
    full = E.evaluate_generator(G, 16, ["fd"], CPU, lite2, None, batch=8)
    none = E.evaluate_generator(G, 16, ["fd"], CPU, lite2, None, batch=8, psi=0.0)
    assert "psi" not in full and none["psi"] == 0.0
    assert none["fd_lite2"] != pytest.approx(full["fd_lite2"])  # psi reaches the generator
    other = E.evaluate_generator(G, 16, ["fd"], CPU, lite2, None, batch=8, seed0=16)
    assert other["seed0"] == 16 and other["fd_lite2"] != pytest.approx(full["fd_lite2"])  # other samples
    at_zero = torch.cat(list(E.generate(G, 4, 4, CPU, psi=0.0)))
    assert torch.allclose(at_zero, at_zero[:1].expand_as(at_zero), atol=1e-5)  # psi 0: every seed is w_avg's image


@pytest.mark.slow
def test_side_compares_samples_and_photos_both_reduced_to_that_scale(monkeypatch, lite2):
    torch.manual_seed(0)
    G = Trainer(make_config("tiny", {"d": "classic"}), CPU, Dist(CPU), _data(), None).G_ema
    real = {None: np.random.RandomState(0).randn(64, 1280).astype(np.float32),
            8: np.random.RandomState(1).randn(64, 1280).astype(np.float32)}
    asked = []
    monkeypatch.setattr(E, "real_features", lambda net, roundtrip_side=None: asked.append(roundtrip_side) or real[roundtrip_side])
    seen = []

    class Detector:  # records what the detector is shown
        def __call__(self, im):
            seen.append(np.asarray(im))
            return []

    full = E.evaluate_generator(G, 8, ["fd", "detect"], CPU, lite2, Detector(), batch=8)
    low = E.evaluate_generator(G, 8, ["fd", "detect"], CPU, lite2, Detector(), batch=8, side=8)
    assert asked == [None, 8] and "side" not in full and low["side"] == 8
    assert low["fd_lite2"] != pytest.approx(full["fd_lite2"])
    sharp, blurred = np.stack(seen[:8]), np.stack(seen[8:])
    expect = E.roundtrip(torch.from_numpy(sharp).permute(0, 3, 1, 2), 8).permute(0, 2, 3, 1).numpy()
    assert np.array_equal(blurred, expect) and not np.array_equal(blurred, sharp)


def test_truncation_or_other_seeds_on_a_run_folder_is_refused(tmp_path):
    run = tmp_path / "00000-pg"
    (run / "gema").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    with pytest.raises(SystemExit):
        E.main([str(run), "--psi", "0.7"])
    with pytest.raises(SystemExit):
        E.main([str(run), "--seed0", "500"])
    with pytest.raises(SystemExit):
        E.main([str(run), "--side", "64"])
    with pytest.raises(SystemExit):
        E.main(["weights/", "--side", "4"])
    with pytest.raises(SystemExit):
        E.main(["weights/", "--side", "256"])
    with pytest.raises(SystemExit):
        E.main(["weights/", "--psi", "3"])


def test_export_keeps_each_n_and_if_better_compares_at_the_largest_n_both_have(tmp_path, lite0):
    """The evaluation loop's n = 500 goes to "metrics", a closer look at n = 2,000 to "metrics_n2000"; truncated
    samples or other seeds are not the metric; --if-better decides at the largest n both weights have."""
    cfg = make_config("tiny", {"export_gema": True, "threads": 1})
    tr = Trainer(cfg, CPU, Dist(CPU), _data(), lite0)
    tr.step()
    run = tmp_path / "00000-tiny"
    run.mkdir()
    snapshot(tr, cfg, run)
    kimg = tr.images_seen / 1000
    lines = [{"kimg": kimg, "fd_lite2": 50.0, "n": 500, "pixels": "uint8"}, {"kimg": kimg, "fd_lite2": 40.0, "n": 2000, "pixels": "uint8"},
             {"kimg": kimg, "fd_lite2": 30.0, "n": 2000, "pixels": "uint8", "psi": 0.7}, {"kimg": kimg + 1, "fd_lite2": 1.0, "n": 2000}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    _, meta = export(run, tmp_path / "w")
    assert meta["metrics"]["fd_lite2"] == 50.0 and meta["metrics_n2000"]["fd_lite2"] == 40.0
    assert load_meta(tmp_path / "w")["metrics_n2000"]["n"] == 2000
    # a candidate worse at n = 500 but better at n = 2,000 wins: 2,000 is what both have and the steadier number
    lines = [{**lines[0], "fd_lite2": 55.0}, {**lines[1], "fd_lite2": 39.0}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert export(run, tmp_path / "w", if_better=True)[0] is True
    (run / "metrics.jsonl").write_text(json.dumps({**lines[0], "fd_lite2": 10.0}) + "\n")  # n = 500 only: compared there
    assert export(run, tmp_path / "w", if_better=True)[0] is True
    assert load_meta(tmp_path / "w")["metrics"]["fd_lite2"] == 10.0 and "metrics_n2000" not in load_meta(tmp_path / "w")


def test_pending_exports_and_curves_keep_each_n_apart(tmp_path):
    """An export measured at n = 2,000 by hand is still due for the loop's n = 500; the curves are drawn at one n."""
    from train.metrics import plot

    run = tmp_path / "00000-default"
    for k in ("000001000", "000002000"):
        (run / "gema" / k).mkdir(parents=True)
    recs = [{"source": str(run / "gema" / "000001000"), "kimg": 1.0, "n": 2000, "fd_lite2": 40.0, "cpu_hours": 0.1},
            {"source": str(run / "gema" / "000002000"), "kimg": 2.0, "n": 500, "fd_lite2": 55.0, "cpu_hours": 0.2}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert E.pending_exports(run, run / "metrics.jsonl", 1, 500) == [run / "gema" / "000001000"]
    assert E.pending_exports(run, run / "metrics.jsonl", 1, 2000) == [run / "gema" / "000002000"]
    assert plot.curve(run)[2].tolist() == [55.0] and plot.curve(run, n=2000)[2].tolist() == [40.0]
    hist = tmp_path / "h.jsonl"
    plot.add_history(hist, plot.history_records(run, "A", "2026-12-05"))
    assert plot.history_curves(hist)["A"][2].tolist() == [55.0] and plot.history_curves(hist, n=2000)["A"][2].tolist() == [40.0]
