"""train/tools/make_examples.py: the app's example photos are the generator's birds in simple scenes."""

import json

import numpy as np
from PIL import Image

from _app_tiny import tiny_weights
from birdanim.engines.gan.poses import sha256_file
from train.tools.make_examples import SCENES, main, place, scene


def test_examples_are_scenes_with_the_generators_birds(tmp_path):
    w = tiny_weights(tmp_path / "weights")
    out = tmp_path / "examples"
    out.mkdir()
    (out / "bird_9999.jpg").write_bytes(b"stale")
    assert main(["--weights", str(w), "--seeds", "3,7", "--out", str(out), "--size", "320x240"]) == 0
    files = sorted(p.name for p in out.glob("*.jpg"))
    assert files == ["bird_0003.jpg", "bird_0007.jpg"]  # the stale one is gone
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["weights_sha256"] == sha256_file(w / "model.safetensors") and manifest["seeds"] == [3, 7]
    img = np.asarray(Image.open(out / "bird_0003.jpg"), dtype=np.float32)
    assert img.shape == (240, 320, 3)
    plain = np.asarray(scene(320, 240, SCENES[0], 3), dtype=np.float32)  # the same scene without the bird
    x0, y0, side = place(320, 240, 3)
    diff = np.abs(img - plain).mean(-1)
    inside = diff[y0 + side // 4 : y0 + 3 * side // 4, x0 + side // 4 : x0 + 3 * side // 4].mean()
    outside = np.delete(diff, np.s_[max(0, y0 - 8) : y0 + side + 8], axis=0).mean()  # rows far from the bird
    assert inside > 10 and outside < 3, (inside, outside)  # the bird is pasted there and only there
