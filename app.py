"""birdanim's web app: upload a photo of a bird, get a video of it flying.

    python app.py            # serves on http://127.0.0.1:7860 (GRADIO_SERVER_NAME / _PORT override)

Environment: BIRDANIM_WEIGHTS (weights folder or Hub repo id; default weights/), BIRDANIM_POSES
(target poses folder; default assets/target_poses), BIRDANIM_DETECTOR (YOLOv8 weights).

This file only builds the UI: `build_demo(service)` wires one small builder per tab to a
`birdanim.service.Animator`, which loads the generator, encoder and detector once and does the work.
Nothing heavy happens at import; `main()` loads the models, warms up once and launches.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np

from birdanim.ui import helpers as uh
from birdanim.errors import BirdanimError
from birdanim.options import FIELDS, AnimateOptions
from birdanim.ui.jobs import CancelBoard, RenderJob

log = logging.getLogger("birdanim.app")

REPO = Path(__file__).resolve().parent
EXAMPLES_DIR = REPO / "assets" / "examples"
# Gradio deletes its own copies of uploads and results older than AGE seconds, checking every
# INTERVAL seconds; our render folders go as soon as gradio has copied the result (see render()).
DELETE_CACHE = (300, 900)  # (interval s, age s): nothing stays longer than ~20 minutes
WORK_ROOT = Path(tempfile.gettempdir()) / "birdanim-app"  # per-request render folders live here
MAX_UPLOAD = "50mb"  # larger uploads are refused by gradio before they reach the disk
QUEUE_SIZE = 16  # requests waiting beyond this are refused ("queue full") instead of piling up
PREVIEW_EVERY = 0.5  # seconds between preview frames sent to the browser while rendering
MAX_SIM_SEEDS = 16  # similarity matrix: N birds, N^2 cells
MAX_MIX_SEEDS = 8  # style-mixing grid: at most 8 x 8 renders
MAX_GALLERY = 16
# Truncation the sliders start at: for the shipped weights (282.9 kimg), psi 0.7 has the lowest FD and a detected
# bird in 5 of 6 samples (n = 2000: FD 39.5, bird-detect 0.83; psi 0.6: 41.9 / 0.87; psi 1: 41.8 / 0.70; model card,
# "Truncation"). The weights before these had theirs at 0.7 too (41.4 / 0.77).
DEFAULT_PSI = 0.7
STAGES = {
    "detect": "Finding the bird",
    "cut out": "Cutting the bird out and rigging it",
    "project": "Projecting the bird into the GAN",
    "render": "Rendering frames",
    "encode": "Encoding the video",
}
CSS = """
#render-btn {min-height: 3em}
.about-card table {font-size: 0.9em}
body[data-rendering="1"] #result-video {display: none !important}
body:not([data-rendering="1"]) #live-frames {display: none !important}
.stage-bar {position: relative; height: 1.9em; border-radius: 6px; overflow: hidden;
            background: var(--block-background-fill); border: 1px solid var(--border-color-primary)}
.stage-bar .fill {position: absolute; inset: 0 auto 0 0; background: rgba(99, 102, 241, 0.28);
                  transition: width 0.4s}
.stage-bar span {position: relative; padding: 0 0.6em; line-height: 1.9em; font-size: 0.9em}
#rig-hint p {margin: 0; font-size: 0.85em}
#downloads:not(:has(table)) {display: none !important}
.step-title p {margin: 0}
#title h2 {margin: 0}
"""


# ================================================================== errors -> messages in the UI


def to_user_error(e: BaseException) -> gr.Error:
    """Our own errors carry a message meant for users; anything else is logged and reported briefly.

    An expected error (a gr.Error we raise, a BirdanimError) is logged as one line, without gradio's
    traceback (print_exception=False). The title goes into the message too: gradio 6.31's page reads
    `_title` from the server's message while the client sets `title`, so every toast says "Error"."""
    if isinstance(e, gr.Error):
        if e.print_exception:
            log.info("user error: %s", e.message)
            e.print_exception = False
        return e
    if isinstance(e, BirdanimError):
        title = _error_title(e)
        log.info("user error (%s): %s", type(e).__name__, e)
        text = str(e)  # written to follow "birdanim: error: " on the command line; a sentence here
        return gr.Error(f"<strong>{title}.</strong> {text[:1].upper()}{text[1:]}", title=title, print_exception=False)
    log.exception("unexpected error in a handler")
    return gr.Error(
        f"Something went wrong on our side ({type(e).__name__}). The app is still running: try again, "
        "or with another photo."
    )


def _error_title(e: BirdanimError) -> str:
    from birdanim.errors import BadImageError, DetectorUnavailableError, NoBirdError, WeightsError

    titles = {BadImageError: "Not a usable image", NoBirdError: "No bird found",
              DetectorUnavailableError: "Bird detector unavailable", WeightsError: "Model files missing"}
    return next((t for cls, t in titles.items() if isinstance(e, cls)), "Cannot do that")


def friendly(fn):
    """Handler decorator: every exception becomes a gr.Error with a readable message."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            raise to_user_error(e) from e

    return wrapper


def friendly_gen(fn):
    """`friendly` for generator handlers (gradio must still see a generator function)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            yield from fn(*args, **kwargs)
        except Exception as e:
            raise to_user_error(e) from e

    return wrapper


def photo_input(**kwargs) -> gr.Image:
    """A gr.Image (type "filepath") that hands an uploaded file to our handler unopened.

    gr.Image's own preprocessing opens the file with Pillow first, so a text file, a corrupt file or
    a 20000x20000 PNG would fail inside gradio with an unclear message; `birdanim.stages.photo` checks them
    properly and raises BadImageError, which the handlers show. (An instance override rather than a
    subclass: gradio writes a .pyi stub next to any module defining a component subclass.)
    """
    img = gr.Image(type="filepath", image_mode=None, **kwargs)
    gradio_preprocess = img.preprocess

    def preprocess(payload):
        if payload is not None and payload.path and not (payload.url or "").startswith("data:"):
            return str(payload.path)
        return gradio_preprocess(payload)  # webcam / clipboard data URLs

    img.preprocess = preprocess
    return img


