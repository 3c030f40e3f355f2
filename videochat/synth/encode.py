"""Write rendered frames as H.264 MP4 (PyAV) and still images (Pillow).

Single-threaded x264 with fixed settings, no macroblock-tree rate control and no creation time, so
the same frames always give the same bytes (dataset determinism); parallelism comes from encoding
several videos at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np
from PIL import Image

from videochat.errors import VideoChatError


class SynthError(VideoChatError):
    """The synthetic data could not be generated as asked (bad option, unwritable folder...)."""


def write_mp4(
    path: str | Path | BinaryIO,
    frames: Iterable[np.ndarray],
    fps: int,
    width: int,
    height: int,
    crf: int = 18,
) -> int:
    """Encode (H, W, 3) uint8 frames to H.264 yuv420p (single-threaded, so the bytes are
    reproducible) into a file or a binary stream; returns the number of frames written."""
    if width % 2 or height % 2:
        raise SynthError(f"H.264 (yuv420p) needs even frame sizes, got {width}x{height}")
    count = 0
    target = path if hasattr(path, "write") else str(path)
    with av.open(target, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps, 1))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1
        # mbtree=0: x264's macroblock-tree pass read memory it had not written, so the same frames
        # gave other bitstreams (and decoded pixels) depending on what the heap held before
        # (tests/test_synth_encode.py); without it the output depends on the frames alone
        stream.options = {
            "crf": str(crf),
            "preset": "veryfast",
            "threads": "1",
            "x264-params": "mbtree=0",
        }
        container.metadata["creation_time"] = "1970-01-01T00:00:00.000000Z"
        for rgb in frames:
            if rgb.shape != (height, width, 3) or rgb.dtype != np.uint8:
                raise SynthError(
                    f"frame {count} of {path} is {rgb.shape} {rgb.dtype}, "
                    f"expected ({height}, {width}, 3) uint8"
                )
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
            count += 1
        for packet in stream.encode():
            container.mux(packet)
    return count


def write_image(path: str | Path, rgb: np.ndarray) -> None:
    """Save one (H, W, 3) uint8 frame; format from the suffix (.png or .jpg)."""
    path = Path(path)
    img = Image.fromarray(rgb)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        img.save(path, quality=95)
    else:
        img.save(path, optimize=False)
