"""``load_media``: one entry point that sniffs the content and returns a video or an image clip."""

from __future__ import annotations

import random

from videochat.media.clip import ImageClip, VideoClip
from videochat.media.image import image_clip, still_image_header
from videochat.media.limits import MediaLimits
from videochat.media.sample import check_policy, check_size, parse_fps_policy
from videochat.media.source import Source, open_source
from videochat.media.video import video_clip


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
    limits = limits or MediaLimits()
    check_policy(sampling)
    check_size(size)
    with open_source(source, limits) as opened:
        if still_image_header(opened, limits) is not None:
            return image_clip(opened, size, limits)
        if parse_fps_policy(sampling) is None:
            limits.check_sampled(opened.name, num_frames)
        return video_clip(opened, num_frames, sampling, start, end, size, limits, rng)
