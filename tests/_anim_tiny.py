"""Tiny generator and poses shared by the animation tests (32 px, fixed seeds, fast on a CPU)."""

import pytest
import torch

from birdanim.models.stylegan2 import Generator, GeneratorConfig

TINY = dict(img_resolution=32, z_dim=32, w_dim=32, channel_base=256, channel_max=64, channel_min=8)


def tiny_generator(seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    G = Generator(GeneratorConfig(**TINY)).eval().requires_grad_(False)
    with torch.no_grad():  # a w_avg like a trained G has one (the buffer starts at zero)
        G.mapping.w_avg.copy_(G.mapping(torch.randn(256, G.z_dim))[:, 0].mean(0))
    return G


def tiny_poses(G, k: int = 5, seed: int = 1) -> torch.Tensor:
    """k pose ws [k, num_ws, w_dim] mapped from seeded z."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        return G.mapping(torch.randn(k, G.z_dim, generator=g))


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run faster on one thread, and far faster while another process loads the CPU
    (two OpenMP threads on two busy cores wait on each other: measured 6x slower)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
