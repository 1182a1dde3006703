"""The app in a real browser: Debian's Chromium driven by Playwright (its own browser download does
not work offline). Uploads a photo, clicks Render, waits for the video, saves screenshots.

Screenshots go to $BIRDANIM_ARTIFACTS/browser or out/browser/ in the repository (git-ignored).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import needs_chromium

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("BIRDANIM_ARTIFACTS", REPO / "out")) / "browser"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    needs_chromium()  # before the slow set-up: skips (fails under CI=true) when Chromium is missing
    mp = pytest.MonkeyPatch()
    mp.setenv("GRADIO_EXAMPLES_CACHE", str(tmp_path_factory.mktemp("example_cache")))  # no stale cache
    import app
    from _app_tiny import tiny_animator

    weights = tmp_path_factory.mktemp("weights")
    service = tiny_animator(weights)  # the real service on a 32 px generator (the rig engine is real)
    examples = app.example_photos()  # the shipped real photos (assets/examples/)
    demo = app.configure_queue(app.build_demo(service, examples=examples))
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, quiet=True)
    yield url
    demo.close()
    mp.undo()


@pytest.fixture(scope="module")
def page(app_url):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=needs_chromium(), args=CHROMIUM_ARGS, headless=True)
        pg = browser.new_page(viewport={"width": 1280, "height": 1000})
        pg.set_default_timeout(60_000)
        pg.goto(app_url)
        pg.wait_for_selector("#render-btn")
        yield pg
        browser.close()


def upload(page, path: Path) -> None:
    page.locator("#photo input[type=file]").set_input_files(str(path))


def test_bad_upload_shows_a_message(page, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    upload(page, bad)
    toast = page.get_by_text("not an image file", exact=False).first
    toast.wait_for(state="visible", timeout=30_000)
    # ... and the unusable file is taken out again: no broken image in the input, no "Error" badge
    # left on the crop preview, the upload area ready for the next photo.
    page.locator("#photo img").wait_for(state="detached", timeout=30_000)
    page.locator("#photo input[type=file]").wait_for(state="attached", timeout=30_000)
    assert page.locator("#crop-preview").get_by_text("Error", exact=True).count() == 0
    page.screenshot(path=str(ARTIFACTS / "1_bad_upload.png"), full_page=True)
    page.reload()
    page.wait_for_selector("#render-btn")


def test_upload_render_and_watch_the_video(page, tmp_path):
    from _app_tiny import bird_photo

    photo = bird_photo(tmp_path / "bird.png", size=(480, 360))
    upload(page, photo)
    page.locator("#crop-preview img").wait_for(state="visible")  # detection done, crop shown
    page.screenshot(path=str(ARTIFACTS / "2_uploaded.png"), full_page=True)
    frames = page.locator("#frames input[type=number]")
    frames.fill("12")
    frames.press("Enter")
    page.click("#render-btn")
    video = page.locator("#result-video video")
    video.wait_for(state="attached", timeout=120_000)
    page.wait_for_function(
        "() => { const v = document.querySelector('#result-video video');"
        " return v && v.readyState >= 2 && v.videoWidth > 0; }", timeout=60_000)
    size = page.evaluate("() => { const v = document.querySelector('#result-video video');"
                         " return [v.videoWidth, v.videoHeight, v.duration]; }")
    page.screenshot(path=str(ARTIFACTS / "3_rendered.png"), full_page=True)
    assert size[0] > 0 and size[1] > 0 and size[2] > 0  # the browser decoded the H.264 stream
    assert "Done: 12 frames" in page.locator("#render-status").inner_text()


def test_gallery_pick_goes_to_the_animate_tab(page):
    page.get_by_role("tab", name="Random birds").click()
    page.get_by_role("button", name="Generate").click()
    first = page.locator("#random-gallery button.thumbnail-item, #random-gallery .thumbnail-item").first
    first.wait_for(state="visible")
    page.screenshot(path=str(ARTIFACTS / "4_gallery.png"), full_page=True)
    before = page.locator("#crop-preview img").get_attribute("src")
    first.click()
    page.get_by_role("tab", name="Animate", selected=True).wait_for(timeout=30_000)
    page.wait_for_function(  # a new crop preview: the picked bird went through detection
        "(old) => { const i = document.querySelector('#crop-preview img'); return i && i.src && i.src !== old; }",
        arg=before, timeout=60_000)
    assert page.get_by_text("Error", exact=True).count() == 0
    page.screenshot(path=str(ARTIFACTS / "5_sent_to_animate.png"), full_page=True)



def test_example_renders_and_is_cached(page):
    page.get_by_role("tab", name="Animate").click()
    page.locator("#result-video video").first.wait_for(state="attached")  # left by the earlier test
    old = page.evaluate("() => document.querySelector('#result-video video').src")
    page.get_by_text("Try an example", exact=False).scroll_into_view_if_needed()
    page.locator("button.gallery-item").first.click()
    page.wait_for_function(
        "(old) => { const v = document.querySelector('#result-video video'); return v && v.src && v.src !== old; }",
        arg=old, timeout=120_000)
    page.screenshot(path=str(ARTIFACTS / "6_example.png"), full_page=True)
