"""The web demo's behaviour without a browser (tiny model): start, streamed answers, bad uploads,
restart. The Gradio app itself is driven in a real browser in test_web_browser.py."""

from __future__ import annotations

import pytest
from _serve_helpers import png_bytes, tiny_model, video_bytes

from videochat.chat import ChatSession, VisualCache
from videochat.serve.web import WebDemo, WebSettings

SETTINGS = WebSettings(max_new_tokens=16, seed=0, max_upload_mb=0.01)


@pytest.fixture(scope="module")
def model(fixtures_dir):
    return tiny_model(fixtures_dir)


@pytest.fixture
def demo(model):
    return WebDemo(model, SETTINGS)


def test_start_video_shows_sampled_frames_with_times(demo, tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(video_bytes((200, 40, 40), frames=12))
    key, gallery, status = demo.start(str(path), "video", 8)
    assert key is not None and status.startswith("Ready. The video contains 8 frames")
    assert len(gallery) == 8
    clip = demo.sessions.get(key).media[0]
    assert [caption for _, caption in gallery] == [f"{t:.1f} s" for t in clip.timestamps]
    image, _ = gallery[0]
    assert image.size == (28, 28)  # what the tiny model sees
    assert image.getpixel((20, 20))[0] > 150  # red survives un-normalisation


def test_answer_streams_and_matches_a_session(demo, model, tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(video_bytes((40, 40, 200)))
    key, _, _ = demo.start(str(path), "video", 8)
    updates = list(demo.ask(key, "What is happening?", [], beams=1, temperature=1.0))
    answers = [history[-1]["content"] for history, _ in updates]
    assert updates[-1][1] == "Done."
    assert len({a for a in answers if a}) > 1  # grew piece by piece
    session = ChatSession(model, cache=VisualCache())
    session.add_video(str(path), num_frames=8)
    options = {"do_sample": True, "temperature": 1.0, "top_p": 0.9, "num_beams": 1}
    expected = "".join(
        session.ask("What is happening?", stream=True, max_new_tokens=16, seed=0, **options)
    )
    assert answers[-1] == expected
    assert updates[-1][0][-2] == {"role": "user", "content": "What is happening?"}


def test_image_start_and_bad_uploads(demo, tmp_path):
    image = tmp_path / "pic.png"
    image.write_bytes(png_bytes((10, 200, 10)))
    key, gallery, status = demo.start(str(image), "image", 8)
    assert key is not None and [c for _, c in gallery] == ["image"]

    fake = tmp_path / "notes.mp4"
    fake.write_text("just some text, not a video")
    key, gallery, status = demo.start(str(fake), "video", 8)
    assert key is None and gallery == []
    assert status.startswith("notes.mp4: ") and str(tmp_path) not in status

    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * 20000)
    assert "over the 0.01 MB limit" in demo.start(str(big), "video", 8)[2]
    assert demo.start(None, "image", 8)[2] == "Upload an image first."


def test_ask_without_media_and_restart(demo, tmp_path):
    updates = list(demo.ask(None, "hello?", [], 1, 1.0))
    assert updates == [([], "Upload a video or an image and press Start chat first.")]
    path = tmp_path / "clip.mp4"
    path.write_bytes(video_bytes((0, 0, 0)))
    key, _, _ = demo.start(str(path), "video", 8)
    assert list(demo.ask(key, "   ", [], 1, 1.0))[-1][1] == "Type a question first."
    assert demo.restart(key) == (None, [], [], "Upload a video or an image to start.")
    assert demo.sessions.get(key) is None