# ================================================================== rendering in a worker thread


def new_work_dir() -> Path:
    """A fresh folder for one request's outputs; stale ones (abandoned requests) are swept first."""
    WORK_ROOT.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for d in WORK_ROOT.iterdir():
        try:
            if now - d.stat().st_mtime > DELETE_CACHE[1]:
                shutil.rmtree(d, ignore_errors=True)
        except OSError:
            pass
    return Path(tempfile.mkdtemp(prefix="req-", dir=WORK_ROOT))


# ================================================================== tab: Animate


@dataclass
class AnimateTab:
    """The components other tabs need (the Random-birds gallery sends its pick to `photo`)."""

    photo: gr.Image
    render_btn: gr.Button
    video: gr.Video


def num_ws_of(service) -> int:
    return int(service.num_ws)


def load_upload(service, path: str):
    """The uploaded photo, or a clear message when gradio's cache already deleted it."""
    if not Path(path).exists():
        raise gr.Error(f"Your photo is no longer on the server (uploads are deleted after {DELETE_CACHE[1] // 60} "
                       "minutes). Please upload it again.")
    return service.load_photo(path)


RIG_SIZE = AnimateOptions.size  # the rig step works at the render's default size: the rig shown is the rig used
COMPARE_FRAMES = 60  # the Compare clips: 2 s at 30 fps, enough to see each engine's motion
# One line per expert control, in a photographer's words (ranges and defaults: birdanim.options.FIELDS).
PLAIN = {
    "scene": "Photo: your bird flies in its own picture (the spot where it sat is filled in). Sky: over a "
             "plain sky. Crop: a square around the bird.",
    "path": "Hover in place, or fly across the picture.",
    "beats_per_second": "How fast the wings beat: small songbirds beat fast, herons and gulls slowly.",
    "background_blur": "How soft the picture behind the flying bird goes, as when a camera follows it (0: sharp).",
    "wings": "A perched bird's open wings: real (a real flying bird's wing in your bird's colours) or painted.",
    "frames": "Length of the clip (frames ÷ frames per second = seconds).",
    "fps": "Smoothness: 24-30 looks like video; fewer makes a smaller, jerkier file.",
    "seed": "Change it for a slightly different take of the same flight.",
    "cutoff": "How much of the shape comes from the GAN's wing-beat poses; lower keeps more of your bird.",
    "strength": "How far the wing-beat poses move your bird (0: not at all).",
    "quality": "How hard the GAN tries to match your photo; 'best' is closer but takes about a minute.",
}


def status_bar(label: str, fraction: float | None = None) -> str:
    """The Animate tab's progress bar (HTML): the stage's name and how far it is. None: no bar."""
    import html

    if fraction is None:
        return f'<div class="stage-bar idle"><span>{html.escape(label)}</span></div>'
    pct = round(100 * min(max(fraction, 0.0), 1.0))
    return (f'<div class="stage-bar" role="progressbar" aria-valuenow="{pct}"><div class="fill" style="width:{pct}%">'
            f'</div><span>{html.escape(label)}</span></div>')


def _others(boxes: list, box) -> list:
    """The detected birds other than the chosen `box` (kept out of its cut-out): those it barely overlaps."""
    from birdanim.stages.detect import Box, intersection

    def iou(a, b):
        inter = intersection(a, b)
        union = a.area + b.area - inter
        return inter / union if union > 0 else 0.0

    return [Box(*b) for b in boxes or [] if iou(Box(*b), box) < 0.5]


def _rig_key(path, cx, cy, size) -> list:
    """What a rig was made for: the photo and the crop sliders (a different crop means another cut-out)."""
    return [str(path), round(float(cx), 2), round(float(cy), 2), round(float(size), 2)]


def _box_view(photo, box):
    """The photo at the rig step's size with the bird's box drawn (shown while the rig is computed)."""
    from birdanim.ui.rigview import dashed_rect, photo_scale

    s = photo_scale(photo.size, RIG_SIZE)
    img = np.array(photo.resize((round(photo.width * s), round(photo.height * s))).convert("RGB"))
    dashed_rect(img, (box.x0 * s, box.y0 * s, box.x1 * s, box.y1 * s), (255, 255, 255), 2)
    return img


def _draw(state: dict, joint: str | None):
    from birdanim.engines.rig.rig import Rig
    from birdanim.ui.rigview import draw_rig, to_bird_rig

    rig = to_bird_rig(Rig.from_json(state["rig"]), state["s"])
    return draw_rig(state["photo"], state["alpha"].astype(np.float32) / 255.0, rig, joint, state["box"])


def _user_rig(state: dict | None, key: list):
    """The rig from the rig step, if it was made for this photo and crop (else None: the engine estimates one)."""
    if not state or state.get("key") != key:
        return None
    from birdanim.engines.rig.rig import Rig

    return Rig.from_json(state["rig"])


