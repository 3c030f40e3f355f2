"""``load_media``: one entry point that sniffs the content and returns a video or an image clip."""

from __future__ import annotations

import random

from videochat.media.clip import ImageClip, VideoClip, VideoRequest
from videochat.media.image import image_clip, image_header, is_animation
from videochat.media.limits import MediaLimits
from videochat.media.source import Source, open_source
from videochat.media.video import moving_clip


def load_media(
    source: Source,
    num_frames: int = 8,
    sampling: str = "demo",
    size: int = 224,
    limits: MediaLimits | None = None,
    start: float | None = None,
    end: float | None = None,
    rng: random.Random | None = None,
) -> VideoClip | ImageClip:
    """Still image -> ImageClip; animated GIF/PNG/WebP or any video container -> VideoClip.

    ``start``/``end``/``rng`` apply to videos as in :func:`load_video` (ignored for images).
    """
    request = VideoRequest(num_frames, sampling, start, end, size, limits or MediaLimits(), rng)
    with open_source(source, request.limits) as opened:
        header = image_header(opened, request.limits)
        if header is not None and not is_animation(header):
            return image_clip(opened, size, request.limits)
        request.check_count(opened.name)
        return moving_clip(opened, header, request)
