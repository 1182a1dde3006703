"""The Animator end to end on a tiny generator without a detector, and the pose/weights check."""

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from _anim_tiny import one_thread, tiny_generator, tiny_poses  # noqa: F401 (autouse fixture)
from PIL import Image

from birdanim.checkpoint import save_generator
from birdanim.errors import BadImageError, WeightsError
from birdanim.engines.gan.poses import DEFAULT_POSES_DIR, load_poses, save_poses
from birdanim.service import Animator, BadArgument, Box, Cancelled
from birdanim.stages.video import probe

REPO = Path(__file__).resolve().parent.parent
GAN = {"mode": "gan", "scene": "crop"}  # the GAN mode's own frames, as these tests check them


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    d = tmp_path_factory.mktemp("weights")
    G = tiny_generator()
    save_generator(G, d)
    save_poses(d / "poses", tiny_poses(G, 4), None, d / "model.safetensors", {"source": "test"})
    return d


@pytest.fixture(scope="module")
def animator(weights):
    return Animator(weights=str(weights), device="cpu", detector=None, poses_dir=weights / "poses", encoder=None)


@pytest.fixture
def photo():
    a = np.zeros((120, 200, 3), np.uint8)
    a[...] = (120, 170, 230)
    a[40:80, 80:130] = (60, 40, 30)
    return Image.fromarray(a)


def test_crop_and_detect_without_detector(animator, photo):
    assert animator.detect(photo) == []
    assert animator.crop(photo).size == (32, 32)
    assert animator.crop(photo, Box(80, 40, 130, 80)).size == (32, 32)


def test_animate_end_to_end(animator, photo, tmp_path):
    stages = []
    res = animator.animate(photo, **GAN, frames=16, fps=12, cutoff=3, out_dir=tmp_path, gif=True,
                           progress=lambda s, f, img: stages.append(s))
    info = probe(res.mp4_path)
    assert info["frames"] == 16 and info["fps"] == 12 and info["codec"] == "h264"
    assert (info["width"], info["height"]) == (32, 32)
    assert res.gif_path.is_file() and res.num_frames == 16
    assert res.ws.shape == (1, animator.num_ws, 32)
    assert {"project", "render", "encode"} <= set(stages)
    assert set(res.timings) >= {"detect", "project", "render", "encode", "total"}
    assert any("centred" in n for n in res.notes)


def test_frames_reach_ffmpeg_after_rendering_in_bounded_chunks(animator, photo, tmp_path, monkeypatch):
    """Frames are encoded after they are rendered (x264 does not compete with the synthesis), in chunks
    bounded by ENCODE_CHUNK_BYTES; none is lost or reordered."""
    import birdanim.service as service
    from benchmarks.bench_animate import read_frames
    from birdanim.stages import video
    from birdanim.engines.gan.mixing import loop_ws, mix_with_poses, render_frames

    events = []
    orig = video.Mp4Writer.write
    monkeypatch.setattr(video.Mp4Writer, "write", lambda self, frames: (events.append(("write", len(frames))), orig(self, frames))[1])
    progress = lambda stage, f, img: events.append((stage, f))  # noqa: E731

    animator.animate(photo, **GAN, frames=20, fps=10, cutoff=3, out_dir=tmp_path / "a", progress=progress)
    kinds = [e[0] for e in events]
    last_render = max(i for i, k in enumerate(kinds) if k == "render")
    assert "write" in kinds and min(i for i, k in enumerate(kinds) if k == "write") > last_render  # 20 small frames: one chunk

    events.clear()
    monkeypatch.setattr(service, "ENCODE_CHUNK_BYTES", 32 * 32 * 3 * 8)  # one render batch of 8 frames at 32 px
    res = animator.animate(photo, **GAN, frames=20, fps=10, cutoff=3, out_dir=tmp_path / "b", progress=progress)
    kinds = [e[0] for e in events]
    assert kinds.index("write") < max(i for i, k in enumerate(kinds) if k == "render")  # flushed while rendering
    assert sum(n for k, n in events if k == "write") == 20

    got = read_frames(res.mp4_path).astype(np.float32)
    keys = mix_with_poses(res.ws.to(animator.device), animator.poses.ws.to(animator.device), cutoff=3)
    want = render_frames(animator.G, loop_ws(keys, frames=20)).astype(np.float32)
    # H.264 is lossy: each decoded frame is much closer to its own render than to its neighbour's
    err_same = np.abs(got - want).mean(axis=(1, 2, 3))
    err_shift = np.abs(got - np.roll(want, 1, axis=0)).mean(axis=(1, 2, 3))
    assert (err_same < err_shift).mean() > 0.9, (err_same, err_shift)


