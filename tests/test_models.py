import math

import numpy as np
import pytest
import torch

from benchmarks.reference_nvlabs import ReferenceSynthesis
from birdanim.models import (
    DCGANConfig,
    DCGANDiscriminator,
    DCGANGenerator,
    Discriminator,
    DiscriminatorConfig,
    Generator,
    GeneratorConfig,
    z_from_seeds,
)
from tests.conftest import tiny_generator_config


def test_generator_shapes_and_contract(tiny_G):
    G = tiny_G
    assert (G.z_dim, G.w_dim, G.img_resolution) == (32, 32, 32)
    assert G.num_ws == 2 * int(math.log2(32)) - 2 == 8
    z = torch.randn(3, G.z_dim)
    ws = G.mapping(z)
    assert ws.shape == (3, G.num_ws, G.w_dim)
    assert torch.equal(ws[:, 0], ws[:, -1])  # broadcast: one w per sample
    img = G.synthesis(ws)
    assert img.shape == (3, 3, 32, 32) and img.dtype == torch.float32
    assert torch.isfinite(img).all()
    assert torch.allclose(G(z), img)


@pytest.mark.parametrize("res", [32, 64, 128, 256])
def test_any_power_of_two_resolution(res):
    cfg = GeneratorConfig(img_resolution=res, z_dim=16, w_dim=16, channel_base=128, channel_max=16, channel_min=4)
    G = Generator(cfg)
    assert G.num_ws == 2 * int(math.log2(res)) - 2
    assert G(torch.randn(1, 16)).shape == (1, 3, res, res)


def test_bad_config_rejected():
    with pytest.raises(ValueError):
        GeneratorConfig(img_resolution=100)
    with pytest.raises(ValueError):
        GeneratorConfig(mapping_layers=9)


def test_default_config_is_the_shipped_256px_size():
    cfg = GeneratorConfig()
    assert cfg.img_resolution == 256 and cfg.num_ws == 14 and cfg.mapping_layers == 2


def test_truncation_psi_zero_gives_w_avg(tiny_G):
    tiny_G.mapping.w_avg.copy_(torch.randn(tiny_G.w_dim))
    ws = tiny_G.mapping(torch.randn(4, tiny_G.z_dim), psi=0.0)
    assert torch.allclose(ws, tiny_G.mapping.w_avg.expand_as(ws))


def test_w_avg_tracks_mapping_output_in_training(tiny_G):
    before = tiny_G.mapping.w_avg.clone()
    tiny_G.mapping(torch.randn(16, tiny_G.z_dim), update_w_avg=True)
    assert not torch.equal(before, tiny_G.mapping.w_avg)


def test_style_mixing_is_slicing_rows(tiny_G):
    a, b = tiny_G.mapping(z_from_seeds([1, 2], tiny_G.z_dim)).chunk(2)
    mixed = torch.cat([a[:, :4], b[:, 4:]], dim=1)
    img_mixed = tiny_G.synthesis(mixed)
    assert not torch.allclose(img_mixed, tiny_G.synthesis(a))
    assert not torch.allclose(img_mixed, tiny_G.synthesis(b))
    # Changing only the fine rows must not change what the coarse rows decide at 4x4.
    x4a = tiny_G.synthesis.blocks[0](None, None, mixed[:, :2], "const")[0]
    x4b = tiny_G.synthesis.blocks[0](None, None, a[:, :2], "const")[0]
    assert torch.equal(x4a, x4b)


def test_same_seed_same_image(tiny_G):
    z1, z2 = z_from_seeds([7], 32), z_from_seeds([7], 32)
    assert torch.equal(z1, z2)
    assert torch.equal(tiny_G(z1), tiny_G(z2))
    assert not torch.equal(tiny_G(z1), tiny_G(z_from_seeds([8], 32)))


