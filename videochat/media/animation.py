"""Animated WebP through Pillow: FFmpeg's WebP decoder reads still images only.

Frame times come from each frame's own duration, so the timestamps are the true display times.
"""

from __future__ import annotations

from itertools import accumulate

from PIL import Image

from videochat.media.clip import VideoClip, VideoRequest
from videochat.media.image import decode_rgb
from videochat.media.limits import Deadline
from videochat.media.sample import timestamp_message
from videochat.media.source import OpenedSource
from videochat.media.transform import normalize, video_frame_view

_DEFAULT_FRAME_MS = 100  # browsers show a frame without a duration for about 100 ms


def animation_clip(opened: OpenedSource, header: Image.Image, request: VideoRequest) -> VideoClip:
    """Sample an animated image like a video; only the sampled frames are converted."""
    limits, name = request.limits, opened.name
    total = header.n_frames
    limits.check_frames(name, total)
    deadline = limits.deadline(name)
    durations = _frame_durations_ms(header, deadline)  # one per frame
    starts = [ms / 1000 for ms in [0, *accumulate(durations)][:total]]
    duration = sum(durations) / 1000
    limits.check_duration(name, duration)
    fps = total / duration
    indices = request.indices(name, total, fps)
    views = {}
    for index in sorted(set(indices)):
        deadline.check()
        header.seek(index)
        views[index] = video_frame_view(decode_rgb(header, name), request.size)
    timestamps = [starts[i] for i in indices]
    return VideoClip(
        pixels=normalize([views[i] for i in indices]),  # (T, 3, size, size)
        indices=indices,
        timestamps=timestamps,
        fps=fps,
        duration=duration,
        num_frames_total=total,
        width=header.width,
        height=header.height,
        codec=header.format.lower(),
        source_name=name,
        message=timestamp_message(timestamps),
    )


def _frame_durations_ms(header: Image.Image, deadline: Deadline) -> list[float]:
    durations = []
    for index in range(header.n_frames):
        deadline.check()
        header.seek(index)
        header.load()  # Pillow's WebP reader fills in the frame duration on load
        milliseconds = header.info.get("duration") or 0
        durations.append(milliseconds if milliseconds > 0 else _DEFAULT_FRAME_MS)
    return durations
