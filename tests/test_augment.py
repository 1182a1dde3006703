"""ADA pipeline: p=0 is the identity, augmentations are differentiable, p adapts toward the target."""

import dataclasses

import pytest
import torch

from train.loop.augment import AdaController, AugmentConfig, AugmentPipe, DiffAugment

OFF = {f.name: 0.0 for f in dataclasses.fields(AugmentConfig) if f.name in (
    "xflip", "translate", "scale", "rotate", "brightness", "contrast", "saturation", "hue")}


def _img(n=4, res=16, seed=0):
    return torch.rand(n, 3, res, res, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_p0_is_exact_identity():
    x = _img()
    y = AugmentPipe(p=0.0)(x, torch.Generator().manual_seed(1))
    assert torch.equal(x, y)


def test_differentiable_and_changes_images():
    x = _img().requires_grad_(True)
    y = AugmentPipe(p=1.0)(x, torch.Generator().manual_seed(2))
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert not torch.allclose(y, x)
    y.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", list(OFF))
def test_each_transform_alone(name):
    cfg = AugmentConfig(**{**OFF, name: 1.0})
    x = _img(n=8)
    y = AugmentPipe(cfg, p=1.0)(x, torch.Generator().manual_seed(3))
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert not torch.allclose(y, x)  # p=1: every image transformed (a flip of 8 images is identity with prob 1/256)


def test_xflip_is_an_exact_mirror():
    x = _img(n=8)
    y = AugmentPipe(AugmentConfig(**{**OFF, "xflip": 1.0}), p=1.0)(x, torch.Generator().manual_seed(4))
    for a, b in zip(x, y):
        assert torch.allclose(b, a, atol=1e-5) or torch.allclose(b, a.flip(-1), atol=1e-5)


def test_integer_translation_moves_whole_pixels():
    x = _img(n=8, res=32)
    y = AugmentPipe(AugmentConfig(**{**OFF, "translate": 1.0}), p=1.0)(x, torch.Generator().manual_seed(5))
    # Interior pixels are copies of input pixels (no interpolation blur): each output value exists in the input.
    for a, b in zip(x, y):
        centre = b[:, 8:24, 8:24].reshape(3, -1)
        dist = (centre[:, :, None] - a.reshape(3, 1, -1)).abs().sum(0).min(dim=1).values
        assert dist.max() < 1e-4


def test_ada_p_moves_toward_target_and_clamps():
    pipe = AugmentPipe(p=0.0)
    ada = AdaController(pipe, target=0.6, speed_kimg=0.1, interval=2)  # 100 images move p by 1
    overfit = torch.ones(10, 1)  # sign(D(real)) = +1 everywhere: r_t = 1 > 0.6
    ada.accumulate(overfit, 10)
    assert not ada.maybe_update()  # only after `interval` steps
    ada.accumulate(overfit, 10)
    assert ada.maybe_update()
    assert ada.last_rt == 1.0 and abs(float(pipe.p) - 0.2) < 1e-6
    for _ in range(20):
        ada.accumulate(-overfit, 10)  # r_t = -1 < target: p goes down to 0, not below
        ada.maybe_update()
    assert float(pipe.p) == 0.0


def test_p_is_a_saved_buffer():
    pipe = AugmentPipe(p=0.37)
    assert "p" in pipe.state_dict() and abs(float(pipe.state_dict()["p"]) - 0.37) < 1e-6


def test_diffaugment_p0_identity_p1_differentiable():
    x = _img()
    assert torch.equal(DiffAugment(p=0.0)(x), x)
    x.requires_grad_(True)
    y = DiffAugment(p=1.0)(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and torch.isfinite(y).all() and not torch.allclose(y, x)
    y.square().sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_diffaugment_translation_moves_whole_pixels_with_zero_fill():
    x = _img(n=8, res=16)
    y = DiffAugment(p=1.0, cutout=0.0)(x, torch.Generator().manual_seed(1))
    # colour ops are per-image affine maps of the values; translation by whole pixels keeps a
    # shifted copy of them, with zeros filled in: per image, the zero-filled area is a border band
    for i in range(8):
        zero = (y[i] == 0).all(0)
        rows, cols = zero.all(1), zero.all(0)
        assert torch.equal(zero, rows[:, None] | cols[None, :])  # full rows / columns only
        assert rows.sum() <= 2 and cols.sum() <= 2  # at most 1/8 of 16 px


def test_diffaugment_cutout_zeroes_one_square_of_half_the_side():
    x = _img(n=8, res=16)  # the colour ops leave no pixel exactly 0: zeros come from cutout only
    y = DiffAugment(p=1.0, translate=0.0)(x, torch.Generator().manual_seed(2))
    for i in range(8):
        zero = (y[i] == 0).all(0)
        rows, cols = zero.any(1).sum(), zero.any(0).sum()
        assert 0 < zero.sum() <= 64 and zero.sum() == rows * cols  # one rectangle, at most 8 x 8
