"""Decode only the frames asked for: seek to the keyframe before each, decode forward to it.

Two strategies, same result:
* ``seek``: per wanted frame, ``container.seek`` (stream time_base, backward, keyframes only) then
  decode forward to the first frame at/after its expected pts; consecutive targets inside one
  GOP (or within a second) are reached by decoding on without a new seek.
  When the source can be opened twice, the wanted frames are split into contiguous groups, each
  read by its own container in its own thread (FFmpeg decodes without the GIL).
* ``sequential``: one pass from the start counting frames; used for short streams (cheaper than
  seeking there, and exact by index even for variable frame rate) and when seeking fails.
Every loop checks the decode deadline.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise

import av
from PIL import Image

from videochat.media.limits import Deadline
from videochat.media.probe import VideoInfo

SEQUENTIAL_MAX_FRAMES = 300  # streams up to this many frames are decoded in one pass
# Seek readers working at once, each on its own run of GOPs with a single-threaded decoder. On 2
# cores (measured): 4 frame-threaded readers beat 2, and 4 single-threaded ones beat those by ~30%
# (frame threads idle while their reader seeks and refills); so at least 4 (benchmarks/media.py).
PARALLEL_READERS = max(4, min(8, os.cpu_count() or 1))


@dataclass
class DecodedFrame:
    index: int  # requested frame index
    image: Image.Image  # what ``convert`` made of the frame (e.g. the model's small view)
    pts: int | None
    rotation: int = 0  # display rotation of the source frame, degrees counter-clockwise


@dataclass
class DecodeResult:
    frames: dict[int, DecodedFrame]
    eof_count: int | None  # frames actually present, when EOF came before a wanted index


Opener = Callable[[], tuple[av.container.InputContainer, av.video.stream.VideoStream]]
Converter = Callable[[av.VideoFrame], Image.Image]
_TURNS = {  # counter-clockwise display rotation -> PIL transpose
    90: Image.Transpose.ROTATE_90,
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_270,
}


def to_rgb(frame: av.VideoFrame) -> Image.Image:
    """Full-resolution RGB, turned upright by the stream's display rotation (phone videos)."""
    image = frame.to_image()
    turn = _TURNS.get(frame.rotation % 360)
    return image if turn is None else image.transpose(turn)


def read_frames(
    open_stream: Opener,
    info: VideoInfo,
    indices: list[int],
    deadline: Deadline,
    strategy: str = "auto",
    convert: Converter = to_rgb,
    open_another: Opener | None = None,
) -> DecodeResult:
    """Decode the frames at ``indices`` (any order, repeats allowed).

    Each kept frame goes through ``convert`` at once, so only small views stay in memory.
    ``open_another`` opens an independent container on the same data (parallel seek readers).
    """
    wanted = sorted(set(indices))
    if strategy == "auto":
        strategy = "sequential" if info.num_frames_total <= SEQUENTIAL_MAX_FRAMES else "seek"
    if strategy == "seek":
        result = _read_seeking(open_stream, open_another, info, wanted, deadline, convert)
        if result is not None:
            return result
    return _read_sequential(open_stream, wanted, deadline, convert)


def _read_seeking(
    open_stream: Opener,
    open_another: Opener | None,
    info: VideoInfo,
    wanted: list[int],
    deadline: Deadline,
    convert: Converter,
) -> DecodeResult | None:
    """Seek readers over contiguous groups of ``wanted``, in parallel when a second container
    can be opened; None when seeking is unusable for any of them."""
    readers = PARALLEL_READERS if open_another is not None else 1
    groups = split_contiguous(wanted, readers)
    if len(groups) == 1:
        return _SeekReader(open_stream, info, deadline, convert).read(wanted)
    openers = [open_stream] + [open_another] * (len(groups) - 1)

    def read(job: tuple[Opener, list[int]]) -> DecodeResult | None:
        return _SeekReader(job[0], info, deadline, convert, threaded=False).read(job[1])

    with ThreadPoolExecutor(len(groups), thread_name_prefix="videochat-decode") as pool:
        results = list(pool.map(read, zip(openers, groups, strict=True)))
    if any(r is None for r in results):
        return None
    frames = {i: f for r in results for i, f in r.frames.items()}
    short = any(r.eof_count is not None for r in results)  # EOF before a wanted frame
    return DecodeResult(frames, -1 if short else None)


def split_contiguous(items: list[int], parts: int) -> list[list[int]]:
    """``items`` in at most ``parts`` contiguous runs of near-equal length (none empty)."""
    parts = max(1, min(parts, len(items)))
    bounds = [round(k * len(items) / parts) for k in range(parts + 1)]
    return [items[a:b] for a, b in pairwise(bounds) if b > a]