def animate_handlers(service, cancels: CancelBoard):
    """The Animate tab's handlers, as closures over the service (kept apart from the layout)."""
    from birdanim.stages.detect import Box

    @friendly
    def on_photo(path):
        """Detection: the boxes, the bird picker, the crop sliders and a first view (the box on the photo)."""
        if not path:
            return [], gr.update(choices=[], value=None, visible=False), 50.0, 50.0, 50.0, None
        photo = load_upload(service, path)
        boxes = service.detect(photo)
        if boxes:
            cx, cy, size = uh.box_to_sliders(boxes[0], *photo.size)
            if len(boxes) > 1:
                gr.Info(f"{len(boxes)} birds found: the largest is selected; pick another under 'Which bird'.")
        else:
            cx, cy, size = uh.whole_photo_sliders(*photo.size)
            gr.Warning("No bird found in this photo: using a centred crop. Move the crop sliders (Advanced) onto "
                       "the bird.")
        labels = uh.bird_labels(boxes)
        view = _box_view(photo, uh.sliders_to_box(cx, cy, size, *photo.size))
        state = [[b.x0, b.y0, b.x1, b.y1, b.conf] for b in boxes]
        dropdown = gr.update(choices=labels, value=labels[0] if labels else None, visible=len(boxes) > 1)
        return state, dropdown, cx, cy, size, view

    @friendly
    def on_pick(path, label, boxes):
        if not path or not label or not boxes:
            return gr.skip(), gr.skip(), gr.skip()
        photo = load_upload(service, path)
        i = uh.bird_labels([Box(*b) for b in boxes]).index(label)
        return uh.box_to_sliders(Box(*boxes[i]), *photo.size)

    @friendly
    def make_rig(path, cx, cy, size, boxes, joint):
        """The rig step: cut the bird out and rig it (the rig engine's first half, ~1 s), draw it."""
        if not path:
            return None, None, "", False
        photo = load_upload(service, path)
        box = uh.sliders_to_box(cx, cy, size, *photo.size)
        import dataclasses

        from birdanim.ui.rigview import photo_scale, to_photo_rig

        bird = service.prepare_bird(photo, box, _others(boxes, box), scene="photo", size=RIG_SIZE)
        s = photo_scale(photo.size, RIG_SIZE)
        # the hint below the view says how the joints were found; the notes need not come back as toasts
        rig_json = dataclasses.replace(to_photo_rig(bird.rig, s), notes=[]).to_json()
        state = {"key": _rig_key(path, cx, cy, size), "s": s, "rig": rig_json, "auto": rig_json, "photo": bird.photo,
                 "alpha": np.round(np.clip(bird.alpha, 0, 1) * 255).astype(np.uint8),
                 "box": (box.x0 * s, box.y0 * s, box.x1 * s, box.y1 * s)}
        hint = "The joints were found from the bird's shape" + (
            ": check them." if bird.rig.source == "mask" else " and its parts.")
        return _draw(state, joint), state, hint, bool(bird.rig.in_flight)

    @friendly
    def on_click(state, joint, evt: gr.SelectData):
        """Move the chosen joint to the clicked point (the view is drawn at the rig step's pixels)."""
        if not state:
            raise gr.Error("Upload a photo first: the rig appears here once the bird is found.")
        if evt.index is None or not joint:
            return gr.skip(), gr.skip()
        from birdanim.engines.rig.rig import Rig

        x, y = (float(v) for v in evt.index[:2])
        rig = Rig.from_json(state["rig"]).moved(joint, (x / state["s"], y / state["s"]))
        state = {**state, "rig": rig.to_json()}
        return _draw(state, joint), state

    def on_joint(state, joint):
        return _draw(state, joint) if state else gr.skip()

    def on_reset(state, joint):
        if not state:
            return gr.skip(), gr.skip(), gr.skip()
        from birdanim.engines.rig.rig import Rig

        state = {**state, "rig": state["auto"]}
        return _draw(state, joint), state, bool(Rig.from_json(state["auto"]).in_flight)

    def on_in_flight(state, spread):
        if not state:
            return gr.skip()
        import dataclasses

        from birdanim.engines.rig.rig import Rig

        rig = dataclasses.replace(Rig.from_json(state["rig"]), in_flight=bool(spread))
        return {**state, "rig": rig.to_json()}

    @friendly_gen
    def render(path, cx, cy, size, mode, scene, fpath, beats, cutoff, frames, fps, quality, seed, strength, gif,
               blur, wings, rig_state, boxes, request: gr.Request, progress=gr.Progress()):
        # The api ("/animate") takes the inputs up to `wings`, in this order (see ANIMATE_API); the rig
        # step's state and the detected boxes are per-session state, not api inputs.
        if not path:
            raise gr.Error("Upload a photo of a bird first (or pick an example).")
        photo = load_upload(service, path)
        box = uh.sliders_to_box(cx, cy, size, *photo.size)
        options = AnimateOptions(mode=str(mode), scene=str(scene), path=str(fpath), beats_per_second=float(beats),
                                 cutoff=int(cutoff), frames=int(frames), fps=float(fps), quality=str(quality),
                                 seed=int(seed), strength=float(strength), gif=bool(gif), background_blur=float(blur),
                                 wings=str(wings))
        rig = _user_rig(rig_state, _rig_key(path, cx, cy, size)) if options.mode == "rig" else None
        session = getattr(request, "session_hash", None) or "anonymous"
        work = new_work_dir()
        job = RenderJob(service, photo, box, options, work, cancels.start(session), rig=rig, others=_others(boxes, box))
        try:
            progress(0.0, desc="Waiting for the renderer")
            job.start()
            yield from _stream_progress(job, progress)
            if job.error is not None:
                raise job.error
            res = job.result
            for note in res.notes:
                gr.Info(note)
            files = [str(res.mp4_path)] + ([str(res.gif_path)] if res.gif_path else [])
            took = res.timings.get("total", 0.0)
            yield job.preview(job.last_frame), str(res.mp4_path), files, status_bar(f"Done: {res.num_frames} frames in {took:.0f} s", 1.0)
        finally:  # reached after gradio copied the result into its cache (or on cancel / error)
            job.stop()
            cancels.finish(session, job.cancel)
            shutil.rmtree(work, ignore_errors=True)

    @friendly_gen
    def compare(path, cx, cy, size, scene, fpath, beats, blur, wings, seed, rig_state, boxes, request: gr.Request,
                progress=gr.Progress()):
        """Both engines on the same photo, short clips, one after the other."""
        if not path:
            raise gr.Error("Upload a photo of a bird first (or pick an example).")
        photo = load_upload(service, path)
        box = uh.sliders_to_box(cx, cy, size, *photo.size)
        session = getattr(request, "session_hash", None) or "anonymous"
        works, videos, cancel_ev = [], {}, None
        try:
            for mode in ("rig", "gan"):
                cancel_ev = cancels.start(session)  # one per job: stopping a finished job sets its event
                options = AnimateOptions(mode=mode, scene=str(scene), path=str(fpath), beats_per_second=float(beats),
                                         frames=COMPARE_FRAMES, seed=int(seed), background_blur=float(blur), wings=str(wings),
                                         cutoff=min(AnimateOptions.cutoff, num_ws_of(service) - 1))
                rig = _user_rig(rig_state, _rig_key(path, cx, cy, size)) if mode == "rig" else None
                works.append(new_work_dir())
                job = RenderJob(service, photo, box, options, works[-1], cancel_ev, rig=rig,
                                others=_others(boxes, box)).start()
                name = "Your bird's own wings" if mode == "rig" else "GAN style mixing"
                for _frame, _v, _f, status in _stream_progress(job, progress):
                    yield videos.get("rig"), None, status.replace('<span>', f'<span>{name}: ', 1)
                job.stop()
                cancels.finish(session, cancel_ev)
                if job.error is not None:
                    raise job.error
                videos[mode] = str(job.result.mp4_path)
            yield videos["rig"], videos["gan"], status_bar(f"Done: two clips of {COMPARE_FRAMES} frames", 1.0)
        finally:
            if cancel_ev is not None:
                cancels.finish(session, cancel_ev)
            for w in works:
                shutil.rmtree(w, ignore_errors=True)

    def cancel(request: gr.Request):
        if cancels.cancel(getattr(request, "session_hash", None) or "anonymous"):
            gr.Info("Render cancelled.")

    return dict(on_photo=on_photo, on_pick=on_pick, make_rig=make_rig, on_click=on_click, on_joint=on_joint,
                on_reset=on_reset, on_in_flight=on_in_flight, render=render, compare=compare, cancel=cancel)


