"""Shared fixtures: tiny networks (32 px) so the suite stays fast on a 2-core CPU."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from birdanim.paths import SHARED, shared_detector

# Under CI=true a test whose inputs are missing FAILS (saying what is missing), so a run cannot go green by
# skipping; on a developer's machine it skips with the reason (pytest -ra lists the reasons at the end).
IN_CI = os.environ.get("CI") == "true"
CHROMIUM = os.environ.get("BIRDANIM_CHROMIUM", "/usr/bin/chromium")


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


def missing(what: str) -> None:
    """A test input is missing: fail under CI=true, else skip; `what` says what and where (and how to get it)."""
    if IN_CI:
        pytest.fail(f"CI=true and the test needs {what}, which is missing", pytrace=False)
    pytest.skip(f"needs {what}")


def needs_shared(*parts: str) -> Path:
    """The path under ../shared (the shared data folder beside the checkout); missing: fail in CI, else skip."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        missing(f"../shared/{'/'.join(parts)} ({p}; the shared data folder beside the checkout)")
    return p


def needs_detector() -> Path:
    """The shared offline YOLOv8n detector (OpenVINO INT8 export in ../shared/models)."""
    p = shared_detector()
    if not (p / "metadata.yaml").is_file():
        missing(f"the shared bird detector {p} (OpenVINO export of YOLOv8n in ../shared/models)")
    return p


def needs_chromium() -> str:
    """Debian's Chromium for the real-browser test (`make test` installs it when run as root)."""
    exe = CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")
    if not exe:
        missing(f"Chromium at {CHROMIUM} (as root: apt-get install -y chromium, which `make test` does; "
                "or set $BIRDANIM_CHROMIUM)")
    return exe
