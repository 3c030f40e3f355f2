"""Frame-folder clips (MVBench ``data_type: frame``) turned into something the chat session can play.

The session takes media sources (paths, bytes), not pixels, so a folder of numbered images is
sampled here (the same ``middle`` window rule as videos, from ``videochat.media.sample``) and only
the chosen frames are packed, losslessly (PNG in a MOV container), into a small in-memory video whose
frame times are the frames' times at the folder's ``fps``. The media pipeline then decodes all of
them, so the model sees exactly these frames. Its timestamp message counts from the first packed
frame (the pipeline measures time from a stream's start), so the spacing is true, the origin is not.
``images_video`` does the same for a list of PIL images (lmms-eval tasks that pass frames).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from fractions import Fraction
from functools import partial
from pathlib import Path

import av
import numpy as np
from PIL import Image, UnidentifiedImageError

from videochat.eval.bench import DEFAULT_FRAME_FPS
from videochat.media.errors import CorruptMediaError, MediaNotFoundError
from videochat.media.sample import sample_window

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
_TICKS_PER_SECOND = 3000  # time base of the packed clip: exact for 1, 2, 3, 5, 10, 24, 25, 30 fps


def natural_key(name: str) -> list[int | str]:
    """Sort key that orders ``frame2.jpg`` before ``frame10.jpg``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_frames(folder: Path) -> list[Path]:
    """The folder's image files in natural order."""
    if not folder.is_dir():
        raise MediaNotFoundError(str(folder), "frame folder not found")
    frames = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    if not frames:
        raise MediaNotFoundError(str(folder), "frame folder holds no images (.jpg/.png/...)")
    return sorted(frames, key=lambda p: natural_key(p.name))


def _rgb_array(image: Image.Image, size: tuple[int, int] | None) -> np.ndarray:
    rgb = image.convert("RGB")
    if size is not None and rgb.size != size:
        rgb = rgb.resize(size, Image.Resampling.BICUBIC)
    return np.asarray(rgb, dtype=np.uint8)  # (H, W, 3)


def _read_rgb(path: Path, size: tuple[int, int] | None) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return _rgb_array(image, size)
    except (UnidentifiedImageError, OSError) as exc:
        raise CorruptMediaError(str(path), f"cannot read this frame image ({exc})") from None


def select_frames(
    folder: Path, num_frames: int, fps: float, start: float | None, end: float | None
) -> tuple[list[Path], list[int]]:
    """The folder's frames and the indices the ``middle`` rule picks within [start, end]."""
    frames = list_frames(folder)
    indices = sample_window("middle", len(frames), num_frames, fps, start, end)
    return frames, indices


def pack_clip(
    frames: list[Callable[[tuple[int, int] | None], np.ndarray]], times: list[float], fps: float
) -> bytes:
    """Lossless MOV of ``frames`` (read lazily, at the first one's size) shown at ``times`` seconds.

    ``fps`` is the source's nominal rate; the muxer derives its time base from it, which keeps the
    frame times exact.
    """
    first = frames[0](None)
    height, width = first.shape[:2]
    time_base = Fraction(1, _TICKS_PER_SECOND)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mov") as container:
        stream = container.add_stream("png", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = width, height, "rgb24"
        stream.time_base = time_base
        last_pts = -1
        for k, (read, seconds) in enumerate(zip(frames, times, strict=True)):
            rgb = first if k == 0 else read((width, height))
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            # repeated frames (short windows) still need increasing timestamps
            last_pts = max(last_pts + 1, round(seconds * _TICKS_PER_SECOND))
            frame.pts, frame.time_base = last_pts, time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def frame_folder_video(
    folder: Path, num_frames: int, fps: float, start: float | None = None, end: float | None = None
) -> tuple[bytes, int]:
    """(packed clip, number of frames in it) for a frame folder item."""
    frames, indices = select_frames(folder, num_frames, fps, start, end)
    readers = [partial(_read_rgb, frames[i]) for i in indices]
    return pack_clip(readers, [i / fps for i in indices], fps), len(indices)


def images_video(images: list[Image.Image], fps: float = DEFAULT_FRAME_FPS) -> bytes:
    """All ``images`` in order as a clip at ``fps`` (lmms-eval tasks that hand over PIL frames)."""
    readers = [partial(_rgb_array, image) for image in images]
    return pack_clip(readers, [i / fps for i in range(len(images))], fps)
