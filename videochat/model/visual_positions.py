"""Position codes on the tokens the Q-Former reads (our addition; off in the original presets).

Why: the ViT's own position embeddings start at std 0.02 and stay small beside the content (norm
about 0.8 against 43 in the embedded model), a share `ln_vision` keeps, so the Q-Former's rows
hardly know where in the frame, or when, the tokens they read were. A row that finds an object
then cannot tell where it went: the committed embedded model's per-shape rows give the
first-to-last-frame displacement at r = 0.65 and its motion direction at the base rate. These
codes are added after `ln_vision`, where they reach the cross-attention's keys and values at a
fixed scale, and start as sines and cosines of the patch's column, its row and the frame's index
in separate quarters of the channels, so a weighted average over the tokens of an object is a
near-linear code of where it was while a row read it (400 more clip steps on that model: r = 0.98
with them, 0.76 without). They are learnable; the ViT is left as it was.

With `times` (`QFormerConfig.input_times`), `time_codes` gives each token a fixed code of its
frame's timestamp in seconds (sines of seconds / `TIME_HORIZON` in the fourth quarter), the time
the timestamp message names in text: the frame index alone cannot tell a row when something
happened, as clips differ in length (the embedded model's videos last 4-12 s, its 8 frames
spread over them all). The model adds these to the cross-attention's values only, so a row that
follows an object averages the times of the frames it was seen in, and where it looks does not
depend on the clip's timing. Added to the tokens (keys and values), they cost the vision stage
its basic facts (patch shape 86.7 → 70.5%, colour per frame 96.3 → 86.1%, count 81 → 69%).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

TIME_HORIZON = 16.0  # seconds over which the lowest time frequency turns a quarter (monotonic)


def sines(values: Tensor, channels: int) -> Tensor:
    """values (..., K) in [0, 1] → (..., K, channels): sin and cos at frequencies
    1..channels/2 of a quarter turn, so the lowest one is monotonic over the whole range."""
    freqs = torch.arange(channels // 2, dtype=torch.float32, device=values.device) + 1
    angles = values[..., None].float() * freqs * (math.pi / 2)  # (..., K, channels/2)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class VisualPositions(nn.Module):
    """Adds a spatial code per token of a frame (none for its cls token) and a temporal code per
    frame to `ln_vision`'s output; the trailing GMHRA token (if any) gets none."""

    def __init__(
        self, width: int, grid: int, max_frames: int, amplitude: float = 1.0, times: bool = False
    ) -> None:
        super().__init__()
        self.grid, self.amplitude, self.times = grid, amplitude, times
        self.spatial = nn.Parameter(torch.zeros(grid * grid + 1, width))  # cls, then patches
        self.temporal = nn.Parameter(torch.zeros(max_frames, width))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Column, row and frame codes in channel quarters 1, 2 and 3; quarter 4 left at zero."""
        quarter = self.spatial.shape[1] // 4
        centres = (torch.arange(self.grid, dtype=torch.float32) + 0.5) / self.grid
        rows, cols = torch.meshgrid(centres, centres, indexing="ij")  # row-major like the ViT
        self.spatial.zero_()
        self.spatial[1:, :quarter] = sines(cols.flatten(), quarter)
        self.spatial[1:, quarter : 2 * quarter] = sines(rows.flatten(), quarter)
        frames = self.temporal.shape[0]
        self.temporal.zero_()
        steps = torch.arange(frames, dtype=torch.float32) / max(frames - 1, 1)
        self.temporal[:, 2 * quarter : 3 * quarter] = sines(steps, quarter)
        self.spatial.mul_(self.amplitude)
        self.temporal.mul_(self.amplitude)

    def forward(self, tokens: Tensor, frames: int) -> Tensor:
        """tokens: (B, frames·(N+1) [+ 1], D), frame-major as `VisionEncoder` returns them."""
        if frames > self.temporal.shape[0]:
            raise ValueError(
                f"visual positions hold {self.temporal.shape[0]} frames, the clip has {frames} "
                "(VisionConfig.max_frames); sample fewer frames."
            )
        codes = self.spatial[None] + self.temporal[:frames, None]  # (frames, N+1, D)
        codes = codes.flatten(0, 1).to(tokens.dtype)  # (frames·(N+1), D)
        return tokens + self._with_gmhra_slot(codes, tokens, frames)

    def _with_gmhra_slot(self, codes: Tensor, tokens: Tensor, frames: int) -> Tensor:
        """codes (…, frames·(N+1), D) + a zero code for the trailing GMHRA token, if any."""
        per_frame = self.spatial.shape[0]
        extra = tokens.shape[1] - frames * per_frame
        if extra not in (0, 1):
            raise ValueError(
                f"visual positions: {tokens.shape[1]} tokens do not fit {frames} frames of "
                f"{per_frame} (+ 1 GMHRA token)"
            )
        if extra:  # (…, L, D) → (…, L + 1, D)
            codes = torch.cat([codes, codes.new_zeros(*codes.shape[:-2], 1, codes.shape[-1])], -2)
        return codes

    def time_codes(self, tokens: Tensor, frames: int, times: Tensor | None) -> Tensor:
        """(B, L, D) like `tokens`: each frame's seconds code on all its tokens (quarter 4;
        none on the GMHRA token). times: (B, frames) seconds, needed for a video; a single frame
        without them (an image) is at 0 s."""
        batch, width = tokens.shape[0], tokens.shape[-1]
        if times is None:
            if frames > 1:
                raise ValueError(
                    "this model reads each frame's timestamp (QFormerConfig.input_times): pass "
                    "the clip's timestamps in seconds (encode_video(pixels, times=...))"
                )
            times = tokens.new_zeros(batch, 1)
        if tuple(times.shape) != (batch, frames):
            raise ValueError(
                f"times must be (batch, frames) = {(batch, frames)}, got {tuple(times.shape)}"
            )
        quarter = width // 4
        code = sines(times.to(tokens.device) / TIME_HORIZON, quarter) * self.amplitude  # (B, T, q)
        code = F.pad(code, (width - quarter, 0))  # (B, T, D): the fourth quarter only
        per_frame = code[:, :, None].expand(-1, -1, self.spatial.shape[0], -1)  # every token
        return self._with_gmhra_slot(per_frame.flatten(1, 2), tokens, frames).to(tokens.dtype)
