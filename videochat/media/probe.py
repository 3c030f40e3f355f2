"""Open a container with PyAV and describe its video stream (before any frame is decoded).

Frame count: the container's header count (``stream.frames``) when it has one; otherwise, for a
stream estimated at most ``SCAN_MAX_FRAMES`` frames long (or of unknown length), the packets are
counted exactly in one demux pass (no decoding), which also gives every frame's true pts; longer
streams without a count use ``round(duration * average_rate)``. A count that turns out wrong while
decoding is corrected by a packet count (see ``videochat.media.video``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import BinaryIO

import av

from videochat.media.errors import CorruptMediaError, MediaError, UnsupportedMediaError
from videochat.media.limits import Deadline, MediaLimits
from videochat.media.source import OpenedSource, read_head

SCAN_MAX_FRAMES = 3000  # count packets exactly for streams estimated up to this long

# Leading bytes -> format name, to tell "damaged file of a known kind" from "not media at all".
_SIGNATURES = (
    (4, b"ftyp", "MP4/MOV"),
    (4, b"moov", "MP4/MOV"),
    (4, b"mdat", "MP4/MOV"),
    (0, b"\x1a\x45\xdf\xa3", "WebM/Matroska"),
    (0, b"RIFF", "RIFF (AVI/WebP/WAV)"),
    (0, b"GIF8", "GIF"),
    (0, b"\x89PNG", "PNG"),
    (0, b"\xff\xd8\xff", "JPEG"),
    (0, b"\x00\x00\x01\xba", "MPEG-PS"),
    (0, b"\x00\x00\x00\x01", "raw H.264/HEVC"),
    (0, b"OggS", "Ogg"),
)


def sniff_format(head: bytes) -> str | None:
    """The media family the first bytes announce, or None if they look like no known format."""
    for offset, magic, name in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return name
    return None


@dataclass
class VideoInfo:
    """What the model-facing loader needs to know about a video stream."""

    codec: str
    width: int
    height: int
    fps: float
    duration: float  # seconds
    num_frames_total: int
    count_source: str  # "header", "scan" (packets counted) or "estimate" (duration x rate)
    time_base: Fraction
    start_pts: int
    frame_pts: list[int] | None = field(default=None, repr=False)  # sorted, when scanned

    def target_pts(self, index: int) -> int:
        """The pts at which frame ``index`` is expected (exact when scanned, else by the rate)."""
        if self.frame_pts:
            return self.frame_pts[min(index, len(self.frame_pts) - 1)]
        return self.start_pts + round(Fraction(index) / Fraction(self.fps) / self.time_base)

    def seconds(self, pts: int) -> float:
        return float((pts - self.start_pts) * self.time_base)


def open_container(
    opened: OpenedSource, deadline: Deadline, stream: BinaryIO | None = None
) -> av.container.InputContainer:
    """``av.open`` (on ``stream``, else the source's own stream) with errors in plain words
    (damaged known format vs. not media at all)."""
    stream = opened.rewind() if stream is None else stream
    try:
        return av.open(stream, mode="r", timeout=max(deadline.remaining(), 0.1))
    except av.error.FFmpegError as exc:
        kind = sniff_format(read_head(opened))
        cause = _short_cause(exc)
        if kind is None:
            raise UnsupportedMediaError(
                opened.name, f"not a recognised video or image format ({cause})"
            ) from exc
        raise CorruptMediaError(
            opened.name, f"{kind} data is truncated or damaged and cannot be opened ({cause})"
        ) from exc


def video_stream(container: av.container.InputContainer, name: str) -> av.video.stream.VideoStream:
    """The first real video stream (cover art is not video), or a plain-words error."""
    videos = [s for s in container.streams.video if not _is_cover_art(s)]
    if not videos:
        what = "audio only" if container.streams.audio else "no streams FFmpeg can read"
        if container.streams.video:
            what += ", with a cover picture"
        raise UnsupportedMediaError(name, f"has no video stream ({what})")
    stream = videos[0]
    try:
        codec = stream.codec_context.name
    except (AttributeError, av.error.FFmpegError) as exc:
        raise UnsupportedMediaError(name, "video codec is not supported by this FFmpeg") from exc
    if not codec or stream.codec_context.width <= 0 or stream.codec_context.height <= 0:
        raise UnsupportedMediaError(name, f"video stream ({codec or 'unknown codec'}) has no size")
    return stream


def _is_cover_art(stream: av.video.stream.VideoStream) -> bool:
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def describe(
    container: av.container.InputContainer, name: str, limits: MediaLimits, deadline: Deadline
) -> VideoInfo:
    """Probe the video stream and check it against ``limits`` before anything is decoded."""
    stream = video_stream(container, name)
    ctx = stream.codec_context
    limits.check_pixels(name, ctx.width, ctx.height)
    time_base = stream.time_base or Fraction(1, 1_000_000)
    fps = _rate(stream)
    duration = _duration(container, stream, time_base)
    if duration is not None:
        limits.check_duration(name, duration)
    info = VideoInfo(
        codec=ctx.name,
        width=ctx.width,
        height=ctx.height,
        fps=fps or 0.0,
        duration=duration or 0.0,
        num_frames_total=stream.frames,
        count_source="header",
        time_base=time_base,
        start_pts=stream.start_time or 0,
    )
    if stream.frames <= 0:
        estimate = round(duration * fps) if duration and fps else None
        if estimate is None or estimate <= SCAN_MAX_FRAMES:
            apply_scan(info, scan_packets(container, stream, name, limits, deadline))
        else:
            info.num_frames_total, info.count_source = estimate, "estimate"
    limits.check_frames(name, info.num_frames_total)
    _fill_gaps(info, name)
    limits.check_duration(name, info.duration)  # again: a scan may have found the length
    return info


def scan_packets(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    name: str,
    limits: MediaLimits,
    deadline: Deadline,
) -> list[int | None]:
    """Every video packet's pts, in one demux pass (no decoding); leaves the container at EOF."""
    pts: list[int | None] = []
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            pts.append(packet.pts)
            if len(pts) % 256 == 0:
                deadline.check()
                limits.check_frames(name, len(pts))
    except av.error.FFmpegError:
        pass  # a damaged tail ends the count; decoding reports it if nothing is usable
    return pts


def apply_scan(info: VideoInfo, pts: list[int | None]) -> None:
    """Use an exact packet count (and the true frame times, when every packet has a pts)."""
    info.num_frames_total, info.count_source = len(pts), "scan"
    if pts and all(p is not None for p in pts):
        info.frame_pts = sorted(pts)  # type: ignore[arg-type]
        info.start_pts = info.frame_pts[0]
        if not info.duration and len(pts) > 1 and info.fps:
            info.duration = info.seconds(info.frame_pts[-1]) + 1.0 / info.fps


def _fill_gaps(info: VideoInfo, name: str) -> None:
    if info.num_frames_total <= 0:
        raise CorruptMediaError(name, f"{info.codec} video stream holds no frames")
    if not info.fps:
        info.fps = info.num_frames_total / info.duration if info.duration else 25.0
    if not info.duration:
        info.duration = info.num_frames_total / info.fps


def _rate(stream: av.video.stream.VideoStream) -> float | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and 0 < float(rate) < 10_000:
            return float(rate)
    return None


def _duration(container, stream, time_base: Fraction) -> float | None:
    if stream.duration and stream.duration > 0:
        return float(stream.duration * time_base)
    if container.duration and container.duration > 0:
        return container.duration / 1_000_000
    return None


def _short_cause(exc: Exception) -> str:
    """FFmpeg's own words, trimmed: appended to our message, never the whole message."""
    text = getattr(exc, "strerror", None) or str(exc)
    return text.strip().rstrip(".")[:80].lower()


def reraise_decode_error(exc: Exception, name: str, codec: str) -> MediaError:
    """A decode-time FFmpeg failure as a CorruptMediaError."""
    return CorruptMediaError(
        name, f"{codec} video data is damaged and cannot be decoded ({_short_cause(exc)})"
    )
