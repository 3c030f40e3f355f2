"""Changes a build makes to a saved model between its training stages, and the final export.

Each reads one stage's export and writes a new folder, so a stopped build resumes from it:
the frame stamps switched on (`stamp_rows`), the option-time or decimal tokens added
(`time_token_rows`, `decimal_token_rows`),
the chat-ready copy at the end (`finish`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from videochat.embedded.config import NUM_FRAMES

if TYPE_CHECKING:
    from collections.abc import Callable

    from videochat.model.videochat import VideoChat


def _altered(source: Path, target: Path, alter: Callable[[VideoChat], object]) -> Path:
    """`source` changed by `alter` between stages, saved as `target` (kept when it exists:
    a resumed build)."""
    from videochat.model import load_model, save_model

    if (target / "config.json").is_file():
        return target
    model = load_model(source, device="cpu", dtype="fp32")
    alter(model)
    save_model(model, target)
    return target


def stamp_rows(source: Path, target: Path) -> Path:
    """`source` with `config.frame_stamps` on, saved as `target` (no weight changes: the stamps
    are token embeddings the LLM already has). Why late only: b32, with the stamps from the
    start, lost the colour lookup (65%) and its open answers ran on past the stamp's ".", while
    b1's LLM, trained without them, learnt event time from them in 300 steps (61%; session 32,
    docs/embedded-experiments.md)."""
    return _altered(source, target, lambda model: setattr(model.config, "frame_stamps", True))


def time_token_rows(source: Path, target: Path) -> Path:
    """`source` with `time_tokens.TIME_TOKENS` added (tokenizer and LLM rows), saved as `target`:
    before the first LLM stage (`time_tokens`) or the first late stage (`late_time_tokens`)."""
    from videochat.embedded.time_tokens import add_time_tokens

    return _altered(source, target, add_time_tokens)


def decimal_token_rows(source: Path, target: Path) -> Path:
    """`source` with `time_tokens.DECIMAL_TOKENS` added, saved as `target`: before the first
    late stage (`late_decimal_tokens`)."""
    from videochat.embedded.time_tokens import add_decimal_tokens

    return _altered(source, target, add_decimal_tokens)


def finish(source: Path, target: Path) -> Path:
    """Copy the last stage into the final directory with chat-ready BOS (see `align_bos`)."""
    from videochat.model import load_model, save_model

    model = load_model(source, device="cpu", dtype="fp32")
    align_bos(model)
    model.config.num_frames = NUM_FRAMES
    save_model(model, target)
    return target


def align_bos(model: VideoChat) -> None:
    """Make embed(BOS) equal the row stage-2 training puts first (every channel = bos id).

    The original's stage 2 feeds the constant `bos_token_id` as an embedding row while chat embeds
    the BOS token; BOS never appears as an input id in training, so its own row is free to match.
    """
    bos = model.tokenizer.bos_token_id
    table = model.llm.get_input_embeddings()
    with torch.no_grad():
        table.weight[bos].fill_(float(bos))
