"""Training loop on tiny data (32 px): steps are finite and learn, resume is exact, snapshots survive
interruption, presets resolve."""

import json
import os
from pathlib import Path

import pytest
import torch

from birdanim.checkpoint import CheckpointError
from train.loop import snapshot as S
from train.loop.data import ImageDataset
from train.loop.presets import make_config
from train.loop.train import Dist, Trainer, main, parse_args, resolve, train

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def lite0():
    torch.set_num_threads(2)
    from birdanim.models.features import load_efficientnet_lite

    return load_efficientnet_lite(0)


def tiny_data(n=16, res=32, seed=0) -> ImageDataset:
    g = torch.Generator().manual_seed(seed)
    return ImageDataset.from_tensor(torch.randint(0, 256, (n, 3, res, res), dtype=torch.uint8, generator=g))


def _params(m):
    return [p.detach().clone() for p in m.parameters()]


@pytest.mark.parametrize(
    "overrides",
    [{}, {"d_mbstd": 2}, {"d": "classic", "loss": "logistic", "r1_interval": 2},
     {"arch": "dcgan", "z_dim": 16, "dcgan_ngf": 8, "dcgan_ndf": 8, "aug": "none", "mixing": 0.0},
     {"aug": "diffaug", "aug_p": 1.0, "d_end_res": 8, "d_separable": True, "d_mbstd": 2, "feat_res": 64},
     {"d_equal_heads": True}],
    ids=["projected", "projected-mbstd", "classic-r1", "dcgan", "projected-pg", "projected-equal-heads"],
)
def test_steps_are_finite_and_change_weights(overrides, lite0):
    cfg = make_config("tiny", overrides)
    tr = Trainer(cfg, CPU, Dist(CPU), tiny_data(), lite0)
    g0, d0, e0 = _params(tr.G), _params(tr.D), _params(tr.G_ema)
    for _ in range(2):
        stats = tr.step()
        assert all(torch.isfinite(torch.tensor(v)) for v in stats.values()), stats
    if cfg.discriminator.kind == "classic" and cfg.generator.arch == "stylegan2":
        assert "r1" in stats  # lazy R1 ran on the 2nd step
    assert "fstat" not in stats  # the feature-statistics loss is retired
    assert tr.images_seen == 2 * cfg.optimiser.batch
    assert any(not torch.equal(a, b) for a, b in zip(g0, tr.G.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, tr.D.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(e0, tr.G_ema.parameters()))
    if cfg.generator.arch == "stylegan2":
        assert tr.G.mapping.w_avg.abs().sum() > 0  # w_avg tracked


def _run(tmp_path, argv, ds, lite0):
    args, overrides = parse_args(["--outdir", str(tmp_path), "--no-progress", *argv])
    cfg, run_dir, snap = resolve(args, overrides)
    return train(cfg, CPU, Dist(CPU), tmp_path, run_dir, snap, None, False, dataset=ds, feature_net=lite0)


def _final_state(run_dir: Path):
    return S.load_snapshot(S.snapshot_of_run(run_dir))


@pytest.mark.slow
def test_resume_is_exact_and_keeps_images_and_p(tmp_path, lite0):
    ds = tiny_data()
    common = ["--preset", "tiny", "--snap-kimg", "0.008", "--aug-p", "0.3", "--ada-kimg", "0.05", "--ada-interval", "1"]
    # A: 24 images straight. B: 16 images, stop, resume to 24.
    assert _run(tmp_path / "a", [*common, "--kimg", "0.024"], ds, lite0) == 0
    assert _run(tmp_path / "b", [*common, "--kimg", "0.016"], ds, lite0) == 0
    run_b = tmp_path / "b" / "00000-tiny"
    t16, s16 = _final_state(run_b)
    assert s16["images_seen"] == 16
    args, overrides = parse_args(["--outdir", str(tmp_path / "b"), "--resume", "latest", "--kimg", "0.024"])
    cfg, run_dir, snap = resolve(args, overrides)
    assert run_dir == run_b and snap.name == "snapshot-000000016"
    tr = Trainer(cfg, CPU, Dist(CPU), ds, lite0)
    tr.restore(*S.load_snapshot(snap))
    assert tr.images_seen == 16 and float(tr.augment.p) == pytest.approx(s16["ada_p"])
    assert s16["ada_p"] != 0.3  # p really moved during the first part, so restoring it matters
    assert _run(tmp_path / "b", ["--resume", "latest", "--kimg", "0.024"], ds, lite0) == 0
    ta, sa = _final_state(tmp_path / "a" / "00000-tiny")
    tb, sb = _final_state(run_b)
    assert sa["images_seen"] == sb["images_seen"] == 24
    assert sa["ada_p"] == pytest.approx(sb["ada_p"])
    for k in ta:
        if k.startswith(("G.", "G_ema.", "D.")):
            assert torch.allclose(ta[k].float(), tb[k].float(), atol=1e-5), k  # same as never stopping
    log = [json.loads(line) for line in (run_b / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 7))  # the log continues where it stopped
    resumes = [json.loads(line) for line in (run_b / "resumes.jsonl").read_text().splitlines()]
    assert len(resumes) == 1 and resumes[0]["kimg"] == 0.016
    assert resumes[0]["changed"] == {"kimg": [0.016, 0.024]}  # the override is on record


def _tiny_trainer(lite0):
    return Trainer(make_config("tiny", {"d": "classic", "loss": "logistic"}), CPU, Dist(CPU), tiny_data(), lite0)


def _save(tr, run_dir):
    return S.save_snapshot(run_dir, tr.images_seen, tr.modules(), tr.optimizers(), tr.train_state())


def test_interrupted_snapshot_write_keeps_previous(tmp_path, lite0, monkeypatch):
    tr = _tiny_trainer(lite0)
    tr.step()
    first = _save(tr, tmp_path)
    g_first = {k: v.clone() for k, v in tr.G.state_dict().items()}
    tr.step()

    def killed(src, dst):  # the process dies after writing the temp folder, before the rename
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(S.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        _save(tr, tmp_path)
    monkeypatch.undo()
    assert list((tmp_path / "snapshots").glob(".tmp-*"))  # the half-done write is there...
    assert S.snapshot_of_run(tmp_path) == first  # ...and ignored: latest still names the complete one
    tensors, state = S.load_snapshot(first)
    assert state["images_seen"] == 4
    for k, v in S.module_state(tensors, "G").items():
        assert torch.equal(v, g_first[k])
    # A newer snapshot folder whose tensors file is truncated (disk full, torn copy) is skipped too.
    tr2 = _tiny_trainer(lite0)
    tr2.step(), tr2.step(), tr2.step()
    third = _save(tr2, tmp_path)
    assert not list((tmp_path / "snapshots").glob(".tmp-*"))  # cleaned up by the next save
    data = (third / S.TENSORS).read_bytes()
    (third / S.TENSORS).write_bytes(data[: len(data) // 2])
    assert S.snapshot_of_run(tmp_path) == first


def test_optimizer_state_roundtrip(lite0):
    tr = _tiny_trainer(lite0)
    tr.step()
    tensors, meta = S.flatten_optimizer("G", tr.opt_G)
    sd = S.unflatten_optimizer("G", tensors, json.loads(json.dumps(meta)))
    opt = torch.optim.Adam(tr.G.parameters())
    opt.load_state_dict(sd)
    orig = tr.opt_G.state_dict()
    assert set(opt.state_dict()["state"]) == set(orig["state"])
    for i, st in orig["state"].items():
        for k, v in st.items():
            assert torch.equal(opt.state_dict()["state"][i][k], v)


def test_dry_run_prints_resolved_config(capsys, tmp_path):
    assert main(["--preset", "tiny", "--batch", "6", "--outdir", str(tmp_path), "--dry-run"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["preset"] == "tiny" and cfg["optimiser"]["batch"] == 6 and cfg["generator"]["resolution"] == 32
    assert not any(tmp_path.iterdir())  # a dry run creates nothing


def test_bad_config_is_a_clear_error(capsys):
    assert main(["--preset", "tiny", "--disc", "nonsense", "--dry-run"]) == 2
    assert "d must be one of" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # a retired field is no flag any more
        main(["--preset", "tiny", "--disc", "classic", "--fstat-weight", "1", "--dry-run"])
    assert e.value.code == 2 and "unrecognized arguments: --fstat-weight" in capsys.readouterr().err


def test_rgb_init_gain_scales_the_initial_image():
    """rgb_init_gain multiplies the toRGB weights (biases start at 0), so the initial image scales by it."""
    from train.loop.networks import build_generator

    imgs = []
    for gain in (1.0, 0.1):
        torch.manual_seed(0)
        G = build_generator(make_config("tiny", {"rgb_init_gain": gain}))
        z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            imgs.append(G(z, noise_mode="const"))
    assert imgs[0].abs().max() > 0.1
    torch.testing.assert_close(imgs[1], imgs[0] * 0.1, rtol=1e-4, atol=1e-5)


def test_projected_heads_minibatch_stddev_sees_batch_diversity(lite0):
    """With d_mbstd a head's logit for an image depends on how alike its batch-mates are (a batch of
    identical fakes is visible to D); without it, each image is judged alone (up to BatchNorm in train mode)."""
    from train.loop.networks import build_discriminator

    torch.manual_seed(0)
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    same = x[:1].repeat(4, 1, 1, 1)
    for mbstd, should_differ in ((2, True), (0, False)):
        D = build_discriminator(make_config("tiny", {"d_mbstd": mbstd}), lite0).eval()  # eval: BN uses running stats
        with torch.no_grad():
            a, b = D(x)[0], D(same)[0]  # image 0 in a diverse batch vs among copies of itself
        assert torch.allclose(a, b, atol=1e-5) != should_differ, (mbstd, a, b)
    # the heads' state dict without mbstd is unchanged by the option's existence (old snapshots load)
    keys = set(build_discriminator(make_config("tiny"), lite0).state_dict())
    assert any(k.startswith("heads.0.net.") for k in keys)


def test_projected_heads_end_res_and_separable_set_the_patch_grid(lite0):
    """d_end_res 8 gives each head ending at 8x8 a 5x5 grid of patch logits (4x4 heads: one logit); the
    separable heads have depthwise convs (groups = channels) and the same logit layout."""
    from train.loop.networks import build_discriminator

    x = torch.rand(2, 3, 64, 64) * 2 - 1  # feat_res 64: feature maps 16, 8, 4, 2
    sizes = {}
    for end, sep in ((4, False), (8, False), (8, True)):
        D = build_discriminator(make_config("tiny", {"feat_res": 64, "d_end_res": end, "d_separable": sep}), lite0)
        sizes[end, sep] = D(x).shape[1]
        depthwise = [m for m in D.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels]
        assert bool(depthwise) == sep
    # end 4: 16->4, 8->4, 4, 2(padded to 4): 1 logit each; end 8: 16->8 and 8 give 5x5, 4 and 2 one each
    assert sizes[4, False] == 4 and sizes[8, False] == sizes[8, True] == 25 + 25 + 1 + 1


def test_equal_heads_weigh_each_scale_alike_in_the_losses(lite0):
    from train.loop import loss as L
    from train.loop.networks import build_discriminator

    cfg = make_config("default")  # d_equal_heads on since 2026-12-04; the real sizes: feat_res 128, heads end at 8x8
    D = build_discriminator(cfg, lite0)
    sizes = [h.num_patches for h in D.heads]
    assert sizes == [25, 25, 25, 1]  # the deepest map is 4x4: one patch logit
    with torch.no_grad():
        assert D(torch.zeros(2, 3, 256, 256)).shape == (2, sum(sizes))  # num_patches matches what the heads give
    w = D.patch_weights
    assert w.shape == (76,) and abs(float(w.mean()) - 1) < 1e-6
    x = torch.randn(3, 76)
    per_head = torch.stack([c.mean() for c in x.split(sizes, 1)])
    assert torch.allclose(L.g_loss(x, "hinge", w), -per_head.mean(), atol=1e-6)
    assert torch.allclose(L.g_loss(x, "hinge"), -x.mean())  # unweighted: every patch alike, as before
    hinge = [(torch.relu(1 - c).mean() + torch.relu(1 + c).mean()) for c in x.split(sizes, 1)]
    assert torch.allclose(L.d_loss(x, x, "hinge", w), torch.stack(hinge).mean(), atol=1e-6)
    assert build_discriminator(make_config("default", {"d_equal_heads": False}), lite0).patch_weights is None
    with pytest.raises(ValueError, match="d_equal_heads"):
        make_config("classic", {"d_equal_heads": True})


def test_resume_latest_is_the_run_that_trained_last_not_the_highest_numbered(tmp_path, lite0):
    tr = _tiny_trainer(lite0)
    tr.step()
    old, new = tmp_path / "00000-tiny", tmp_path / "00001-tiny"
    snap_old, snap_new = _save(tr, old), _save(tr, new)
    os.utime(snap_new / S.STATE, (1_000_000, 1_000_000))  # run 1 last wrote a snapshot long ago...
    assert S.resolve_resume("latest", tmp_path) == (old, snap_old)  # ...run 0 was resumed since: continue it
    os.utime(snap_old / S.STATE, (1_000_000, 1_000_000))  # the same time: the higher number wins
    assert S.resolve_resume("latest", tmp_path) == (new, snap_new)
    (tmp_path / "00002-tiny").mkdir()  # a run without a snapshot is passed over
    assert S.resolve_resume("latest", tmp_path) == (new, snap_new)
    with pytest.raises(CheckpointError, match="no run with a complete snapshot"):
        S.resolve_resume("latest", tmp_path / "00002-tiny")


def _zip(path: Path, n: int = 8, side: int = 32) -> Path:
    import io
    import zipfile

    import numpy as np
    from PIL import Image

    rng = np.random.RandomState(0)
    with zipfile.ZipFile(path, "w") as z:
        for i in range(n):
            buf = io.BytesIO()
            Image.fromarray(rng.randint(0, 256, (side, side, 3), dtype=np.uint8)).save(buf, "PNG")
            z.writestr(f"{i:03d}.png", buf.getvalue())
    return path


def test_branch_from_a_snapshot_is_a_new_run_that_carries_on_and_records_where_it_came_from(tmp_path, monkeypatch):
    """--branch-from copies a snapshot into a new run folder (the source untouched), continues it under the
    given overrides (images seen carry on), and BRANCH.json records the source; export.py turns the chain of
    branches into meta.json's branched_from, nearest first."""
    from train.tools.export import export

    monkeypatch.setattr("train.loop.data.CACHE_DIR", tmp_path / "cache")
    data = _zip(tmp_path / "d.zip")
    common = ["--preset", "tiny", "--disc", "classic", "--loss", "logistic", "--data", str(data), "--outdir", str(tmp_path),
              "--no-progress", "--threads", "1"]
    assert main(common + ["--kimg", "0.008"]) == 0
    src = tmp_path / "00000-tiny"
    src_snap = S.snapshot_of_run(src)
    (src / "init_from.json").write_text(json.dumps({"source": "weights/", "images_seen": 100, "cpu_hours": 1.0}))
    before = sorted(p.name for p in src.rglob("*"))
    assert main(common + ["--branch-from", str(src_snap), "--glr", "0.004", "--kimg", "0.016"]) == 0
    assert sorted(p.name for p in src.rglob("*")) == before  # the source run is left as it was
    branch = tmp_path / "00001-tiny-glr0.004"  # named after what it changes (kimg is bookkeeping)
    rec = json.loads((branch / S.BRANCH).read_text())
    assert rec["branched_from"] == f"00000-tiny/snapshots/{src_snap.name}" and rec["changed"]["glr"][1] == 0.004
    _, state = S.load_snapshot(S.snapshot_of_run(branch))
    assert state["images_seen"] == 16 and state["config"]["optimiser"]["glr"] == 0.004  # 8 images from the source + 8 of its own
    assert json.loads((branch / "init_from.json").read_text())["images_seen"] == 100  # the lineage goes along
    assert json.loads((branch / "resumes.jsonl").read_text().splitlines()[0])["kimg"] == 0.008
    # a branch of the branch: the chain, nearest first; export writes it into meta.json with the lineage totals
    assert main(common + ["--branch-from", str(branch), "--dlr", "0.001", "--kimg", "0.024"]) == 0
    _, meta = export(tmp_path / "00002-tiny-dlr0.001", tmp_path / "w")
    assert [c["branched_from"] for c in meta["branched_from"]] == [f"00001-tiny-glr0.004/snapshots/snapshot-{16:09d}",
                                                                     f"00000-tiny/snapshots/{src_snap.name}"]
    assert meta["images_seen"] == 24 and meta["total_images_seen"] == 124
    assert meta["branched_from"][0]["changed"] == {"dlr": [0.002, 0.001]}  # kimg (bookkeeping) left out
    assert "branched_from" not in export(src, tmp_path / "w0")[1]
    # --branch-from is a new run from a snapshot: not together with --resume or --init-from
    assert main(common + ["--branch-from", str(src_snap), "--resume", "latest"]) == 2
