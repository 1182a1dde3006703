"""Load any upload into a plain RGB PIL image, or raise BadImageError with a message for the user.

Handles EXIF orientation, transparency (composited on white), greyscale / palette / CMYK, 16-bit and
float images, decompression bombs and images too small to hold a bird. Huge but legal images are
downscaled so the long side is at most `max_side`. Messages speak of photos, pixels and megapixels, never
of the libraries underneath (the library's own text stays in the exception's cause, for the log).
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from birdanim.errors import BadImageError

MIN_SIDE = 64  # pixels: smaller images cannot give a useful crop
MAX_PIXELS = 50_000_000  # larger images are refused before decoding (decompression-bomb guard)
FORMATS = "JPEG, PNG, WebP, HEIC, BMP, TIFF or GIF"  # what the error messages suggest
MAX_SIDE = 2048  # long side after loading; detection and cropping never need more

PhotoSource = str | os.PathLike | bytes | Image.Image


def load_photo(src: PhotoSource, max_side: int = MAX_SIDE, min_side: int = MIN_SIDE) -> Image.Image:
    """Any upload (path, bytes, PIL image) -> EXIF-rotated RGB PIL image, long side <= max_side."""
    img = _open(src)
    _check_pixels(img)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img.load()
            img = ImageOps.exif_transpose(img)
            rgb = to_rgb(img)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise BadImageError(_too_large(*img.size)) from e
    except (OSError, ValueError, SyntaxError) as e:  # truncated or corrupt data
        raise BadImageError("could not read the whole image: the file looks truncated or corrupt (an upload "
                            "cut short?). Try saving it again or exporting a fresh copy.") from e
    if min(rgb.size) < min_side:
        raise BadImageError(f"this image is only {rgb.width}x{rgb.height} pixels: a bird photo needs at least "
                            f"{min_side} pixels on each side")
    return downscale(rgb, max_side)


def oriented_size(src: PhotoSource) -> tuple[int, int]:
    """(width, height) of the photo as viewers show it (EXIF orientation applied), without decoding
    the pixels. load_photo may shrink the photo: coordinates a user read off the original (a --box)
    scale by load_photo(src).width / oriented_size(src)[0]."""
    img = _open(src)
    w, h = img.size
    try:
        orientation = img.getexif().get(0x0112, 1)  # 5..8: rotated by 90 or 270 degrees
    except Exception:  # unreadable EXIF: load_photo ignores it too
        orientation = 1
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def _open(src: PhotoSource) -> Image.Image:
    if isinstance(src, Image.Image):
        return src
    if isinstance(src, (bytes, bytearray)):
        if not src:
            raise BadImageError("the uploaded file is empty (0 bytes)")
        fp = io.BytesIO(src)
    else:
        path = Path(src)
        if not path.is_file():
            raise BadImageError(f"{path} does not exist or is not a file")
        if path.stat().st_size == 0:
            raise BadImageError(f"{path.name} is empty (0 bytes)")
        fp = path
    try:
        with warnings.catch_warnings():
            # Opening reads the header only. Over Pillow's own limit (~89 MP) it warns, and we say what is
            # wrong in _check_pixels (our limit is lower); over twice that it refuses, without the size.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(fp)
    except Image.DecompressionBombError as e:
        raise BadImageError(_too_large(None, None, str(e))) from e
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, ImportError) as e:
        # ImportError: once ultralytics is imported it patches Image.open to retry unknown files with
        # the pi-heif plugin, and raises ModuleNotFoundError when that is not installed.
        raise BadImageError(f"this file is not an image file that can be read: upload a photo ({FORMATS})") from e


def _too_large(w: int | None, h: int | None, detail: str = "") -> str:
    """'12000x12000 (144 megapixels) is larger than the 50-megapixel limit ...' (size read from the
    header; from the library's message when it refused to open the file at all)."""
    limit = f"the {MAX_PIXELS / 1e6:.0f}-megapixel limit"
    if w is None:
        import re

        m = re.search(r"\((\d+) pixels\)", detail)
        size = f"this image ({int(m.group(1)) / 1e6:.0f} megapixels)" if m else "this image"
    else:
        size = f"this image, {w}x{h} pixels ({w * h / 1e6:.0f} megapixels),"
    return f"{size} is larger than {limit}: please upload a smaller copy (for example 4000x3000)"


def _check_pixels(img: Image.Image) -> None:
    w, h = img.size
    if w * h > MAX_PIXELS:
        raise BadImageError(_too_large(w, h))


def to_rgb(img: Image.Image) -> Image.Image:
    """Any mode -> RGB. Transparency goes on white; 16-bit and float values are scaled to 0..255."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _high_depth_to_rgb(img)
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def _high_depth_to_rgb(img: Image.Image) -> Image.Image:
    a = np.asarray(img).astype(np.float64)
    if img.mode.startswith("I;16") or (img.mode == "I" and a.max(initial=0) > 255):
        a = a / 257.0  # 16-bit 0..65535 -> 0..255 (PNG stores 16-bit greyscale as mode I)
    elif img.mode == "F" and a.max(initial=0) <= 1.0:
        a = a * 255.0  # float images in 0..1
    g = np.clip(np.rint(a), 0, 255).astype(np.uint8)
    return Image.fromarray(np.stack([g] * 3, axis=-1))


def downscale(img: Image.Image, max_side: int = MAX_SIDE) -> Image.Image:
    """Shrink (never enlarge) so the long side is at most max_side."""
    scale = max_side / max(img.size)
    if scale >= 1:
        return img
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.Resampling.LANCZOS)
