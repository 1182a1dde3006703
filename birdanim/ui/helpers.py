"""Small pure helpers behind the Gradio app: seed lists, crop sliders <-> boxes, the model card text.

Nothing here imports gradio, so these are tested (and reusable) without a UI.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from birdanim.stages.detect import Box
from birdanim.errors import BirdanimError

MAX_SEEDS = 64  # a seed list longer than this is refused: each seed costs a generator pass


class SeedListError(BirdanimError, ValueError):
    """A seed list the user typed could not be read."""


def parse_seeds(text: str, max_count: int = MAX_SEEDS) -> list[int]:
    """"0-3, 7, 10-11" -> [0, 1, 2, 3, 7, 10, 11] (order kept, duplicates dropped).

    Ranges are inclusive, as in StyleGAN's generate.py. Raises SeedListError with a readable message.
    """
    seeds: list[int] = []
    for part in filter(None, (p.strip() for p in re.split(r"[,\s]+", text or ""))):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise SeedListError(f"cannot read {part!r} as a seed or a range like 0-7")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise SeedListError(f"range {part!r} runs backwards")
        if hi - lo + 1 > max_count:
            raise SeedListError(f"range {part!r} has {hi - lo + 1} seeds; at most {max_count} are allowed")
        seeds.extend(range(lo, hi + 1))
    seeds = list(dict.fromkeys(seeds))
    if not seeds:
        raise SeedListError("no seeds given; type e.g. 0-7 or 1, 5, 9")
    if len(seeds) > max_count:
        raise SeedListError(f"{len(seeds)} seeds given; at most {max_count} are allowed")
    return seeds


# ------------------------------------------------------------------ the manual crop sliders
# The Animate tab adjusts the bird's box with three sliders, in percent so they do not depend on the
# photo's size: the box's centre (x as % of the width, y as % of the height) and its side as % of the
# photo's longer side. The box is square; the service adds its usual margin around it when cropping.


def box_to_sliders(box: Box, width: int, height: int) -> tuple[float, float, float]:
    """A detected box -> (centre x %, centre y %, size %) for the sliders."""
    cx = 100.0 * (box.x0 + box.x1) / 2 / width
    cy = 100.0 * (box.y0 + box.y1) / 2 / height
    size = 100.0 * max(box.x1 - box.x0, box.y1 - box.y0) / max(width, height)
    return round(cx, 1), round(cy, 1), round(min(max(size, 1.0), 100.0), 1)


def sliders_to_box(cx: float, cy: float, size: float, width: int, height: int) -> Box:
    """(centre x %, centre y %, size %) -> a square Box in pixels (conf 1: drawn by the user)."""
    side = max(float(size), 1.0) / 100.0 * max(width, height)
    x, y = float(cx) / 100.0 * width, float(cy) / 100.0 * height
    return Box(x - side / 2, y - side / 2, x + side / 2, y + side / 2, 1.0)


def whole_photo_sliders(width: int, height: int) -> tuple[float, float, float]:
    """Sliders for a centred box over the photo's shorter side (used when no bird is found)."""
    return 50.0, 50.0, round(100.0 * min(width, height) / max(width, height), 1)


def bird_labels(boxes: list[Box]) -> list[str]:
    """Dropdown labels for the detected birds, largest first: "Bird 1 (conf 0.91, 320x280 px)"."""
    return [
        f"Bird {i + 1} (conf {b.conf:.2f}, {round(b.x1 - b.x0)}x{round(b.y1 - b.y0)} px)" for i, b in enumerate(boxes)
    ]


# ------------------------------------------------------------------ the About tab's model card

CARD_KEYS = {  # meta.json key -> how the About tab names it (shown in this order when present)
    "total_images_seen": "Images seen in all (with the weights its run started from)",
    "total_cpu_hours": "CPU-hours of training in all",
    "kimg": "Images seen (thousands)",
    "images_seen": "Images seen",
    "cpu_hours": "CPU-hours of training",
    "train_hours": "Hours of training",
    "dataset": "Training data",
    "dataset_size": "Training images",
    "resolution": "Resolution (px)",
    "birdanim_version": "birdanim version",
}


def _flatten(d: Mapping, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        elif isinstance(v, (int, float, str, bool)):
            out[key] = v
        elif isinstance(v, (list, tuple)) and v and all(isinstance(x, (int, float, str, bool)) for x in v):
            out[key] = ", ".join(_fmt(x) for x in v)  # e.g. the training zips
    return out


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def model_card_table(meta: Mapping) -> str:
    """meta.json -> a Markdown table: the well-known keys first (named), metrics, then the rest."""
    flat = _flatten(meta)
    if not flat:
        return "_No model card found: `weights/meta.json` is missing or empty._"
    if "total_images_seen" in flat:  # the counts on top of the starting weights, beside the totals, say so
        for k in ("kimg", "images_seen", "cpu_hours"):
            if k in flat:
                flat[f"{k} (on top of init_from)"] = flat.pop(k)
    rows = [(CARD_KEYS[k], flat.pop(k)) for k in CARD_KEYS if k in flat]
    # metrics: the larger sample first (meta.json's "metrics_n2000", the quality bar's n), then "metrics"
    groups = sorted({k.split(".", 1)[0] for k in flat if k.startswith("metrics")}, key=lambda g: (g == "metrics", g))
    for g in groups:
        keys = [k for k in flat if k.startswith(g + ".")]
        n = flat.get(f"{g}.n")
        rows += [(k.split(".", 1)[1] + (f" (n = {n})" if n is not None else ""), flat.pop(k)) for k in keys if not k.endswith(".n")]
        flat.pop(f"{g}.n", None)
    rows += sorted(flat.items())
    lines = ["| Quantity | Value |", "|---|---|"]
    lines += [f"| {name} | {_fmt(v).replace('|', '/')} |" for name, v in rows]
    return "\n".join(lines)
