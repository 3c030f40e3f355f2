"""The Gradio demo in a real headless Chromium (Playwright, system /usr/bin/chromium): upload a
generated video, start, ask, watch the answer stream in, screenshot. Also: what the server refuses
to serve. The server is started and stopped here."""

from __future__ import annotations

import os

import httpx
import pytest
from _serve_helpers import tiny_model, video_bytes

from videochat.chat import ChatSession, VisualCache
from videochat.serve.runner import free_port
from videochat.serve.web import WebSettings, build_demo, launch

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SETTINGS = WebSettings(max_new_tokens=24, seed=0)
QUESTION = "What is happening?"


@pytest.fixture(scope="module")
def model(fixtures_dir):
    return tiny_model(fixtures_dir)


@pytest.fixture(scope="module")
def web(model):
    os.environ["GRADIO_ALLOWED_PATHS"] = "/"  # hostile environment: must be ignored
    demo = build_demo(model, SETTINGS)
    port = free_port()
    launch(demo, "127.0.0.1", port, SETTINGS, block=False)
    yield f"http://127.0.0.1:{port}"
    demo.close()
    os.environ.pop("GRADIO_ALLOWED_PATHS", None)


def test_serves_no_files_outside_its_uploads(web, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    assert httpx.get(web + "/").status_code == 200
    for target in (secret, "/etc/passwd", __file__):
        r = httpx.get(f"{web}/gradio_api/file={target}")
        assert r.status_code in (403, 404), (target, r.status_code)
        assert "TOP-SECRET-CONTENT" not in r.text and "root:" not in r.text


def _expected_answer(model, path) -> str:
    session = ChatSession(model, cache=VisualCache())
    session.add_video(str(path), num_frames=8)
    options = {"do_sample": True, "temperature": 1.0, "top_p": 0.9, "num_beams": 1, "seed": 0}
    return "".join(session.ask(QUESTION, stream=True, max_new_tokens=24, **options))


# Records every text the last assistant bubble shows, to see the answer arrive in pieces.
_OBSERVE = """() => {
  window.__seen = [];
  const chat = document.querySelector('#chatbot');
  new MutationObserver(() => {
    const bots = chat.querySelectorAll('[data-testid="bot"]');
    if (bots.length) window.__seen.push(bots[bots.length - 1].innerText);
  }).observe(chat, {subtree: true, childList: true, characterData: true});
}"""


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed")
def test_upload_ask_and_see_the_streamed_answer(web, model, tmp_path):
    from playwright.sync_api import sync_playwright

    clip = tmp_path / "clip.mp4"
    clip.write_bytes(video_bytes((220, 20, 20), frames=12, size=64))
    bad = tmp_path / "notes.mp4"
    bad.write_text("plain text, not a video")
    expected = _expected_answer(model, clip)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        page.goto(web)
        page.wait_for_selector("#start-video", timeout=60_000)
        status = page.locator("#status")

        page.locator('input[type="file"]').first.set_input_files(str(bad))
        page.click("#start-video")
        page.wait_for_function(
            "document.querySelector('#status').innerText.includes('notes.mp4')", timeout=60_000
        )
        assert "Traceback" not in status.inner_text()
        page.click("#restart")

        page.wait_for_selector('input[type="file"]', state="attached", timeout=30_000)
        page.locator('input[type="file"]').first.set_input_files(str(clip))
        page.wait_for_selector("video", timeout=30_000)
        page.click("#start-video")
        page.wait_for_function(
            "document.querySelector('#status').innerText.includes('Ready')", timeout=60_000
        )
        assert "The video contains 8 frames" in status.inner_text()
        assert page.get_by_text("0.0 s").count() >= 1  # gallery captions: frame times

        page.evaluate(_OBSERVE)
        page.fill("#question textarea", QUESTION)
        page.click("#send")
        page.wait_for_function(
            "document.querySelector('#status').innerText.includes('Done')", timeout=60_000
        )
        bots = page.locator('#chatbot [data-testid="bot"]')
        final = bots.last.inner_text()
        seen = [s for s in page.evaluate("window.__seen") if s.strip()]
        page.screenshot(path=str(tmp_path / "web-demo.png"), full_page=True)
        browser.close()
    assert "".join(final.split()) == "".join(expected.split())
    assert len(set(seen)) > 1  # the bubble grew while the answer streamed
    assert (tmp_path / "web-demo.png").stat().st_size > 10_000
