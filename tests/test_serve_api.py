"""HTTP plumbing of the API (errors, auth, caps, queue, files, conversation rules) with a
controllable stand-in backend; the real tiny model is exercised in test_serve_model.py."""

from __future__ import annotations

import json
import threading
import time

import pytest
from _serve_helpers import FakeBackend, data_url, png_bytes, video_bytes
from fastapi.testclient import TestClient

from videochat.serve.api import create_app
from videochat.serve.settings import ServeSettings

ERROR_KEYS = {"message", "type", "param", "code"}


def _client(backend=None, **settings) -> TestClient:
    backend = backend or FakeBackend()
    app = create_app(ServeSettings(**settings), lambda: backend)
    return TestClient(app, raise_server_exceptions=False)


def _ready(client: TestClient) -> TestClient:
    assert client.app.state.engine.wait_ready(10)
    return client


def _chat(text="What is happening?", media=None, **extra):
    content = [*(media or []), {"type": "text", "text": text}]
    return {"model": "videochat", "messages": [{"role": "user", "content": content}], **extra}


def _assert_error(response, status, code=None):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == ERROR_KEYS
    assert "Traceback" not in error["message"]
    if code is not None:
        assert error["code"] == code
    return error


def test_health_is_503_while_loading_then_200():
    gate = threading.Event()

    def slow_load():
        gate.wait(10)
        return FakeBackend()

    app = create_app(ServeSettings(), slow_load)
    with TestClient(app) as client:
        _assert_error(client.get("/health"), 503, "model_loading")
        _assert_error(client.post("/v1/chat/completions", json=_chat()), 503, "model_not_ready")
        gate.set()
        assert app.state.engine.wait_ready(10)
        assert client.get("/health").json() == {"status": "ok", "model": "videochat"}


def test_failed_load_reports_503():
    def broken():
        raise RuntimeError("weights missing")

    app = create_app(ServeSettings(), broken)
    with TestClient(app) as client:
        app.state.engine.wait_ready(10)
        _assert_error(client.get("/health"), 503, "model_failed")


def test_models_and_unknown_model():
    with _client() as client:
        data = client.get("/v1/models").json()["data"]
        assert [m["id"] for m in data] == ["videochat"]
        _ready(client)
        body = _chat()
        body["model"] = "gpt-4"
        err = _assert_error(client.post("/v1/chat/completions", json=body), 404, "model_not_found")
        assert err["param"] == "model"