class PreviewFiles:
    """Preview frames as files, each new frame under a new name in the render's folder.

    Handing gradio the numpy frame made it write <cache>/<hash of the image>/image.webp anew every time
    the same frame was sent again (each 0.5 s while no new frame came, and with the final video), in
    place, while the browser could be fetching that very file: "Too much data for declared
    Content-Length" and a broken preview (issue 27). A path is copied into gradio's cache once
    (atomically, under its content hash), and our files are never rewritten."""

    def __init__(self, folder: Path):
        self.folder, self.count, self.path, self._frame = Path(folder), 0, None, None

    def __call__(self, frame: np.ndarray | None) -> str | None:
        if frame is not None and frame is not self._frame:
            from PIL import Image

            self.count += 1
            path = self.folder / f"preview_{self.count:05d}.png"
            Image.fromarray(np.ascontiguousarray(frame)).save(path, compress_level=1)
            self.path, self._frame = str(path), frame
        return self.path


def _stream_progress(job: RenderJob, progress):
    """Until the job ends, yield (newest frame, None, None, progress bar) at most every PREVIEW_EVERY s,
    and move gradio's own bar. The stage bar matters: once a generator has yielded, gradio shows its
    bar on the outputs no more."""
    last_sent, frame = 0.0, None
    job.preview = getattr(job, "preview", None) or PreviewFiles(job.out_dir)
    while job.running():
        snap = job.wait(PREVIEW_EVERY)
        if snap is None:
            continue
        stage, fraction, new_frame = snap
        fraction = min(max(fraction, 0.0), 1.0)
        progress(fraction, desc=STAGES.get(stage, stage))
        frame = new_frame if new_frame is not None else frame
        if time.monotonic() - last_sent >= PREVIEW_EVERY:
            last_sent = time.monotonic()
            # Values, never gr.skip(): an update dict makes gradio keep per-session copies of the
            # output components, whose cached files its delete_cache then never deletes.
            yield job.preview(frame), None, None, status_bar(f"{STAGES.get(stage, stage)}: {100 * fraction:.0f}%",
                                                              fraction)
    if _is_cancelled(job.error):
        raise gr.Error("Render cancelled.", title="Cancelled")


def _is_cancelled(err: BaseException | None) -> bool:
    from birdanim.errors import Cancelled

    return isinstance(err, Cancelled)


def example_render(service):
    """The examples' function (cached lazily): detect and render with the default settings.

    gradio copies the video into its example cache only after this returns, so the work folder is
    left for new_work_dir()'s sweep (these are the project's own photos, not uploads).
    """

    @friendly
    def run(path, progress=gr.Progress()):
        photo = service.load_photo(path)
        boxes = service.detect(photo)
        box = boxes[0] if boxes else None
        options = AnimateOptions(cutoff=min(AnimateOptions.cutoff, num_ws_of(service) - 1))
        job = RenderJob(service, photo, box, options, new_work_dir(), threading.Event(), others=boxes[1:]).start()
        for _ in _stream_progress(job, progress):
            pass
        job.stop()
        if job.error is not None:
            raise job.error
        return str(job.result.mp4_path)

    return run


def example_photos() -> list[Path]:
    """The shipped examples: real photos (Kaggle BIRDS-525, CC0; assets/examples/README.md names each)."""
    return sorted(EXAMPLES_DIR.glob("*.jpg")) + sorted(EXAMPLES_DIR.glob("*.png"))


# The "/animate" api's inputs, in order (gradio_client.predict(*values, api_name="/animate")); tests,
# benchmarks/load_test.py and the README call it by position.
ANIMATE_API = ("photo", "cx", "cy", "size", "mode", "scene", "path", "beats_per_second", "cutoff", "frames", "fps",
               "quality", "seed", "strength", "gif", "background_blur", "wings")
