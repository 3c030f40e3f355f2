"""``load_video``: probe, sample indices, decode only those frames, transform — bounded by limits."""

from __future__ import annotations

import random

import av

from videochat.media.clip import VideoClip
from videochat.media.decode import DecodeResult, read_frames
from videochat.media.errors import CorruptMediaError, UnsupportedMediaError
from videochat.media.image import still_image_header
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
from videochat.media.sample import (
    check_policy,
    check_size,
    parse_fps_policy,
    sample_window,
    timestamp_message,
)
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
    limits = limits or MediaLimits()
    check_policy(sampling)
    check_size(size)
    with open_source(source, limits) as opened:
        if parse_fps_policy(sampling) is None:
            limits.check_sampled(opened.name, num_frames)
        still = still_image_header(opened, limits)
        if still is not None:
            raise UnsupportedMediaError(
                opened.name, f"is a still {still.format} image, not a video (load it as an image)"
            )
        return video_clip(opened, num_frames, sampling, start, end, size, limits, rng)


def video_clip(
    opened: OpenedSource,
    num_frames: int,
    sampling: str,
    start: float | None,
    end: float | None,
    size: int,
    limits: MediaLimits,
    rng: random.Random | None,
) -> VideoClip:
    """``load_video`` on an already opened source (shared with ``load_media``)."""
    deadline = limits.deadline(opened.name)
    with open_container(opened, deadline) as container:
        info = describe(container, opened.name, limits, deadline)

    def choose() -> list[int]:
        picked = sample_window(
            sampling, info.num_frames_total, num_frames, info.fps, start, end, rng
        )
        limits.check_sampled(opened.name, len(picked))
        return picked

    indices = choose()
    try:
        result = read_frames(_opener(opened, deadline), info, indices, deadline)
        if result.eof_count is not None:  # the count was wrong: recount, resample, read again
            _recount(opened, info, result, limits, deadline)
            indices = choose()
            result = read_frames(_opener(opened, deadline), info, indices, deadline)
            if result.eof_count == -1:  # seeking still misses: one sequential pass (clamps)
                opener = _opener(opened, deadline)
                result = read_frames(opener, info, indices, deadline, "sequential")
    except av.error.FFmpegError as exc:
        raise reraise_decode_error(exc, opened.name, info.codec) from exc
    return _clip(opened.name, info, indices, result, size)


def _opener(opened: OpenedSource, deadline: Deadline):
    def open_stream():
        container = open_container(opened, deadline)
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


def _clip(
    name: str, info: VideoInfo, indices: list[int], result: DecodeResult, size: int
) -> VideoClip:
    if not result.frames or any(i not in result.frames for i in indices):
        raise CorruptMediaError(name, f"no frame of the {info.codec} video could be decoded")
    views = {i: video_frame_view(f.image, size) for i, f in result.frames.items()}
    pixels = normalize([views[i] for i in indices])  # (T, 3, size, size)
    timestamps = [_seconds(info, i, result.frames[i].pts) for i in indices]
    return VideoClip(
        pixels=pixels,
        indices=list(indices),
        timestamps=timestamps,
        fps=info.fps,
        duration=info.duration,
        num_frames_total=info.num_frames_total,
        width=info.width,
        height=info.height,
        codec=info.codec,
        source_name=name,
        message=timestamp_message(timestamps),
        count_source=info.count_source,
    )


def _seconds(info: VideoInfo, index: int, pts: int | None) -> float:
    if pts is None:
        return index / info.fps
    return max(0.0, info.seconds(pts))