def test_api_key():
    with _client(api_key="s3cret") as client:
        _assert_error(client.get("/v1/models"), 401, "invalid_api_key")
        bad = {"Authorization": "Bearer wrong"}
        _assert_error(client.get("/v1/models", headers=bad), 401)
        assert (
            client.get("/v1/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        )
        assert client.get("/health").status_code in (200, 503)  # health needs no key


def test_completion_replays_media_and_history():
    video, image = video_bytes((200, 30, 30)), png_bytes((0, 0, 255))
    messages = [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "video_url", "video_url": {"url": data_url(video, "video/mp4")}},
                {"type": "text", "text": "first?"},
            ],
        },
        {"role": "assistant", "content": "an answer"},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": data_url(image, "image/png")}},
                {"type": "text", "text": "second?"},
            ],
        },
    ]
    with _client() as client:
        _ready(client)
        r = client.post(
            "/v1/chat/completions",
            json={"model": "videochat", "messages": messages, "max_tokens": 4},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["object"] == "chat.completion"
        answer = body["choices"][0]["message"]["content"].split()
        assert answer[0].startswith("video:") and answer[1].startswith("image:")
        assert answer[2:] == ["turns=1", "second?"]
        assert body["choices"][0]["finish_reason"] == "length"
        assert body["usage"] == {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11}


def test_streaming_chunks_and_done():
    with _client() as client:
        _ready(client)
        body = _chat(max_tokens=3, stream=True, stream_options={"include_usage": True})
        with client.stream("POST", "/v1/chat/completions", json=body) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "turns=0 What is happening? tick "
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["usage"]["completion_tokens"] == 3
    assert {c["id"] for c in chunks} == {chunks[0]["id"]}


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([{"role": "assistant", "content": "hi"}], "messages.0"),
        ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "messages"),
        ([{"role": "user", "content": "  "}], "messages"),
        ([{"role": "user", "content": "q"}, {"role": "system", "content": "s"}], "messages.1"),
        ([{"role": "tool", "content": "x"}], "messages.0.role"),
        ([{"role": "user", "content": [{"type": "audio", "x": 1}]}], None),
        ([], "messages"),
    ],
)
def test_bad_conversations_are_400(messages, param):
    with _client() as client:
        _ready(client)
        r = client.post("/v1/chat/completions", json={"model": "videochat", "messages": messages})
        err = _assert_error(r, 400)
        if param is not None:
            assert err["param"] == param


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"temperature": 3}, "temperature"),
        ({"n": 2}, "n"),
        ({"num_frames": 65}, "num_frames"),
        ({"max_tokens": 10**6}, "max_tokens"),
        ({"stop": ["a", "b", "c", "d", "e"]}, None),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, None),
        ({"response_format": {"type": "json_object"}}, None),
    ],
)
def test_bad_parameters_are_400(extra, param):
    with _client() as client:
        _ready(client)
        err = _assert_error(client.post("/v1/chat/completions", json=_chat(**extra)), 400)
        if param is not None:
            assert err["param"] == param


def test_plain_text_response_format_is_accepted():
    with _client() as client:
        _ready(client)
        r = client.post("/v1/chat/completions", json=_chat(response_format={"type": "text"}))
        assert r.status_code == 200


def test_num_frames_server_cap():
    with _client(max_num_frames=16) as client:
        _ready(client)
        err = _assert_error(client.post("/v1/chat/completions", json=_chat(num_frames=32)), 400)
        assert err["param"] == "num_frames" and "16" in err["message"]


