"""``load_video``: probe, sample indices, decode only those frames, transform — bounded by limits."""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial

import av
from PIL import Image

from videochat.media.animation import animation_clip
from videochat.media.clip import VideoClip, VideoRequest
from videochat.media.decode import DecodeResult, read_frames, to_rgb
from videochat.media.errors import CorruptMediaError, UnsupportedMediaError
from videochat.media.image import image_header, is_animation
from videochat.media.limits import Deadline, MediaLimits
from videochat.media.probe import (
    VideoInfo,
    apply_scan,
    describe,
    open_container,
    reraise_decode_error,
    scan_packets,
    video_stream,
)
from videochat.media.sample import timestamp_message
from videochat.media.source import OpenedSource, Source, open_source
from videochat.media.transform import normalize, video_frame_view


def load_video(
    source: Source,
    num_frames: int = 8,
    sampling: str = "demo",
    start: float | None = None,
    end: float | None = None,
    size: int = 224,
    limits: MediaLimits | None = None,
    rng: random.Random | None = None,
) -> VideoClip:
    """Sample ``num_frames`` frames of a video (or animated GIF) the way the original model saw them.

    ``sampling``: demo | middle | rand | fps:<x> (see ``videochat.media.sample``); ``start``/``end``
    (seconds) restrict sampling to a window. Only the sampled frames are decoded.
    """
    request = VideoRequest(num_frames, sampling, start, end, size, limits or MediaLimits(), rng)
    with open_source(source, request.limits) as opened:
        request.check_count(opened.name)
        header = image_header(opened, request.limits)
        if header is not None and not is_animation(header):
            raise UnsupportedMediaError(
                opened.name, f"is a still {header.format} image, not a video (load it as an image)"
            )
        return moving_clip(opened, header, request)


def moving_clip(
    opened: OpenedSource, header: Image.Image | None, request: VideoRequest
) -> VideoClip:
    """A video or animation (``header``: Pillow's view of it, if Pillow knows the format)."""
    if header is not None and header.format == "WEBP":  # FFmpeg decodes still WebP only
        return animation_clip(opened, header, request)
    return video_clip(opened, request)


def video_clip(opened: OpenedSource, request: VideoRequest) -> VideoClip:
    """Decode a video container with PyAV, seeking to the sampled frames only."""
    limits = request.limits
    deadline = limits.deadline(opened.name)
    with open_container(opened, deadline) as container:
        info = describe(container, opened.name, limits, deadline)

    def choose() -> list[int]:
        return request.indices(opened.name, info.num_frames_total, info.fps)

    indices, result = _decode(opened, info, choose, request.size, limits, deadline)
    return _clip(opened.name, info, indices, result)


def _decode(
    opened: OpenedSource,
    info: VideoInfo,
    choose: Callable[[], list[int]],
    size: int,
    limits: MediaLimits,
    deadline: Deadline,
) -> tuple[list[int], DecodeResult]:
    """Sample and decode; if the frame count proves wrong, recount, resample and decode again."""

    def read(strategy: str = "auto") -> DecodeResult:
        convert = partial(_view, size=size)  # keep only the small model view of each frame
        another = _opener(opened, deadline, fresh=True) if opened.reopen is not None else None
        return read_frames(
            _opener(opened, deadline), info, indices, deadline, strategy, convert, another
        )

    indices = choose()
    try:
        result = read()
        if result.eof_count is not None:
            _recount(opened, info, result, limits, deadline)
            indices = choose()
            result = read()
            if result.eof_count == -1:  # seeking still misses: one sequential pass (clamps)
                result = read("sequential")
    except av.error.FFmpegError as exc:
        raise reraise_decode_error(exc, opened.name, info.codec) from exc
    return indices, result


def _view(frame: av.VideoFrame, size: int) -> Image.Image:
    return video_frame_view(to_rgb(frame), size)


def _opener(opened: OpenedSource, deadline: Deadline, fresh: bool = False):
    """Opens the video container on the source's stream, or (``fresh``) on a new stream of it."""

    def open_stream():
        stream = opened.another_stream() if fresh else None
        container = open_container(opened, deadline, stream)
        return container, video_stream(container, opened.name)

    return open_stream


def _recount(
    opened: OpenedSource,
    info: VideoInfo,
    result: DecodeResult,
    limits: MediaLimits,
    deadline: Deadline,
) -> None:
    """Replace a header/estimated count that decoding proved wrong by the real one."""
    if result.eof_count is not None and result.eof_count >= 0:
        info.num_frames_total, info.count_source, info.frame_pts = result.eof_count, "scan", None
    else:
        container, stream = _opener(opened, deadline)()
        with container:
            apply_scan(info, scan_packets(container, stream, opened.name, limits, deadline))
    if info.num_frames_total <= 0:
        raise CorruptMediaError(opened.name, f"no frame of the {info.codec} video could be decoded")
    info.duration = min(info.duration, info.num_frames_total / info.fps)


def _clip(name: str, info: VideoInfo, indices: list[int], result: DecodeResult) -> VideoClip:
    if not result.frames or any(i not in result.frames for i in indices):
        raise CorruptMediaError(name, f"no frame of the {info.codec} video could be decoded")
    pixels = normalize([result.frames[i].image for i in indices])  # (T, 3, size, size)
    timestamps = [_seconds(info, i, result.frames[i].pts) for i in indices]
    width, height = info.width, info.height
    if result.frames[indices[0]].rotation % 180 == 90:  # report the upright (displayed) size
        width, height = height, width
    return VideoClip(
        pixels=pixels,
        indices=list(indices),
        timestamps=timestamps,
        fps=info.fps,
        duration=info.duration,
        num_frames_total=info.num_frames_total,
        width=width,
        height=height,
        codec=info.codec,
        source_name=name,
        message=timestamp_message(timestamps),
        count_source=info.count_source,
    )


def _seconds(info: VideoInfo, index: int, pts: int | None) -> float:
    if pts is None:
        return index / info.fps
    return max(0.0, info.seconds(pts))