def _decoded(
    container: av.container.InputContainer, stream, max_errors: int = 50
) -> Iterator[av.VideoFrame]:
    """Frames in presentation order; a few undecodable packets are skipped, as players do."""
    errors = 0
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.error.InvalidDataError:
            errors += 1
            if errors > max_errors:
                raise
            continue
        yield from frames


def _open_decoder(open_stream: Opener, threaded: bool = True):
    """Open with frame+slice threading (same pixels, uses spare cores for the forward decode), or
    with one decoding thread when parallel readers already keep the cores busy."""
    container, stream = open_stream()
    if threaded:
        stream.thread_type = "AUTO"
    else:
        stream.thread_count = 1
    return container, stream


def _read_sequential(
    open_stream: Opener, wanted: list[int], deadline: Deadline, convert: Converter
) -> DecodeResult:
    container, stream = _open_decoder(open_stream)
    frames: dict[int, DecodedFrame] = {}
    todo = set(wanted)
    count, last = 0, None
    with container:
        for frame in _decoded(container, stream):
            deadline.check()
            if count in todo:
                frames[count] = DecodedFrame(count, convert(frame), frame.pts, frame.rotation)
                todo.discard(count)
                if not todo:
                    return DecodeResult(frames, None)
            last, count = frame, count + 1
    if last is not None:  # EOF early: clamp missing indices to the last frame
        for index in todo:
            frames[index] = DecodedFrame(index, convert(last), last.pts, last.rotation)
    return DecodeResult(frames, count)


class _SeekReader:
    """Seek-and-decode-forward over one open container; returns None when seeking is unusable."""

    def __init__(
        self,
        open_stream: Opener,
        info: VideoInfo,
        deadline: Deadline,
        convert: Converter,
        threaded: bool = True,
    ) -> None:
        self.convert = convert
        self.container, self.stream = _open_decoder(open_stream, threaded)
        self.info = info
        self.deadline = deadline
        self.frames: Iterator[av.VideoFrame] | None = None
        self.current: av.VideoFrame | None = None
        self.last_key: int | None = None
        self.gop = 0  # largest keyframe distance seen, in pts
        half_frame = Fraction(1, 2) / (
            Fraction(info.fps).limit_denominator(100_000) * info.time_base
        )
        self.tolerance = math.ceil(half_frame) - 1  # strictly under half a frame, in pts
        self.one_second = int(1 / info.time_base)

    def read(self, wanted: list[int]) -> DecodeResult | None:
        frames: dict[int, DecodedFrame] = {}
        with self.container:
            for index in wanted:
                self.deadline.check()
                target = self.info.target_pts(index)
                try:
                    frame = self._frame_at(target)
                except _SeekUnusable:
                    return None
                if frame is None:  # EOF before the target: the frame count was wrong
                    return DecodeResult(frames, -1)
                frames[index] = DecodedFrame(index, self.convert(frame), frame.pts, frame.rotation)
        return DecodeResult(frames, None)

    def _frame_at(self, target: int) -> av.VideoFrame | None:
        if not self._decode_on(target):
            try:
                self.container.seek(target, stream=self.stream, backward=True, any_frame=False)
            except av.error.FFmpegError as exc:  # e.g. raw streams without an index
                raise _SeekUnusable from exc
            self.frames, self.current = _decoded(self.container, self.stream), None
            self.last_key = None  # GOP length is only learnt within one continuous run
        for frame in self.frames:
            self.deadline.check()
            if frame.pts is None:
                raise _SeekUnusable
            first_after_seek = self.current is None
            self._note(frame)
            if frame.pts >= target - self.tolerance:
                late = frame.pts > target + self.tolerance and target > self.info.start_pts
                if first_after_seek and late:
                    raise _SeekUnusable  # landed past the target: the index is unreliable
                return frame
        return None

    def _decode_on(self, target: int) -> bool:
        """Whether decoding forward from here is cheaper than a new seek."""
        if self.frames is None or self.current is None or target < self.current.pts:
            return False
        reach = self.one_second
        if self.gop and self.last_key is not None:
            reach = max(reach, self.last_key + self.gop - self.current.pts)
        return target - self.current.pts <= reach

    def _note(self, frame: av.VideoFrame) -> None:
        if frame.key_frame:
            if self.last_key is not None and frame.pts > self.last_key:
                self.gop = max(self.gop, frame.pts - self.last_key)
            self.last_key = frame.pts
        self.current = frame


class _SeekUnusable(Exception):
    """This container cannot be read by seeking (no pts, or seeks land past their target)."""
