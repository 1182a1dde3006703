"""The fidelity metrics (birdanim/metrics/fidelity.py) on tiny synthetic data, and the shipped flight probe."""

from __future__ import annotations

import numpy as np
import pytest

from birdanim.metrics import fidelity as fm
from birdanim.stages.detect import Box
from conftest import needs_shared


def _bird_photo(size: int = 96) -> np.ndarray:
    """A drawn 'bird': a dark ellipse body, a round head and a beak on a pale gradient."""
    yy, xx = np.mgrid[:size, :size] / size
    img = np.stack([180 + 60 * yy, 200 + 40 * xx, 230 - 20 * yy], -1)
    body = ((xx - 0.45) / 0.28) ** 2 + ((yy - 0.55) / 0.16) ** 2 < 1
    head = (xx - 0.72) ** 2 + (yy - 0.4) ** 2 < 0.09**2
    beak = (xx > 0.78) & (xx < 0.9) & (np.abs(yy - 0.4) < 0.02)
    img[body] = (120, 70, 30)
    img[head] = (40, 40, 40)
    img[beak] = (230, 180, 20)
    return img.astype(np.uint8)


@pytest.fixture(scope="module")
def lite2():
    return fm.load_lite2("cpu")


def test_identity_of_the_input_itself_is_one_and_of_noise_lower(lite2):
    photo = _bird_photo()
    pfeat = fm.embed(lite2, [fm.bird_crop(photo, None, size=64)])[0]
    same = fm.embed(lite2, np.stack([fm.bird_crop(photo, None, size=64)] * 2))
    rng = np.random.default_rng(0)
    noise = fm.embed(lite2, rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8))
    assert fm.identity(same, pfeat) == pytest.approx(1.0, abs=1e-4)
    assert fm.identity(noise, pfeat) < 0.9


def test_bird_crop_follows_the_training_rule():
    img = np.zeros((200, 300, 3), np.uint8)
    img[50:90, 100:180] = 255  # an 80 x 40 box -> a 100 px square centred on it
    crop = fm.bird_crop(img, Box(100, 50, 180, 90), size=100)
    assert crop.shape == (100, 100, 3)
    white = crop[..., 0] > 128
    rows, cols = np.flatnonzero(white.any(1)), np.flatnonzero(white.any(0))
    assert (cols[0], cols[-1] + 1) == (10, 90) and (rows[0], rows[-1] + 1) == (30, 70)
    full = fm.bird_crop(img, None, size=50)  # no bird: the largest centred square
    assert full.shape == (50, 50, 3)


def test_probe_fits_separable_features_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 16))
    y = (X[:, 3] + 0.5 * X[:, 7] > 1.0).astype(float)  # a minority class, linearly separable
    probe = fm.FlightProbe.fit(X, y, l2=1e-2)
    rep = fm.classification_report(probe.proba(X), y)
    assert rep["balanced_accuracy"] > 0.97 and rep["auc"] > 0.99
    probe.info = {"note": "synthetic"}
    probe.save(tmp_path / "p")
    again = fm.FlightProbe.load(tmp_path / "p")
    assert again.info == {"note": "synthetic"}
    np.testing.assert_allclose(again.proba(X), probe.proba(X), atol=1e-5)


def test_classification_report_counts():
    rep = fm.classification_report(np.array([0.9, 0.2, 0.6, 0.1]), np.array([1, 1, 0, 0]))
    assert rep["accuracy"] == 0.5 and rep["recall_flying"] == 0.5 and rep["recall_perched"] == 0.5
    assert rep["auc"] == 0.75
    assert rep["mean_p_flying"] == pytest.approx(0.55) and rep["mean_p_perched"] == pytest.approx(0.35)


def test_motion_static_is_zero_and_flapping_is_not():
    static = [Box(10, 10, 60, 40)] * 8
    m = fm.motion(static)
    assert m["aspect_std"] == pytest.approx(0) and m["area_std"] == pytest.approx(0)
    flap = [Box(10, 10 - 10 * np.sin(t), 60, 40 + 10 * np.sin(t)) for t in np.linspace(0, 2 * np.pi, 8)]
    assert fm.motion(flap)["aspect_std"] > 0.1 and fm.motion(flap)["area_std"] > 0.1
    assert np.isnan(fm.motion([None, Box(0, 0, 5, 5), None])["aspect_std"])  # fewer than two boxes


def test_scale_pairs_same_and_different():
    labels = ["a"] * 5 + ["b"] * 3 + ["c"]
    same, diff = fm.scale_pairs(labels, n_pairs=50, seed=1)
    assert same.shape == diff.shape == (50, 2)
    lab = np.array(labels)
    assert (lab[same[:, 0]] == lab[same[:, 1]]).all() and (same[:, 0] != same[:, 1]).all()
    assert (lab[diff[:, 0]] != lab[diff[:, 1]]).all()


