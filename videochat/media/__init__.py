"""Media pipeline: exactly what the model sees of a video or image.

Decoding uses PyAV (FFmpeg) and seeks to the keyframe before each sampled frame instead of
decoding whole files; still images use Pillow. Every failure is a typed ``MediaError`` whose
message names the file and says what is wrong.
"""

from __future__ import annotations

from videochat.media.clip import ImageClip, VideoClip
from videochat.media.errors import (
    CorruptMediaError,
    DecodeTimeoutError,
    MediaError,
    MediaNotFoundError,
    MediaRequestError,
    MediaTooLargeError,
    UnsupportedMediaError,
)
from videochat.media.image import load_image
from videochat.media.limits import MediaLimits
from videochat.media.load import load_media
from videochat.media.sample import sample_indices, timestamp_message
from videochat.media.source import Source
from videochat.media.video import load_video

__all__ = [
    "CorruptMediaError",
    "DecodeTimeoutError",
    "ImageClip",
    "MediaError",
    "MediaLimits",
    "MediaNotFoundError",
    "MediaRequestError",
    "MediaTooLargeError",
    "Source",
    "UnsupportedMediaError",
    "VideoClip",
    "load_image",
    "load_media",
    "load_video",
    "sample_indices",
    "timestamp_message",
]