def test_malformed_json_is_400_not_a_decoder_trace():
    with _client() as client:
        r = client.post(
            "/v1/chat/completions",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
        err = _assert_error(r, 400)
        assert "JSONDecodeError" not in err["message"]


def test_body_and_media_caps():
    big = data_url(b"\0" * 3000, "video/mp4")
    with _client(max_body_bytes=2000, max_media_bytes=1000) as client:
        _ready(client)
        media = [{"type": "video_url", "video_url": {"url": big}}]
        _assert_error(client.post("/v1/chat/completions", json=_chat(media=media)), 413)
        # a chunked body without Content-Length is counted too
        chunks = iter([b'{"model": "videochat", "messages": [' + b" " * 1500, b" " * 1500 + b"]}"])
        r = client.post(
            "/v1/chat/completions", content=chunks, headers={"content-type": "application/json"}
        )
        _assert_error(r, 413, "request_too_large")
    with _client(max_media_bytes=1000) as client:
        _ready(client)
        media = [{"type": "video_url", "video_url": {"url": big}}]
        err = _assert_error(client.post("/v1/chat/completions", json=_chat(media=media)), 413)
        assert err["param"] == "messages.0.content.0"


def test_total_media_per_request_is_capped():
    raw = video_bytes((1, 2, 3))  # encoded once: x264's threads make two encodes differ in size
    part = {"type": "video_url", "video_url": {"url": data_url(raw, "video/mp4")}}
    limit = len(raw) * 2
    with _client(max_request_media_bytes=limit) as client:
        _ready(client)
        ok = client.post("/v1/chat/completions", json=_chat(media=[part, part], max_tokens=1))
        assert ok.status_code == 200
        r = client.post("/v1/chat/completions", json=_chat(media=[part] * 3, max_tokens=1))
        err = _assert_error(r, 413, "media_too_large")
        assert err["param"] == "messages.0.content.2"


def test_remote_and_local_media_refused_by_default(tmp_path):
    with _client() as client:
        _ready(client)
        for url in ("https://example.com/v.mp4", str(tmp_path / "v.mp4"), "file:///etc/passwd"):
            media = [{"type": "video_url", "video_url": {"url": url}}]
            err = _assert_error(client.post("/v1/chat/completions", json=_chat(media=media)), 400)
            assert "disabled" in err["message"]


def test_queue_full_is_429():
    gate = threading.Event()
    backend = FakeBackend(gate=gate)
    with _client(backend, max_queue=1) as client:
        _ready(client)
        engine = client.app.state.engine
        results = []

        def post():
            results.append(client.post("/v1/chat/completions", json=_chat(max_tokens=2)))

        first = threading.Thread(target=post)
        first.start()
        assert backend.entered.wait(10)  # the worker holds it at the gate
        deadline = time.monotonic() + 10
        second = threading.Thread(target=post)
        second.start()  # waits in the queue (size 1)
        while engine._queue.qsize() < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        _assert_error(client.post("/v1/chat/completions", json=_chat()), 429, "queue_full")
        gate.set()
        first.join(10)
        second.join(10)
        assert [r.status_code for r in results] == [200, 200]
        assert engine.stats.rejected == 1


def test_files_upload_use_and_delete():
    video = video_bytes((10, 200, 10))
    with _client() as client:
        _ready(client)
        r = client.post(
            "/v1/files",
            files={"file": ("clip.mp4", video, "video/mp4")},
            data={"purpose": "vision"},
        )
        assert r.status_code == 200, r.text
        stored = r.json()
        assert stored["object"] == "file" and stored["bytes"] == len(video)
        assert stored["filename"] == "clip.mp4" and stored["id"].startswith("file-")
        assert client.get(f"/v1/files/{stored['id']}").json()["id"] == stored["id"]
        assert [f["id"] for f in client.get("/v1/files").json()["data"]] == [stored["id"]]
        for part in (
            {"type": "video_url", "video_url": {"url": stored["id"]}},
            {"type": "file", "file": {"file_id": stored["id"]}},
        ):
            r = client.post("/v1/chat/completions", json=_chat(media=[part], max_tokens=1))
            assert r.status_code == 200, r.text
        assert client.delete(f"/v1/files/{stored['id']}").json()["deleted"] is True
        _assert_error(client.get(f"/v1/files/{stored['id']}"), 404, "file_not_found")
        media = [{"type": "file", "file": {"file_id": stored["id"]}}]
        _assert_error(client.post("/v1/chat/completions", json=_chat(media=media)), 404)


def test_unknown_route_has_openai_shape():
    with _client() as client:
        _assert_error(client.get("/v1/nothing"), 404)


@pytest.mark.parametrize(
    ("part", "code", "words", "param"),
    [
        (
            {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}},
            "unsupported_content_type",
            "unsupported content part type 'input_audio'; use one of 'text', 'image_url'",
            "messages.0.content.0",
        ),
        (
            {"type": "video_url", "video_url": {}},
            "invalid_value",
            "Field required (messages.0.content.0.video_url.url)",
            "messages.0.content.0.video_url.url",
        ),
    ],
)
def test_a_bad_content_part_is_named_not_reported_as_a_string(part, code, words, param):
    client = _client()
    body = {"model": "videochat", "messages": [{"role": "user", "content": [part]}]}
    error = _assert_error(client.post("/v1/chat/completions", json=body), 400, code)
    assert words in error["message"] and error["param"] == param
    assert "valid string" not in error["message"]


def test_a_body_that_is_not_json_says_so():
    client = _client()
    response = client.post(
        "/v1/chat/completions", content=b"{nope", headers={"content-type": "application/json"}
    )
    error = _assert_error(response, 400, "invalid_json")
    assert error["message"] == "the request body is not valid JSON" and error["param"] is None