def test_animate_deterministic_for_seed(animator, photo, tmp_path):
    a = animator.animate(photo, **GAN, frames=4, out_dir=tmp_path / "a", seed=3)
    b = animator.animate(photo, **GAN, frames=4, out_dir=tmp_path / "b", seed=3)
    assert torch.allclose(a.ws, b.ws, atol=1e-5)


def test_animate_in_scene(animator, tmp_path):
    big = Image.new("RGB", (301, 151), (200, 210, 220))
    res = animator.animate(big, **{**GAN, "scene": "photo"}, box=Box(100, 30, 160, 90), frames=4, out_dir=tmp_path)
    info = probe(res.mp4_path)
    assert (info["width"], info["height"]) == (300, 150)  # the photo's size, rounded to even


def test_animate_bad_inputs(animator, photo, tmp_path):
    with pytest.raises(BadImageError):
        animator.animate(b"not an image", **GAN, out_dir=tmp_path)
    for kw in (dict(frames=1), dict(frames=601), dict(cutoff=0), dict(cutoff=animator.num_ws), dict(strength=2),
               dict(quality="ultra"), dict(fps=0)):
        with pytest.raises(BadArgument):
            animator.animate(photo, **GAN, out_dir=tmp_path, **kw)


def test_cancel(animator, photo, tmp_path):
    ev = threading.Event()
    ev.set()
    with pytest.raises(Cancelled):
        animator.animate(photo, **GAN, frames=4, out_dir=tmp_path, cancel=ev)


def test_generator_views(animator):
    birds = animator.random_birds([0, 1, 2])
    assert len(birds) == 3 and birds[0].shape == (32, 32, 3) and birds[0].dtype == np.uint8
    assert not np.array_equal(birds[0], birds[1])
    sim, thumbs = animator.similarity([0, 1, 2, 0])
    assert sim.shape == (4, 4) and np.allclose(np.diag(sim), 1, atol=1e-5) and sim[0, 3] == pytest.approx(1, abs=1e-5)
    grid = animator.mixing_grid([1, 2], [3, 4, 5], cutoff=3)
    assert grid.shape == (3 * 32 + 2 * 2, 4 * 32 + 3 * 2, 3)
    assert (grid[:32, :32] == 255).all()  # the empty corner
    assert np.array_equal(grid[:32, 34:66], birds[0] * 0 + animator.random_birds([3])[0])  # column source


def test_mismatched_poses_raise(weights, tmp_path, photo):
    other = tiny_generator(seed=5)
    save_generator(other, tmp_path / "other")
    a = Animator(weights=str(tmp_path / "other"), detector=None, poses_dir=weights / "poses", encoder=None)
    with pytest.raises(WeightsError, match="made for generator weights"):
        a.animate(photo, **GAN, frames=4, out_dir=tmp_path)
    assert len(a.random_birds([0])) == 1  # the rest of the service still works


def test_committed_poses_match_committed_weights():
    weights_file = REPO / "weights" / "model.safetensors"
    if not weights_file.is_file():
        pytest.skip("weights/ has no model.safetensors yet (exported at the end of training)")
    from birdanim.checkpoint import load_generator

    G = load_generator(REPO / "weights")
    poses = load_poses(DEFAULT_POSES_DIR, weights_file, G.num_ws, G.w_dim)  # raises WeightsError on mismatch
    assert poses.ws.shape[0] >= 5  # the five the flight probe calls flying (assets/target_poses/README.md)


def test_make_target_poses_script(weights, tmp_path, monkeypatch):
    from train.tools.make_target_poses import add_inbetweens, main

    ws, labels = add_inbetweens([torch.zeros(2), torch.ones(2), torch.full((2,), 5.0)], ["a", "b", "c"], 5)
    assert len(ws) == 5 and labels[:3] == ["a", "b", "in-between of b and c"]  # widest gap first
    assert labels[4] == "in-between of c and a"  # then the wrap-around gap
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(2):
        Image.new("RGB", (80, 70), (40 * i, 100, 200)).save(frames / f"f{i}.png")
    monkeypatch.setenv("BIRDANIM_THREADS", "1")
    assert main(["--frames", str(frames), "--weights", str(weights), "--out", str(tmp_path / "poses"),
                 "--steps", "2", "--min-poses", "3", "--detector", "none"]) == 0
    poses = load_poses(tmp_path / "poses", weights / "model.safetensors", 8, 32)
    assert poses.ws.shape == (3, 8, 32) and (tmp_path / "poses" / "pose_02.png").is_file()
    assert poses.manifest["sources"][0] == "f0.png" and poses.manifest["sources"].count("f1.png") == 1
    assert not list((tmp_path / "poses").glob("f*.png"))  # the source frames are never copied
    assert poses.manifest["restarted"] == []  # without a detector every fit counts as showing a bird


