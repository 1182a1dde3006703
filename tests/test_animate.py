"""Style mixing rows, a seamless smooth loop, deterministic batched rendering."""

import threading

import numpy as np
import pytest
import torch
from _anim_tiny import one_thread, tiny_generator, tiny_poses  # noqa: F401 (autouse fixture)

from birdanim.engines.gan.mixing import Cancelled, iter_frames, loop_ws, mix_with_poses, render_frames


@pytest.fixture(scope="module")
def G():
    return tiny_generator()


def test_mixing_rows(G):
    poses = tiny_poses(G, 4)
    user = tiny_poses(G, 1, seed=7)[0]
    mixed = mix_with_poses(user, poses, cutoff=3)
    assert mixed.shape == (4, G.num_ws, G.w_dim)
    assert torch.equal(mixed[:, :3], poses[:, :3])  # coarse rows: the pose
    assert torch.equal(mixed[:, 3:], user[3:].expand(4, -1, -1))  # fine rows: the user's bird
    half = mix_with_poses(user, poses, cutoff=3, strength=0.5)
    assert torch.allclose(half[:, :3], (poses[:, :3] + user[:3]) / 2, atol=1e-6)
    assert torch.equal(mix_with_poses(user, poses, cutoff=3, strength=0.0), user.expand(4, -1, -1))


@pytest.mark.parametrize("bad", [dict(cutoff=0), dict(cutoff=8), dict(strength=1.5)])
def test_mixing_rejects_bad_values(G, bad):
    with pytest.raises(ValueError):
        mix_with_poses(tiny_poses(G, 1)[0], tiny_poses(G, 3), **{"cutoff": 3, **bad})


def test_loop_passes_through_keys_and_has_no_seam():
    keys = torch.randn(5, 3, 4, generator=torch.Generator().manual_seed(0))
    ws = loop_ws(keys, frames=50)
    assert ws.shape == (50, 3, 4)
    assert torch.allclose(ws[::10], keys, atol=1e-6)  # every 10th frame is a keyframe
    steps = (ws.roll(-1, 0) - ws).flatten(1).norm(dim=1)  # includes the seam: frame 49 -> frame 0
    assert not torch.allclose(ws[-1], ws[0])  # no duplicated frame at the seam
    assert steps[-1] < 2.0 * steps[:-1].median() and steps[-1] <= steps[:-1].max() * 1.01
    again = loop_ws(keys, frames=50)
    assert torch.equal(ws, again)


def test_loop_is_smooth_not_piecewise_linear():
    keys = torch.tensor([[0.0], [1.0], [0.0], [-1.0]])
    ws = loop_ws(keys, frames=40).squeeze(1)
    second_diff = ws.roll(-1) - 2 * ws + ws.roll(1)
    # A piecewise-linear path has zero second differences inside segments and a spike at keys; a
    # cubic bends everywhere, so its largest kink is far below the linear path's (0.2 here).
    assert second_diff.abs().max() < 0.1


def test_frame_count_limits():
    keys = torch.zeros(3, 2, 2)
    for bad in (1, 601):
        with pytest.raises(ValueError):
            loop_ws(keys, frames=bad)
    assert loop_ws(keys, frames=600, cycles=3).shape[0] == 600


def test_render_deterministic_batched_and_seamless(G):
    ws = loop_ws(mix_with_poses(tiny_poses(G, 1, seed=3)[0], tiny_poses(G, 4), cutoff=4), frames=24)
    seen = []
    frames = render_frames(G, ws, batch=5, progress=lambda f, last: seen.append((f, last.shape)))
    assert frames.shape == (24, 32, 32, 3) and frames.dtype == np.uint8
    assert [round(f, 3) for f, _ in seen] == [round(min(24, i + 5) / 24, 3) for i in range(0, 24, 5)]
    assert np.array_equal(frames, render_frames(G, ws, batch=5))  # deterministic
    other = render_frames(G, ws, batch=24)  # another batch size: only float rounding may differ
    assert np.abs(frames.astype(int) - other).max() <= 2
    diff = np.abs(np.diff(np.concatenate([frames, frames[:1]]).astype(np.int16), axis=0)).mean(axis=(1, 2, 3))
    assert diff[-1] <= 2.0 * np.median(diff[:-1]) + 1.0  # the seam is no jump


def test_render_cancel(G):
    ev = threading.Event()
    ev.set()
    with pytest.raises(Cancelled):
        next(iter_frames(G, tiny_poses(G, 3), cancel=ev))


def test_compositor_pastes_inside_the_window_only():
    from PIL import Image

    from birdanim.stages.composite import Compositor, feather_mask, output_size

    m = feather_mask(64)
    assert m[32, 32] == pytest.approx(1.0) and m[0, 0] == 0 and m[0, 32] == 0 and m[32, 0] == 0
    assert output_size(3001, 1501) == (1280, 640) and output_size(101, 51) == (100, 50)
    photo = Image.new("RGB", (200, 100), (0, 0, 255))
    comp = Compositor(photo, (-20, 10, 80))  # window partly outside the photo (edge-padded crop)
    out = comp(np.full((32, 32, 3), 255, np.uint8))
    assert out.shape == (100, 200, 3)
    assert tuple(out[50, 20]) == (255, 255, 255)  # window centre: the frame
    assert tuple(out[50, 150]) == (0, 0, 255) and tuple(out[5, 5]) == (0, 0, 255)  # outside: the photo


