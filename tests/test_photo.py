"""Uploads of every kind become RGB images, or a BadImageError with a clear message."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from birdanim.errors import BadImageError
from birdanim.stages.photo import load_photo


def _png_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


def _jpeg_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", **kw)
    return buf.getvalue()


def _bomb_png_header(w: int, h: int) -> bytes:
    """A PNG that declares w x h pixels but holds almost no data (a decompression-bomb header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b"")


def test_empty_bytes_and_empty_file(tmp_path):
    with pytest.raises(BadImageError, match="empty"):
        load_photo(b"")
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    with pytest.raises(BadImageError, match="empty"):
        load_photo(p)


def test_missing_file(tmp_path):
    with pytest.raises(BadImageError, match="does not exist"):
        load_photo(tmp_path / "nope.png")


def test_text_file(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("this is not an image\n" * 10)
    with pytest.raises(BadImageError, match="not an image"):
        load_photo(p)


def test_truncated_jpeg():
    data = _jpeg_bytes(Image.new("RGB", (200, 200), (10, 200, 30)))
    with pytest.raises(BadImageError):
        load_photo(data[: len(data) // 3])


def test_decompression_bomb_header():
    with pytest.raises(BadImageError, match="too large|limit"):
        load_photo(_bomb_png_header(20000, 20000))


LIBRARY_WORDS = ("Pillow", "PIL", "DecompressionBomb", "decompression bomb", "cv2", "OpenCV", "DOS attack",
                 "UnidentifiedImageError", "cannot identify")


@pytest.mark.parametrize("src, expected", [
    (_bomb_png_header(12000, 12000), "12000x12000 pixels (144 megapixels), is larger than the 50-megapixel limit"),
    (_bomb_png_header(8000, 8000), "8000x8000 pixels (64 megapixels), is larger than the 50-megapixel limit"),
    (_bomb_png_header(20000, 20000), "(400 megapixels) is larger than the 50-megapixel limit"),  # refused unopened
    (b"plain text renamed to .jpg" * 4, "not an image file that can be read: upload a photo (JPEG, PNG"),
    (_bomb_png_header(1, 1), "only 1x1 pixels: a bird photo needs at least 64 pixels on each side"),
], ids=["12000x12000", "8000x8000", "20000x20000", "text", "1x1"])
def test_messages_speak_of_photos_not_libraries(src, expected):
    with pytest.raises(BadImageError) as e:
        load_photo(src)
    assert expected in str(e.value)
    assert not [w for w in LIBRARY_WORDS if w.lower() in str(e.value).lower()], str(e.value)


def test_too_small():
    with pytest.raises(BadImageError, match="64"):
        load_photo(_png_bytes(Image.new("RGB", (10, 10))))


def test_rgba_composited_on_white():
    a = np.zeros((80, 90, 4), np.uint8)
    a[..., 0] = 255
    a[:, :45, 3] = 255  # left half opaque red, right half transparent
    out = load_photo(_png_bytes(Image.fromarray(a)))
    assert out.mode == "RGB" and out.size == (90, 80)
    arr = np.asarray(out)
    assert tuple(arr[5, 5]) == (255, 0, 0)
    assert tuple(arr[5, 80]) == (255, 255, 255)


def test_palette_greyscale_cmyk():
    rgb = Image.new("RGB", (70, 70), (200, 100, 50))
    for img in (rgb.convert("P"), rgb.convert("L"), rgb.convert("LA"), Image.new("CMYK", (70, 70), (0, 128, 255, 0))):
        out = load_photo(img)
        assert out.mode == "RGB" and out.size == (70, 70)
    cmyk = load_photo(Image.new("CMYK", (70, 70), (0, 0, 255, 0)))  # full yellow
    r, g, b = np.asarray(cmyk)[0, 0]
    assert r > 200 and g > 200 and b < 50


def test_16bit_scaled():
    a = np.full((80, 80), 65535 // 2, np.uint16)
    out = load_photo(_png_bytes(Image.fromarray(a)))
    v = np.asarray(out)[0, 0]
    assert out.mode == "RGB" and abs(int(v[0]) - 127) <= 1, v


def test_exif_rotation():
    img = Image.new("RGB", (120, 80), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    out = load_photo(_jpeg_bytes(img, exif=exif.tobytes()))
    assert out.size == (80, 120)


def test_huge_legal_image_downscaled():
    out = load_photo(Image.new("RGB", (4096, 1024), (1, 2, 3)))
    assert out.size == (2048, 512)


def test_text_file_after_ultralytics_patched_pillow(tmp_path):
    import ultralytics.utils.patches  # noqa: F401  (patches PIL.Image.open to retry with pi-heif)

    with pytest.raises(BadImageError, match="not an image"):
        load_photo(b"plain text, not an image" * 4)
