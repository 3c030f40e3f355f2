"""Caps that keep a hostile or huge upload from hanging the process or exhausting its memory."""

from __future__ import annotations

import time
from dataclasses import dataclass

from videochat.media.errors import DecodeTimeoutError, MediaTooLargeError


@dataclass(frozen=True)
class MediaLimits:
    """Upper bounds checked before (and while) decoding; the defaults suit a local desktop user.

    A server should pass tighter values (e.g. ``max_bytes=200 * 2**20``).
    """

    max_bytes: int = 4 * 2**30  # file size
    max_pixels: int = 8192 * 8192  # width * height of one frame or image
    max_duration_s: float = 4 * 3600.0  # stream duration
    max_frames: int = 2_000_000  # frames in the stream (header count or estimate)
    max_sampled_frames: int = 64  # frames handed to the model
    decode_timeout_s: float = 60.0  # wall-clock budget for probing + decoding one file

    def check_bytes(self, source_name: str, num_bytes: int) -> None:
        if num_bytes > self.max_bytes:
            raise MediaTooLargeError(
                source_name,
                f"file is {_size(num_bytes)}, over the {_size(self.max_bytes)} limit",
            )

    def check_pixels(self, source_name: str, width: int, height: int, what: str = "frame") -> None:
        if width * height > self.max_pixels:
            raise MediaTooLargeError(
                source_name,
                f"{what} size {width}x{height} is over the limit of {self.max_pixels:,} pixels",
            )

    def check_duration(self, source_name: str, duration_s: float) -> None:
        if duration_s > self.max_duration_s:
            raise MediaTooLargeError(
                source_name,
                f"video is {duration_s:.1f} s long, over the {self.max_duration_s:.0f} s limit",
            )

    def check_frames(self, source_name: str, num_frames: int) -> None:
        if num_frames > self.max_frames:
            raise MediaTooLargeError(
                source_name,
                f"video has {num_frames:,} frames, over the limit of {self.max_frames:,}",
            )

    def check_sampled(self, source_name: str, num_sampled: int) -> None:
        if num_sampled > self.max_sampled_frames:
            raise MediaTooLargeError(
                source_name,
                f"{num_sampled} frames requested, over the limit of {self.max_sampled_frames}",
            )

    def deadline(self, source_name: str) -> Deadline:
        return Deadline(source_name, self.decode_timeout_s)


class Deadline:
    """A wall-clock budget checked inside every demux/decode loop, so no file decodes without bound."""

    def __init__(self, source_name: str, seconds: float) -> None:
        self.source_name = source_name
        self.seconds = seconds
        self.expires = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.expires - time.monotonic()

    def check(self) -> None:
        if time.monotonic() > self.expires:
            raise DecodeTimeoutError(
                self.source_name,
                f"decoding took longer than the {self.seconds:g} s limit "
                "(file too slow to decode or damaged)",
            )


def _size(num_bytes: int) -> str:
    """Bytes in the largest binary unit that keeps the number >= 1 (e.g. "3.2 KiB")."""
    value, unit = float(num_bytes), "bytes"
    for next_unit in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, next_unit
    return f"{num_bytes} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
