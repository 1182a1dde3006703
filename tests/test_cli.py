"""The animate / generate / mix / project commands on a tiny generator, and their error handling."""

import argparse

import numpy as np
import pytest
from _anim_tiny import one_thread, tiny_generator, tiny_poses  # noqa: F401 (autouse fixture)
from PIL import Image

from birdanim.checkpoint import save_generator
from birdanim.cli import main
from birdanim.cli._common import parse_seeds
from birdanim.engines.gan.poses import save_poses
from birdanim.stages.video import probe


@pytest.fixture(autouse=True)
def _one_thread_in_commands(monkeypatch):
    monkeypatch.setenv("BIRDANIM_THREADS", "1")  # the commands call set_cpu_threads()


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    d = tmp_path_factory.mktemp("w")
    G = tiny_generator()
    save_generator(G, d)
    save_poses(d / "poses", tiny_poses(G, 4), None, d / "model.safetensors")
    return d


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    p = tmp_path_factory.mktemp("p") / "bird.png"
    a = np.full((100, 150, 3), 180, np.uint8)
    a[30:70, 50:100] = (90, 60, 20)
    Image.fromarray(a).save(p)
    return p


def test_parse_seeds():
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("1,2,5-7") == [1, 2, 5, 6, 7]
    for bad in ("", "a", "5-3", "1,x"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_seeds(bad)


def test_help_has_examples(capsys):
    for cmd in ("animate", "generate", "mix", "project"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        assert f"birdanim {cmd}" in capsys.readouterr().out.split("examples:")[1]


@pytest.mark.parametrize("mode", ["gan", "rig"])
def test_animate_command(weights, photo, tmp_path, capsys, mode):
    out = tmp_path / "v" / "bird.mp4"
    rc = main(["animate", str(photo), "-o", str(out), "--weights", str(weights), "--poses", str(weights / "poses"),
               "--detector", "none", "--frames", "8", "--fps", "10", "--cutoff", "3", "--gif", "--quiet",
               "--box", "50,30,100,70", "--scene", "photo", "--mode", mode, "--size", "150",
               "--save-rig", str(tmp_path / "rig.json")])
    assert rc == 0, capsys.readouterr()
    info = probe(out)
    assert info["frames"] == 8 and info["fps"] == 10 and (info["width"], info["height"]) == (150, 100)
    assert (tmp_path / "rig.json").is_file() == (mode == "rig")
    assert out.with_suffix(".gif").is_file()
    assert "timings" in capsys.readouterr().out


def test_generate_mix_project(weights, photo, tmp_path):
    assert main(["generate", "--seeds", "0-3", "-o", str(tmp_path / "g.png"), "--weights", str(weights)]) == 0
    assert Image.open(tmp_path / "g.png").size == (2 * 32 + 2, 2 * 32 + 2)
    assert main(["mix", "--rows", "1,2", "--cols", "3-5", "--cutoff", "3", "-o", str(tmp_path / "m.png"),
                 "--weights", str(weights)]) == 0
    assert Image.open(tmp_path / "m.png").size == (4 * 32 + 6, 3 * 32 + 4)
    assert main(["project", str(photo), "-o", str(tmp_path / "ws.npy"), "--weights", str(weights), "--detector",
                 "none", "--steps", "3", "--png", str(tmp_path / "r.png")]) == 0
    ws = np.load(tmp_path / "ws.npy")
    assert ws.shape == (8, 32) and ws.dtype == np.float32
    assert Image.open(tmp_path / "r.png").size == (66, 32)


def test_errors_are_messages_not_crashes(weights, tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    args = ["-o", str(tmp_path / "x.mp4"), "--weights", str(weights), "--detector", "none", "--quiet"]
    assert main(["animate", str(bad), *args]) == 2
    assert "not an image" in capsys.readouterr().err
    assert main(["animate", str(bad), "-o", str(tmp_path / "x.mp4"), "--weights", str(tmp_path / "nowhere")]) == 2
    assert "error" in capsys.readouterr().err


def test_box_is_in_the_pixels_of_the_photo_as_shown(weights, tmp_path, monkeypatch):
    """--box is read off the original photo: on a photo that loading shrinks (long side > 2048) or
    rotates (EXIF), the box the service gets is the same region of the loaded image."""
    from birdanim.errors import BirdanimError
    from birdanim.service import Animator

    got = {}

    def fake_animate(self, photo, options=None, **kw):
        got["box"], got["size"] = kw["box"], photo.size
        raise BirdanimError("stop here")

    monkeypatch.setattr(Animator, "animate", fake_animate)
    big = tmp_path / "big.jpg"
    Image.new("RGB", (4096, 256), (120, 130, 140)).save(big)
    args = ["-o", str(tmp_path / "x.mp4"), "--weights", str(weights), "--detector", "none", "--quiet"]
    assert main(["animate", str(big), *args, "--box", "3000,40,3200,240"]) == 2
    assert got["size"] == (2048, 128)
    b = got["box"]
    assert (b.x0, b.y0, b.x1, b.y1) == (1500, 20, 1600, 120)
    # EXIF orientation 6 (rotate 90): stored 300x100, shown 100x300; a box in the shown pixels stays put
    rot = tmp_path / "rot.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (300, 100), (90, 90, 90)).save(rot, exif=exif)
    assert main(["animate", str(rot), *args, "--box", "10,200,90,290"]) == 2
    assert got["size"] == (100, 300)
    b = got["box"]
    assert (b.x0, b.y0, b.x1, b.y1) == (10, 200, 90, 290)


def test_project_bad_steps_is_a_message(weights, photo, tmp_path, capsys):
    rc = main(["project", str(photo), "-o", str(tmp_path / "ws.npy"), "--weights", str(weights), "--detector", "none",
               "--steps", "0"])
    assert rc == 2 and "steps must be >= 1" in capsys.readouterr().err


def test_train_commands_call_the_modules_main(capsys):
    """`birdanim train` imports train.loop.train and calls its main(argv): no runpy, no sys.path change."""
    import json
    import sys

    path = list(sys.path)
    assert main(["train", "--preset", "tiny", "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["preset"] == "tiny"
    assert sys.path == path


def test_train_commands_without_a_source_checkout_say_so(monkeypatch, tmp_path, capsys):
    import birdanim.cli as cli

    monkeypatch.setattr(cli, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(cli, "TRAIN_DIR", tmp_path / "train")
    assert main(["train", "--dry-run"]) == 2
    assert "needs a source checkout" in capsys.readouterr().err
