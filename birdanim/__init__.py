"""birdanim: animate a still photo of a bird into a video of it flying.

Importing the package is light: it pulls in torch and numpy only. Detection (ultralytics),
the UI (gradio) and video encoding (imageio-ffmpeg's bundled ffmpeg) are imported where they are used.
"""

__version__ = "0.1.0"

from birdanim.checkpoint import load_generator, save_generator  # noqa: E402
from birdanim.imageops import pil_to_tensor, tensor_to_pil, tensor_to_uint8, uint8_to_tensor  # noqa: E402


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
