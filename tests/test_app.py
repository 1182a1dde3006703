"""The Gradio app: builds without launching; served on 127.0.0.1 and driven through gradio_client.

All of them run the real birdanim.service.Animator on a tiny 32 px generator saved to disk
(tests/_app_tiny.py); only the detector is scripted, so that "no bird" and "many birds" can be asked
for. The slow test at the bottom uses the real YOLOv8 detector as well.
"""

from __future__ import annotations

import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gradio as gr
import gradio_client

import app
from _anim_tiny import one_thread  # noqa: F401 (autouse fixture: tiny models run faster on one thread)
from _app_tiny import bird_photo, tiny_animator
from conftest import needs_detector, needs_shared
from birdanim.stages.detect import Box
from birdanim.stages.video import probe

ANIMATE_DEFAULTS = dict(cx=50, cy=50, size=40, mode="gan", scene="crop", path="hover", beats=3.0, cutoff=3, frames=16,
                        fps=8, quality="fast", seed=0, strength=1.0, gif=False, blur=2.0, wings="real")


def animate_args(photo, **kw):
    a = {**ANIMATE_DEFAULTS, **kw}
    return (photo, a["cx"], a["cy"], a["size"], a["mode"], a["scene"], a["path"], a["beats"], a["cutoff"], a["frames"],
            a["fps"], a["quality"], a["seed"], a["strength"], a["gif"], a["blur"], a["wings"])


# ------------------------------------------------------------------ building


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    return tiny_animator(tmp_path_factory.mktemp("weights"))


def test_build_demo_does_not_launch_and_has_every_tab_and_endpoint(service):
    demo = app.build_demo(service)
    assert not demo.is_running
    api_names = {fn.api_name for fn in demo.fns.values() if fn.api_name}
    assert {"detect", "animate", "cancel", "random_birds", "similarity", "mixing"} <= api_names
    tab_ids = {b.id for b in demo.blocks.values() if isinstance(b, gr.Tab)}
    assert tab_ids == {"animate", "random", "similarity", "mixing", "about"}
    assert demo.delete_cache == app.DELETE_CACHE


def test_the_animate_api_takes_the_documented_inputs(service):
    demo = app.build_demo(service)
    fn = next(f for f in demo.fns.values() if f.api_name == "animate")
    api_inputs = [c for c in fn.inputs if not isinstance(c, gr.State)]  # session state is not an api input
    assert len(api_inputs) == len(app.ANIMATE_API) == len(animate_args("photo.png"))


def test_render_runs_alone_and_light_tabs_have_their_own_group(service):
    demo = app.configure_queue(app.build_demo(service))
    by_name = {fn.api_name: fn for fn in demo.fns.values() if fn.api_name}
    assert by_name["animate"].concurrency_limit == 1
    assert by_name["animate"].concurrency_id == "render"
    for name in ("detect", "random_birds", "similarity", "mixing"):
        assert by_name[name].concurrency_id == "light"
    assert demo._queue.max_size == app.QUEUE_SIZE


def test_cutoff_slider_spans_the_generators_layers(service):
    demo = app.build_demo(service)
    cutoffs = [b for b in demo.blocks.values() if isinstance(b, gr.Slider) and "utoff" in (b.label or "")]
    assert len(cutoffs) == 2 and all(s.minimum == 1 and s.maximum == service.num_ws - 1 for s in cutoffs)


def test_about_tab_reads_the_model_card(tmp_path):
    (tmp_path / "meta.json").write_text('{"kimg": 812.0, "metrics": {"fd_lite2": 41.5}}')
    (tmp_path / "README.md").write_text("---\nlicense: other\n---\n# Card\nTrained for 30 CPU-hours.\n")
    text = app.model_card(str(tmp_path))
    assert "| Images seen (thousands) | 812 |" in text and "| fd_lite2 | 41.5 |" in text
    assert "Trained for 30 CPU-hours." in text and "license: other" not in text
    assert "_No model card text" in app.model_card(str(tmp_path / "missing"))


def test_an_expired_upload_asks_for_the_photo_again(service, tmp_path):
    with pytest.raises(gr.Error, match="upload it again"):
        app.load_upload(service, str(tmp_path / "deleted_by_the_cache.png"))


# ------------------------------------------------------------------ served on 127.0.0.1


