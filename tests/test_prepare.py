"""Dataset preparation on a few images: crops, CUB boxes, video frames, dedupe, split, detector."""

import csv
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from train.tools.prepare_data import Deduper, dhash, is_test, main, prepare

from conftest import needs_detector, needs_shared


def _img(seed, size=(120, 90)):
    rng = np.random.RandomState(seed)
    small = rng.randint(0, 256, (6, 8, 3), dtype=np.uint8)  # smooth-ish content: distinct hashes per seed
    return Image.fromarray(small).resize(size, Image.Resampling.BILINEAR)


def _read(out: Path):
    rows = list(csv.DictReader(open(out / "manifest.csv")))
    sizes = {}
    for split in ("train", "test"):
        with zipfile.ZipFile(out / f"{split}.zip") as z:
            for n in z.namelist():
                sizes[n] = Image.open(io.BytesIO(z.read(n))).size
    return rows, sizes


def test_folder_without_detector_dedupes_and_splits(tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    for i in range(12):
        _img(i).save(src / f"b{i:02d}.png")
    _img(3).resize((240, 180)).save(src / "b03_big_copy.jpg", quality=90)  # near-duplicate of b03
    (src / "broken.jpg").write_bytes(b"not an image")
    counts = prepare([src], tmp_path / "out", resolution=32, detector=None, test_fraction=0.3)
    rows, sizes = _read(tmp_path / "out")
    assert counts["near-duplicate"] == 1 and counts["unreadable"] == 1
    assert counts["train"] + counts["test"] == 12 == len(rows)
    assert set(sizes.values()) == {(32, 32)}
    assert {r["split"] for r in rows} == {"train", "test"}
    assert all(r["split"] == ("test" if is_test(r["source"], 0.3) else "train") for r in rows)
    # Deterministic: the same inputs give the same manifest.
    prepare([src], tmp_path / "out2", resolution=32, detector=None, test_fraction=0.3)
    assert _read(tmp_path / "out2")[0] == rows


def test_cub_folder_uses_its_boxes_and_min_box(tmp_path):
    root = tmp_path / "CUB"
    (root / "images" / "001.Bird").mkdir(parents=True)
    lines, boxes = [], []
    for i in range(1, 4):
        _img(i, (200, 150)).save(root / "images" / "001.Bird" / f"b{i}.jpg")
        lines.append(f"{i} 001.Bird/b{i}.jpg")
    boxes = ["1 10 20 100 80", "2 50 40 90 100", "3 0 0 20 20"]  # the third bird is too small
    (root / "images.txt").write_text("\n".join(lines) + "\n")
    (root / "bounding_boxes.txt").write_text("\n".join(boxes) + "\n")
    counts = prepare([root], tmp_path / "out", resolution=64, detector=None, min_box=32, dup_bits=-1)
    rows, sizes = _read(tmp_path / "out")
    assert counts.get("bird too small") == 1 and len(rows) == 2
    assert [float(r["box_x1"]) for r in rows] == [110.0, 140.0]
    assert set(sizes.values()) == {(64, 64)}


def test_video_every_kth_frame(tmp_path):
    import imageio_ffmpeg

    path = tmp_path / "clip.mp4"
    w = imageio_ffmpeg.write_frames(str(path), (64, 48), fps=10, macro_block_size=16)
    w.send(None)
    for i in range(10):
        w.send(np.asarray(_img(100 + i, (64, 48))).tobytes())
    w.close()
    counts = prepare([path], tmp_path / "out", resolution=32, detector=None, every=3, dup_bits=-1)
    rows, _ = _read(tmp_path / "out")
    assert [r["source"] for r in rows] == ["clip.mp4#000000", "clip.mp4#000003", "clip.mp4#000006", "clip.mp4#000009"]
    assert counts["train"] + counts["test"] == 4


def test_dhash_and_deduper():
    a, b = _img(1), _img(2)
    assert bin(dhash(a) ^ dhash(a.resize((60, 45)))).count("1") <= 4  # resizing keeps (almost) the hash
    assert bin(dhash(a) ^ dhash(b)).count("1") > 4
    d = Deduper(4)
    assert not d.seen(dhash(a)) and d.seen(dhash(a)) and not d.seen(dhash(b))


def test_cli_errors_are_clear(tmp_path, capsys):
    assert main([str(tmp_path / "missing"), "-o", str(tmp_path / "o"), "--detector", "none"]) == 2
    assert "not found" in capsys.readouterr().err


@pytest.mark.slow
def test_with_detector_keeps_one_bird_and_crops_it(tmp_path):
    det_path = needs_detector()
    crops = needs_shared("data", "birds256", "train.zip")
    from birdanim.stages.detect import BirdDetector

    src = tmp_path / "photos"
    src.mkdir()
    with zipfile.ZipFile(crops) as z:
        bird = Image.open(io.BytesIO(z.read(sorted(z.namelist())[0]))).convert("RGB")
    canvas = Image.new("RGB", (640, 480), (120, 140, 160))  # a bird pasted into a bigger "photo"
    canvas.paste(bird, (300, 150))
    canvas.save(src / "bird.jpg")
    Image.new("RGB", (640, 480), (90, 90, 90)).save(src / "empty.jpg")
    counts = prepare([src], tmp_path / "out", resolution=64, detector=BirdDetector(str(det_path)), min_box=32)
    rows, _ = _read(tmp_path / "out")
    assert counts.get("no bird") == 1 and len(rows) == 1
    r = rows[0]
    cx, cy = (float(r["box_x0"]) + float(r["box_x1"])) / 2, (float(r["box_y0"]) + float(r["box_y1"])) / 2
    assert 300 <= cx <= 556 and 150 <= cy <= 406  # the box is on the pasted bird
    assert float(r["conf"]) >= 0.25
