"""Resize / crop / normalise exactly as the original (torchvision 0.14 on PIL images, bicubic).

Video frames: shorter side -> ``size`` (longer side ``int(size * long / short)``), centre crop with
``round()`` offsets. Images: resize to ``size x size`` (no aspect kept). Both: /255, CLIP mean/std.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def resize_shorter_side(image: Image.Image, size: int) -> Image.Image:
    """Scale so the shorter side is ``size``; the longer side is truncated like torchvision 0.14."""
    width, height = image.size
    short, long = (width, height) if width <= height else (height, width)
    new_long = int(size * long / short)
    new_size = (size, new_long) if width <= height else (new_long, size)
    if new_size == image.size:
        return image
    return image.resize(new_size, Image.Resampling.BICUBIC)


def center_crop(image: Image.Image, size: int) -> Image.Image:
    """Centre ``size x size`` crop with torchvision's ``int(round(...))`` offsets."""
    width, height = image.size
    top = int(round((height - size) / 2.0))
    left = int(round((width - size) / 2.0))
    return image.crop((left, top, left + size, top + size))


def video_frame_view(image: Image.Image, size: int) -> Image.Image:
    """What the model sees of one video frame, before normalisation (uint8 RGB, size x size)."""
    return center_crop(resize_shorter_side(image, size), size)


def image_view(image: Image.Image, size: int) -> Image.Image:
    """What the model sees of a still image, before normalisation (squashed to size x size)."""
    if image.size == (size, size):
        return image
    return image.resize((size, size), Image.Resampling.BICUBIC)


def normalize(views: list[Image.Image]) -> torch.Tensor:
    """uint8 RGB views -> CLIP-normalised float32 tensor [T, 3, H, W]."""
    stacked = np.stack([np.asarray(v.convert("RGB"), dtype=np.uint8) for v in views])  # (T,H,W,3)
    return normalize_frames(stacked)


def normalize_frames(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) uint8 RGB frames that are already the model's view -> CLIP-normalised
    float32 tensor [T, 3, H, W]."""
    pixels = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(255)  # (T, 3, H, W)
    mean = torch.tensor(CLIP_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=torch.float32).view(1, 3, 1, 1)
    return (pixels - mean) / std


def denormalize(pixels: torch.Tensor) -> torch.Tensor:
    """Invert :func:`normalize`: [T, 3, H, W] float -> uint8 [T, H, W, 3] (exact for our outputs)."""
    mean = torch.tensor(CLIP_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=torch.float32).view(1, 3, 1, 1)
    values = (pixels.float() * std + mean).mul(255).round().clamp(0, 255)  # (T, 3, H, W)
    return values.to(torch.uint8).permute(0, 2, 3, 1).contiguous()  # (T, H, W, 3)
