"""``load_media``: one entry point that sniffs the content and returns a video or an image clip."""

from __future__ import annotations

from videochat.media.clip import ImageClip, VideoClip
from videochat.media.errors import UnsupportedMediaError
from videochat.media.image import image_clip, is_animated, open_image
from videochat.media.limits import MediaLimits
from videochat.media.sample import check_policy, check_size, parse_fps_policy
from videochat.media.source import Source, open_source
from videochat.media.video import video_clip

# Pillow formats whose multi-frame files are animations (MPO/TIFF pages are still photos).
_ANIMATED_FORMATS = ("GIF", "PNG", "WEBP")


def load_media(
    source: Source,
    num_frames: int = 8,
    sampling: str = "demo",
    size: int = 224,
    limits: MediaLimits | None = None,
) -> VideoClip | ImageClip:
    """Still image -> ImageClip; animated GIF/PNG/WebP or any video container -> VideoClip."""
    limits = limits or MediaLimits()
    check_policy(sampling)
    check_size(size)
    with open_source(source, limits) as opened:
        try:
            header = open_image(opened, limits)
        except UnsupportedMediaError:
            header = None  # not an image Pillow knows: try it as a video
        if header is not None and not (header.format in _ANIMATED_FORMATS and is_animated(header)):
            return image_clip(opened, size, limits)
        if parse_fps_policy(sampling) is None:
            limits.check_sampled(opened.name, num_frames)
        return video_clip(opened, num_frames, sampling, None, None, size, limits, None)