def test_noise_modes(tiny_G):
    ws = tiny_G.mapping(torch.randn(1, 32))
    for m in tiny_G.synthesis.modules():
        if hasattr(m, "noise_strength"):
            m.noise_strength.data.fill_(0.5)
    assert torch.equal(tiny_G.synthesis(ws, noise_mode="const"), tiny_G.synthesis(ws, noise_mode="const"))
    assert not torch.equal(tiny_G.synthesis(ws, noise_mode="random"), tiny_G.synthesis(ws, noise_mode="random"))
    assert not torch.equal(tiny_G.synthesis(ws, noise_mode="none"), tiny_G.synthesis(ws, noise_mode="const"))
    with pytest.raises(ValueError):
        tiny_G.synthesis(ws, noise_mode="bogus")


def test_fast_synthesis_equals_nvlabs_style_reference(tiny_G):
    for m in tiny_G.synthesis.modules():  # non-trivial noise and biases
        if hasattr(m, "noise_strength"):
            m.noise_strength.data.fill_(0.3)
            m.bias.data.normal_()
    ws = tiny_G.mapping(torch.randn(3, 32)) + 0.5 * torch.randn(3, tiny_G.num_ws, 32)
    with torch.no_grad():
        ours = tiny_G.synthesis(ws, noise_mode="const")
        ref = ReferenceSynthesis(tiny_G)(ws, noise_mode="const")
    assert torch.allclose(ours, ref, atol=1e-4, rtol=1e-4), (ours - ref).abs().max()


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    G = Generator(tiny_generator_config(mapping_layers=3))
    for m in G.modules():  # noise strengths start at 0, which would block the noise path's gradient
        if hasattr(m, "noise_strength"):
            m.noise_strength.data.fill_(0.1)
    G(torch.randn(2, 32), noise_mode="random").square().mean().backward()
    D = Discriminator(DiscriminatorConfig(img_resolution=32, channel_base=256, channel_max=64, channel_min=8))
    D(torch.randn(4, 3, 32, 32)).sum().backward()
    for name, net in (("G", G), ("D", D)):
        for pname, p in net.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}.{pname} got no gradient"


def test_discriminator_shapes():
    D = Discriminator(DiscriminatorConfig(img_resolution=32, channel_base=256, channel_max=64, channel_min=8))
    assert D(torch.randn(5, 3, 32, 32)).shape == (5, 1)  # 5: mbstd group falls back to a divisor
    with pytest.raises(ValueError):
        D(torch.randn(2, 3, 64, 64))


def test_dcgan_shapes_and_layer_counts():
    cfg = DCGANConfig()
    G, D = DCGANGenerator(cfg), DCGANDiscriminator(cfg)
    img = G(torch.randn(4, cfg.z_dim))
    assert img.shape == (4, 3, 64, 64) and img.abs().max() <= 1
    assert D(img).shape == (4, 1)
    assert sum(isinstance(m, torch.nn.ConvTranspose2d) for m in G.modules()) == 5
    assert sum(isinstance(m, torch.nn.Conv2d) for m in D.modules()) == 5
    small = DCGANConfig(img_resolution=32, ngf=8, ndf=8)
    assert DCGANGenerator(small)(torch.randn(2, 100)).shape == (2, 3, 32, 32)


def test_z_from_seeds_matches_numpy_convention():
    z = z_from_seeds([3], 8)
    assert np.allclose(z.numpy()[0], np.random.RandomState(3).randn(8))


@pytest.mark.parametrize("noise_mode", ["const", "random", "none"])
def test_activations_stay_channels_last(tiny_G, noise_mode):
    """A layout flip inside synthesis costs a copy per layer (it halved the render speed once)."""
    flipped = []

    def hook(name):
        def check(_module, _inputs, out):
            if not out.is_contiguous(memory_format=torch.channels_last):
                flipped.append(name)

        return check

    for name, m in tiny_G.synthesis.named_modules():
        if type(m).__name__ in ("ModulatedConv", "ToRGB"):
            m.register_forward_hook(hook(name))
    tiny_G.synthesis(tiny_G.mapping(torch.randn(2, tiny_G.z_dim)), noise_mode=noise_mode)
    assert flipped == []