def test_remove_region_fills_the_box_from_its_surroundings():
    from birdanim.stages.composite import remove_region

    a = np.zeros((100, 160, 3), np.uint8)
    a[...] = (100, 150, 220)  # sky
    a[40:60, 60:100] = (20, 20, 20)  # the old bird
    out = remove_region(a, (60, 40, 100, 60))
    assert np.abs(out[45:55, 65:95].astype(int) - (100, 150, 220)).max() < 20  # the bird is gone
    assert np.array_equal(out[:20], a[:20])  # away from the (grown, soft-edged) box: untouched


def test_loop_cycles_go_round_twice():
    keys = torch.randn(4, 2, 3, generator=torch.Generator().manual_seed(2))
    ws = loop_ws(keys, frames=40, cycles=2)
    assert torch.allclose(ws[:20], ws[20:], atol=1e-6)
    assert torch.allclose(ws[::5][:4], keys, atol=1e-6)


def test_offset_mixing_moves_the_coarse_rows_by_each_pose_minus_the_mean(G):
    poses = tiny_poses(G, 4)
    user = tiny_poses(G, 1, seed=7)[0]
    out = mix_with_poses(user, poses, cutoff=3, strength=1.0, mixing="offset")
    assert out.shape == (4, G.num_ws, G.w_dim)
    assert torch.equal(out[:, 3:], user[3:].expand(4, -1, -1))  # fine rows: the user's bird
    assert torch.allclose(out[:, :3], user[:3] + poses[:, :3] - poses[:, :3].mean(0), atol=1e-5)
    assert torch.allclose(out[:, :3].mean(0), user[:3], atol=1e-5)  # the cycle is centred on the user's bird
    same = tiny_poses(G, 1, seed=3).repeat(4, 1, 1)  # poses that do not differ: nothing moves
    assert torch.allclose(mix_with_poses(user, same, cutoff=5, mixing="offset"), user.expand(4, -1, -1), atol=1e-5)
    double = mix_with_poses(user, poses, cutoff=3, strength=2.0, mixing="offset")  # exaggerates, allowed up to 2
    assert torch.allclose(double[:, :3] - user[:3], 2 * (out[:, :3] - user[:3]), atol=1e-4)
    assert torch.equal(mix_with_poses(user, poses, cutoff=3, strength=0.0, mixing="offset"), user.expand(4, -1, -1))


@pytest.mark.parametrize("bad", [dict(mixing="blend"), dict(mixing="offset", strength=2.5), dict(mixing="swap", strength=1.5)])
def test_offset_mixing_rejects_bad_values(G, bad):
    with pytest.raises(ValueError):
        mix_with_poses(tiny_poses(G, 1)[0], tiny_poses(G, 3), **{"cutoff": 3, **bad})


def test_mixing_option_is_checked_with_its_strength_range():
    from birdanim.errors import BadArgument
    from birdanim.options import FIELDS, AnimateOptions

    assert AnimateOptions().mixing in FIELDS["mixing"].choices and FIELDS["mixing"].modes == ("gan",)
    assert AnimateOptions(mixing="offset", strength=1.5).checked(14).strength == 1.5
    with pytest.raises(BadArgument, match="strength"):
        AnimateOptions(mixing="swap", strength=1.5).checked(14)
    with pytest.raises(BadArgument, match="mixing"):
        AnimateOptions(mixing="blend").checked(14)


def test_compositor_fills_only_the_birds_mask_not_its_box():
    from PIL import Image

    from birdanim.stages.composite import Compositor

    a = np.zeros((100, 200, 3), np.uint8)
    a[...] = (100, 150, 220)  # sky
    a[45:55, 120:180] = (200, 60, 20)  # a branch in the bird's box, beside the bird
    a[30:70, 120:140] = (20, 20, 20)  # the old bird
    hole = np.zeros((100, 200), np.float32)
    hole[30:70, 120:140] = 1.0
    a[5:12, 175:182] = (250, 250, 0)  # a corner of the box the frame's ellipse does not cover (a missed head)
    window = (100, 0, 100)  # the frame's ellipse covers the bird and the branch
    comp = Compositor(Image.fromarray(a), window, box=(118, 5, 182, 72), hole=hole)
    bg = comp.background
    assert np.abs(bg[32:40, 124:136] - (100, 150, 220)).max() < 30  # the bird is gone (away from the branch)
    assert np.abs(bg[48:52, 150:170] - (200, 60, 20)).max() < 2  # the branch inside the ellipse stays
    assert np.abs(bg[6:11, 176:181] - (100, 150, 220)).max() < 40  # the box outside the ellipse is filled
    boxed = Compositor(Image.fromarray(a), window, box=(118, 5, 182, 72)).background
    assert np.abs(boxed[48:52, 150:170] - (200, 60, 20)).max() > 40  # the box-shaped fill would take the branch