# The output area is one place: the frames as they render, replaced by the video when it is done (a
# page-side switch: visibility updates from the server would make gradio keep per-session copies).
STEP2 = {  # the middle column's title, per engine
    "rig": "**2. Check the rig**: pick a joint below, then click where it belongs on the photo.",
    "gan": "**2. Check the bird**: the dashed box should hold it (the GAN sees a square around it); "
           "move it under Advanced, Crop.",
}
RENDERING_ON = "() => { document.body.dataset.rendering = '1'; }"
RENDERING_OFF = "() => { delete document.body.dataset.rendering; }"


def _slider(name: str, label: str, value, step, **kw) -> gr.Slider:
    f = FIELDS[name]
    return gr.Slider(f.lo, f.hi, value=value, step=step, label=label, info=PLAIN.get(name, f.help), **kw)


def build_animate_tab(service, cancels: CancelBoard, examples: list[Path]) -> AnimateTab:
    from birdanim.engines.rig.rig import JOINTS
    from birdanim.ui.rigview import JOINT_LABELS

    h = animate_handlers(service, cancels)
    num_ws = num_ws_of(service)
    d = AnimateOptions()
    boxes, rig_state = gr.State([]), gr.State(None)
    # the output area is made first (the examples, left, write into it) and placed in the right column
    live = gr.Image(label="Frames as they render", type="numpy", height=300, interactive=False, elem_id="live-frames",
                    render=False)
    video = gr.Video(label="Your bird, flying", buttons=["download"], autoplay=True, loop=True, height=300,
                     interactive=False, elem_id="result-video", render=False)
    with gr.Row(equal_height=False):
        with gr.Column(scale=4, min_width=300):
            photo = photo_input(label="1. Your bird photo", format="png", sources=["upload", "webcam", "clipboard"],
                                height=250, elem_id="photo")
            which = gr.Dropdown(label="Which bird", choices=[], visible=False, interactive=True)
            if examples:
                gr.Examples([[str(p)] for p in examples], inputs=[photo], outputs=[video], fn=example_render(service),
                            cache_examples=True, cache_mode="lazy", label="Or try a photo (Kaggle BIRDS-525, CC0)",
                            examples_per_page=8, elem_id="examples")
        with gr.Column(scale=4, min_width=300):
            step2 = gr.Markdown(STEP2[d.mode], elem_classes=["step-title"])
            view = gr.Image(label="The rig", show_label=False, type="numpy", height=300, interactive=False,
                            format="png", elem_id="rig-view", buttons=[])
            with gr.Group(visible=d.mode == "rig") as rig_tools:
                joint = gr.Radio([(JOINT_LABELS[j], j) for j in JOINTS], value="beak", show_label=False,
                                 container=False, elem_id="joint")
                with gr.Row(equal_height=True):
                    spread = gr.Checkbox(label="Wings spread in the photo", scale=3, container=False,
                                         elem_id="spread")
                    reset = gr.Button("Reset rig", size="sm", scale=1, min_width=90)
            rig_hint = gr.Markdown("", elem_id="rig-hint")
        with gr.Column(scale=4, min_width=300):
            mode = gr.Radio([("Your bird's own wings", "rig"), ("GAN style mixing", "gan")], value=d.mode,
                            label="3. Engine", elem_id="mode",
                            info="Own wings: your photo's bird, cut out and flapped. GAN: the original method.")
            with gr.Row():
                render_btn = gr.Button("Render", variant="primary", elem_id="render-btn", scale=3)
                cancel_btn = gr.Button("Cancel", variant="stop", scale=1)
            status = gr.HTML(status_bar("Upload a photo, then press Render."), elem_id="render-status")
            live.render()
            video.render()
            downloads = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="downloads")
    with gr.Accordion("Advanced", open=False, elem_id="advanced"):
        with gr.Row():
            scene = gr.Radio(list(FIELDS["scene"].choices), value=d.scene, label="Scene", info=PLAIN["scene"])
            fpath = gr.Radio(list(FIELDS["path"].choices), value=d.path, label="Flight path", info=PLAIN["path"])
            frames = _slider("frames", "Frames", d.frames, 1, elem_id="frames")
            fps = _slider("fps", "Frames per second", d.fps, 1)
        with gr.Row(visible=d.mode == "gan") as gan_opts:
            cutoff = gr.Slider(FIELDS["cutoff"].lo, num_ws - 1, value=min(d.cutoff, num_ws - 1), step=1,
                               label="Style-mix cutoff layer", info=PLAIN["cutoff"])
            strength = _slider("strength", "Pose strength", d.strength, 0.05)
            quality = gr.Radio(list(FIELDS["quality"].choices), value=d.quality, label="Projection quality",
                               info=PLAIN["quality"])
        with gr.Row():
            with gr.Group(visible=d.mode == "rig") as rig_opts:
                beats = _slider("beats_per_second", "Wing-beats per second", d.beats_per_second, 0.5)
                blur = _slider("background_blur", "Background softness", d.background_blur, 0.5)
                wings = gr.Radio(list(FIELDS["wings"].choices), value=d.wings, label="Wings", info=PLAIN["wings"])
            seed = gr.Number(value=d.seed, precision=0, minimum=FIELDS["seed"].lo, maximum=FIELDS["seed"].hi,
                             label="Seed", info=PLAIN["seed"])
            gif = gr.Checkbox(label="Also make a GIF", info="A GIF plays everywhere but is larger and less sharp.")
        gr.Markdown("**Crop**: where the bird is, when the detector missed it or chose another one. Changing "
                    "it cuts the bird out again.")
        with gr.Row():
            cx = gr.Slider(0, 100, value=50, step=0.5, label="Bird centre, x (% of width)")
            cy = gr.Slider(0, 100, value=50, step=0.5, label="Bird centre, y (% of height)")
            size = gr.Slider(1, 100, value=50, step=0.5, label="Bird size (% of the longer side)")
    with gr.Accordion("Compare the two engines", open=False, elem_id="compare"):
        gr.Markdown(f"Renders this photo with both engines ({COMPARE_FRAMES}-frame clips, same scene, path and "
                    "seed) and shows them side by side: the rig engine moves your bird's own pixels; the GAN draws "
                    "a bird like yours.")
        compare_btn = gr.Button("Compare both engines", elem_id="compare-btn")
        compare_status = gr.HTML("", elem_id="compare-status")
        with gr.Row():
            rig_video = gr.Video(label="Your bird's own wings (rig)", autoplay=True, loop=True, height=280,
                                 interactive=False, elem_id="compare-rig")
            gan_video = gr.Video(label="GAN style mixing", autoplay=True, loop=True, height=280, interactive=False,
                                 elem_id="compare-gan")

    light = dict(concurrency_limit=2, concurrency_id="light")
    rig_in, rig_out = [photo, cx, cy, size, boxes, joint], [view, rig_state, rig_hint, spread]
    # A photo that cannot be used: the error toast says why, then the input is emptied (instead of a
    # broken-image icon and a red "Error" badge on the view) so the next upload starts clean.
    detected = photo.change(h["on_photo"], [photo], [boxes, which, cx, cy, size, view], api_name="detect", **light)
    detected.failure(lambda: (None, None, None), None, [photo, view, rig_state], api_visibility="private", **light)
    detected.success(h["make_rig"], rig_in, rig_out, api_name="rig", show_progress="minimal", **light)
    which.input(h["on_pick"], [photo, which, boxes], [cx, cy, size], api_visibility="private", **light).success(
        h["make_rig"], rig_in, rig_out, api_visibility="private", show_progress="minimal", **light)
    for s in (cx, cy, size):
        s.release(h["make_rig"], rig_in, rig_out, api_visibility="private", trigger_mode="always_last",
                  show_progress="minimal", **light)
    view.select(h["on_click"], [rig_state, joint], [view, rig_state], api_visibility="private", queue=False)
    joint.change(h["on_joint"], [rig_state, joint], [view], api_visibility="private", queue=False)
    reset.click(h["on_reset"], [rig_state, joint], [view, rig_state, spread], api_visibility="private", queue=False)
    spread.input(h["on_in_flight"], [rig_state, spread], [rig_state], api_visibility="private", queue=False)
    mode.change(lambda m: (gr.update(visible=m == "rig"),) * 2 + (gr.update(visible=m == "gan"), STEP2[m]), [mode],
                [rig_opts, rig_tools, gan_opts, step2], queue=False, api_visibility="private")
    render_btn.click(None, None, None, js=RENDERING_ON, queue=False)
    render_event = render_btn.click(
        h["render"], [photo, cx, cy, size, mode, scene, fpath, beats, cutoff, frames, fps, quality, seed, strength, gif,
                      blur, wings, rig_state, boxes],
        [live, video, downloads, status], api_name="animate", concurrency_limit=1, concurrency_id="render",
        show_progress="hidden",  # the stage bar above names the stage; gradio's overlay would hide the frames
    )
    render_event.then(None, None, None, js=RENDERING_OFF, queue=False)
    compare_event = compare_btn.click(h["compare"], [photo, cx, cy, size, scene, fpath, beats, blur, wings, seed, rig_state,
                                                          boxes],
                                      [rig_video, gan_video, compare_status], api_name="compare", concurrency_limit=1,
                                      concurrency_id="render", show_progress="hidden")
    cancel_btn.click(h["cancel"], None, None, cancels=[render_event, compare_event], queue=False, api_name="cancel")
    cancel_btn.click(None, None, None, js=RENDERING_OFF, queue=False)
    return AnimateTab(photo, render_btn, video)


