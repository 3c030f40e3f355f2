"""What the loaders return: model-ready pixels plus the facts a user or prompt needs about them."""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from videochat.media.limits import MediaLimits
from videochat.media.sample import check_policy, check_size, parse_fps_policy, sample_window


@dataclass
class VideoClip:
    """Sampled frames of a video, CLIP-normalised, with where they came from."""

    pixels: torch.Tensor  # (T, 3, size, size) float32
    indices: list[int]  # frame index of each sampled frame in the stream
    timestamps: list[float]  # seconds from the stream start, from each decoded frame's pts
    fps: float
    duration: float  # seconds
    num_frames_total: int
    width: int  # displayed size (after the stream's rotation, if any)
    height: int
    codec: str
    source_name: str
    message: str  # "The video contains T frames sampled at ... seconds." (original demo format)
    count_source: str = "header"  # how num_frames_total was found: header, scan or estimate

    kind = "video"


@dataclass
class ImageClip:
    """A still image, resized to size x size and CLIP-normalised."""

    pixels: torch.Tensor  # (1, 3, size, size) float32
    width: int
    height: int
    source_name: str
    format: str  # Pillow's format name, e.g. "JPEG", "PNG", "WEBP"

    kind = "image"


@dataclass(frozen=True)
class VideoRequest:
    """How to sample a video: the loaders' arguments, validated once and passed down as one."""

    num_frames: int
    sampling: str
    start: float | None
    end: float | None
    size: int
    limits: MediaLimits
    rng: random.Random | None

    def __post_init__(self) -> None:
        check_policy(self.sampling)
        check_size(self.size)

    def check_count(self, source_name: str) -> None:
        """Refuse a frame count over the cap before anything is opened (fps: after sampling)."""
        if parse_fps_policy(self.sampling) is None:
            self.limits.check_sampled(source_name, self.num_frames)

    def indices(self, source_name: str, num_frames_total: int, fps: float) -> list[int]:
        """The sampled frame indices for a stream of this length and rate, within the caps."""
        picked = sample_window(
            self.sampling, num_frames_total, self.num_frames, fps, self.start, self.end, self.rng
        )
        self.limits.check_sampled(source_name, len(picked))
        return picked
