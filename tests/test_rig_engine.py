"""The rig engine on small drawn birds: rig joints, wings, loop closure, hard cases; one real photo."""

import io
import zipfile

import cv2
import numpy as np
import pytest
from PIL import Image

from birdanim.engines.rig.engine import RigEngine
from birdanim.engines.rig.motion import WingBeat, path_offset, FlightPath, wing_pose
from birdanim.engines.rig.rig import Rig, estimate_rig
from birdanim.engines.rig.wings import bent_handles, paint_wing, Palette
from birdanim.stages.detect import Box


def drawn_bird(w=160, h=120, cx=80, cy=60, s=1.0, facing=1, bg=(120, 170, 225), upright=False):
    """A bird drawn on a sky: an ellipse body, a round head, a tail wedge, a beak; its keypoints."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = bg
    rng = np.random.default_rng(0)
    img = np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)
    ang = -40 if upright else 0
    body = (int(cx), int(cy))
    cv2.ellipse(img, body, (int(28 * s), int(14 * s)), ang * facing, 0, 360, (110, 80, 50), -1)
    d = np.array([np.cos(np.radians(ang)) * facing, np.sin(np.radians(ang))])
    head = np.array(body) + d * 30 * s + np.array([0, -6 * s])
    cv2.circle(img, tuple(int(v) for v in head), int(10 * s), (90, 60, 40), -1)
    beak = head + d * 14 * s
    cv2.line(img, tuple(int(v) for v in head), tuple(int(v) for v in beak), (40, 40, 40), max(1, int(3 * s)))
    tail = np.array(body) - d * 44 * s
    t1 = np.array(body) - d * 22 * s
    cv2.fillPoly(img, [np.array([t1 + [0, -6 * s], tail + [0, -3 * s], tail + [0, 4 * s], t1 + [0, 6 * s]], np.int32)],
                 (100, 70, 45))
    kp = {"beak": tuple(beak), "crown": tuple(head + [0, -4 * s]), "tail": tuple(tail),
          "back": tuple(np.array(body) + [0, -10 * s]), "belly": tuple(np.array(body) + [0, 10 * s]),
          "left wing": tuple(np.array(body) + [-4 * s * facing, -3 * s])}
    box = Box(float(tail[0] if facing > 0 else beak[0]) - 2, float(head[1] - 12 * s),
              float(beak[0] if facing > 0 else tail[0]) + 2, float(cy + 16 * s))
    return img, kp, box


def test_rig_from_keypoints_faces_and_places_the_shoulder():
    img, kp, box = drawn_bird()
    alpha = (np.abs(img.astype(int) - (120, 170, 225)).sum(2) > 40).astype(np.float32)
    rig = estimate_rig(alpha, kp)
    assert rig.source == "keypoints" and rig.facing == 1 and not rig.in_flight
    assert rig.dorsal[1] < -0.9  # the back is up
    assert rig.near_wing == "left"
    # the shoulder sits on the back half of the body, between the tail and the head
    sh = rig.point("shoulder")
    assert alpha[int(sh[1]), int(sh[0])] > 0.5
    assert rig.point("tail")[0] < sh[0] < rig.point("head")[0]
    assert sh[1] < 60  # above the body's centre line
    # mirrored: faces left
    rig_l = estimate_rig(alpha[:, ::-1].copy(), {k: (159 - x, y) for k, (x, y) in kp.items()})
    assert rig_l.facing == -1 and rig_l.near_wing == "left"  # the CUB label 'left wing' was visible


def test_rig_json_round_trip_and_editing():
    img, kp, box = drawn_bird()
    alpha = (np.abs(img.astype(int) - (120, 170, 225)).sum(2) > 40).astype(np.float32)
    rig = estimate_rig(alpha, {**kp, "left leg": (82.0, 80.0)})
    assert rig.legs == ((82.0, 80.0),)
    back = Rig.from_json(rig.to_json())
    assert back == rig
    assert rig.scaled(2.0, 1.0, 0.0).legs == ((165.0, 160.0),)
    moved = rig.moved("shoulder", (70, 50))
    assert moved.shoulder == (70.0, 50.0) and moved.source == "user"
    with pytest.raises(ValueError):
        rig.moved("knee", (1, 2))


def test_rig_from_the_mask_alone_and_a_flying_silhouette():
    img, kp, box = drawn_bird(upright=True)
    alpha = (np.abs(img.astype(int) - (120, 170, 225)).sum(2) > 40).astype(np.float32)
    rig = estimate_rig(alpha, {})
    assert rig.source == "mask" and rig.notes
    assert rig.point("head")[1] < rig.point("tail")[1]  # the upper end is taken as the head
    # spread wings: a long bar across a short body
    spread = np.zeros((120, 160), np.float32)
    cv2.ellipse(spread, (80, 60), (12, 25), 0, 0, 360, 1, -1)  # body, head up
    cv2.ellipse(spread, (80, 55), (75, 8), 0, 0, 360, 1, -1)  # wings
    rig = estimate_rig(spread, {"crown": (80, 38), "beak": (80, 30), "tail": (80, 86)})
    assert rig.in_flight
    # the keypoint model's flight probability, when there is one, decides instead of the outline: a round,
    # fluffed-up bird as wide as it is long is not flying, and a flying bird's outline can look compact
    round_bird = np.zeros((120, 160), np.float32)
    cv2.circle(round_bird, (80, 60), 40, 1, -1)
    kp_round = {"crown": (80, 30), "beak": (95, 35), "tail": (70, 98)}
    assert estimate_rig(round_bird, kp_round).in_flight  # the outline alone is fooled
    assert not estimate_rig(round_bird, kp_round, flying=0.1).in_flight
    assert estimate_rig(alpha, {}, flying=0.9).in_flight


def test_wing_pose_cycle_is_periodic_with_a_longer_downstroke():
    beat = WingBeat()
    a, b = wing_pose(beat, 0.0), wing_pose(beat, 1.0)
    assert a == b
    elev = [wing_pose(beat, p).elevation for p in np.linspace(0, 1, 101)]
    bottom = int(np.argmin(elev))
    assert 0.55 <= bottom / 100 <= 0.65  # the down-stroke takes ~60% of the period
    assert max(elev) == pytest.approx(beat.top, abs=1) and min(elev) == pytest.approx(beat.bottom, abs=1)
    up = wing_pose(beat, 0.8)
    down = wing_pose(beat, 0.3)
    assert up.flex > 0.7 > down.flex and down.fan > up.fan  # flexed wrist and closed primaries on the up-stroke


def test_cross_path_wraps_out_of_frame():
    p = FlightPath(kind="cross")
    x0, _ = path_offset(p, 0.0, 200, 100, 40, 1, 100)
    assert x0 == pytest.approx(0)
    xs = [100 + path_offset(p, t, 200, 100, 40, 1, 100)[0] for t in np.linspace(0, 1, 201)]
    jumps = np.nonzero(np.abs(np.diff(xs)) > 50)[0]
    assert len(jumps) == 1
    i = jumps[0]
    assert xs[i] > 200 + 20 - 3 and xs[i + 1] < -20 + 3  # out on the right, back in from the left


def test_painted_wing_and_bending():
    pal = Palette(np.array([120.0, 90, 60]), np.array([60.0, 45, 30]), np.array([200.0, 190, 170]),
                  np.array([30.0, 20, 10]))
    wing = paint_wing(pal, 80)
    a = wing.rgba[..., 3]
    assert a.max() == pytest.approx(1, abs=0.01) and 0.25 < (a > 0.5).mean() < 0.8
    for name, p in wing.handles.items():  # every joint lies on the painted wing
        assert a[int(round(p[1])), int(round(p[0]))] > 0.5, name
    flexed = bent_handles(wing, 1.0, 0.0)
    spread = bent_handles(wing, 0.0, 1.0)
    assert np.allclose(spread["tip"], wing.handles["tip"])
    assert flexed["tip"][1] > spread["tip"][1] + 10  # the hand folds back (towards the trailing edge)


def _engine_frames(img, box, others=(), frames=24, **kw):
    eng = RigEngine()
    bird = eng.prepare(img, box, others, size=max(img.shape[:2]))
    return bird, np.concatenate(list(eng.frames(bird, frames=frames, fps=12, beats_per_second=2, **kw)))


def test_engine_frames_loop_without_a_seam_and_keep_the_scene():
    img, kp, box = drawn_bird()
    bird, fr = _engine_frames(img, box)
    assert fr.shape == (24, 120, 160, 3) and fr.dtype == np.uint8
    steps = [np.abs(fr[i + 1].astype(int) - fr[i]).mean() for i in range(len(fr) - 1)]
    seam = np.abs(fr[0].astype(int) - fr[-1]).mean()
    assert max(steps) > 0.05  # something moves
    assert seam <= 1.5 * max(steps)  # frame N flows into frame 0 like any other step
    # the wings change the silhouette over a beat
    diff = np.abs(fr.astype(int) - bird.scene.astype(int)).sum(3) > 30
    areas = diff.reshape(len(fr), -1).sum(1)
    assert areas.max() > 1.1 * areas.min()
    # far from the bird the scene is untouched
    assert np.abs(fr[:, :8, :8].astype(int) - bird.scene[:8, :8]).max() <= 1


def test_tiny_bird_and_a_bird_cut_by_the_border():
    img, kp, box = drawn_bird(w=200, h=150, cx=100, cy=80, s=0.45)  # about 40 px long
    bird, fr = _engine_frames(img, box, frames=12)
    assert fr.shape[0] == 12 and bird.alpha.sum() > 50
    img, kp, box = drawn_bird(cx=20)  # the tail leaves the photo on the left
    box = Box(max(box.x0, 0), box.y0, box.x1, box.y1)
    bird, fr = _engine_frames(img, box, frames=12)
    assert fr.shape == (12, 120, 160, 3)


def test_two_birds_only_the_chosen_one_is_cut_out():
    a, _, box_a = drawn_bird(w=320, cx=80)
    b, _, box_b = drawn_bird(w=320, cx=240)
    img = np.where(np.arange(320)[None, :, None] < 160, a, b)
    eng = RigEngine()
    bird = eng.prepare(img, box_b, [box_a], size=320)
    ys, xs = np.nonzero(bird.alpha > 0.5)
    assert xs.min() > 160  # nothing of the other bird


def test_a_failed_cut_out_says_so_and_still_animates():
    img = np.full((120, 160, 3), 128, np.uint8)  # nothing to cut out
    bird, fr = _engine_frames(img, Box(40, 30, 120, 90), frames=6)
    assert bird.method == "box-ellipse" and any("oval" in n for n in bird.notes)
    assert fr.shape[0] == 6


@pytest.mark.slow
def test_real_photo_from_shared(tmp_path):
    from conftest import needs_shared

    with zipfile.ZipFile(needs_shared("data", "birds256", "test.zip")) as z:
        from PIL import Image

        img = np.asarray(Image.open(io.BytesIO(z.read("001136.jpg"))).convert("RGB"))  # an Eastern Towhee
    eng = RigEngine()
    bird = eng.prepare(img, Box(20, 20, 236, 236), size=256)
    assert bird.method == "grabcut"
    fr = np.concatenate(list(eng.frames(bird, frames=30, fps=30)))
    assert fr.shape == (30, 256, 256, 3)
    moving = (np.abs(fr.astype(int) - fr.mean(0)).sum(3) > 40).mean()
    assert 0.01 < moving < 0.5


def test_a_bird_already_in_flight_beats_its_own_wings():
    img = np.zeros((120, 200, 3), np.uint8)
    img[:] = (130, 175, 230)
    cv2.ellipse(img, (100, 62), (26, 10), 0, 0, 360, (60, 50, 40), -1)  # body, facing right
    cv2.circle(img, (128, 58), 8, (50, 40, 30), -1)
    cv2.fillPoly(img, [np.array([[88, 58], [70, 20], [60, 22], [96, 62]])], (70, 60, 50))  # far wing up
    cv2.fillPoly(img, [np.array([[98, 60], [120, 14], [110, 12], [92, 60]])], (80, 65, 50))  # near wing up
    alpha = (np.abs(img.astype(int) - (130, 175, 230)).sum(2) > 40).astype(np.float32)
    rig = estimate_rig(alpha, {"beak": (137, 57), "crown": (128, 52), "tail": (74, 62), "belly": (100, 71),
                               "back": (100, 54), "left wing": (112, 30), "right wing": (75, 32)})
    assert rig.in_flight
    eng = RigEngine()
    bird = eng.prepare(img, Box(55, 8, 140, 76), size=200, rig=rig)
    fr = np.concatenate(list(eng.frames(bird, frames=12, fps=12, beats_per_second=2)))
    tops = [np.nonzero((np.abs(f.astype(int) - bird.scene).sum(2) > 40).any(1))[0].min() for f in fr]
    assert max(tops) - min(tops) >= 3  # the wing tips rise and fall


def test_service_rig_mode_end_to_end(tmp_path):
    from _anim_tiny import tiny_generator
    from birdanim.checkpoint import save_generator
    from birdanim.service import Animator
    from birdanim.stages.video import probe

    save_generator(tiny_generator(), tmp_path / "w")
    a = Animator(weights=str(tmp_path / "w"), device="cpu", detector=None, encoder=None, keypoints=None)
    img, kp, box = drawn_bird()
    stages = []
    img = Image.fromarray(img)
    res = a.animate(img, box=box, frames=10, fps=10, size=160, out_dir=tmp_path / "out",
                    progress=lambda s, f, fr: stages.append(s))
    info = probe(res.mp4_path)
    assert (info["frames"], info["fps"], info["width"], info["height"]) == (10, 10, 160, 120)
    assert {"cut out", "render", "encode"} <= set(stages)
    assert res.rig is not None and res.mask_method == "grabcut" and res.ws is None
    # a corrected rig is used as given
    moved = res.rig.moved("shoulder", (res.rig.shoulder[0] - 3, res.rig.shoulder[1]))
    res2 = a.animate(img, box=box, frames=4, fps=10, size=160, out_dir=tmp_path / "out2", rig=moved)
    assert res2.rig.shoulder == moved.shoulder


def test_missing_optional_models_fall_back_to_grabcut_and_the_opencv_fill(tmp_path):
    from _anim_tiny import tiny_generator
    from birdanim.checkpoint import save_generator
    from birdanim.service import Animator

    save_generator(tiny_generator(), tmp_path / "w")
    a = Animator(weights=str(tmp_path / "w"), device="cpu", detector=None, encoder=None, keypoints=None,
                 segmenter=str(tmp_path / "missing-seg.pt"), inpainter=str(tmp_path / "missing-lama.onnx"))
    eng = a.rig_engine
    assert eng.segmenter is None and eng.inpainter is None
    assert len(a.notes_at_load) == 2 and all("could" in n or "no " in n for n in a.notes_at_load)
    assert Animator(weights=str(tmp_path / "w"), device="cpu", detector=None, encoder=None,
                    keypoints=None).rig_engine.segmenter is None  # "local": nothing on this machine, no download


def test_background_blur_softens_the_scene_not_the_frame_count():
    img, kp, box = drawn_bird()
    img = img.copy()
    img[:, :30] = np.random.default_rng(2).integers(0, 255, (120, 30, 3))  # fine detail far from the bird
    eng = RigEngine()
    bird = eng.prepare(img, box, size=160)
    sharp = np.concatenate(list(eng.frames(bird, frames=12, fps=12, beats_per_second=2)))
    soft = np.concatenate(list(eng.frames(bird, frames=12, fps=12, beats_per_second=2, background_blur=3)))
    assert sharp.shape == soft.shape == (12, 120, 160, 3)
    detail = lambda f: np.abs(np.diff(f[:, 5:110, 2:25].astype(int), axis=2)).mean()  # noqa: E731
    assert detail(soft) < 0.5 * detail(sharp)


def test_a_perched_bird_takes_off_into_the_open_part_of_its_scene():
    from birdanim.engines.rig.engine import _open_place

    scene = np.full((200, 300, 3), 140, np.uint8)
    scene[:, :150] = np.random.default_rng(0).integers(0, 255, (200, 150, 3))  # twigs and leaves on the left
    start = np.array([100.0, 100.0])
    extent = (-30, -25, 30, 25)  # the beat's box around the sprites' origin
    x, y = _open_place(scene, start, extent, drift=6, length=50)
    assert x - 30 > 150 - 0.1 * 60  # the whole beat over the plain half, or nearly
    assert 0 <= x - 30 and x + 30 <= 300 and 0 <= y - 25 and y + 25 <= 200
    # a plain scene: it stays where it is (no reason to move), and a beat as large as the frame cannot move
    plain = np.full((200, 300, 3), 140, np.uint8)
    np.testing.assert_allclose(_open_place(plain, start, extent, 6, 50), start, atol=3)
    np.testing.assert_array_equal(_open_place(scene, start, (-160, -25, 160, 25), 6, 50), start)


def test_legs_the_keypoints_saw_are_tucked_away():
    from birdanim.engines.rig.engine import body_texture

    img, kp, box = drawn_bird(upright=True)  # an upright bird: its legs hang near its tail
    img = img.copy()
    bg = np.array((120, 170, 225))
    alpha0 = (np.abs(img.astype(int) - bg).sum(2) > 40).astype(np.float32)
    cv2.line(img, (70, 75), (70, 110), (60, 40, 30), 3)  # a thin leg down to a perch
    alpha = (np.abs(img.astype(int) - bg).sum(2) > 40).astype(np.float32)
    leg = {**kp, "left leg": (70.0, 106.0)}
    _, without = body_texture(img, alpha, estimate_rig(alpha, kp))
    assert without[100:110, 68:73].max() > 0.5  # the outline alone keeps this leg (it is beside the tail)
    rig = estimate_rig(alpha, leg)
    _, a = body_texture(img, alpha, rig)
    assert a[100:110, 68:73].max() < 0.2  # with the leg's keypoint it goes
    tail = np.round(rig.point("tail")).astype(int)
    assert a[tail[1] - 2 : tail[1] + 3, tail[0] - 2 : tail[0] + 3].max() > 0.5  # the tail stays
    body = np.round(rig.centre).astype(int)
    assert a[body[1] - 3 : body[1] + 4, body[0] - 3 : body[0] + 4].min() > 0.9  # and the body
    assert alpha0[100:110, 68:73].max() == 0  # (the leg was all that was drawn there)


def test_every_donor_wing_joins_its_mesh_at_the_largest_output():
    """At 1024 px a wing is ~420 px long and its mesh spacing (length / 9) is wider than a tapering tip:
    two shipped donors then lost their tip handles ("joints [4, 6] could not be attached"); the layer
    now refines its mesh until every handle is on it."""
    from birdanim.engines.rig.donors import donor_wing, load_donors
    from birdanim.engines.rig.engine import _Layer

    lib = load_donors(None)
    if lib is None:
        pytest.skip("no donor library in assets/wings")
    ramp = np.linspace(30, 220, 16)[:, None].repeat(3, 1)

    class Coarse(_Layer):
        REFINE = (1.0,)

    coarse_fails = 0
    for i in range(len(lib)):
        w = donor_wing(lib, i, ramp, 420.0)
        handles = np.array(list(w.handles.values()))
        spacing = max(4.0, w.length / 9)
        try:
            Coarse(w.rgba, w.rgba[..., 3], handles, spacing)
        except ValueError:
            coarse_fails += 1
        layer = _Layer(w.rgba, w.rgba[..., 3], handles, spacing)
        held = layer.rest[layer.slot]  # the handles where the mesh holds them
        moved = layer.solve(held + [3.0, -2.0])  # a rigid shift: the whole wing follows it
        assert np.allclose(moved, layer.rest + [3.0, -2.0], atol=1e-3)
    assert coarse_fails > 0  # the case this guards against still exists in the library