# ================================================================== tab: Random birds


def as_photo(path: str, min_side: int = 256):
    """A gallery bird as an upload: small generators' birds are enlarged so the photo checks
    (at least 64 px) and the detector (trained on larger birds) accept them."""
    from PIL import Image

    img = Image.open(path).convert("RGB")
    if min(img.size) >= min_side:
        return img
    scale = min_side / min(img.size)
    return img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)


def build_random_tab(service, animate: AnimateTab, tabs: gr.Tabs) -> tuple[gr.State, gr.State]:
    """Returns (the gallery's seeds, its psi) for the similarity tab."""
    with gr.Row():
        seed = gr.Number(value=0, precision=0, minimum=0, label="First seed")
        count = gr.Slider(1, MAX_GALLERY, value=8, step=1, label="How many birds")
        psi = gr.Slider(0.0, 1.5, value=DEFAULT_PSI, step=0.05, label="Truncation psi", info="lower = more typical birds")
        go = gr.Button("Generate", variant="primary")
    gr.Markdown("Birds the generator draws from random seeds (no photo involved). **Click one to animate it** "
                "on the Animate tab.")
    gallery = gr.Gallery(label="Random birds", show_label=False, columns=8, height="auto", format="png",
                         object_fit="contain", interactive=False, elem_id="random-gallery")
    seeds_state, psi_state = gr.State([]), gr.State(DEFAULT_PSI)

    @friendly
    def generate(first, n, psi_):
        seeds = list(range(int(first), int(first) + int(n)))
        imgs = service.random_birds(seeds, psi=float(psi_))
        return [(im, f"seed {s}") for im, s in zip(imgs, seeds)], seeds, float(psi_)

    def send(items, evt: gr.SelectData):
        if not items or evt.index is None:
            raise gr.Error("Click one of the birds in the gallery.")
        item = items[evt.index]
        return as_photo(item[0] if isinstance(item, (tuple, list)) else item), gr.Tabs(selected="animate")

    go.click(generate, [seed, count, psi], [gallery, seeds_state, psi_state], api_name="random_birds",
             concurrency_limit=2, concurrency_id="light")
    gallery.select(send, [gallery], [animate.photo, tabs], api_visibility="private", queue=False)
    return seeds_state, psi_state


# ================================================================== tab: Latent similarity


