"""Real wings for perched birds: the donor library's frame, its recolouring with the bird's own plumage,
the checks that keep only whole wings, a wing cut from a drawn flying bird, and the shipped library."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from birdanim.engines.rig import donors as D
from birdanim.engines.rig.engine import RigEngine
from birdanim.engines.rig.wings import bent_handles


def drawn_wing(chord: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """(alpha, luminance) uint8 of a stored donor: a tapering wing from the shoulder to the tip, dark
    primaries behind a paler leading edge, thin feather lines across it."""
    h, w = D.canvas_shape()
    o = D.canvas_origin()

    def px(u, v):
        return (o + np.array([u, v]) * D.SIDE).round().astype(np.int32)

    outline = np.array([px(0, -0.02), px(0.5, -0.05), px(1.0, 0.05), px(0.8, 0.5 * chord), px(0.5, chord),
                        px(0.0, chord)])
    alpha = np.zeros((h, w), np.uint8)
    cv2.fillPoly(alpha, [outline], 255, cv2.LINE_AA)
    lum = np.zeros((h, w), np.uint8)
    cv2.fillPoly(lum, [outline], 60)
    cv2.fillPoly(lum, [np.array([px(0, -0.02), px(0.5, -0.05), px(0.9, 0.03), px(0.5, 0.08), px(0, 0.08)])], 170)
    for u in np.linspace(0.05, 0.95, 14):
        cv2.line(lum, tuple(px(u, 0.0)), tuple(px(u + 0.05, chord)), 110, 1)
    return alpha, np.where(alpha > 0, lum, 0).astype(np.uint8)


def tiny_library(n: int = 3) -> D.DonorLibrary:
    wings = [drawn_wing(0.25 + 0.05 * i) for i in range(n)]
    return D.DonorLibrary(np.stack([a for a, _ in wings]), np.stack([lum for _, lum in wings]),
                          np.array([0.25 + 0.05 * i for i in range(n)]), np.ones(n), [f"drawn{i}" for i in range(n)],
                          np.arange(n, dtype=np.float64))


def test_handles_sit_on_the_donors_own_outline():
    alpha, _ = drawn_wing()
    h = D.donor_handles(alpha)
    o = D.canvas_origin()
    for name, uv in h.items():
        x, y = (o + uv * D.SIDE).round().astype(int)
        assert alpha[y, x] > 127, name  # every handle is on the wing, so ARAP can hold it
    assert h["tip"][0] > h["wrist"][0] > h["elbow"][0] > h["shoulder"][0]
    assert h["secondary"][1] > h["elbow"][1]  # trailing points behind the leading edge
    assert D.donor_handles(np.zeros_like(alpha)) is None


def test_recoloured_with_the_birds_colours_by_rank():
    lib = tiny_library(1)
    ramp = np.linspace([20, 40, 200], [240, 220, 30], 256)  # the bird: dark blue .. pale yellow
    wing = D.donor_wing(lib, 0, ramp, length=96)
    rgba = wing.rgba
    a = rgba[..., 3]
    assert wing.length == 96 and a.max() > 0.99
    colour = rgba[..., :3] / np.maximum(a[..., None], 1e-6) * 255
    solid = a > 0.99
    blue = colour[solid][:, 2] > colour[solid][:, 0]
    assert 0.2 < blue.mean() < 0.95  # the donor's dark feathers wear the bird's dark colour, its pale edge the pale one
    # the motion's handles bend it as they bend a painted wing
    bent = bent_handles(wing, flex=1.0, fan=0.0)
    assert set(bent) == set(wing.handles)
    assert np.linalg.norm(bent["tip"] - wing.handles["tip"]) > 5


def test_choose_picks_among_the_best_scored():
    lib = tiny_library(8)  # scores 0..7
    picks = {D.choose(lib, seed, key) for seed in range(10) for key in range(10)}
    assert picks == {7, 6}  # the best quarter, both used
    assert D.choose(lib, 3, 12345) == D.choose(lib, 3, 12345)  # the same photo, the same wing
    lib.score = None
    assert {D.choose(lib, seed, 7) for seed in range(60)} == set(range(8))


def test_only_whole_spread_wings_pass():
    from train.tools.make_wing_donors import feather_detail, wing_like

    alpha, lum = drawn_wing()
    assert wing_like(alpha)
    assert feather_detail(lum.astype(np.float32), alpha) > 0.17
    h, w = alpha.shape
    disk = np.zeros_like(alpha)
    cv2.circle(disk, (w // 3, h // 2), h // 2 - 3, 255, -1)  # a piece of sky the cut-out took
    assert not wing_like(disk)
    cut = alpha.copy()
    cut[:, int(D.canvas_origin()[0] + 0.6 * D.SIDE):] = 0  # no hand: runs off the crop
    assert not wing_like(cut)
    flat = np.where(alpha > 0, 90, 0).astype(np.float32)
    assert feather_detail(flat, alpha) < 0.05


def test_a_wing_is_cut_from_a_drawn_flying_bird():
    from train.tools.make_wing_donors import extract_wings

    img = np.zeros((256, 256, 3), np.uint8)
    img[:] = (150, 190, 235)
    img = np.clip(img + np.random.default_rng(0).normal(0, 3, img.shape), 0, 255).astype(np.uint8)
    cv2.ellipse(img, (128, 150), (45, 14), 0, 0, 360, (90, 70, 50), -1)  # body, head to the right
    cv2.circle(img, (178, 146), 11, (80, 60, 40), -1)
    wing = np.array([(118, 140), (146, 138), (176, 58), (165, 55), (112, 100)], np.int32)  # spread up
    cv2.fillPoly(img, [wing], (70, 55, 40))
    for y in range(70, 136, 6):
        cv2.line(img, (120, y + 20), (170, y - 10), (120, 100, 80), 1)
    kp = {"crown": np.array([178.0, 140.0]), "beak": np.array([196.0, 146.0]), "tail": np.array([80.0, 152.0]),
          "back": np.array([130.0, 140.0]), "belly": np.array([128.0, 160.0]), "left wing": np.array([148.0, 95.0])}
    from birdanim.stages.detect import Box

    wings = extract_wings(img, kp, detector=lambda im: [Box(60, 45, 200, 175)])
    assert len(wings) == 1
    alpha, lum, chord, ratio = wings[0]
    assert alpha.shape == D.canvas_shape() and 0.5 < ratio < 1.2 and 0.15 < chord < 0.6
    assert (lum[alpha > 127] > 0).all()


@pytest.fixture
def drawn():
    from test_rig_engine import drawn_bird

    return drawn_bird()


def test_engine_wings_real_painted_and_missing_library(drawn, tmp_path):
    img, kp, box = drawn
    lib = tiny_library(3)
    eng = RigEngine(donors=lib)
    bird = eng.prepare(img, box, size=160)
    real = eng.wing_texture(bird, 60, "real", seed=0)
    painted = eng.wing_texture(bird, 60, "painted")
    assert real.rgba.shape != painted.rgba.shape  # two different wings
    assert RigEngine(donors=None).donors is None
    assert D.load_donors(tmp_path / "none.npz") is None
    back = D.load_donors(D.save_donors(lib, tmp_path / "lib.npz"))
    assert len(back) == 3 and back.source == lib.source
    np.testing.assert_array_equal(back.alpha, lib.alpha)
    frames = np.concatenate(list(eng.frames(bird, frames=6, fps=6, beats_per_second=1, wings="real")))
    assert frames.shape == (6, 120, 160, 3)


def test_the_shipped_library():
    lib = D.load_donors()
    assert lib is not None, "assets/wings/donors.npz is missing from the checkout"
    assert len(lib) >= 20 and lib.score is not None and len(lib.score) == len(lib)
    assert all(D.donor_handles(a) is not None for a in lib.alpha)
    assert lib.alpha.shape[1:] == D.canvas_shape()