def test_pose_pairs_are_perched_then_flying_of_one_species():
    labels = ["a"] * 4 + ["b"] * 3 + ["c"] * 2
    flying = [0, 0, 1, 1, 0, 0, 0, 1, 1]  # b has no flyer, c no perched bird: only a can pair
    pairs = fm.pose_pairs(labels, flying, n_pairs=40, seed=2)
    assert pairs.shape == (40, 2)
    assert set(pairs[:, 0]) <= {0, 1} and set(pairs[:, 1]) <= {2, 3}
    with pytest.raises(ValueError):
        fm.pose_pairs(["a", "b"], [0, 1])


def test_sample_indices_spread_evenly():
    assert fm.sample_indices(300, 16).tolist() == [int(i * 300 / 16) for i in range(16)]
    assert fm.sample_indices(5, 16).tolist() == [0, 1, 2, 3, 4]


def test_contact_sheet_layout():
    rows = [[np.zeros((20, 20, 3), np.uint8)] + [np.full((10, 30, 3), 100, np.uint8)] * 8 for _ in range(3)]
    sheet = fm.contact_sheet(rows, cell=32, pad=4, gap=12)
    assert sheet.shape == (3 * 32 + 4 * 4, 9 * 32 + 10 * 4 + 12, 3)
    assert (sheet[4:36, 4:36] == 0).all()  # the input, top left
    x = 4 + 32 + 4 + 12  # first frame after the gap
    cell = sheet[4:36, x : x + 32]
    assert (cell[16, :, 0] == 100).all() and (cell[0, :, 0] == 255).all()  # a wide frame, letterboxed


def test_read_frames_picks_the_sampled_frames(tmp_path):
    from birdanim.stages.video import write_mp4

    frames = np.zeros((10, 32, 32, 3), np.uint8)
    for i in range(10):
        frames[i] += np.uint8(i * 25)
    mp4 = write_mp4(tmp_path / "v.mp4", [frames], fps=10)
    got, total = fm.read_frames(mp4, [0, 5, 9])
    assert total == 10 and got.shape == (3, 32, 32, 3) and fm.count_frames(mp4) == 10
    assert np.abs(got[:, 8:24, 8:24].mean(axis=(1, 2, 3)) - [0, 125, 225]).max() < 8


def test_the_benchmark_adapter_speaks_both_service_forms(tmp_path):
    from benchmarks.bench_fidelity import call_animate

    class Old:
        def animate(self, photo, *, frames=300, in_scene=False, out_dir=None):
            return ("old", frames, in_scene)

    class New:
        def animate(self, photo, options=None, *, box=None, out_dir=None):
            return ("new", options.mode, options.frames, options.scene)

    assert call_animate(Old(), None, "gan", 60, "photo", tmp_path) == ("old", 60, True)
    with pytest.raises(SystemExit):
        call_animate(Old(), None, "rig", 60, "photo", tmp_path)
    assert call_animate(New(), None, "rig", 60, "sky", tmp_path) == ("new", "rig", 60, "sky")


def test_the_benchmark_passes_a_modes_options_as_given_for_the_service_to_check(tmp_path):
    from benchmarks.bench_fidelity import call_animate
    from birdanim.errors import BadArgument

    class Service:
        def animate(self, photo, options=None, *, box=None, out_dir=None):
            return options.checked()

    opts = call_animate(Service(), None, "rig", 60, "photo", tmp_path, {"background_blur": "5", "wings": "painted"})
    assert (opts.background_blur, opts.wings, opts.frames) == (5.0, "painted", 60)
    with pytest.raises(BadArgument, match="background_blur"):
        call_animate(Service(), None, "rig", 60, "photo", tmp_path, {"background_blur": "99"})


@pytest.mark.slow
def test_shipped_probe_accuracy_on_100_test_photos():
    from birdanim.metrics.photos import cached_features, read_meta
    from birdanim.paths import ASSETS

    needs_shared("data", "birds256", "meta.csv")
    probe = fm.FlightProbe.load(ASSETS / "probes" / "flight_lite2")
    test = read_meta("test")
    rng = np.random.default_rng(0)
    fly = [p for p in test if p.pose == "flying"]
    sit = [p for p in test if p.pose == "perched"]
    photos = [fly[i] for i in rng.choice(len(fly), 50, replace=False)] + [sit[i] for i in rng.choice(len(sit), 50, replace=False)]
    X = cached_features(photos, fm.load_lite2)
    rep = fm.classification_report(probe.proba(X), np.array([p.pose == "flying" for p in photos]))
    assert rep["balanced_accuracy"] >= 0.80, rep
