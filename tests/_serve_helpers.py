"""Shared pieces of the serving tests: tiny media, a controllable backend, the tiny model."""

from __future__ import annotations

import base64
import hashlib
import io
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from PIL import Image


def video_bytes(
    color: tuple[int, int, int], frames: int = 8, size: int = 32, fps: int = 4
) -> bytes:
    """A small H.264 MP4 of one flat colour with a moving bar (so frames differ)."""
    from videochat.synth.encode import write_mp4

    def frame(i: int) -> np.ndarray:
        arr = np.full((size, size, 3), color, dtype=np.uint8)
        arr[:, (i * 3) % size : (i * 3) % size + 4] = 255 - np.array(color, dtype=np.uint8)
        return arr

    buf = io.BytesIO()
    write_mp4(buf, (frame(i) for i in range(frames)), fps, size, size)
    return buf.getvalue()


def png_bytes(color: tuple[int, int, int], size: int = 32) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, format="PNG")
    return buf.getvalue()


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


class FakeBackend:
    """A stand-in model for engine/API plumbing tests: answers with what it was given, slowly if
    asked, and can be held at a gate so tests can fill the queue deterministically."""

    model_id = "videochat"

    def __init__(self, delay_s: float = 0.0, gate: threading.Event | None = None) -> None:
        self.delay_s = delay_s
        self.gate = gate
        self.pieces_sent = 0
        self.entered = threading.Event()  # set when a generation starts (before the gate)

    def new_session(self, system: str) -> dict[str, Any]:
        return {"system": system, "media": [], "turns": []}

    def add_media(self, session: dict, item: Any, num_frames: int) -> None:
        source = item.resolved.source
        data = source if isinstance(source, bytes) else source.read_bytes()
        session["media"].append(f"{item.kind}:{hashlib.sha1(data).hexdigest()[:8]}")

    def add_turn(self, session: dict, question: str, answer: str) -> None:
        session["turns"].append((question, answer))

    def ask(self, session: dict, question: str, generation: dict) -> Iterator[str]:
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(10)
        session["pieces"] = 0
        words = [*session["media"], f"turns={len(session['turns'])}", question]
        words += ["tick"] * max(0, generation["max_new_tokens"] - len(words))
        for word in words[: generation["max_new_tokens"]]:
            time.sleep(self.delay_s)
            self.pieces_sent += 1
            session["pieces"] += 1
            yield word + " "

    def usage(self, session: dict, answer: str) -> tuple[int, int]:
        return 7, session["pieces"]


def tiny_model(fixtures_dir):
    """The tiny random VideoChat (28 px vision) with the fixture tokenizer."""
    from videochat.model.config import VideoChatConfig
    from videochat.model.load import build_model, load_tokenizer

    tokenizer = load_tokenizer(fixtures_dir / "tokenizer")
    return build_model(VideoChatConfig.preset("tiny"), tokenizer, seed=0)
