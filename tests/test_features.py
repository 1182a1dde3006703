"""Frozen EfficientNet-Lite features: shapes, determinism, frozen weights, real bird vs noise."""

import io
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from birdanim.models.features import load_efficientnet_lite, perceptual_distance
from birdanim.imageops import pil_to_tensor

from conftest import needs_shared


@pytest.fixture(scope="module")
def lite0():
    torch.set_num_threads(2)
    return load_efficientnet_lite(0)


def test_lite0_multiscale_shapes_and_determinism(lite0):
    img = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        f1 = lite0.forward_features(img)
        f2 = lite0.forward_features(img)
    assert [f.shape[1] for f in f1] == lite0.channels == [24, 40, 112, 320]
    assert [f.shape[-1] for f in f1] == [16, 8, 4, 2]  # strides 4, 8, 16, 32
    for a, b in zip(f1, f2):
        assert torch.equal(a, b)
    assert not any(p.requires_grad for p in lite0.parameters())
    assert not lite0.training


def test_features_are_differentiable_to_the_input(lite0):
    img = (torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1).requires_grad_(True)
    sum(f.mean() for f in lite0.forward_features(img)).backward()
    assert img.grad is not None and img.grad.abs().sum() > 0


def test_perceptual_distance(lite0):
    g = torch.Generator().manual_seed(2)
    a = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    b = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    with torch.no_grad():
        fa, fb = lite0.forward_features(a), lite0.forward_features(b)
        near = lite0.forward_features((a + 0.02 * torch.randn(a.shape, generator=g)).clamp(-1, 1))
    assert torch.allclose(perceptual_distance(fa, fa), torch.zeros(2))
    d_far, d_near = perceptual_distance(fa, fb), perceptual_distance(fa, near)
    assert d_far.shape == (2,) and (d_near < d_far).all()


@pytest.mark.slow
def test_lite2_pooled_real_bird_differs_from_noise():
    train_zip = needs_shared("data", "birds256", "train.zip")
    torch.set_num_threads(2)
    lite2 = load_efficientnet_lite(2)
    with zipfile.ZipFile(train_zip) as z:
        names = sorted(z.namelist())[:2]
        birds = torch.cat([pil_to_tensor(Image.open(io.BytesIO(z.read(n)))) for n in names])
    noise = torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(3)) * 2 - 1
    with torch.no_grad():
        pb, pn = lite2.pooled(birds), lite2.pooled(noise)
    assert pb.shape == (2, 1280) and torch.isfinite(pb).all()
    # Two birds are closer to each other than either is to noise.
    d_bb = (pb[0] - pb[1]).norm()
    d_bn = (pb - pn).norm(dim=1).min()
    assert d_bb < d_bn
    assert not np.allclose(pb.numpy(), pn.numpy())


def test_lpips_vgg_from_a_local_vgg16_file(tmp_path, monkeypatch):
    """VGG LPIPS loads its trunk from a local torchvision VGG16 state dict (here random weights in the
    real layout, features only); a missing or wrong file is a FeaturesUnavailableError."""
    import torchvision

    from birdanim.errors import FeaturesUnavailableError
    from birdanim.models.features import load_lpips_vgg, load_perceptual

    trunk = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"])
    path = tmp_path / "vgg16.pth"
    torch.save({f"features.{k}": v for k, v in trunk.state_dict().items()}, path)
    net = load_lpips_vgg(vgg_weights=path)
    assert torch.equal(getattr(net.model.net.slice3, "10").weight, trunk[10].weight)  # conv 10 of VGG16's features
    g = torch.Generator().manual_seed(0)
    a, b = (torch.rand(2, 3, 64, 64, generator=g) * 2 - 1).unbind(0)
    fa, fb = net.forward_features(a[None]), net.forward_features(b[None])
    assert float(net.distance(fa, fa)) == 0 and float(net.distance(fa, fb)) > 0
    with pytest.raises(FeaturesUnavailableError, match="not found"):
        load_lpips_vgg(vgg_weights=tmp_path / "missing.pth")
    torch.save({"something": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(FeaturesUnavailableError, match="not torchvision's VGG16"):
        load_lpips_vgg(vgg_weights=tmp_path / "wrong.pth")
    monkeypatch.setenv("BIRDANIM_VGG16", str(path))
    assert type(load_perceptual("lpips")).__name__ == "LpipsFeatures"
    with pytest.raises(ValueError):
        load_perceptual("vgg19")