def build_similarity_tab(service, gallery_seeds: gr.State, gallery_psi: gr.State) -> None:
    from birdanim.ui.plots import similarity_figure

    with gr.Row():
        seeds_text = gr.Textbox(value="0-7", label="Seeds", info="e.g. 0-7 or 3, 9, 12 (at most 16)")
        psi = gr.Slider(0.0, 1.5, value=DEFAULT_PSI, step=0.05, label="Truncation psi")
        use_gallery = gr.Checkbox(label="Use the birds of the Random-birds gallery instead")
        go = gr.Button("Compare", variant="primary")
    gr.Markdown(
        "How alike the generator's latent codes *w* are for these birds. Every *w* shares a large common part "
        "(the average bird), so the plain cosine is about 0.5 for any pair; the map shows the cosine **after "
        "subtracting the average w**: 0 (white) is unrelated, red pairs the generator places closer together "
        "(they tend to share looks), blue pairs further apart. Random seeds are nearly unrelated, so the colour "
        "scale stretches to the largest value off the diagonal (each bird with itself, 1).")
    heatmap = gr.Image(label="Similarity of the birds' w (average w subtracted)", show_label=False, type="numpy",
                       elem_id="similarity-map", interactive=False, format="png", height=600)
    table = gr.Dataframe(label="Similarity matrix", interactive=False)

    @friendly
    def compare(text, psi_, use_g, g_seeds, g_psi):
        if use_g:
            if not g_seeds:
                raise gr.Error("The gallery is empty: generate some birds in the Random-birds tab first.")
            seeds, psi_ = list(g_seeds)[:MAX_SIM_SEEDS], g_psi
        else:
            seeds = uh.parse_seeds(text, MAX_SIM_SEEDS)
        if len(seeds) < 2:
            raise gr.Error("Give at least two seeds to compare.")
        centred = float(psi_) > 0  # at psi 0 every w is the average w: nothing is left to compare
        sim, thumbs = service.similarity(seeds, psi=float(psi_), centred=centred)
        labels = [f"seed {s}" for s in seeds]
        fig = similarity_figure(np.asarray(sim), list(thumbs), labels, title=f"psi = {float(psi_):.2f}",
                                centred=centred)
        import pandas as pd

        table = pd.DataFrame(np.round(np.asarray(sim, dtype=float), 3), columns=labels)
        table.insert(0, "", labels)
        return fig, table

    go.click(compare, [seeds_text, psi, use_gallery, gallery_seeds, gallery_psi], [heatmap, table],
             api_name="similarity", concurrency_limit=2, concurrency_id="light")


# ================================================================== tab: Style mixing


def build_mixing_tab(service) -> None:
    num_ws = num_ws_of(service)
    with gr.Row():
        rows = gr.Textbox(value="0-3", label="Row seeds (give the coarse layers: pose, shape)")
        cols = gr.Textbox(value="10-13", label="Column seeds (give the fine layers: colours, texture)")
    with gr.Row():
        cutoff = gr.Slider(1, num_ws - 1, value=min(7, num_ws - 1), step=1, label="Cutoff layer")
        psi = gr.Slider(0.0, 1.5, value=DEFAULT_PSI, step=0.05, label="Truncation psi")
        go = gr.Button("Mix", variant="primary")
    gr.Markdown("Each cell mixes two generated birds: the **row's** seed gives the coarse layers (below the "
                "cutoff: pose and shape), the **column's** seed the fine layers (colour and texture). The source "
                "birds are on the top row and the left column. A lower cutoff hands more to the columns.")
    grid = gr.Image(label="Style-mixing grid", show_label=False, type="numpy", interactive=False, format="png",
                    elem_id="mixing-grid", height=640)

    @friendly
    def mix(r, c, k, psi_):
        from birdanim.ui.plots import mixing_figure

        rs, cs = uh.parse_seeds(r, MAX_MIX_SEEDS), uh.parse_seeds(c, MAX_MIX_SEEDS)
        grid_img = service.mixing_grid(rs, cs, cutoff=int(k), psi=float(psi_))
        return mixing_figure(grid_img, rs, cs, int(k), num_ws)

    go.click(mix, [rows, cols, cutoff, psi], [grid], api_name="mixing", concurrency_limit=2, concurrency_id="light")


# ================================================================== tab: About

ABOUT = """
### How it works
**Find the bird.** A YOLOv8 detector finds birds in your photo; the largest is chosen (you can pick
another bird or move the crop by hand).

**Engine 1, your bird's own wings (rig, the default).**
1. *Cut it out.* GrabCut, seeded by the detector's box and the bird's keypoints, separates the bird
   from its background; the spot where it sat is filled in from its surroundings.
2. *Rig it.* A small network finds 15 parts (beak, crown, eyes, nape, back, breast, belly, wings,
   legs, tail, throat); from them come the body's axis and the shoulders where the wings attach. You
   can move these joints before rendering.
3. *Give it wings.* A perched bird's folded wing is painted over with its body's colours and it
   borrows spread wings: the outline and feathers of a real wing of a bird in flight, worn in your
   bird's own colours (or, under Advanced, wings painted feather by feather). It levels its body to fly,
   keeps looking ahead and tucks its legs. A bird photographed in flight keeps its own wings.
4. *Beat them.* The body and the wings are triangle meshes bent by as-rigid-as-possible deformation
   through a wing-beat (a longer down-stroke, the wrist folding on the up-stroke, the body rising and
   falling against the wings). The bird hovers over its photo or crosses it, in a seamless loop.

**Engine 2, GAN style mixing (the original project's method).**
1. *Project it into the GAN.* A StyleGAN2-ADA-style generator trained on cropped bird photos has a
   latent space W+ (one 512-number vector per synthesis layer). An encoder gives a first guess and a
   short optimisation refines it until the generator draws a bird close to yours.
2. *Borrow a wing-beat.* *Target poses* (latents of a bird with its wings at different points of a
   beat) lend their coarse layers to your bird's latents, which keep the fine layers. The cutoff is
   the layer where the pose stops and your bird starts: layers below it (posture, wing shape) follow
   the wing-beat, layers from it up (colour, feathers) stay yours, so a lower cutoff keeps more of your
   bird and a higher one flaps harder.
3. *Interpolate and render* a smooth loop; ffmpeg writes an H.264 MP4. This generator saw few birds
   in flight (2.7% of its training photos), so its frames keep less of your bird than the rig engine.

### Your photos
Uploads and the videos made from them are used only to answer your request. The app deletes its
per-request files as soon as the result is handed over, and gradio's copies of uploads and results
are deleted at most about 20 minutes later (`delete_cache`). No other copy is kept, and no image is
logged.

**The videos are synthetic:** the rig engine moves your bird's own pixels, but its spread wings are
painted and its flight is made up; the GAN engine draws every frame with a neural network. Neither is
footage of your bird flying.

### Licences
- Code: MIT (this project).
- Training data: CUB-200-2011 (Caltech-UCSD Birds, research and non-commercial use only) and
  Kaggle BIRDS-525 (CC0). The generator, the keypoint model and the flight probe inherit CUB's
  research-only terms.
- Detector: Ultralytics YOLOv8 (AGPL-3.0), COCO-pretrained.
- Perceptual features: EfficientNet-Lite (Apache-2.0), ImageNet-pretrained.
"""


