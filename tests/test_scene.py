"""The scene without the bird: the fill keeps everything away from the hole, fills it with the
surroundings' colours (and texture, not a flat smear); the sky; LamaInpainter's loading with a tiny
ONNX model of the same interface."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from birdanim.errors import InpainterUnavailableError
from birdanim.stages.scene import LamaInpainter, fill_hole, hole_mask, push_pull, sky_background


def striped(h=160, w=200, seed=0):
    """A two-tone background (sky over grass) with fine texture, and a dark "bird" ellipse on it."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    img[: h // 2] = (110, 160, 220)
    img[h // 2 :] = (70, 130, 50)
    img += rng.normal(0, 6, img.shape)
    clean = np.clip(img, 0, 255).astype(np.uint8)
    photo = clean.copy()
    alpha = np.zeros((h, w), np.float32)
    cv2.ellipse(alpha, (100, 80), (40, 26), 0, 0, 360, 1.0, -1)
    photo[alpha > 0] = (30, 25, 20)
    return photo, alpha, clean


def test_fill_hole_keeps_far_pixels_and_fills_from_the_surroundings():
    photo, alpha, clean = striped()
    out = fill_hole(photo, alpha)
    assert out.dtype == np.uint8 and out.shape == photo.shape
    hole = hole_mask(alpha)
    far = cv2.dilate(hole, np.ones((9, 9), np.uint8)) == 0
    assert np.array_equal(out[far], photo[far])
    inside = alpha > 0
    # no trace of the dark bird; each half close to its own surroundings' colour
    sky, grass = inside.copy(), inside.copy()
    sky[60:] = False
    grass[:100] = False
    assert np.abs(out[sky].mean(0) - clean[:80].reshape(-1, 3).mean(0)).max() < 20
    assert np.abs(out[grass].mean(0) - clean[80:].reshape(-1, 3).mean(0)).max() < 20
    assert out[inside].min(0).max() > 40  # the bird's (30, 25, 20) is gone
    # textured, not a flat smear: the fill's fine-scale variation is of the order of the background's
    hi = lambda a: (a.astype(np.float32) - cv2.GaussianBlur(a.astype(np.float32), (0, 0), 1.5))  # noqa: E731
    assert hi(out)[sky].std() > 0.3 * hi(clean)[:60].std()


def test_fill_hole_without_a_hole_and_with_an_inpainter():
    photo, alpha, _ = striped()
    assert np.array_equal(fill_hole(photo, np.zeros_like(alpha)), photo)
    calls = []

    def grey(p, hole):
        calls.append(hole.sum())
        return np.full_like(p, 128)

    out = fill_hole(photo, alpha, inpainter=grey)
    assert calls and tuple(out[80, 100]) == (128, 128, 128) and np.array_equal(out[:5], photo[:5])


def test_push_pull_fills_a_constant():
    img = np.full((40, 50, 3), 77.0, np.float32)
    known = np.ones((40, 50), np.float32)
    known[10:30, 10:40] = 0
    img[known == 0] = 0
    assert np.abs(push_pull(img, known) - 77).max() < 0.5


def test_sky_background():
    photo = np.zeros((50, 60, 3), np.uint8)
    photo[:] = (40, 120, 40)  # a green photo: a greenish tint, still a sky
    sky = sky_background(90, 120, photo)
    assert sky.shape == (90, 120, 3) and sky.dtype == np.uint8
    top, bottom = sky[:5].reshape(-1, 3).mean(0), sky[-5:].reshape(-1, 3).mean(0)
    assert bottom.mean() > top.mean() + 20  # hazier (lighter) toward the horizon
    assert top[2] > top[0]  # still blue-ish at the top
    plain = sky_background(90, 120)
    assert top[1] - top[2] > plain[:5].reshape(-1, 3).mean(0)[1] - plain[:5].reshape(-1, 3).mean(0)[2]  # tinted green


# ---------------------------------------------------------------- the learned inpainter's loading


def test_lama_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(InpainterUnavailableError, match="BIRDANIM_INPAINTER"):
        LamaInpainter(tmp_path / "nope.onnx")


@pytest.fixture(scope="module")
def tiny_lama(tmp_path_factory):
    """An ONNX model with LaMa-ONNX's interface (image [1,3,512,512] 0..1, mask [1,1,512,512] ->
    [1,3,512,512]) that paints the hole mid-grey: the loading and the plumbing, not the quality."""
    import onnx  # noqa: F401  (torch.onnx's exporter writes the file with it; a dev requirement)
    import torch

    class Grey(torch.nn.Module):
        def forward(self, image, mask):
            return image * (1 - mask) + 0.5 * mask

    path = tmp_path_factory.mktemp("lama") / "tiny_lama.onnx"
    import warnings

    with warnings.catch_warnings():  # the legacy exporter warns that it is legacy; it needs no onnxscript
        warnings.simplefilter("ignore")
        torch.onnx.export(Grey(), (torch.zeros(1, 3, 512, 512), torch.zeros(1, 1, 512, 512)), str(path),
                          input_names=["image", "mask"], output_names=["output"], dynamo=False)
    return path


def test_lama_inpainter_runs_a_tiny_onnx_model(tiny_lama, monkeypatch):
    monkeypatch.setenv("BIRDANIM_INPAINTER", str(tiny_lama))
    lama = LamaInpainter()  # "auto" finds it through the environment variable
    assert lama.source == str(tiny_lama)
    photo, alpha, _ = striped()
    out = fill_hole(photo, alpha, inpainter=lama)
    assert np.abs(out[80, 100].astype(int) - 128).max() <= 3  # the model's grey, back at photo size
    assert np.array_equal(out[:5], photo[:5])
    with pytest.raises(InpainterUnavailableError, match="image_input"):
        LamaInpainter(tiny_lama, image_input="img")
