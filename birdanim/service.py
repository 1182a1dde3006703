"""The one object the app and the CLI talk to: loads the models once, runs the animate flow.

    a = Animator()                         # weights/, encoder, target poses, detector: loaded once
    photo = a.load_photo("bird.jpg")       # RGB PIL, or BadImageError
    boxes = a.detect(photo)                # birds, largest first ([] when none or no detector)
    res = a.animate(photo, box=boxes[0] if boxes else None)   # res.mp4_path, res.timings, ...

Stages reported to `progress(stage, fraction, latest_frame_or_None)`: detect, project, render, encode.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from birdanim.engines.gan.mixing import iter_frames, loop_ws, mix_with_poses, render_frames
from birdanim.checkpoint import WEIGHTS_FILE, CheckpointError, default_weights, load_generator, resolve
from birdanim.stages.detect import Box, crop_square, square_window
from birdanim.device import pick_device
from birdanim.errors import BadArgument, Cancelled, DetectorUnavailableError, NoBirdError, WeightsError
from birdanim.imageops import make_grid, pil_to_tensor
from birdanim.options import AnimateOptions
from birdanim.models.stylegan2 import z_from_seeds
from birdanim.stages.photo import PhotoSource, load_photo

__all__ = ["Animator", "AnimationResult", "Box", "Cancelled"]

Progress = Callable[[str, float, "np.ndarray | None"], None]
GIF_MAX_FPS, GIF_MAX_SIDE = 15.0, 320  # GIFs are big: fewer, smaller frames than the MP4
ENCODE_CHUNK_BYTES = 128 * 2**20  # frames held before ffmpeg gets them (600 frames at 256 px = 118 MB)


@dataclass
class AnimationResult:
    mp4_path: Path
    gif_path: Path | None
    crop: Image.Image  # the square crop around the bird (the GAN mode projects it, at G's resolution)
    num_frames: int
    fps: float
    timings: dict[str, float]  # seconds per stage (detect, cut out or project, render, encode, total)
    ws: torch.Tensor | None  # [1, num_ws, w_dim] the user's bird in W+ (GAN mode; None in rig mode)
    box: Box | None = None  # the box used (None: centred crop)
    notes: list[str] = field(default_factory=list)  # things the user should know (e.g. "no bird found")
    options: AnimateOptions = field(default_factory=AnimateOptions)  # what the video was made with
    G_tuned: torch.nn.Module | None = None  # the projection's generator copy (PTI for "best", or tuned noise maps) that rendered the frames
    rig: object | None = None  # rig mode: the Rig the bird was animated with (photo pixels at the output size)
    mask_method: str | None = None  # rig mode: how the bird was cut out

    @property
    def cutoff(self) -> int:
        return self.options.cutoff


class Animator:
    def __init__(self, weights: str | None = None, device=None, detector: str | None = "auto", poses_dir=None,
                 encoder: str | None = "auto", render_batch: int = 8, perceptual: str = "lite0",
                 keypoints: str | None = "auto", segmenter: str | None = "local", inpainter: str | None = "local"):
        """Load the generator, encoder, target poses and detector once.

        weights: a weights folder or Hugging Face repo id (None: $BIRDANIM_WEIGHTS or the repo's weights/);
        device: torch device or name (None: birdanim.device.pick_device); detector: "auto", a YOLOv8 path
        (.pt or OpenVINO folder), or None for no detector; poses_dir: target poses (None:
        assets/target_poses); encoder: "auto" (weights/encoder if present), a weights folder holding
        encoder/, or None; render_batch: frames per synthesis call (memory grows with it); perceptual:
        the projector's perceptual loss, "lite0" (EfficientNet-Lite0) or "lpips" (VGG LPIPS: loaded here,
        FeaturesUnavailableError when its VGG16 weights are neither on disk nor downloadable); keypoints:
        the rig mode's keypoint model, "auto" (weights/keypoints when present), a folder, or None (the rig
        is guessed from the bird's outline); segmenter / inpainter: the rig mode's YOLOv8-seg cut-out and
        LaMa scene fill: "local" (only when $BIRDANIM_SEGMENTER / $BIRDANIM_INPAINTER or a file in
        weights/ gives them: no download), "auto" (also download them when online), a path, or None
        (GrabCut and the OpenCV fill, which always work).
        """
        self.device = pick_device(device) if not isinstance(device, torch.device) else device
        self.weights = weights if weights is not None else default_weights()
        self.G = load_generator(self.weights, self.device)
        self.num_ws = self.G.num_ws
        self.render_batch = render_batch
        self.weights_file = resolve(self.weights, WEIGHTS_FILE)
        self.encoder = self._load_encoder(encoder)
        self.poses, self.poses_error = self._load_poses(poses_dir)
        self.detector, self.detector_error = self._load_detector(detector)
        self.perceptual = perceptual
        self._features = None
        if perceptual != "lite0":
            _ = self.features  # fail now, not in the first user's request
        self.keypoints_spec, self.segmenter_spec, self.inpainter_spec = keypoints, segmenter, inpainter
        self._rig_engine = None
        self.notes_at_load: list[str] = []  # optional models that were asked for but could not be loaded
        self._lock = threading.Lock()  # one render at a time: the CPU has no room for two

    # ------------------------------------------------------------------ loading

    def _load_encoder(self, spec):
        if spec is None:
            return None
        from birdanim.engines.gan.encoder import load_encoder

        folder = self.weights_file.parent if spec == "auto" else Path(spec)
        try:
            return load_encoder(folder, self.device, self.G, self.weights_file)
        except CheckpointError:
            if spec == "auto":
                return None  # not shipped: the projector starts from w_avg instead
            raise

    def _load_poses(self, poses_dir):
        from birdanim.engines.gan.poses import load_poses

        try:
            return load_poses(poses_dir, self.weights_file, self.G.num_ws, self.G.w_dim), None
        except WeightsError as e:  # the other features still work; animate() raises this
            return None, e

    def _load_detector(self, spec):
        if spec is None:
            return None, None
        from birdanim.stages.detect import BirdDetector

        try:
            return BirdDetector(spec), None
        except DetectorUnavailableError as e:
            if spec == "auto":
                return None, e  # offline without weights: crops are manual or centred
            raise

    @property
    def features(self):
        if self._features is None:
            from birdanim.models.features import load_perceptual

            try:
                self._features = load_perceptual(self.perceptual, self.device)
            except ValueError as e:
                raise BadArgument(str(e)) from e
        return self._features

    def warmup(self) -> None:
        """Run each network once so the first user does not pay for lazy initialisation."""
        from dataclasses import replace

        from birdanim.engines.gan.projector import PRESETS, projection

        with torch.no_grad():
            self.G.synthesis(self.G.mapping.w_avg.reshape(1, 1, -1).repeat(1, self.num_ws, 1))
        # One projection step (and one PTI step): the first backward pass pays oneDNN's set-up (measured ~2-4 s here).
        blank = torch.zeros(1, 3, self.G.img_resolution, self.G.img_resolution, device=self.device)
        projection(self.G, blank, config=replace(PRESETS["fast"], w_steps=0, wplus_steps=1, pti_steps=min(1, PRESETS["fast"].pti_steps)),
                   features=self.features)
        if self.detector is not None:
            self.detector(Image.new("RGB", (128, 128), (128, 128, 128)))

    # ------------------------------------------------------------------ photo, detection, crop

    def load_photo(self, src: PhotoSource) -> Image.Image:
        return load_photo(src)

    def detect(self, photo: Image.Image) -> list[Box]:
        return self.detector(photo) if self.detector is not None else []

    def crop(self, photo: Image.Image, box: Box | None = None, margin: float = 0.25) -> Image.Image:
        return crop_square(photo, square_window(box, photo.width, photo.height, margin), self.G.img_resolution)

    # ------------------------------------------------------------------ the animate flow

    def animate(self, photo, options: AnimateOptions | None = None, *, box: Box | None = None,
                others: list[Box] | None = None, rig=None, out_dir: Path | None = None,
                progress: Progress | None = None, cancel: threading.Event | None = None, **changes) -> AnimationResult:
        """Photo -> MP4 of the bird flying.

        options: the animation's settings (birdanim.options; keyword `changes` override single fields,
        e.g. `animate(photo, mode="gan", frames=60)`); box: the bird to animate (None: the detector's
        largest bird, or a centred crop); others: the other birds' boxes (None: from the detector), kept
        out of the rig mode's cut-out; rig: a rig edited by the user (rig mode; photo pixels)."""
        opts = (options or AnimateOptions()).replace(**changes).checked(self.num_ws)
        if opts.mode == "gan" and self.poses is None:
            raise self.poses_error
        photo = self.load_photo(photo)  # also for PIL input: size limits, mode, EXIF (cheap when already done)
        report = progress or (lambda *a: None)
        with self._lock:
            t0 = time.perf_counter()
            timings: dict[str, float] = {}
            notes: list[str] = []
            box, others = self._pick_box(photo, box, others, notes, report, opts.require_bird)
            timings["detect"] = time.perf_counter() - t0
            _raise_if(cancel)
            out = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="birdanim-"))
            out.mkdir(parents=True, exist_ok=True)
            run = self._animate_rig if opts.mode == "rig" else self._animate_gan
            res = run(photo, opts, box, others, rig, out, notes, timings, report, cancel)
            timings["total"] = time.perf_counter() - t0
        return res

    def _animate_rig(self, photo, opts, box, others, rig, out, notes, timings, report, cancel) -> AnimationResult:
        t = time.perf_counter()
        report("cut out", 0.0, None)
        bird = self.rig_engine.prepare(np.asarray(photo), box, others, scene=opts.scene, size=opts.size, rig=rig)
        notes += bird.notes
        timings["cut out"] = time.perf_counter() - t
        report("cut out", 1.0, bird.photo)
        _raise_if(cancel)
        batches = self.rig_engine.frames(bird, frames=opts.frames, fps=opts.fps, beats_per_second=opts.beats_per_second,
                                         path=opts.path, seed=opts.seed, background_blur=opts.background_blur, wings=opts.wings,
                                         progress=lambda f, last: report("render", f, last),
                                         cancel=cancel)
        size = (bird.scene.shape[1], bird.scene.shape[0])
        # streamed: the rig renders on one core in numpy, so x264 gets the other one meanwhile
        mp4, gif_path, timings["render"], timings["encode"] = self._encode(batches, size, opts, out, report, chunk_bytes=0)
        crop = self.crop(photo, box)
        return AnimationResult(mp4, gif_path, crop, opts.frames, float(opts.fps), timings, None, box, notes, opts,
                               rig=bird.rig, mask_method=bird.method)

    def _animate_gan(self, photo, opts, box, others, rig, out, notes, timings, report, cancel) -> AnimationResult:
        t = time.perf_counter()
        crop = self.crop(photo, box)
        proj = self._project(crop, opts.quality, opts.seed, report, cancel)
        timings["project"] = time.perf_counter() - t
        if self.encoder is not None and proj.start != "encoder":
            notes.append("the encoder's guess was worse than the average bird here: projected from the average")
        keys = mix_with_poses(proj.ws, self.poses.ws.to(self.device), cutoff=opts.cutoff, strength=opts.strength,
                              mixing=opts.mixing)
        ws = loop_ws(keys, frames=opts.frames, cycles=opts.cycles)
        G = proj.G_tuned or self.G
        comp = None
        if opts.scene == "photo":
            from birdanim.stages.composite import Compositor

            window = square_window(box, photo.width, photo.height)
            box_xyxy = (box.x0, box.y0, box.x1, box.y1) if box is not None else None
            hole = self._bird_hole(photo, box, others, timings) if box is not None else None
            comp = Compositor(photo, window, box=box_xyxy, max_side=opts.size, hole=hole)
        elif opts.scene == "sky":
            notes.append("the GAN mode draws its own background: the sky scene is for the rig mode")
        batches = iter_frames(G, ws, self.render_batch, lambda f, last: report("render", f, last), cancel)
        if comp is not None:
            batches = (comp.batch(b) for b in batches)
        size = comp.size if comp is not None else (G.img_resolution, G.img_resolution)
        mp4, gif_path, timings["render"], timings["encode"] = self._encode(batches, size, opts, out, report)
        return AnimationResult(mp4, gif_path, crop, opts.frames, float(opts.fps), timings, proj.ws.cpu(), box, notes,
                               opts, G_tuned=proj.G_tuned)

    @staticmethod
    def _bird_hole(photo, box, others, timings) -> np.ndarray:
        """The GAN mode's photo scene: the original bird's own mask (the rig mode's GrabCut segmentation,
        0.2-0.3 s at 1600 px), filled in where the GAN's frame covers it; the Compositor fills the rest of
        the box outside the frame (GrabCut missed the dark caps of 2 of the 6 examples). Filling only the
        box made a black background when the bird fills the photo (nothing around it to fill from)."""
        from birdanim.stages.segment import segment_bird

        t = time.perf_counter()
        cut = segment_bird(np.asarray(photo), box, others)
        timings["cut out"] = time.perf_counter() - t
        return cut.alpha if cut.hole is None else np.maximum(cut.alpha, cut.hole.astype(np.float32))

    @property
    def rig_engine(self):
        """The rig engine, built on first use (its keypoint model loads then)."""
        if self._rig_engine is None:
            from birdanim.engines.rig.engine import RigEngine

            kp = None
            if self.keypoints_spec is not None:
                from birdanim.engines.rig.keypoints import load_keypoint_model

                try:
                    kp = load_keypoint_model(None if self.keypoints_spec == "auto" else self.keypoints_spec, self.device)
                except WeightsError:
                    if self.keypoints_spec != "auto":
                        raise
            self._rig_engine = RigEngine(keypoints=kp, segmenter=self._optional_model("segmenter"),
                                         inpainter=self._optional_model("inpainter"))
        return self._rig_engine

    def _optional_model(self, kind: str):
        """The rig mode's optional YOLOv8-seg segmenter or LaMa inpainter, or None (GrabCut / OpenCV fill)."""
        from birdanim.errors import InpainterUnavailableError, SegmenterUnavailableError
        from birdanim.stages import scene, segment

        spec = self.segmenter_spec if kind == "segmenter" else self.inpainter_spec
        if spec is None:
            return None
        if kind == "segmenter":
            cands, make, err = segment.segmenter_candidates, segment.YoloSegmenter, SegmenterUnavailableError
        else:
            cands, make, err = scene.inpainter_candidates, scene.LamaInpainter, InpainterUnavailableError
        if spec == "local":
            local = [c for c in cands("auto") if Path(c).is_file()]
            if not local:
                return None
            spec = local[0]
        try:
            return make(spec)
        except err as e:
            self.notes_at_load.append(str(e))
            return None

    def prepare_bird(self, photo, box: Box | None = None, others: list[Box] | None = None, scene: str = "photo",
                     size: int = 512, rig=None):
        """The rig mode's first half (cut-out, rig, scene) for showing and editing the rig before rendering."""
        photo = self.load_photo(photo)
        with self._lock:
            box, others = self._pick_box(photo, box, others)
            return self.rig_engine.prepare(np.asarray(photo), box, others, scene=scene, size=size, rig=rig)

    def _pick_box(self, photo, box: Box | None = None, others: list[Box] | None = None, notes: list | None = None,
                  report=None, require_bird: bool = False) -> tuple[Box | None, list[Box]]:
        """(the bird to animate, or None for a centred crop; the other birds). A given box is kept (and the
        given others, else none); without one the detector's largest bird is taken, the rest are the others."""
        if box is not None:
            return box, list(others or [])
        notes = [] if notes is None else notes
        report = report or (lambda *a: None)
        if self.detector is None and require_bird:
            raise NoBirdError(f"no bird detector is loaded ({self.detector_error}); pass a box to crop manually")
        if self.detector is None:
            notes.append("no detector loaded: using a centred square crop")
            return None, list(others or [])
        report("detect", 0.0, None)
        boxes = self.detect(photo)
        report("detect", 1.0, None)
        if not boxes and require_bird:
            raise NoBirdError("no bird found in the photo; choose the crop by hand (pass a box)")
        if not boxes:
            notes.append("no bird found: using a centred square crop (adjust it if the bird is elsewhere)")
            return None, list(others or [])
        if len(boxes) > 1:
            notes.append(f"{len(boxes)} birds found: animating the largest")
        return boxes[0], boxes[1:] if others is None else list(others)

    def project(self, photo, box: Box | None = None, quality: str = "fast", seed: int = 0, steps: int | None = None,
                progress=None):
        """The bird's W+ latents: (ProjectionResult, the square crop that was projected). box None: the
        detector's largest bird, or a centred crop. progress(fraction, loss) per optimisation step."""
        from birdanim.engines.gan.projector import projection

        photo = self.load_photo(photo)
        if box is None:
            box, _ = self._pick_box(photo)
        crop = self.crop(photo, box)
        with self._lock:
            try:
                res = projection(self.G, pil_to_tensor(crop, self.device), quality=quality, encoder=self.encoder,
                                 steps=steps, seed=seed, progress=progress, features=self.features)
            except ValueError as e:  # a bad quality / steps: a sentence for the user
                raise BadArgument(str(e)) from e
        return res, crop

    def _project(self, crop, quality, seed, report, cancel):
        from birdanim.engines.gan.projector import projection

        target = pil_to_tensor(crop, self.device)
        if target.shape[-1] != self.G.img_resolution:
            target = F.interpolate(target, size=(self.G.img_resolution,) * 2, mode="bilinear", antialias=True)

        def on_step(fraction, loss):
            _raise_if(cancel)
            report("project", fraction, None)

        report("project", 0.0, np.asarray(crop))
        return projection(self.G, target, quality=quality, encoder=self.encoder, seed=seed, progress=on_step,
                          features=self.features)

    def _encode(self, batches, size, opts, out, report, chunk_bytes: int | None = None):
        """Frame batches -> MP4 (and GIF): (mp4, gif or None, render seconds, encode seconds). Frames
        reach ffmpeg in chunks of chunk_bytes (None: ENCODE_CHUNK_BYTES; 0: each batch as it comes)."""
        from birdanim.stages.video import Mp4Writer, write_gif

        chunk_bytes = ENCODE_CHUNK_BYTES if chunk_bytes is None else chunk_bytes
        fps = opts.fps
        mp4 = out / "bird.mp4"
        kept, render_s, encode_s, done = [], 0.0, 0.0, 0
        gif_step = max(1, int(np.ceil(fps / GIF_MAX_FPS)))
        # Frames are held back and handed to ffmpeg in chunks of up to ENCODE_CHUNK_BYTES (all 300 frames
        # of a 256 px video at once): x264 running *while* torch renders makes both 2-thread pools fight
        # for the 2 cores (streamed 7.0-8.8 s vs render-then-encode 5.7-7.3 s for 300 frames here).
        pending, pending_bytes = [], 0
        with Mp4Writer(mp4, size, fps) as writer:

            def flush():
                nonlocal pending, pending_bytes, encode_s
                t_enc = time.perf_counter()
                for b in pending:
                    writer.write(b)
                encode_s += time.perf_counter() - t_enc
                pending, pending_bytes = [], 0

            t = time.perf_counter()
            for batch in batches:
                pending.append(batch)
                pending_bytes += batch.nbytes
                if pending_bytes >= chunk_bytes:  # bounded memory for long or large videos
                    flush()
                if opts.gif:  # keep only the GIF's frames, already small: bounded memory
                    kept += [_shrink(f, GIF_MAX_SIDE) for j, f in enumerate(batch) if (done + j) % gif_step == 0]
                done += len(batch)
            render_s = time.perf_counter() - t - encode_s
            report("encode", 0.0, None)
            flush()
            t_enc = time.perf_counter()
        encode_s += time.perf_counter() - t_enc  # closing waits for ffmpeg to finish
        gif_path = write_gif(out / "bird.gif", np.stack(kept), fps=fps / gif_step, max_fps=GIF_MAX_FPS,
                             max_side=GIF_MAX_SIDE) if opts.gif else None
        report("encode", 1.0, None)
        return mp4, gif_path, render_s, encode_s

    # ------------------------------------------------------------------ exploring the generator

    @torch.no_grad()
    def _ws_of_seeds(self, seeds, psi: float) -> torch.Tensor:
        return self.G.mapping(z_from_seeds(seeds, self.G.z_dim, self.device), psi=psi)

    def _render(self, ws: torch.Tensor, progress=None) -> np.ndarray:
        return render_frames(self.G, ws, self.render_batch, progress)

    def random_birds(self, seeds: list[int], psi: float = 1.0) -> list[np.ndarray]:
        return list(self._render(self._ws_of_seeds(seeds, psi)))

    def similarity(self, seeds: list[int], psi: float = 1.0, centred: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
        """Cosine similarity [N, N] of the seeds' w vectors, and their thumbnails. centred: of w minus the
        average w (every w shares that offset, so plain cosines sit near 0.5; centred ones spread over
        -1..1 and do not depend on psi)."""
        ws = self._ws_of_seeds(seeds, psi)
        w = ws[:, 0] - self.G.mapping.w_avg.to(ws) if centred else ws[:, 0]
        w = F.normalize(w, dim=1)
        return (w @ w.T).cpu().numpy(), list(self._render(ws))

    def mixing_grid(self, row_seeds: list[int], col_seeds: list[int], cutoff: int = 7, psi: float = 1.0,
                    progress=None) -> np.ndarray:
        """(rows+1) x (cols+1) grid: first row the column sources, first column the row sources, cell
        (r, c) = coarse layers [0, cutoff) of row r with fine layers of column c. progress(fraction,
        last image) after each rendered batch."""
        if not 1 <= cutoff <= self.num_ws - 1:
            raise BadArgument(f"cutoff must be in 1..{self.num_ws - 1}, got {cutoff}")
        rw, cw = self._ws_of_seeds(row_seeds, psi), self._ws_of_seeds(col_seeds, psi)
        # cell (r, c): column c's bird given row r's coarse rows, the same swap the animations use
        mixed = torch.stack([mix_with_poses(cw[c], rw, cutoff=cutoff) for c in range(len(col_seeds))], dim=1)
        imgs = self._render(torch.cat([cw, rw, mixed.flatten(0, 1)]), progress)
        cols, rows = len(col_seeds), len(row_seeds)
        blank = np.full_like(imgs[:1], 255)
        cells = [blank, imgs[:cols]]
        for r in range(rows):
            cells += [imgs[cols + r : cols + r + 1], imgs[cols + rows + r * cols : cols + rows + (r + 1) * cols]]
        return make_grid(np.concatenate(cells), cols=cols + 1)


def _shrink(frame: np.ndarray, max_side: int) -> np.ndarray:
    h, w = frame.shape[:2]
    s = max_side / max(h, w)
    if s >= 1:
        return frame
    return np.asarray(Image.fromarray(frame).resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.LANCZOS))


def _raise_if(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled")
