"""Tiny media made on the fly for the media tests (PyAV / Pillow), with frames that encode their index."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

WIDTH, HEIGHT = 64, 48


def index_frame(index: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """A frame whose left half encodes index // 16 and right half index % 16 (robust to codecs)."""
    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[:, : width // 2] = (index // 16) * 16 + 8
    frame[:, width // 2 :] = (index % 16) * 16 + 8
    return frame


def frame_index(rgb: np.ndarray) -> int:
    """Read back the index written by :func:`index_frame` (from the centre of each half)."""
    height, width = rgb.shape[:2]
    left = rgb[height // 4 : 3 * height // 4, width // 8 : 3 * width // 8].mean()
    right = rgb[height // 4 : 3 * height // 4, 5 * width // 8 : 7 * width // 8].mean()
    return int(round((left - 8) / 16)) * 16 + int(round((right - 8) / 16))


def write_video(
    path: Path,
    num_frames: int = 50,
    fps: int = 25,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    gop: int = 10,
    width: int = WIDTH,
    height: int = HEIGHT,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    options: dict[str, str] | None = None,
    container_format: str | None = None,
) -> Path:
    """Encode ``num_frames`` index frames; ``pts``+``time_base`` give variable frame timing."""
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=fps, options=options or {})
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.codec_context.gop_size = gop
        if time_base is not None:
            stream.codec_context.time_base = time_base
            stream.time_base = time_base
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(index_frame(i, width, height), format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[i], time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_audio(path: Path, seconds: float = 0.5, rate: int = 8000, cover: bool = False) -> Path:
    """An audio-only file (AAC in MP4), optionally with a cover picture (an attached_pic stream)."""
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate)
        if cover:
            picture = container.add_stream("png", rate=1)
            picture.width, picture.height, picture.pix_fmt = WIDTH, HEIGHT, "rgb24"
            picture.disposition = av.stream.Disposition.attached_pic
            art = av.VideoFrame.from_ndarray(index_frame(7), format="rgb24")
            for packet in [*picture.encode(art), *picture.encode()]:
                container.mux(packet)
        samples = int(seconds * rate)
        tone = (0.1 * np.sin(np.arange(samples) / 5)).astype(np.float32)[None, :]
        frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def sequential_frames(path: Path) -> list[np.ndarray]:
    """Every frame of the file decoded in order (the reference for seeking tests)."""
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
