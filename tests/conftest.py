"""Shared fixtures: tiny networks (32 px) so the suite stays fast on a 2-core CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"


def tiny_generator_config(**overrides):
    from birdanim.models import GeneratorConfig

    kw = dict(img_resolution=32, z_dim=32, w_dim=32, channel_base=256, channel_max=64, channel_min=8)
    kw.update(overrides)
    return GeneratorConfig(**kw)


@pytest.fixture
def tiny_G():
    from birdanim.models import Generator

    torch.manual_seed(0)
    return Generator(tiny_generator_config()).eval()


@pytest.fixture(autouse=True, scope="session")
def _few_threads():
    torch.set_num_threads(min(2, torch.get_num_threads()))


def require_shared(*parts: str) -> Path:
    """The path under ../shared, or skip the test with the reason."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"needs ../shared/{'/'.join(parts)} (the shared data folder beside the checkout)")
    return p
