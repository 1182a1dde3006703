"""Cutting the bird out: GrabCut on a drawn "bird" (an ellipse) with a thin "branch" across a textured
background, the soft edge, other birds kept out, the oval fallback, and YoloSegmenter's loading and
instance choice with a fake ultralytics result."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from birdanim.errors import SegmenterUnavailableError
from birdanim.stages.detect import Box
from birdanim.stages.segment import (
    FALLBACK_NOTE,
    Cutout,
    YoloSegmenter,
    fill_holes,
    segment_bird,
    segmenter_candidates,
    select_instance,
    soft_edge,
)


def textured(h=240, w=320, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    bg = np.stack([90 + 40 * np.sin(xx / 17.0) + 20 * np.cos(yy / 11.0), 140 + 30 * np.cos(xx / 23.0 + yy / 19.0),
                   110 + 25 * np.sin(yy / 13.0)], -1) + rng.normal(0, 8, (h, w, 3))
    return np.clip(bg, 0, 255).astype(np.uint8)


def draw_bird(img, centre, axes, colour, seed=1):
    m = np.zeros(img.shape[:2], np.uint8)
    cv2.ellipse(m, centre, axes, 0, 0, 360, 1, -1)
    noise = np.random.default_rng(seed).normal(0, 6, (int(m.sum()), 3))
    img[m > 0] = np.clip(np.asarray(colour) + noise, 0, 255).astype(np.uint8)
    return m > 0


@pytest.fixture(scope="module")
def scene():
    img = textured()
    bird = draw_bird(img, (160, 120), (60, 38), (200, 120, 40))
    branch = np.zeros(img.shape[:2], np.uint8)
    cv2.line(branch, (0, 150), (319, 140), 1, 5)
    img[branch > 0] = (70, 50, 30)
    return img, bird, branch > 0


def test_grabcut_recovers_the_bird_and_leaves_the_branch(scene):
    img, bird, branch = scene
    cut = segment_bird(img, Box(100, 82, 220, 158))
    assert isinstance(cut, Cutout) and cut.method == "grabcut" and cut.notes == []
    assert cut.alpha.dtype == np.float32 and cut.alpha.shape == img.shape[:2]
    m = cut.alpha > 0.5
    iou = (m & bird).sum() / (m | bird).sum()
    assert iou > 0.85, iou
    outside = branch & ~bird
    assert (m & outside).sum() < 0.05 * outside.sum()  # the perch outside the bird stays out


def test_box_cutting_the_bird_a_little_is_allowed(scene):
    img, bird, _ = scene
    cut = segment_bird(img, Box(106, 86, 214, 154))  # a few px inside the bird's true extent
    m = cut.alpha > 0.5
    assert (m & bird).sum() / (m | bird).sum() > 0.85


def test_soft_edge_only_at_the_border(scene):
    img, bird, _ = scene
    a = segment_bird(img, Box(100, 82, 220, 158)).alpha
    partial = (a > 0) & (a < 1)
    hard = a > 0.5
    border = cv2.dilate(hard.astype(np.uint8), np.ones((3, 3), np.uint8)) != cv2.erode(hard.astype(np.uint8), np.ones((3, 3), np.uint8))
    near = cv2.dilate(border.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert partial.any() and not (partial & ~near).any()
    assert a.min() == 0.0 and a.max() == 1.0


def test_other_bird_is_kept_out():
    img = textured(seed=3)
    bird = draw_bird(img, (110, 120), (50, 32), (200, 120, 40))
    other = draw_bird(img, (200, 118), (40, 28), (200, 120, 40), seed=2)  # the same colour, touching
    cut = segment_bird(img, Box(60, 88, 160, 152), others=[Box(160, 90, 240, 146)])
    m = cut.alpha > 0.5
    assert (m & bird).sum() / (m | bird).sum() > 0.8
    assert (m & other & ~bird).sum() < 0.03 * other.sum()


def test_blank_photo_falls_back_to_an_oval_with_a_note():
    img = np.full((120, 160, 3), 128, np.uint8)
    box = Box(40, 30, 120, 90)
    cut = segment_bird(img, box)
    assert cut.method == "box-ellipse" and FALLBACK_NOTE in cut.notes
    m = cut.alpha > 0.5
    assert m[60, 80] and not m[31, 41] and not m[5, 5]  # the oval: centre in, box corner and outside out
    assert abs(m.sum() / (np.pi * 40 * 30) - 1) < 0.1


def test_helpers():
    ring = np.zeros((20, 20), np.uint8)
    cv2.circle(ring, (10, 10), 7, 1, 2)
    assert fill_holes(ring)[10, 10] == 1
    a = soft_edge(fill_holes(ring))
    assert a[10, 10] == 1.0 and a[0, 0] == 0.0 and ((a > 0) & (a < 1)).any()


# ---------------------------------------------------------------- YOLOv8-seg, without its weights


def test_segmenter_candidates(monkeypatch, tmp_path):
    monkeypatch.setenv("BIRDANIM_SEGMENTER", str(tmp_path / "mine-seg.pt"))
    c = segmenter_candidates()
    assert c[0] == str(tmp_path / "mine-seg.pt") and c[-1] == "yolov8n-seg.pt"
    assert segmenter_candidates("x.pt") == ["x.pt"]


def test_segmenter_missing_weights_is_a_clear_error(tmp_path):
    with pytest.raises(SegmenterUnavailableError, match="BIRDANIM_SEGMENTER"):
        YoloSegmenter(tmp_path / "nope-seg.pt")


def fake_result(polys, classes, shape=(120, 160)):
    # what select_instance reads of an ultralytics Results: boxes.cls and masks.xy (polygons, photo px)
    return SimpleNamespace(boxes=SimpleNamespace(cls=np.asarray(classes, np.float32)),
                           masks=SimpleNamespace(xy=[np.asarray(p, np.float32) for p in polys]))


def rect(x0, y0, x1, y1):
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def test_select_instance_takes_the_bird_matching_the_box():
    res = fake_result([rect(10, 10, 50, 40), rect(80, 30, 150, 100), rect(82, 32, 148, 98)], [14, 14, 0])
    m = select_instance(res, (120, 160), Box(78, 28, 152, 102))
    assert m is not None and m[60, 110] == 1 and m[20, 20] == 0
    assert select_instance(fake_result([rect(80, 30, 150, 100)], [0]), (120, 160), Box(78, 28, 152, 102)) is None


def test_segment_bird_uses_the_segmenter_and_falls_back():
    img = textured(120, 160)
    box = Box(40, 30, 120, 90)

    class Fake:
        def __init__(self, m):
            self.m = m

        def mask(self, photo, box, others=()):
            return self.m

    good = np.zeros((120, 160), np.uint8)
    cv2.ellipse(good, (80, 60), (35, 25), 0, 0, 360, 1, -1)
    cut = segment_bird(img, box, segmenter=Fake(good))
    assert cut.method == "yolov8-seg" and cut.notes == []
    assert abs((cut.alpha > 0.5).sum() - good.sum()) < 0.05 * good.sum()
    cut = segment_bird(img, box, segmenter=Fake(None))  # nothing found: GrabCut (or the oval) with a note
    assert cut.method in ("grabcut", "box-ellipse") and "found no bird" in cut.notes[0]
