"""`videochat serve` / `videochat web` flags, and the real `videochat serve` process end to end."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest
from _serve_helpers import data_url, tiny_model, video_bytes

from videochat.cli import build_parser, main
from videochat.commands.serve import settings_from_args
from videochat.serve.runner import free_port


def _args(*argv: str):
    return build_parser("serve").parse_args(["serve", *argv])


def test_flags_become_settings(tmp_path):
    settings = settings_from_args(
        _args(
            "--api-key",
            "k",
            "--allowed-local-media-path",
            str(tmp_path),
            "--allowed-media-domains",
            "A.com, *.b.org",
            "--max-queue",
            "3",
            "--max-media-mb",
            "2",
        )
    )
    assert settings.api_key == "k" and settings.max_queue == 3
    assert settings.allowed_local_media_path == tmp_path.resolve()
    assert settings.allowed_media_domains == ("a.com", "*.b.org")
    assert settings.max_media_bytes == 2 * 1024 * 1024


def test_safe_defaults():
    settings = settings_from_args(_args())
    assert settings.allowed_local_media_path is None and settings.allowed_media_domains == ()
    assert settings.max_num_frames == 64


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["serve", "--allowed-local-media-path", "/no/such/dir"], "not a directory"),
        (["serve", "--max-queue", "0"], "--max-queue"),
        (["web", "--max-frames", "100"], "--max-frames"),
        (["web", "--max-upload-mb", "0"], "--max-upload-mb"),
        (["serve", "--max-media-mb", "0"], "--max-media-mb must be positive"),
        (["serve", "--max-media-mb", "-1"], "--max-media-mb must be positive"),
        (["serve", "--port", "70000"], "--port 70000: must be between 0 and 65535"),
        (["web", "--port", "-1"], "--port -1: must be between 0 and 65535"),
        (["serve", "--host", "no-such-host.invalid"], "--host no-such-host.invalid"),
        (["web", "--max-new-tokens", "0"], "--max-new-tokens must be at least 1"),
    ],
)
def test_bad_flags_are_one_error_line(argv, words, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words in err and "Traceback" not in err


def test_serve_stops_with_one_error_line_when_the_model_cannot_load(tmp_path, capsys):
    not_a_model = tmp_path / "empty"
    not_a_model.mkdir()
    assert main(["serve", "--model", str(not_a_model), "--port", str(free_port())]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: the model failed to load: ") and "Traceback" not in err


@pytest.mark.parametrize("verb", ["serve", "web"])
def test_a_busy_port_is_one_error_line_before_the_model_loads(verb, capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        argv = [verb, "--model", "/no/such/model", "--port", str(port)]
        assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: cannot listen on 127.0.0.1:{port}: Address already in use"]


@pytest.mark.slow  # a fresh Python process importing torch + transformers: ~30 s on 2 busy cores
def test_serve_process_end_to_end(fixtures_dir, tmp_path):
    from videochat.model.load import save_model

    model_dir = save_model(tiny_model(fixtures_dir), tmp_path / "tiny")
    port = free_port()
    env = {**os.environ, "VIDEOCHAT_API_KEY": "cli-key"}
    cmd = [
        sys.executable,
        "-m",
        "videochat",
        "serve",
        "--model",
        str(model_dir),
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "server never became healthy"
            try:
                if httpx.get(base + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        content = [
            {
                "type": "video_url",
                "video_url": {"url": data_url(video_bytes((9, 9, 9)), "video/mp4")},
            },
            {"type": "text", "text": "What is happening?"},
        ]
        body = {
            "model": "videochat",
            "messages": [{"role": "user", "content": content}],
            "max_tokens": 5,
            "temperature": 0,
        }
        headers = {"Authorization": "Bearer cli-key"}
        reply = httpx.post(base + "/v1/chat/completions", json=body, headers=headers, timeout=60)
        assert reply.status_code == 200, reply.text
        assert reply.json()["choices"][0]["message"]["role"] == "assistant"
        assert httpx.post(base + "/v1/chat/completions", json=body).status_code == 401
    finally:
        proc.terminate()
        proc.wait(30)
