"""Find birds in a photo (ultralytics YOLOv8, COCO class 14) and cut a square crop around one.

The crop geometry follows the training data (../shared/data/birds256/README.md, "How a CUB crop is
made"): side = (1 + margin) * the box's long side, shrunk to fit the image's short edge if needed
(never below the box), shifted to stay inside the image, and only where it is still larger than the
image padded equally on both sides by edge replication. Matching the training crops matters: the
generator only knows birds framed that way.

An OpenVINO export (the shared offline detector) runs through OpenVINO directly, not through ultralytics
(issue 27): ultralytics' predict set torch to min(8, cores - 1) threads -- 1 on a 2-core machine, which
halved the generator's speed for the rest of the process --, imported torchvision (+ torch._dynamo, 3-8 s)
on the first photo, and compiled the model anew at every start (~2 s); here the compiled model is cached
under cache_dir()/openvino and nothing process-wide is touched. Other weights (.pt) go through
ultralytics, with the thread settings it changes put back after each call.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from birdanim.errors import DetectorUnavailableError
from birdanim.paths import WEIGHTS, cache_dir, env_path, shared_detector

BIRD_CLASS = 14  # COCO index of "bird"
MIN_CONF = 0.25
IOU = 0.7  # ultralytics' default NMS threshold, kept so both paths give the same boxes


@dataclass
class Box:
    """A detected bird, in pixel coordinates of the (normalised) photo; x1, y1 exclusive."""

    x0: float
    y0: float
    x1: float
    y1: float
    conf: float = 1.0  # detector confidence 0..1 (1 for a box the user drew)

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)


# ---------------------------------------------------------------- box merging (pure functions)


def intersection(a: Box, b: Box) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(0.0, w) * max(0.0, h)


def same_bird(a: Box, b: Box, iou_thresh: float = 0.5, nested_thresh: float = 0.8) -> bool:
    """Heavily overlapping (IoU) or nested (most of the smaller box inside the larger) boxes."""
    inter = intersection(a, b)
    union = a.area + b.area - inter
    small = min(a.area, b.area)
    return (union > 0 and inter / union >= iou_thresh) or (small > 0 and inter / small >= nested_thresh)


def merge_boxes(boxes: list[Box]) -> list[Box]:
    """Merge boxes of the same bird into their union (keeping the highest confidence); largest first.

    YOLO sometimes returns two boxes for one bird (e.g. whole bird and body, 0.90 and 0.71).
    """
    out = list(boxes)
    merged = True
    while merged:
        merged = False
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                if same_bird(out[i], out[j]):
                    a, b = out[i], out.pop(j)
                    out[i] = Box(min(a.x0, b.x0), min(a.y0, b.y0), max(a.x1, b.x1), max(a.y1, b.y1), max(a.conf, b.conf))
                    merged = True
                    break
            if merged:
                break
    return sorted(out, key=lambda b: b.area, reverse=True)


# ---------------------------------------------------------------- crop geometry (pure functions)


def square_window(box: Box | None, width: int, height: int, margin: float = 0.25) -> tuple[int, int, int]:
    """(x0, y0, side) of the square crop for `box` in a width x height image; may extend outside it.

    box None -> the largest centred square. margin: fraction of the box's long side added in total
    (0.25 -> a square 1.25x the box's long side, as in the training data).
    """
    if box is None:
        side = min(width, height)
        return (width - side) // 2, (height - side) // 2, side
    long_side = max(box.width, box.height, 1.0)
    side = (1.0 + margin) * long_side
    if side > min(width, height):
        side = max(long_side, min(width, height))
    side = int(round(side))
    cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
    return _place(cx, side, width), _place(cy, side, height), side


def _place(center: float, side: int, size: int) -> int:
    """Start of a window of `side` centred at `center`, shifted inside [0, size) where it fits;
    where it does not fit, centred on the image (padding equal on both sides)."""
    if side >= size:
        return -((side - size) // 2)
    return int(min(max(round(center - side / 2), 0), size - side))


def crop_square(img: Image.Image, window: tuple[int, int, int], out_size: int) -> Image.Image:
    """Cut the square window (edge-replicated where it leaves the image) and resize to out_size."""
    x0, y0, side = window
    a = np.asarray(img.convert("RGB"))
    h, w = a.shape[:2]
    pad = ((max(0, -y0), max(0, y0 + side - h)), (max(0, -x0), max(0, x0 + side - w)), (0, 0))
    sub = a[max(0, y0) : min(h, y0 + side), max(0, x0) : min(w, x0 + side)]
    if any(p for pair in pad[:2] for p in pair):
        sub = np.pad(sub, pad, mode="edge")
    crop = Image.fromarray(np.ascontiguousarray(sub))
    return crop.resize((out_size, out_size), Image.Resampling.LANCZOS) if side != out_size else crop


# ---------------------------------------------------------------- the detector


@contextmanager
def keep_thread_settings():
    """Put back what ultralytics changes process-wide: `import ultralytics` sets OMP_NUM_THREADS=1 when
    unset, `import ultralytics.utils` calls cv2.setNumThreads(0), and every predict on the CPU calls
    torch.set_num_threads(min(8, cores - 1)); the generator and the rig renderer run after detection."""
    import cv2
    import torch

    omp, n_torch, n_cv2 = os.environ.get("OMP_NUM_THREADS"), torch.get_num_threads(), cv2.getNumThreads()
    try:
        yield
    finally:
        torch.set_num_threads(n_torch)
        cv2.setNumThreads(n_cv2)
        if omp is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = omp


def _openvino_xml(spec: str) -> Path | None:
    """The .xml of an OpenVINO export (a folder holding one, or the .xml itself); None otherwise."""
    p = Path(spec)
    if p.is_file() and p.suffix == ".xml":
        return p
    return next(iter(sorted(p.glob("*.xml"))), None) if p.is_dir() else None


class OpenVINOYolo:
    """A YOLOv8 detection export (static [1, 3, S, S] input, [1, 4 + classes, anchors] output) run with
    OpenVINO: ultralytics' letterbox, class choice (a box's class is its best-scoring one) and NMS,
    reproduced with OpenCV and numpy; `boxes(rgb)` -> [N, 6] (x0, y0, x1, y1, conf, class) in the
    photo's pixels."""

    def __init__(self, xml: Path, threads: int | None = None):
        # xml: the export's .xml (its .bin beside it); threads: OpenVINO's CPU threads (default: all cores,
        # only while it runs: its pool sleeps between photos; no pinning, so torch's threads keep every core).
        import openvino as ov

        core = ov.Core()
        try:  # compiled-model cache: ~2 s saved at every start after the first
            core.set_property({"CACHE_DIR": str(cache_dir() / "openvino")})
        except Exception:  # a read-only home: compile each time
            pass
        config = {"PERFORMANCE_HINT": "LATENCY", "ENABLE_CPU_PINNING": False}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        self.model = core.compile_model(str(xml), "CPU", config)
        shape = self.model.input(0).get_partial_shape()
        if shape.is_dynamic or len(shape) != 4:
            raise ValueError(f"{xml}: expected a static [1, 3, S, S] input, got {shape}")
        self.height, self.width = int(shape[2].get_length()), int(shape[3].get_length())

    def letterbox(self, rgb: np.ndarray) -> tuple[np.ndarray, float, float, int, int]:
        """uint8 HWC -> float [1, 3, S, S] in [0, 1] (resized to fit, centred on grey 114, as ultralytics does)."""
        import cv2

        h, w = rgb.shape[:2]
        r = min(self.height / h, self.width / w)
        nw, nh = max(round(w * r), 1), max(round(h * r), 1)
        dw, dh = (self.width - nw) / 2, (self.height - nh) / 2
        top, left = round(dh - 0.1), round(dw - 0.1)
        img = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR) if (nw, nh) != (w, h) else rgb
        img = cv2.copyMakeBorder(img, top, self.height - nh - top, left, self.width - nw - left,
                                 cv2.BORDER_CONSTANT, value=(114, 114, 114))
        x = np.ascontiguousarray(img.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0
        return x, nw / w, nh / h, left, top

    def boxes(self, rgb: np.ndarray, conf: float, classes: list[int] | None = None, iou: float = IOU,
              max_det: int = 300) -> np.ndarray:
        import cv2

        x, gx, gy, left, top = self.letterbox(rgb)
        pred = self.model(x)[self.model.output(0)][0].T  # [anchors, 4 + classes]: cx, cy, w, h, scores
        scores = pred[:, 4:]
        cls = scores.argmax(1)
        best = scores[np.arange(len(cls)), cls]
        keep = best > conf
        if classes is not None:
            keep &= np.isin(cls, classes)
        xywh, best, cls = pred[keep, :4], best[keep], cls[keep]
        out = np.zeros((0, 6), np.float32)
        for k in np.unique(cls):  # NMS per class, as ultralytics does (not class-agnostic)
            sel = np.flatnonzero(cls == k)
            tl = xywh[sel, :2] - xywh[sel, 2:] / 2
            rects = np.concatenate([tl, xywh[sel, 2:]], 1).astype(np.float64).tolist()
            kept = np.asarray(cv2.dnn.NMSBoxes(rects, best[sel].tolist(), conf, iou), dtype=int).reshape(-1)
            s = sel[kept]
            xyxy = np.concatenate([xywh[s, :2] - xywh[s, 2:] / 2, xywh[s, :2] + xywh[s, 2:] / 2], 1)
            out = np.concatenate([out, np.concatenate([xyxy, best[s, None], cls[s, None]], 1)])
        out = out[np.argsort(-out[:, 4], kind="stable")][:max_det]
        h, w = rgb.shape[:2]
        out[:, [0, 2]] = ((out[:, [0, 2]] - left) / gx).clip(0, w)
        out[:, [1, 3]] = ((out[:, [1, 3]] - top) / gy).clip(0, h)
        return out


def _prepare_ultralytics_env() -> None:
    """A writable settings folder and no pip installs behind the user's back."""
    os.environ.setdefault("YOLO_CONFIG_DIR", str(Path(tempfile.gettempdir()) / "birdanim-ultralytics"))
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_OFFLINE", "true")  # no update checks or telemetry


def detector_candidates(spec: str | os.PathLike | None = "auto") -> list[str]:
    """Which weights to try, in order. "auto": $BIRDANIM_DETECTOR, the shared OpenVINO export,
    a local yolov8n.pt, then "yolov8n.pt" (ultralytics downloads it when online)."""
    if spec not in (None, "auto"):
        return [str(spec)]
    cands = [c for c in [env_path("BIRDANIM_DETECTOR")] if c]
    for p in (shared_detector(), WEIGHTS / "yolov8n.pt", Path("yolov8n.pt")):
        if p.exists():
            cands.append(str(p))
    cands.append("yolov8n.pt")
    return list(dict.fromkeys(cands))


class BirdDetector:
    """YOLOv8 restricted to birds. Loads once; `__call__` returns merged boxes, largest first."""

    def __init__(self, spec: str | os.PathLike | None = "auto", min_conf: float = MIN_CONF, imgsz: int = 640):
        # spec: "auto", a .pt file, or an exported model folder (OpenVINO); min_conf: score threshold
        # 0..1; imgsz: detector input side in pixels (the OpenVINO export is fixed at 640).
        self.min_conf, self.imgsz = min_conf, imgsz
        self.model, self.source = self._load(detector_candidates(spec))

    @staticmethod
    def _load(candidates: list[str]):
        errors = []
        for c in candidates:
            xml = _openvino_xml(c)
            try:
                if xml is not None:  # compiled here, so the first photo does not pay for it
                    return OpenVINOYolo(xml), c
                _prepare_ultralytics_env()
                with keep_thread_settings():
                    from ultralytics import YOLO

                    if c == "yolov8n.pt" and not Path(c).exists():
                        os.environ["YOLO_OFFLINE"] = "false"  # allow ultralytics' own download of its weights
                    return YOLO(c, task="detect"), c
            except Exception as e:  # missing file, no network, missing openvino: try the next one
                errors.append(f"{c}: {type(e).__name__}: {str(e)[:200]}")
        raise DetectorUnavailableError(
            "no bird detector could be loaded (tried " + "; ".join(errors) + "). Pass a local YOLOv8 path "
            "(a .pt file or an OpenVINO export folder) or set BIRDANIM_DETECTOR; or crop manually."
        )

    def __call__(self, img: Image.Image) -> list[Box]:
        rgb = np.asarray(img.convert("RGB"))
        if isinstance(self.model, OpenVINOYolo):
            found = self.model.boxes(rgb, self.min_conf, classes=[BIRD_CLASS])
            xyxy, conf, cls = found[:, :4], found[:, 4], found[:, 5]
        else:
            with keep_thread_settings():
                res = self.model.predict(rgb[..., ::-1], imgsz=self.imgsz, conf=self.min_conf, classes=[BIRD_CLASS],
                                         iou=IOU, verbose=False)[0]
            xyxy = res.boxes.xyxy.cpu().numpy().reshape(-1, 4)
            conf = res.boxes.conf.cpu().numpy().reshape(-1)
            cls = res.boxes.cls.cpu().numpy().reshape(-1)
        boxes = [Box(*map(float, b), float(c)) for b, c, k in zip(xyxy, conf, cls) if int(k) == BIRD_CLASS]
        return merge_boxes(boxes)
