"""Exception types callers can catch; each message is meant to be shown to a user as is."""


class BirdanimError(Exception):
    """Base class of every error birdanim raises on purpose."""


class BadImageError(BirdanimError, ValueError):
    """The upload is not a usable image: unreadable, empty, too small, too large (decompression bomb)."""


class NoBirdError(BirdanimError):
    """The detector found no bird; the caller may fall back to a centred or manual crop."""


class DetectorUnavailableError(BirdanimError):
    """No detector weights could be loaded (offline and no local path given)."""


class SegmenterUnavailableError(BirdanimError):
    """No YOLOv8-seg weights could be loaded; the offline GrabCut cut-out still works."""


class InpainterUnavailableError(BirdanimError):
    """No learned inpainter (LaMa ONNX) could be loaded; the OpenCV fill still works."""


class FeaturesUnavailableError(BirdanimError):
    """An optional pretrained feature network (VGG for LPIPS) cannot be loaded here."""


class WeightsError(BirdanimError):
    """Generator, encoder or pose files are missing or do not belong together."""


class BadArgument(BirdanimError, ValueError):
    """An animate / mixing parameter is out of range."""


class Cancelled(BirdanimError):
    """The caller cancelled the job (its threading.Event was set); also exported by birdanim.service."""
