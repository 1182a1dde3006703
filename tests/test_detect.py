"""Crop geometry and box merging (pure functions), and the real detector on a real photo."""

import numpy as np
import pytest
from PIL import Image

from birdanim.paths import shared_detector
from conftest import needs_detector, needs_shared
from birdanim.stages.detect import Box, crop_square, merge_boxes, same_bird, square_window
from birdanim.errors import DetectorUnavailableError


def test_window_centred_with_margin():
    x0, y0, side = square_window(Box(100, 100, 200, 180), 1000, 800, margin=0.25)
    assert side == 125  # 1.25 x the long side (100)
    assert (x0 + side / 2, y0 + side / 2) == pytest.approx((150, 140), abs=1)


def test_window_clamped_inside():
    x0, y0, side = square_window(Box(0, 0, 50, 40), 300, 200)  # bird in the top-left corner
    assert (x0, y0) == (0, 0) and side == 62
    x0, y0, side = square_window(Box(250, 150, 300, 200), 300, 200)  # bottom-right corner
    assert x0 + side == 300 and y0 + side == 200


def test_window_shrinks_margin_then_pads():
    # A box 180 tall in a 400x200 image: 1.25x would be 225 > 200, so the side becomes 200 (fits).
    x0, y0, side = square_window(Box(100, 10, 200, 190), 400, 200)
    assert side == 200 and y0 == 0
    # A box wider than the image is tall: side = box (300), padded equally above and below.
    x0, y0, side = square_window(Box(50, 0, 350, 100), 400, 100)
    assert side == 300 and y0 == -100 and 0 <= x0 <= 100


def test_window_without_box_is_centred_square():
    assert square_window(None, 300, 200) == (50, 0, 200)
    assert square_window(None, 200, 300) == (0, 50, 200)


def test_crop_square_edge_padding():
    a = np.zeros((100, 400, 3), np.uint8)
    a[0, :, 0] = 200  # top row red, bottom row green
    a[-1, :, 1] = 200
    crop = np.asarray(crop_square(Image.fromarray(a), (50, -100, 300), 300))
    assert crop.shape == (300, 300, 3)
    assert (crop[:100, :, 0] == 200).all()  # edge replication of the top row, not black
    assert (crop[-100:, :, 1] == 200).all()


def test_crop_square_resizes():
    img = Image.new("RGB", (500, 400), (9, 9, 9))
    assert crop_square(img, square_window(Box(10, 10, 110, 60), 500, 400), 32).size == (32, 32)


def test_merge_nested_and_overlapping():
    a = Box(10, 10, 110, 110, 0.9)
    nested = Box(30, 30, 100, 100, 0.7)
    other = Box(300, 300, 330, 330, 0.5)
    assert same_bird(a, nested) and not same_bird(a, other)
    out = merge_boxes([other, nested, a])
    assert len(out) == 2
    assert out[0] == Box(10, 10, 110, 110, 0.9)  # largest first, highest confidence kept
    assert out[1] == other


def test_merge_chain():
    boxes = [Box(0, 0, 100, 100, 0.3), Box(10, 0, 110, 100, 0.4), Box(20, 0, 120, 100, 0.8)]
    out = merge_boxes(boxes)
    assert out == [Box(0, 0, 120, 100, 0.8)]


def test_unloadable_detector_raises(tmp_path):
    from birdanim.stages.detect import BirdDetector

    with pytest.raises(DetectorUnavailableError, match="no bird detector"):
        BirdDetector(tmp_path / "missing_model")


@pytest.mark.slow
def test_real_detector_finds_the_bird():
    needs_detector()
    photo = needs_shared("reference", "aps360", "stylegan2-ada-pytorch-copy", "good_birds", "2", "frame_0000.jpg")
    from birdanim.stages.detect import BirdDetector
    from birdanim.stages.photo import load_photo

    img = load_photo(photo)
    boxes = BirdDetector(shared_detector())(img)
    assert len(boxes) == 1 and boxes[0].conf > 0.5
    assert boxes[0].area > 0.3 * img.width * img.height  # the gull fills most of that photo
    blank = Image.new("RGB", (320, 240), (128, 128, 128))
    assert BirdDetector(shared_detector())(blank) == []


@pytest.mark.slow
def test_openvino_path_matches_ultralytics_and_leaves_threads_alone(tmp_path, monkeypatch):
    """The shared export run by OpenVINO directly gives ultralytics' boxes (same letterbox, class choice and
    NMS), caches its compiled model, and leaves torch's and OpenCV's thread counts as they were (issue 27:
    ultralytics' predict set torch to 1 thread on 2 cores and halved the generator's speed)."""
    import io
    import zipfile

    import cv2
    import torch

    from birdanim.stages.detect import BIRD_CLASS, BirdDetector, OpenVINOYolo, keep_thread_settings, _prepare_ultralytics_env

    needs_detector()
    test_zip = needs_shared("data", "birds256", "test.zip")
    monkeypatch.setenv("BIRDANIM_CACHE", str(tmp_path / "cache"))
    with zipfile.ZipFile(test_zip) as z:
        crops = [Image.open(io.BytesIO(z.read(n))).convert("RGB") for n in sorted(z.namelist())[:3]]
    canvas = Image.new("RGB", (937, 553), (110, 140, 170))  # several birds in an odd-sized "photo"
    for j, c in enumerate(crops):
        canvas.paste(c.resize((200, 200)), (30 + 290 * j, 40 + 120 * (j % 2)))

    torch.set_num_threads(2)
    cv2.setNumThreads(2)
    det = BirdDetector(shared_detector())
    assert isinstance(det.model, OpenVINOYolo)
    assert list((tmp_path / "cache" / "openvino").iterdir()), "no compiled-model cache written"
    ours = det.model.boxes(np.asarray(canvas), 0.05, classes=[BIRD_CLASS])
    assert len(det(canvas)) >= 2
    assert torch.get_num_threads() == 2 and cv2.getNumThreads() == 2

    _prepare_ultralytics_env()
    with keep_thread_settings():
        from ultralytics import YOLO

        r = YOLO(str(shared_detector()), task="detect").predict(np.asarray(canvas)[..., ::-1], imgsz=640, conf=0.05,
                                                               classes=[BIRD_CLASS], iou=0.7, verbose=False)[0].boxes
    assert torch.get_num_threads() == 2 and cv2.getNumThreads() == 2  # put back after ultralytics too
    theirs = np.concatenate([r.xyxy.numpy(), r.conf.numpy()[:, None], r.cls.numpy()[:, None]], 1)
    assert ours.shape == theirs.shape and len(ours) >= 2
    np.testing.assert_allclose(ours, theirs, atol=0.01)  # measured: <= 1e-4 px, confidences identical


def test_detector_candidates(monkeypatch, tmp_path):
    from birdanim.stages.detect import detector_candidates

    assert detector_candidates(tmp_path / "my_model") == [str(tmp_path / "my_model")]
    monkeypatch.setenv("BIRDANIM_DETECTOR", str(tmp_path / "env_model"))
    cands = detector_candidates("auto")
    assert cands[0] == str(tmp_path / "env_model") and cands[-1] == "yolov8n.pt"  # download is the last resort
    assert len(cands) == len(set(cands))