def test_make_target_poses_restarts_a_fit_that_lost_the_bird(weights, tmp_path, monkeypatch):
    """A pose whose fit from the previous pose renders no bird is fitted again from the encoder's /
    the average w start, and the manifest names it."""
    import train.tools.make_target_poses as mtp

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        Image.new("RGB", (64, 64), (40 * i, 100, 200)).save(frames / f"f{i}.png")
    verdicts = iter([False, True, True])  # f1's first fit: no bird; its refit: a bird; f2: a bird
    calls = []
    monkeypatch.setattr(mtp, "shows_bird", lambda a, ws: calls.append(ws) or next(verdicts))
    monkeypatch.setenv("BIRDANIM_THREADS", "1")
    assert mtp.main(["--frames", str(frames), "--weights", str(weights), "--out", str(tmp_path / "poses"),
                     "--steps", "2", "--min-poses", "3", "--detector", "none"]) == 0
    poses = load_poses(tmp_path / "poses", weights / "model.safetensors", 8, 32)
    assert poses.manifest["restarted"] == ["f1.png"] and len(calls) == 3  # f0 has no previous pose: not checked


def test_require_bird_without_detector(animator, photo, tmp_path):
    from birdanim.errors import NoBirdError

    with pytest.raises(NoBirdError, match="pass a box"):
        animator.animate(photo, **GAN, frames=4, out_dir=tmp_path, require_bird=True)
    res = animator.animate(photo, **GAN, box=Box(80, 40, 130, 80), frames=4, out_dir=tmp_path, require_bird=True)
    assert res.box == Box(80, 40, 130, 80)


def test_require_bird_with_a_detector_that_finds_none(animator, photo, tmp_path, monkeypatch):
    from birdanim.errors import NoBirdError

    monkeypatch.setattr(animator, "detector", lambda img: [])  # a loaded detector that sees no bird
    with pytest.raises(NoBirdError, match="no bird found"):
        animator.animate(photo, **GAN, frames=4, out_dir=tmp_path, require_bird=True)
    res = animator.animate(photo, **GAN, frames=4, out_dir=tmp_path)  # without require_bird: centred crop and a note
    assert res.box is None and any("no bird found" in n for n in res.notes)


def test_gif_frames_subsampled(animator, photo, tmp_path):
    res = animator.animate(photo, **GAN, frames=12, fps=30, out_dir=tmp_path, gif=True)
    assert Image.open(res.gif_path).n_frames == 6  # 30 fps -> 15 fps


def test_mixing_grid_cells_mix_rows_and_columns(animator):
    grid = animator.mixing_grid([1], [3], cutoff=3)
    with torch.no_grad():
        rw, cw = animator._ws_of_seeds([1], 1.0), animator._ws_of_seeds([3], 1.0)
        mixed = torch.cat([rw[:, :3], cw[:, 3:]], dim=1)
        want = animator._render(mixed)[0]
    assert np.array_equal(grid[34:66, 34:66], want)  # coarse from the row seed, fine from the column seed
    assert np.array_equal(grid[34:66, :32], animator.random_birds([1])[0])  # the row source


def test_mixing_grid_reports_progress_to_the_end(animator):
    seen = []
    animator.mixing_grid([1, 2], [3, 4, 5], cutoff=3, progress=lambda f, frame: seen.append(f))
    assert seen and seen == sorted(seen) and seen[-1] == 1.0


def test_warmup_runs_each_network_and_leaves_the_generator_as_it_was(animator, monkeypatch):
    before = {k: v.clone() for k, v in animator.G.state_dict().items()}
    seen = []
    monkeypatch.setattr(animator, "detector", lambda img: seen.append(img.size) or [])
    animator.warmup()  # generator, features, one projection step (a backward pass), the detector
    assert seen == [(128, 128)]
    after = animator.G.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert not any(p.requires_grad for p in animator.G.parameters())


def test_poses_folder_from_the_environment(tmp_path, monkeypatch):
    """poses_dir None means $BIRDANIM_POSES when set (the app and the CLI share this), else assets/."""
    from birdanim.errors import WeightsError

    monkeypatch.setenv("BIRDANIM_POSES", str(tmp_path / "elsewhere"))
    with pytest.raises(WeightsError, match="elsewhere"):
        load_poses(None)
    monkeypatch.delenv("BIRDANIM_POSES")
    if (DEFAULT_POSES_DIR / "manifest.json").is_file():
        assert load_poses(None).ws.shape[0] >= 2
