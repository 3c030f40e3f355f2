"""End to end with the real tiny random model behind a real uvicorn server on loopback, driven by
the official `openai` client: answers must equal a ChatSession's, streamed or not, alone or
concurrent; media errors come back as clean OpenAI errors."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
from _serve_helpers import data_url, png_bytes, tiny_model, video_bytes

from videochat.chat import ChatSession, VisualCache
from videochat.serve.api import create_app
from videochat.serve.backend import ChatBackend
from videochat.serve.runner import serve_in_thread
from videochat.serve.settings import ServeSettings

COLORS = [(220, 20, 20), (20, 200, 20), (20, 20, 220), (230, 230, 30)]
GREEDY = {"temperature": 0, "max_tokens": 12}


@pytest.fixture(scope="module")
def model(fixtures_dir):
    return tiny_model(fixtures_dir)


@pytest.fixture(scope="module")
def server(model, tmp_path_factory):
    media_root = tmp_path_factory.mktemp("media")
    (media_root / "clip.mp4").write_bytes(video_bytes(COLORS[0]))
    settings = ServeSettings(
        api_key="test-key", allowed_local_media_path=media_root, max_pixels=64 * 64, max_queue=8
    )
    app = create_app(settings, lambda: ChatBackend(model, settings, cache=VisualCache()))
    with serve_in_thread(app) as base_url:
        assert app.state.engine.wait_ready(60)
        yield app, base_url, media_root


@pytest.fixture(scope="module")
def client(server):
    _, base_url, _ = server
    return openai.OpenAI(base_url=base_url + "/v1", api_key="test-key", max_retries=0)


def _expected(model, question, video=None, image=None, turns=(), num_frames=8, max_new=12):
    """The answer a ChatSession streams directly (greedy), for comparison (the server streams
    internally, also for non-streaming requests)."""
    session = ChatSession(model, cache=VisualCache())
    if video is not None:
        session.add_video(video, num_frames=num_frames)
    if image is not None:
        session.add_image(image)
    for q, a in turns:
        session.add_turn(q, a)
    return "".join(session.ask(question, stream=True, do_sample=False, max_new_tokens=max_new))


def _video_message(video: bytes, text: str) -> dict:
    return {
        "role": "user",
        "content": [
            {"type": "video_url", "video_url": {"url": data_url(video, "video/mp4")}},
            {"type": "text", "text": text},
        ],
    }


def test_health_and_models(server, client):
    _, base_url, _ = server
    assert httpx.get(base_url + "/health").json()["status"] == "ok"
    assert [m.id for m in client.models.list()] == ["videochat"]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=base_url + "/v1", api_key="wrong", max_retries=0).models.list()


def test_openai_client_non_streaming_and_streaming(model, client):
    video = video_bytes(COLORS[1])
    expected = _expected(model, "What is happening?", video=video)
    messages = [_video_message(video, "What is happening?")]
    reply = client.chat.completions.create(model="videochat", messages=messages, **GREEDY)
    assert reply.choices[0].message.content == expected
    assert reply.usage.completion_tokens > 0 and reply.usage.prompt_tokens > 0

    stream = client.chat.completions.create(
        model="videochat", messages=messages, stream=True, **GREEDY
    )
    chunks = list(stream)
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert "".join(pieces) == expected
    assert sum(1 for p in pieces if p) > 1  # really streamed in pieces
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_history_image_and_num_frames_are_replayed(model, client):
    video, image = video_bytes(COLORS[2]), png_bytes(COLORS[3])
    turns = [("What is happening?", "a blue square moves")]
    expected = _expected(
        model, "And the colour?", video=video, image=image, turns=turns, num_frames=4
    )
    messages = [
        _video_message(video, "What is happening?"),
        {"role": "assistant", "content": "a blue square moves"},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": data_url(image, "image/png")}},
                {"type": "text", "text": "And the colour?"},
            ],
        },
    ]
    reply = client.chat.completions.create(
        model="videochat", messages=messages, extra_body={"num_frames": 4}, **GREEDY
    )
    assert reply.choices[0].message.content == expected


def test_concurrent_requests_match_sequential(model, client):
    videos = [video_bytes(c, frames=6 + i) for i, c in enumerate(COLORS)]
    questions = [f"Describe clip {i}." for i in range(len(videos))]

    def ask(i: int) -> str:
        messages = [_video_message(videos[i], questions[i])]
        reply = client.chat.completions.create(model="videochat", messages=messages, **GREEDY)
        return reply.choices[0].message.content

    sequential = [ask(i) for i in range(len(videos))]
    with ThreadPoolExecutor(len(videos)) as pool:
        concurrent = list(pool.map(ask, range(len(videos))))
    assert concurrent == sequential
    expected = [_expected(model, q, video=v) for q, v in zip(questions, videos, strict=True)]
    assert sequential == expected
    assert len(set(sequential)) > 1  # different media really gave different answers


def test_uploaded_file_and_allowed_local_path(model, server, client, tmp_path):
    _, _, media_root = server
    video = video_bytes(COLORS[0])
    path = tmp_path / "upload.mp4"
    path.write_bytes(video)
    with open(path, "rb") as handle:
        uploaded = client.files.create(file=handle, purpose="user_data")
    assert uploaded.bytes == len(video)
    expected = _expected(model, "What is shown?", video=video)
    for reference in (uploaded.id, str(media_root / "clip.mp4"), "clip.mp4"):
        messages = [
            {
                "role": "user",
                "content": [
                    {"type": "video_url", "video_url": {"url": reference}},
                    {"type": "text", "text": "What is shown?"},
                ],
            }
        ]
        reply = client.chat.completions.create(model="videochat", messages=messages, **GREEDY)
        assert reply.choices[0].message.content == expected
    client.files.delete(uploaded.id)


@pytest.mark.parametrize(
    ("payload", "mime", "status", "words"),
    [
        (b"this is not a video at all" * 20, "video/mp4", 415, "data: URL"),
        (video_bytes(COLORS[0])[:300], "video/mp4", 422, "data: URL"),
        (png_bytes(COLORS[0], size=80), "image/png", 413, "pixels"),
    ],
)
def test_bad_media_is_a_clean_openai_error(client, payload, mime, status, words):
    kind = "image_url" if mime.startswith("image") else "video_url"
    messages = [
        {
            "role": "user",
            "content": [
                {"type": kind, kind: {"url": data_url(payload, mime)}},
                {"type": "text", "text": "What is this?"},
            ],
        }
    ]
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(model="videochat", messages=messages, **GREEDY)
    assert err.value.status_code == status
    error = err.value.body
    assert words in error["message"]
    assert error["param"] == "messages.0.content.0"  # which part the client must fix
    for leak in ("Traceback", "av.error", "/tmp", 'File "'):
        assert leak not in error["message"]


def test_stream_stops_generating_when_client_disconnects(server):
    app, base_url, _ = server
    engine = app.state.engine
    before = engine.stats.interrupted
    body = {
        "model": "videochat",
        "messages": [_video_message(video_bytes(COLORS[3]), "Tell me everything.")],
        "stream": True,
        "max_tokens": 2000,
        "temperature": 1.0,
        "seed": 1,
        "stop": ["\u0000never"],
    }
    headers = {"Authorization": "Bearer test-key"}
    with (
        httpx.Client(timeout=30) as http,
        http.stream("POST", base_url + "/v1/chat/completions", json=body, headers=headers) as r,
    ):
        assert r.status_code == 200
        lines = r.iter_lines()
        for _ in range(3):  # role chunk and a couple of pieces
            next(lines)
    deadline = time.monotonic() + 20
    while engine.stats.interrupted == before:
        assert time.monotonic() < deadline, "generation did not stop after the disconnect"
        time.sleep(0.05)


def test_server_caps_apply_before_the_session_decodes(model):
    from videochat.media import MediaTooLargeError
    from videochat.serve.conversation import MediaRef
    from videochat.serve.media_source import ResolvedMedia

    settings = ServeSettings(max_duration_s=1.0)
    backend = ChatBackend(model, settings, cache=VisualCache())
    session = backend.new_session("")
    item = MediaRef("video", "data:…", "messages.0.content.0")
    item.resolved = ResolvedMedia(video_bytes(COLORS[0], frames=12, fps=4), "data: URL")  # 3 s
    with pytest.raises(MediaTooLargeError) as err:
        backend.add_media(session, item, num_frames=8)
    assert str(err.value).startswith("data: URL: ") and "1 s limit" in str(err.value)
    assert session.media == []  # nothing was added
