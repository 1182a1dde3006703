"""birdanim: animate a still photo of a bird into a video of it flying.

Importing the package is light: no torch, no numpy. The public helpers below are loaded on first use
(module `__getattr__`, PEP 562), so `birdanim --help` answers without paying torch's ~3-5 s import.
Detection (ultralytics), the UI (gradio) and video encoding (imageio-ffmpeg's bundled ffmpeg) are
imported where they are used.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {  # public name -> module that defines it (imported when the name is first used)
    "load_generator": "birdanim.checkpoint",
    "save_generator": "birdanim.checkpoint",
    "pil_to_tensor": "birdanim.imageops",
    "tensor_to_pil": "birdanim.imageops",
    "tensor_to_uint8": "birdanim.imageops",
    "uint8_to_tensor": "birdanim.imageops",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # cache: later lookups skip __getattr__
        return value
    raise AttributeError(f"module 'birdanim' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


def project(*args, **kwargs):
    """Project an image into the generator's W+ space; see `birdanim.engines.gan.projector.projection` for the options."""
    from birdanim.engines.gan.projector import project as _project

    return _project(*args, **kwargs)


__all__ = [
    "__version__",
    "load_generator",
    "save_generator",
    "pil_to_tensor",
    "tensor_to_pil",
    "tensor_to_uint8",
    "uint8_to_tensor",
    "project",
]