@pytest.fixture(scope="module")
def served(service):
    demo = app.configure_queue(app.build_demo(service))
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, quiet=True,
                            show_error=False, max_file_size=app.MAX_UPLOAD)  # as app.py's main() launches it
    client = gradio_client.Client(url, verbose=False)
    yield service, client, url
    demo.close()


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    d = tmp_path_factory.mktemp("photos")
    return make_bad_and_odd_photos(d)


def make_bad_and_odd_photos(d: Path) -> dict[str, Path]:
    """Uploads a user might send: bad ones the app must refuse clearly, odd ones it must accept."""
    ok = bird_photo(d / "ok.png")
    rgb = np.asarray(Image.open(ok).convert("RGB"))
    (d / "notes.txt").write_text("this is not an image")
    (d / "empty.png").write_bytes(b"")
    (d / "corrupt.jpg").write_bytes(_jpeg_bytes(rgb)[:300])  # cut off after the header
    Image.fromarray(rgb[:20, :20]).save(d / "tiny.png")
    Image.fromarray(rgb).convert("RGBA").save(d / "rgba.png")
    Image.fromarray(rgb).convert("CMYK").save(d / "cmyk.jpg")
    Image.fromarray((rgb[..., 0].astype(np.uint16) * 257)).save(d / "grey16.png")
    exif = Image.Exif()
    exif[274] = 6  # rotate 90 degrees on display
    Image.fromarray(rgb).save(d / "rotated.jpg", exif=exif)
    return {p.stem: p for p in d.iterdir()}


