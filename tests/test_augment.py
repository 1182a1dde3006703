"""ADA pipeline: p=0 is the identity, augmentations are differentiable, p adapts toward the target."""

import dataclasses

import pytest
import torch

from train.augment import AdaController, AugmentConfig, AugmentPipe

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
