"""Tiny benchmarks for the eval tests: solid-colour clips made with PyAV/Pillow, and a fake session.

The fake session decodes the clip it is given (PyAV, every frame: the clips are tiny), samples it with
the media package's ``middle`` window rule, and answers with the option naming the clip's dominant
colour, in a reply style the test chooses. It stands in for a perfect model so the runner's
bookkeeping (accuracy, failures, resume) can be checked exactly.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
from PIL import Image

from videochat.media.sample import sample_window

RGB = {"red": (230, 20, 20), "green": (20, 230, 20), "blue": (20, 20, 230)}


def write_video(path: Path, colours: list[str], fps: int = 8, size: int = 32) -> Path:
    """An MP4 (MPEG-4 part 2) showing each named colour for one frame, in order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for name in colours:
            rgb = np.full((size, size, 3), RGB[name], dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_gif(path: Path, colours: list[str], size: int = 32) -> Path:
    frames = [Image.new("RGB", (size, size), RGB[c]) for c in colours]
    for i, frame in enumerate(frames):  # Pillow merges identical GIF frames: make each differ
        frame.putpixel((i % size, 0), (255, 255, 255))
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path


def write_frames(folder: Path, colours: list[str], size: int = 32) -> Path:
    """Numbered PNGs 1.png, 2.png, ... 10.png (natural order matters)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, colour in enumerate(colours, 1):
        Image.new("RGB", (size, size), RGB[colour]).save(folder / f"{i}.png")
    return folder


def write_bench(bench: Path, tasks: dict[str, dict], items: dict[str, list[dict]]) -> Path:
    bench.mkdir(parents=True, exist_ok=True)
    (bench / "tasks.json").write_text(json.dumps(tasks))
    for name, rows in items.items():
        (bench / tasks[name]["json"]).write_text(json.dumps(rows))
    return bench


def colour_item(video: str, colour: str, **extra) -> dict:
    candidates = ["red", "green", "blue"]
    return {"video": video, "question": "What colour is shown?", "candidates": candidates,
            "answer": colour, **extra}  # fmt: skip


def decode_rgb(source) -> tuple[np.ndarray, float]:
    """All frames (N, H, W, 3) of a file path or in-memory clip, and the stream's frame rate."""
    if isinstance(source, io.BytesIO):
        source.seek(0)
    with av.open(source) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        rate = float(stream.average_rate or stream.guessed_rate or 1)
    if not frames:
        raise ValueError("no frames")
    return np.stack(frames), rate


def dominant_colour(frames: np.ndarray) -> str:
    mean = frames.reshape(-1, 3).mean(axis=0)
    return list(RGB)[int(np.argmax(mean))]


Reply = Callable[[str, list[str]], str]  # (letter, candidates) -> reply text


def letter_reply(letter: str, candidates: list[str]) -> str:
    return f"{letter}) {candidates[ord(letter) - 65]}"


class FakeSession:
    """ChatSession stand-in: sees the sampled frames and replies in a chosen style."""

    def __init__(self, reply: Reply = letter_reply, fail_on: Callable[[str], bool] | None = None):
        self.reply = reply
        self.fail_on = fail_on or (lambda question: False)
        self.calls: list[dict] = []
        self.frames: np.ndarray | None = None

    def reset(self) -> None:
        self.frames = None

    def add_video(self, source, num_frames=8, sampling="demo", start=None, end=None):
        try:
            frames, fps = decode_rgb(source)
        except (av.error.FFmpegError, ValueError, OSError) as exc:
            from videochat.media.errors import CorruptMediaError

            raise CorruptMediaError(str(source), f"cannot decode ({exc})") from None
        indices = sample_window(sampling, len(frames), num_frames, fps, start, end)
        self.frames = frames[indices]
        self.last_add = {"num_frames": num_frames, "sampling": sampling, "start": start, "end": end}

    def add_image(self, source):
        if isinstance(source, io.BytesIO):
            source.seek(0)
        with Image.open(source) as image:
            self.frames = np.asarray(image.convert("RGB"))[None]
        self.last_add = {"image": True}

    def ask(self, text, stream=False, *, answer_prefix="", **generation):
        self.calls.append({"text": text, "answer_prefix": answer_prefix, **generation})
        if self.fail_on(text):
            raise RuntimeError("CUDA out of memory (simulated)")
        candidates = re.findall(r"^\([A-Z]\) (.*)$", text, flags=re.MULTILINE)
        letter = chr(65 + candidates.index(dominant_colour(self.frames)))
        return self.reply(letter, candidates)

    def score_replies(self, text, replies, *, answer_prefix=""):
        """The reply naming the clip's colour scores 0, every other -1 (a ranking protocol)."""
        self.calls.append({"text": text, "answer_prefix": answer_prefix, "replies": replies})
        from videochat.chat.scoring import ReplyScore

        colour = dominant_colour(self.frames)
        return [ReplyScore(0.0 if colour in r else -1.0, False) for r in replies]
