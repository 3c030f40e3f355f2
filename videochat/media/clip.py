"""What the loaders return: model-ready pixels plus the facts a user or prompt needs about them."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class VideoClip:
    """Sampled frames of a video, CLIP-normalised, with where they came from."""

    pixels: torch.Tensor  # (T, 3, size, size) float32
    indices: list[int]  # frame index of each sampled frame in the stream
    timestamps: list[float]  # seconds from the stream start, from each decoded frame's pts
    fps: float
    duration: float  # seconds
    num_frames_total: int
    width: int
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
