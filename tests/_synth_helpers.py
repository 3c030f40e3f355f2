"""Shared helpers for the synth tests: decode frames and read colours back from pixels."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from videochat.synth.vocab import COLOURS


def decode_frames(path: str | Path) -> list[np.ndarray]:
    """Every frame of a video as (H, W, 3) uint8."""
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def colours_in_frame(rgb: np.ndarray, min_pixels: int = 40, tol: float = 60.0) -> set[str]:
    """Palette colours present in a frame: at least `min_pixels` pixels within `tol` (RGB)."""
    pix = rgb.reshape(-1, 3).astype(np.float32)  # (H*W, 3)
    names = list(COLOURS)
    pal = np.array([COLOURS[n] for n in names], dtype=np.float32)  # (K, 3)
    dist = np.linalg.norm(pix[:, None, :] - pal[None, :, :], axis=-1)  # (H*W, K)
    nearest, best = dist.argmin(axis=1), dist.min(axis=1)
    counts = np.bincount(nearest[best < tol], minlength=len(names))
    return {names[k] for k in np.flatnonzero(counts >= min_pixels)}
