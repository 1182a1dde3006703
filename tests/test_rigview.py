"""birdanim/ui/rigview.py: the rig step's picture and its pixel arithmetic (drawn shapes, no photos)."""

import numpy as np
import pytest

from birdanim.engines.rig.rig import JOINTS, Rig
from birdanim.ui.rigview import COLOURS, draw_rig, photo_scale, to_bird_rig, to_photo_rig


def _rig() -> Rig:
    return Rig(beak=(150, 60), head=(130, 70), tail=(40, 110), shoulder=(90, 80), far_shoulder=(95, 72),
               belly=(100, 120))


def test_scale_round_trip_and_the_engines_scale():
    assert photo_scale((320, 240), 512) == pytest.approx(1.6)
    back = to_photo_rig(to_bird_rig(_rig(), 1.6), 1.6)
    for j in JOINTS:
        assert back.point(j) == pytest.approx(_rig().point(j))


def test_drawing_marks_every_joint_in_its_colour_and_keeps_the_size():
    photo = np.full((160, 200, 3), 120, np.uint8)
    alpha = np.zeros((160, 200), np.float32)
    alpha[50:130, 30:160] = 1.0
    img = draw_rig(photo, alpha, _rig(), selected="head", box=(20, 40, 170, 140))
    assert img.shape == photo.shape and img.dtype == np.uint8
    for j in JOINTS:
        x, y = (int(round(v)) for v in _rig().point(j))
        assert np.abs(img[y, x].astype(int) - COLOURS[j]).max() < 40, j  # the dot's centre has the joint's colour
    assert img[5, 5].mean() < photo[5, 5].mean()  # outside the cut-out is dimmed