def model_card(weights: str | None) -> str:
    """The model card's numbers (weights/meta.json) and the card text (weights/README.md), if present."""
    from birdanim.checkpoint import CheckpointError, default_weights, load_meta, resolve

    src = weights or default_weights()
    parts = ["### The model", uh.model_card_table(load_meta(src))]
    try:
        card = resolve(src, "README.md").read_text(encoding="utf-8", errors="replace")
        parts.append(_strip_front_matter(card))
    except (CheckpointError, OSError):
        parts.append("_No model card text (`weights/README.md`) found._")
    return "\n\n".join(parts)


def _strip_front_matter(text: str) -> str:
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end != -1:
            return text[end + 4 :].lstrip()
    return text


def build_about_tab(weights: str | None) -> None:
    gr.Markdown(model_card(weights), elem_classes=["about-card"])
    gr.Markdown(ABOUT)


# ================================================================== the whole app


def build_demo(service, weights: str | None = None, examples: list[Path] | None = None) -> gr.Blocks:
    """The app's Blocks around `service` (a birdanim.service.Animator); not launched.

    weights: where the About tab reads the model card (None: $BIRDANIM_WEIGHTS or weights/);
    examples: example photos (None: assets/examples/).
    """
    cancels = CancelBoard()
    with gr.Blocks(title="birdanim: make a bird photo fly", delete_cache=DELETE_CACHE) as demo:
        gr.Markdown("## birdanim: upload a still photo of a bird, get back a video of it flying", elem_id="title")
        with gr.Tabs(selected="animate") as tabs:
            with gr.Tab("Animate", id="animate"):
                animate = build_animate_tab(service, cancels, example_photos() if examples is None else examples)
            with gr.Tab("Random birds", id="random"):
                seeds_state, psi_state = build_random_tab(service, animate, tabs)
            with gr.Tab("Latent similarity", id="similarity"):
                build_similarity_tab(service, seeds_state, psi_state)
            with gr.Tab("Style mixing", id="mixing"):
                build_mixing_tab(service)
            with gr.Tab("About", id="about"):
                build_about_tab(weights if weights is not None else getattr(service, "weights", None))
    return demo


def configure_queue(demo: gr.Blocks) -> gr.Blocks:
    """Renders run one at a time (2 cores); light tabs have their own concurrency group."""
    return demo.queue(default_concurrency_limit=2, max_size=QUEUE_SIZE)


def look() -> dict:
    """launch()'s theme and css (gradio 6 takes them there, not in Blocks): the Animate tab's output
    area and stage bar depend on the css, so tests that look at the page launch with these too."""
    return dict(theme=gr.themes.Soft(), css=CSS)


def server_address() -> tuple[str, int]:
    """127.0.0.1:7860 locally; all interfaces on a Hugging Face Space (SPACE_ID is set there)."""
    host = os.environ.get("GRADIO_SERVER_NAME") or ("0.0.0.0" if os.environ.get("SPACE_ID") else "127.0.0.1")
    return host, int(os.environ.get("GRADIO_SERVER_PORT") or 7860)


def use_examples_cache_for(service) -> None:
    """Keep the lazily cached example videos per generator: gradio's cache folder outlives restarts,
    and a video rendered by older weights must not be shown for new ones."""
    from birdanim.engines.gan.poses import sha256_file

    key = sha256_file(service.weights_file)[:16]
    os.environ.setdefault("GRADIO_EXAMPLES_CACHE", str(REPO / ".gradio" / "cached_examples" / key))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from birdanim.device import set_cpu_threads
    from birdanim.service import Animator

    set_cpu_threads()
    weights = os.environ.get("BIRDANIM_WEIGHTS") or None  # a folder or a Hugging Face repo id
    try:
        service = Animator(weights=weights)  # target poses: $BIRDANIM_POSES or assets/ (birdanim.engines.gan.poses)
    except BirdanimError as e:  # no weights yet, offline Hub id, ...: say so instead of a traceback
        raise SystemExit(f"birdanim app: cannot start: {e}\nSet BIRDANIM_WEIGHTS to a weights folder or a "
                         "Hugging Face repo id, or put the trained weights into weights/.") from None
    t0 = time.perf_counter()
    service.warmup()
    log.info("warm-up took %.1f s", time.perf_counter() - t0)
    use_examples_cache_for(service)
    demo = configure_queue(build_demo(service, weights))
    host, port = server_address()
    demo.launch(server_name=host, server_port=port, **look(), show_error=False, max_file_size=MAX_UPLOAD)


if __name__ == "__main__":
    main()