def _jpeg_bytes(rgb: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG")
    return buf.getvalue()


def _huge_png(path: Path, w: int, h: int) -> None:
    """A valid w x h greyscale PNG of zeros, streamed (never held in memory; ~0.4 MB on disk)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    z = zlib.compressobj(9)
    row = bytes(w + 1)  # filter byte 0 + w zero pixels
    idat = b"".join(z.compress(row) for _ in range(h)) + z.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def detect(client, path):
    return client.predict(gradio_client.handle_file(str(path)), api_name="/detect")


# The bad-input corpus: each upload a user might send, through the served app (detect endpoint). Bad ones get
# a message in the user's words, with its title, one log line and no traceback; odd but valid ones are
# accepted; the app keeps serving after each. Files are made in tmp_path (the 12000x12000 PNG is streamed
# zeros, 0.1 MB on disk; the 50 MB upload is a small JPEG followed by 51 MB of zeros).
BOXES_3 = [Box(10, 10, 110, 90, 0.9), Box(200, 100, 260, 160, 0.8), Box(0, 150, 40, 190, 0.5)]


def _corpus_file(kind: str, d: Path, ok: Path) -> Path:
    rgb = np.asarray(Image.open(ok).convert("RGB"))
    p = d / {"text": "notes.jpg", "empty": "empty.png", "1x1": "dot.png", "12000x12000": "huge.png",
             "corrupt": "cut.jpg", "rgba": "rgba.png", "cmyk": "cmyk.jpg", "grey16": "grey16.png",
             "50MB": "big.jpg"}.get(kind, "photo.png")
    if kind == "text":
        p.write_text("a text file renamed to .jpg")
    elif kind == "empty":
        p.write_bytes(b"")
    elif kind == "1x1":
        Image.new("RGB", (1, 1), (200, 10, 10)).save(p)
    elif kind == "12000x12000":
        _huge_png(p, 12000, 12000)
    elif kind == "corrupt":
        p.write_bytes(_jpeg_bytes(rgb)[:300])
    elif kind == "rgba":
        Image.fromarray(rgb).convert("RGBA").save(p)
    elif kind == "cmyk":
        Image.fromarray(rgb).convert("CMYK").save(p)
    elif kind == "grey16":
        Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(p)
    elif kind == "50MB":
        p.write_bytes(_jpeg_bytes(rgb) + bytes(51 * 2**20))  # a valid JPEG if it got through
    else:  # "no bird", "several birds": a plain photo; the scripted detector decides
        p.write_bytes(ok.read_bytes())
    return p


@pytest.mark.parametrize("kind, boxes, expected", [
    ("text", None, ("Not a usable image", r"not an image file that can be read: upload a photo \(JPEG, PNG")),
    ("empty", None, ("Not a usable image", "empty")),
    ("1x1", None, ("Not a usable image", "only 1x1 pixels: a bird photo needs at least 64 pixels on each side")),
    ("12000x12000", None, ("Not a usable image", r"12000x12000 pixels \(144 megapixels\), is larger than the "
                                                 "50-megapixel limit")),
    ("corrupt", None, ("Not a usable image", "not an image file|truncated or corrupt")),  # cut after 300 bytes
    ("50MB", None, "exceeds the maximum file size of 52428800 bytes"),
    ("rgba", None, (50.0, 50.0, 40.0)),
    ("cmyk", None, (50.0, 50.0, 40.0)),
    ("grey16", None, (50.0, 50.0, 40.0)),
    ("no bird", [], (50.0, 50.0, 75.0)),  # a centred crop, no choice shown
    # the largest bird (100 px wide at x 10..110, y 10..90) in the 320x240 photo: centre 18.75 %, 20.8 %, size 100/320
    ("several birds", BOXES_3, (pytest.approx(18.8, abs=0.05), pytest.approx(20.8, abs=0.05), pytest.approx(31.2, abs=0.1))),
])
def test_upload_corpus_through_the_served_app(served, photos, tmp_path, capfd, caplog, kind, boxes, expected):
    import logging

    import httpx

    service, client, url = served
    path = _corpus_file(kind, tmp_path, photos["ok"])
    capfd.readouterr()
    caplog.set_level(logging.INFO, logger="birdanim.app")
    try:
        service.detector.boxes = boxes
        if isinstance(expected, tuple) and isinstance(expected[0], str):  # a bad upload: (title, message)
            title, message = expected
            with pytest.raises(gradio_client.exceptions.AppError, match=message) as e:
                detect(client, path)
            assert e.value.title == title and str(e.value.message).startswith(f"<strong>{title}.</strong>")
            assert "Traceback" not in capfd.readouterr().err, "an expected user error printed a traceback"
            lines = [r for r in caplog.records if r.name == "birdanim.app"]
            assert len(lines) == 1 and "user error" in lines[0].getMessage() and lines[0].exc_info is None
        elif isinstance(expected, str):  # too large to upload: the client refuses, and so does the server
            with pytest.raises(ValueError, match=expected):
                detect(client, path)
            with path.open("rb") as f:
                r = httpx.post(url.rstrip("/") + "/gradio_api/upload", files={"files": (path.name, f, "image/jpeg")},
                               timeout=120)
            assert r.status_code == 413 and "52428800" in r.text
        else:  # accepted
            dropdown, cx, cy, size, view = detect(client, path)
            assert (cx, cy, size) == expected
            assert Image.open(view).size in ((512, 384), (384, 512))  # the photo at the rig step's size, box drawn
            assert dropdown["visible"] is (kind == "several birds")
            if kind == "several birds":
                assert len(dropdown["choices"]) == 3
    finally:
        service.detector.boxes = None
    assert detect(client, photos["ok"])[1:4] == (50.0, 50.0, 40.0)  # the next request is served normally


def test_preview_frames_are_new_files_never_rewritten(tmp_path):
    """The broken "Frames as they render" preview: gradio rewrote <cache>/<hash>/image.webp in place each time
    the same numpy frame was sent again, while the browser fetched it. Now every new frame is a new file
    and a frame sent again is the same, untouched file."""
    preview = app.PreviewFiles(tmp_path)
    a, b = np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 200, np.uint8)
    assert preview(None) is None
    first = preview(a)
    stamp = Path(first).stat().st_mtime_ns
    time.sleep(0.01)
    assert preview(a) == first and preview(None) == first and Path(first).stat().st_mtime_ns == stamp
    second = preview(b)
    assert second != first and np.array_equal(np.asarray(Image.open(second)), b)


def test_rotated_photo_is_upright_before_detection(served, photos):
    service, client, _ = served
    service.detector.seen.clear()
    detect(client, photos["rotated"])
    assert service.detector.seen == [(240, 320)]  # stored 320x240 with EXIF orientation 6


def test_animate_returns_an_h264_mp4_and_gif_and_cleans_its_folder(served, photos):
    _, client, _ = served
    before = set(app.WORK_ROOT.iterdir()) if app.WORK_ROOT.exists() else set()
    upload = gradio_client.handle_file(str(photos["ok"]))
    preview, video, files, status = client.predict(*animate_args(upload, gif=True), api_name="/animate")
    mp4 = video["video"] if isinstance(video, dict) else video
    info = probe(mp4)
    assert (info["codec"], info["pix_fmt"], info["frames"], info["fps"]) == ("h264", "yuv420p", 16, 8.0)
    assert sorted(Path(f).suffix for f in files) == [".gif", ".mp4"]
    assert set(app.WORK_ROOT.iterdir()) <= before  # the request's own folder is gone
    assert "Done: 16 frames" in status


def test_in_scene_video_has_the_photos_size(served, photos):
    _, client, _ = served
    upload = gradio_client.handle_file(str(photos["ok"]))
    _, video, _, _ = client.predict(*animate_args(upload, frames=6, scene="photo"), api_name="/animate")
    info = probe(video["video"] if isinstance(video, dict) else video)
    assert (info["width"], info["height"], info["frames"]) == (320, 240, 6)  # the bird pasted into the photo


def test_animate_without_a_photo_says_so(served):
    _, client, _ = served
    with pytest.raises(gradio_client.exceptions.AppError, match="Upload a photo"):
        client.predict(*animate_args(None), api_name="/animate")


def test_cancel_stops_the_render_thread(served, photos):
    service, client, _ = served
    batches = []

    def slow_counting_animate(*a, progress=None, **k):
        def p(stage, fraction, frame):
            if stage == "render":
                batches.append(fraction)
                time.sleep(0.15)  # 600 frames / 8 per batch = 75 batches: ~11 s if not cancelled
            progress(stage, fraction, frame)
        return type(service).animate(service, *a, progress=p, **k)

    service.animate = slow_counting_animate
    try:
        job = client.submit(*animate_args(gradio_client.handle_file(str(photos["ok"])), frames=600),
                            api_name="/animate")
        t0 = time.monotonic()
        while len(batches) < 3 and time.monotonic() - t0 < 60:
            time.sleep(0.05)
        assert batches, "the render never started"
        client.predict(api_name="/cancel")
        time.sleep(1.0)
        n = len(batches)
        time.sleep(1.0)
        assert len(batches) == n < 75  # stopped, well before the end
        assert not job.status().success
    finally:
        del service.animate
    state = detect(client, photos["ok"])  # still serving
    assert state[1] == 50.0


def test_light_tabs(served):
    _, client, _ = served
    gallery = client.predict(3, 4, 0.7, api_name="/random_birds")
    assert [g["caption"] for g in gallery] == ["seed 3", "seed 4", "seed 5", "seed 6"]
    heatmap, table = client.predict("0-4", 0.7, False, api_name="/similarity")
    data = np.array([row[1:] for row in table["data"]], dtype=float)
    assert data.shape == (5, 5) and np.allclose(np.diag(data), 1.0, atol=1e-3) and np.allclose(data, data.T)
    assert Image.open(heatmap).size[0] > 300
    grid = Image.open(client.predict("0-1", "5-7", 3, 0.7, api_name="/mixing"))
    assert grid.size[0] > 4 * 32 and grid.size[1] > 3 * 32  # the grid (a header row and column) with its labels
    with pytest.raises(gradio_client.exceptions.AppError, match="(?i)cannot read"):
        client.predict("zero-seven", 0.7, False, api_name="/similarity")


@pytest.mark.slow
def test_uploads_and_results_are_deleted_from_gradios_cache(service, monkeypatch, tmp_path):
    """What the About tab promises: gradio's copies of uploads and results do not stay.

    Every file the server writes into its cache during the requests must be gone soon after
    (delete_cache shortened to 10 s here; the app uses 15 minutes).
    """
    import threading

    monkeypatch.setattr(app, "DELETE_CACHE", (1, 10))
    demo = app.configure_queue(app.build_demo(service))
    cache = Path(demo.GRADIO_CACHE)
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, quiet=True)
    t0 = time.time() - 0.01

    def new_files():
        return {f for f in cache.rglob("*") if f.is_file() and f.stat().st_mtime >= t0}

    seen, done = set(), threading.Event()

    def watch():  # every file that appears in the cache, however briefly
        while not done.is_set():
            seen.update(new_files())
            done.wait(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        client = gradio_client.Client(url, verbose=False, download_files=str(tmp_path / "client"))
        photo = bird_photo(tmp_path / "mine.png")
        client.predict(*animate_args(gradio_client.handle_file(str(photo)), frames=4, gif=True), api_name="/animate")
        client.predict(0, 2, 0.7, api_name="/random_birds")
        time.sleep(0.3)
        done.set()
        watcher.join()
        assert {"mine.png", "bird.mp4", "bird.gif"} <= {f.name for f in seen}  # upload and results were cached
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and new_files():
            time.sleep(0.25)
        assert new_files() == set()
    finally:
        done.set()
        demo.close()


@pytest.mark.slow
def test_end_to_end_real_bird_through_the_real_detector(tmp_path):
    """A real bird photo -> YOLOv8 finds it -> the app renders an H.264 MP4 (tiny generator)."""
    import zipfile

    test_zip = needs_shared("data", "birds256", "test.zip")
    needs_detector()
    service = tiny_animator(tmp_path / "weights", detector="auto")
    assert service.detector is not None, f"the shared detector is there but did not load: {service.detector_error}"
    with zipfile.ZipFile(test_zip) as z:  # a real photo, kept in tmp_path only
        name = sorted(z.namelist())[0]
        photo = tmp_path / name
        photo.write_bytes(z.read(name))
    demo = app.configure_queue(app.build_demo(service))
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, quiet=True)
    try:
        client = gradio_client.Client(url, verbose=False, download_files=str(tmp_path / "client"))
        upload = gradio_client.handle_file(str(photo))
        dropdown, cx, cy, size, crop = client.predict(upload, api_name="/detect")
        assert dropdown["choices"], "the detector found no bird in a training-style bird crop"
        assert size < 100.0  # a bird box, not the whole-photo fallback
        _, video, files, status = client.predict(*animate_args(upload, cx=cx, cy=cy, size=size, frames=48, fps=24,
                                                       gif=True), api_name="/animate")
        info = probe(video["video"] if isinstance(video, dict) else video)
        assert (info["codec"], info["pix_fmt"], info["frames"], info["fps"]) == ("h264", "yuv420p", 48, 24.0)
        assert info["faststart"] and "Synthetic" in (info["comment"] or "")
        assert [Path(f).suffix for f in files] == [".mp4", ".gif"]
    finally:
        demo.close()


def test_similarity_of_the_gallerys_birds(served):
    _, client, _ = served
    with pytest.raises(gradio_client.exceptions.AppError, match="gallery is empty"):
        gradio_client.Client(served[2], verbose=False).predict("0-1", 0.7, True, api_name="/similarity")
    client.predict(20, 3, 0.5, api_name="/random_birds")  # this session's gallery: seeds 20, 21, 22
    _, table = client.predict("0-7", 0.7, True, api_name="/similarity")
    assert table["headers"][1:] == ["seed 20", "seed 21", "seed 22"]


# ------------------------------------------------------------------ the rig step and Compare


def test_the_rig_step_draws_the_rig_and_a_click_moves_a_joint_that_reaches_the_render(service, photos):
    from birdanim.engines.rig.rig import Rig
    from birdanim.ui.jobs import CancelBoard

    h = app.animate_handlers(service, CancelBoard())
    path = str(photos["ok"])  # 320x240: the rig step works at 512x384 (scale 1.6)
    view, state, hint, spread = h["make_rig"](path, 50, 50, 40, [], "beak")
    assert view.shape == (384, 512, 3) and state["s"] == pytest.approx(1.6) and "joints" in hint
    view2, state2 = h["on_click"](state, "beak", gr.SelectData(None, {"index": [160, 80], "value": None}))
    rig = Rig.from_json(state2["rig"])
    assert rig.beak == pytest.approx((100.0, 50.0)) and rig.source == "user"  # in the uploaded photo's pixels
    assert np.abs(view2.astype(int) - view.astype(int)).sum() > 0
    assert Rig.from_json(h["on_reset"](state2, "beak")[1]["rig"]).beak == Rig.from_json(state["rig"]).beak

    seen = []

    def spy(*a, rig=None, **k):
        seen.append(rig)
        return type(service).animate(service, *a, rig=rig, **k)

    service.animate = spy
    try:
        args = animate_args(path, mode="rig", scene="sky", frames=4)
        for _ in h["render"](*args, state2, [], None, progress=lambda *a, **k: None):
            pass
        for _ in h["render"](*animate_args(path, mode="rig", scene="sky", frames=4, cx=40), state2, [], None,
                             progress=lambda *a, **k: None):
            pass
    finally:
        del service.animate
    assert seen[0] is not None and seen[0].beak == pytest.approx((100.0, 50.0))  # the edited rig was used
    assert seen[1] is None  # another crop: the rig was made for a different cut-out, the engine estimates one


def test_compare_renders_both_engines(served, photos):
    _, client, _ = served
    upload = gradio_client.handle_file(str(photos["ok"]))
    rig_video, gan_video, status = client.predict(upload, 50, 50, 40, "sky", "hover", 3.0, 2.0, "real", 0, api_name="/compare")
    for v in (rig_video, gan_video):
        info = probe(v["video"] if isinstance(v, dict) else v)
        assert (info["codec"], info["frames"]) == ("h264", app.COMPARE_FRAMES)
    assert "Done" in status
