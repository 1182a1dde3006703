"""The app's pure helpers: seed lists, crop sliders, model card table, similarity figure."""

import numpy as np
import pytest

from birdanim.stages.detect import Box
from birdanim.ui.helpers import (
    SeedListError,
    bird_labels,
    box_to_sliders,
    model_card_table,
    parse_seeds,
    sliders_to_box,
    whole_photo_sliders,
)


def test_parse_seeds_ranges_lists_and_duplicates():
    assert parse_seeds("0-3, 7 10-11") == [0, 1, 2, 3, 7, 10, 11]
    assert parse_seeds("5,5,4-5") == [5, 4]


@pytest.mark.parametrize("text", ["", " , ", "a", "3-1", "-2", "1.5", "0-100"])
def test_parse_seeds_refuses_with_a_message(text):
    with pytest.raises(SeedListError) as e:
        parse_seeds(text, max_count=16)
    assert str(e.value)


def test_parse_seeds_caps_the_total():
    with pytest.raises(SeedListError, match="at most 4"):
        parse_seeds("0-2, 5-6", max_count=4)


def test_sliders_round_trip_a_square_box():
    w, h = 800, 600
    box = Box(300, 200, 500, 400, 0.8)
    cx, cy, size = box_to_sliders(box, w, h)
    assert (cx, cy, size) == (50.0, 50.0, 25.0)
    back = sliders_to_box(cx, cy, size, w, h)
    assert (back.x0, back.y0, back.x1, back.y1) == (300, 200, 500, 400)


def test_sliders_square_a_wide_box_on_its_long_side():
    b = sliders_to_box(*box_to_sliders(Box(0, 0, 400, 100), 1000, 500), 1000, 500)
    assert b.x1 - b.x0 == pytest.approx(400) and b.y1 - b.y0 == pytest.approx(400)
    assert ((b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2) == (200, 50)


def test_whole_photo_sliders_cover_the_short_side():
    cx, cy, size = whole_photo_sliders(1000, 500)
    b = sliders_to_box(cx, cy, size, 1000, 500)
    assert (b.x0, b.y0, b.x1, b.y1) == (250, 0, 750, 500)


def test_bird_labels_are_unique_and_ordered():
    labels = bird_labels([Box(0, 0, 100, 50, 0.9), Box(0, 0, 100, 50, 0.9)])
    assert labels[0].startswith("Bird 1") and labels[1].startswith("Bird 2") and labels[0] != labels[1]


def test_model_card_table_names_known_keys_and_metrics():
    table = model_card_table({"kimg": 1234.0, "metrics": {"fid50k": 31.25}, "other": "x", "nested": {"list": [1]}})
    lines = table.splitlines()
    assert lines[2] == "| Images seen (thousands) | 1234 |"
    assert "| fid50k | 31.25 |" in lines
    assert "| other | x |" in lines
    assert "| nested.list | 1 |" in lines  # a list of plain values is shown joined


def test_model_card_table_puts_totals_and_the_larger_sample_first():
    """meta.json as train/tools/export.py writes it: the totals over the lineage lead, the counts on top of init_from say so, the
    n = 2,000 metrics (the quality bar's) come before the n = 500 ones and each names its n; branch chains are left out."""
    meta = {"kimg": 282.9, "cpu_hours": 8.36, "total_images_seen": 341592, "total_cpu_hours": 11.67,
            "dataset": ["birds256/train.zip", "birds256_more/train.zip"], "branched_from": [{"branched_from": "x"}],
            "metrics": {"fd_lite2": 51.4, "n": 500}, "metrics_n2000": {"fd_lite2": 41.8, "n": 2000}}
    lines = model_card_table(meta).splitlines()[2:]
    assert lines[0].startswith("| Images seen in all") and lines[1] == "| CPU-hours of training in all | 11.67 |"
    assert lines.index("| fd_lite2 (n = 2000) | 41.8 |") < lines.index("| fd_lite2 (n = 500) | 51.4 |")
    assert "| Training data | birds256/train.zip, birds256_more/train.zip |" in lines
    assert "| kimg (on top of init_from) | 282.9 |" in lines and "branched_from" not in "".join(lines)


def test_model_card_table_without_meta():
    assert "missing" in model_card_table({})


def test_similarity_figure_is_an_image():
    from birdanim.ui.plots import similarity_figure

    sim = np.array([[1.0, 0.2, -0.1], [0.2, 1.0, 0.5], [-0.1, 0.5, 1.0]])
    thumbs = [np.full((16, 16, 3), v, np.uint8) for v in (0, 128, 255)]
    img = similarity_figure(sim, thumbs, ["a", "b", "c"])
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and min(img.shape[:2]) > 200
    with pytest.raises(ValueError):
        similarity_figure(sim, thumbs[:2], ["a", "b"])
