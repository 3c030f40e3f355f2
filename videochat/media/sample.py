"""Frame-index policies as pure functions, equal to the original VideoChat rules index for index.

* ``demo``: the demo's ``get_index`` (segment centres, numpy half-to-even rounding).
* ``middle`` / ``rand``: the training loader's ``get_frame_indices`` (interval centres / a random
  frame per interval; ``rand`` falls back to a sorted random subset when an interval is empty;
  short results are padded with the last index).
* ``fps:<x>``: a fixed output rate (``fps<x>`` in the original's spelling is accepted too).
"""

from __future__ import annotations

import math
import random

import numpy as np

from videochat.media.errors import MediaRequestError

POLICIES = ("demo", "middle", "rand", "fps:<x>")


def demo_indices(num_frames_total: int, num_frames: int) -> list[int]:
    """The demo rule: centre of each of ``num_frames`` segments over frames 0..n-1."""
    seg_size = float(num_frames_total - 1) / num_frames
    start = int(seg_size / 2)
    return [start + int(np.round(seg_size * i)) for i in range(num_frames)]


def _intervals(num_frames_total: int, num_frames: int) -> list[tuple[int, int]]:
    """(first, last) frame of each of min(T, n) equal intervals, as the training loader splits."""
    count = min(num_frames, num_frames_total)
    edges = np.linspace(0, num_frames_total, num=count + 1).astype(int)
    return [(int(edges[i]), int(edges[i + 1]) - 1) for i in range(count)]


def _pad(indices: list[int], num_frames: int) -> list[int]:
    return indices + [indices[-1]] * (num_frames - len(indices))


def middle_indices(
    num_frames_total: int, num_frames: int, fix_start: int | None = None
) -> list[int]:
    """Training ``middle`` rule (or ``lo + fix_start`` per interval when fix_start is given)."""
    ranges = _intervals(num_frames_total, num_frames)
    if fix_start is not None:
        picked = [lo + fix_start for lo, _ in ranges]
    else:
        picked = [(lo + hi) // 2 for lo, hi in ranges]
    return _pad(picked, num_frames)


def rand_indices(
    num_frames_total: int, num_frames: int, rng: random.Random | None = None
) -> list[int]:
    """Training ``rand`` rule: uniform in [lo, hi) per interval (the last frame is never drawn)."""
    rng = rng or random.Random()
    ranges = _intervals(num_frames_total, num_frames)
    if any(hi <= lo for lo, hi in ranges):  # the original's empty-range fallback
        picked = sorted(rng.sample(range(num_frames_total), len(ranges)))
    else:
        picked = [rng.randrange(lo, hi) for lo, hi in ranges]
    return _pad(picked, num_frames)


def fps_indices(
    num_frames_total: int, input_fps: float, output_fps: float, max_num_frames: int = -1
) -> list[int]:
    """One frame per 1/output_fps seconds, at the centre of each slot; first max_num_frames kept.

    Never empty: a video shorter than half a slot yields its middle frame.
    """
    duration = float(num_frames_total) / input_fps
    delta = 1.0 / output_fps
    seconds = np.arange(delta / 2, duration + delta / 2, delta)
    picked = [int(i) for i in np.around(seconds * input_fps).astype(int) if i < num_frames_total]
    if max_num_frames > 0:
        picked = picked[:max_num_frames]
    return picked or [(num_frames_total - 1) // 2]


def parse_fps_policy(policy: str) -> float | None:
    """The output rate of an ``fps:<x>``/``fps<x>`` policy, None for any other policy."""
    if not policy.startswith("fps"):
        return None
    text = policy[3:].lstrip(":")
    try:
        rate = float(text)
    except ValueError:
        rate = float("nan")
    if not rate > 0 or rate == float("inf"):
        raise MediaRequestError(
            f"bad sampling policy {policy!r}: write fps:<frames per second>, e.g. fps:1 or fps:0.5"
        )
    return rate


def check_policy(policy: str) -> None:
    """Raise MediaRequestError unless ``policy`` names a known rule."""
    if policy not in ("demo", "middle", "rand") and parse_fps_policy(policy) is None:
        raise MediaRequestError(
            f"unknown sampling policy {policy!r}: use one of demo, middle, rand, fps:<x>"
        )


def sample_indices(
    policy: str,
    num_frames_total: int,
    num_frames: int,
    fps: float,
    rng: random.Random | None = None,
) -> list[int]:
    """Frame indices (0-based, into the stream) chosen by ``policy``.

    For ``fps:<x>`` the rate decides the count and ``num_frames`` caps it (the original's
    ``max_num_frames``: the first frames are kept; ``num_frames <= 0`` means no cap).
    """
    check_policy(policy)
    if num_frames_total < 1:
        raise MediaRequestError("the video has no frames to sample")
    rate = parse_fps_policy(policy)
    if rate is not None:
        if not fps > 0:
            raise MediaRequestError("fps sampling needs the video's frame rate, which is unknown")
        return fps_indices(num_frames_total, fps, rate, num_frames)
    if num_frames < 1:
        raise MediaRequestError(f"num_frames must be at least 1, got {num_frames}")
    if policy == "demo":
        return demo_indices(num_frames_total, num_frames)
    if policy == "middle":
        return middle_indices(num_frames_total, num_frames)
    return rand_indices(num_frames_total, num_frames, rng)


def window_bounds(
    num_frames_total: int, fps: float, start: float | None, end: float | None
) -> tuple[int, int]:
    """First and last frame (inclusive) of the [start, end] seconds window, clamped to the video."""
    for name, value in (("start", start), ("end", end)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise MediaRequestError(f"window {name} must be a number of seconds >= 0, got {value}")
    if end is not None and end <= (start or 0.0):
        raise MediaRequestError(f"window end ({end} s) must be after its start ({start or 0.0} s)")
    first = 0 if start is None else round(start * fps)
    last = num_frames_total - 1 if end is None else min(round(end * fps), num_frames_total - 1)
    if first > last:
        duration = num_frames_total / fps if fps > 0 else 0.0
        raise MediaRequestError(
            f"window start {start} s is past the end of the video ({duration:.2f} s)"
        )
    return first, last


def sample_window(
    policy: str,
    num_frames_total: int,
    num_frames: int,
    fps: float,
    start: float | None = None,
    end: float | None = None,
    rng: random.Random | None = None,
) -> list[int]:
    """``sample_indices`` applied to the [start, end] seconds window only (MVBench bounded tasks)."""
    if start is None and end is None:
        return sample_indices(policy, num_frames_total, num_frames, fps, rng)
    first, last = window_bounds(num_frames_total, fps, start, end)
    local = sample_indices(policy, last - first + 1, num_frames, fps, rng)
    return [first + i for i in local]


def check_size(size: int) -> None:
    """The output side length must be a positive int of sane size."""
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 4096:
        raise MediaRequestError(f"size must be an integer between 1 and 4096, got {size!r}")


def round_timestamp(seconds: float) -> float:
    """The original's ``round(idx / fps, 1)`` on numpy values: rint(x * 10) / 10 (half to even)."""
    return float(np.round(np.float64(seconds), 1))


def timestamp_message(timestamps: list[float]) -> str:
    """The sentence the demo appends to the user turn after uploading a video."""
    times = ", ".join(str(round_timestamp(t)) for t in timestamps)
    return f"The video contains {len(timestamps)} frames sampled at {times} seconds."
