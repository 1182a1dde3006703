"""Where things are: the one place that reads the locations of the data, the detector and the assets.

    BIRDANIM_DATA      the data folder (default: ../shared/data beside the checkout)
    BIRDANIM_DETECTOR  a YOLOv8 detector: .pt file or exported folder (default: the shared OpenVINO
                       export when it exists; else ultralytics fetches yolov8n.pt when online)
    BIRDANIM_SEGMENTER a YOLOv8-seg model (default: yolov8n-seg.pt when ultralytics can have it)
    BIRDANIM_CACHE     caches (default ~/.cache/birdanim): decoded data, metric statistics, compiled detector
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared"  # the checkout's neighbour holding data, models and references
ASSETS = REPO_ROOT / "assets"
WEIGHTS = REPO_ROOT / "weights"


def data_dir() -> Path:
    """The data folder: $BIRDANIM_DATA or ../shared/data."""
    return Path(os.environ.get("BIRDANIM_DATA") or SHARED / "data")


def shared_detector() -> Path:
    """The offline COCO YOLOv8n (OpenVINO INT8 export) that ../shared provides."""
    return SHARED / "models" / "yolov8n_int8_openvino_model"


def cache_dir() -> Path:
    """Where caches go: $BIRDANIM_CACHE or ~/.cache/birdanim (created by whoever writes there)."""
    return Path(os.environ.get("BIRDANIM_CACHE") or Path.home() / ".cache" / "birdanim")


def env_path(name: str) -> str | None:
    """A path given by an environment variable (None when unset or empty)."""
    return os.environ.get(name) or None
