"""Packed batches: a padded batch's samples laid end to end in fewer rows, their common start
computed once a batch.

Why: the embedded model's stage-0 batches are about a third padding, and their first 54
positions (the bos row, the system text, the video marker) are the same in every sample; an LLM
step's time on the CPU grows with the positions it computes and, through attention, with the
square of a row's length. Packed, the common start runs once (its keys and values then serve
every row through the LLM's cache) and each row holds whole samples' own positions
(`benchmarks/packing.py`).

Exact: every sample's tokens attend to what they attended to in the padded layout (the common
start, then their own earlier tokens) at the same position ids, so each token's output and the
loss are the padded batch's; only the order of floating-point sums moves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from videochat.model.kv_cache import prefix_cache
from videochat.train.labels import IGNORE_INDEX, LLMInputs

PAD = -1  # the segment id of padding; samples are 0, 1, …
ROW_SCALE = 1.5  # a packed row's own positions: at most this many times the padded batch's


@dataclass
class PackedInputs:
    """What the LLM receives for one packed batch: the common start (P positions), then R rows
    of samples' own positions (R <= the batch's samples), each attending to the start."""

    start_embeds: torch.Tensor  # (1, P, D), P >= 0
    inputs_embeds: torch.Tensor  # (R, L, D)
    attention_mask: torch.Tensor  # (R, 1, L, P + L) bool, True where a query may attend a key
    position_ids: torch.Tensor  # (R, L) int64, P onwards
    labels: torch.Tensor  # (R, L) int64, IGNORE_INDEX where no loss
    segments: torch.Tensor  # (R, L) int64: the sample of each position, or PAD


def shared_prefix_length(inputs: LLMInputs) -> int:
    """How many leading positions every sample shares: the same embedding, unmasked, no label;
    also the next position carries no label, so no sample's first target is predicted from
    another sample's tokens once packed."""
    embeds, labels = inputs.inputs_embeds, inputs.labels  # (B, L, D), (B, L)
    same = (embeds == embeds[:1]).all(dim=-1).all(dim=0)  # (L,)
    shareable = same & inputs.attention_mask.bool().all(dim=0) & (labels == IGNORE_INDEX).all(0)
    length = int(shareable.long().cumprod(dim=0).sum())
    real = int(inputs.attention_mask.sum(dim=1).min())
    length = min(length, real - 1)  # every sample keeps at least one position of its own
    while length > 0 and (labels[:, length] != IGNORE_INDEX).any():
        length -= 1
    return length


def _fill_rows(lengths: list[int], capacity: float) -> list[list[int]]:
    """First-fit decreasing: sample indices per row, each row's lengths summing to <= capacity."""
    rows: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        row = next((r for r, free in enumerate(room) if free >= lengths[i]), None)
        if row is None:
            rows.append([])
            room.append(capacity)
            row = len(rows) - 1
        rows[row].append(i)
        room[row] -= lengths[i]
    return [sorted(r) for r in rows]


def pack(inputs: LLMInputs) -> PackedInputs:
    """Pack a right-padded batch: its shared start once, then rows of whole samples' own
    positions, at most `ROW_SCALE` times the padded batch's own width a row."""
    embeds, mask, labels = inputs.inputs_embeds, inputs.attention_mask, inputs.labels
    width = embeds.shape[1]  # embeds: (B, L, D)
    start = shared_prefix_length(inputs)
    own = [int(n) - start for n in mask.sum(dim=1)]  # each sample's positions after the start
    # rows 1.5x the padded batch's own part: narrower rows leave more padding, wider ones add
    # attention between samples that the mask then throws away (b51's stage 0, 60 steps, bf16:
    # 1x, 1.5x, 2x, 3x gave 0.282, 0.266, 0.311, 0.346 s a step)
    rows = _fill_rows(own, ROW_SCALE * (width - start))
    length = max(sum(own[i] for i in row) for row in rows)
    device = embeds.device
    packed = embeds[:1, :1].expand(len(rows), length, -1).clone()  # pad rows: any real vector
    positions = torch.full((len(rows), length), start, dtype=torch.long, device=device)
    packed_labels = torch.full_like(positions, IGNORE_INDEX)
    segments = torch.full_like(positions, PAD)
    for r, row in enumerate(rows):
        at = 0
        for i in row:
            span = slice(at, at + own[i])
            packed[r, span] = embeds[i, start : start + own[i]]
            positions[r, span] = torch.arange(start, start + own[i], device=device)
            packed_labels[r, span] = labels[i, start : start + own[i]]
            segments[r, span] = i
            at += own[i]
    attend = _segment_mask(segments)  # (R, 1, L, L)
    onto_start = attend.new_ones(len(rows), 1, length, start)  # every query sees the start
    return PackedInputs(
        start_embeds=embeds[:1, :start],
        inputs_embeds=packed,
        attention_mask=torch.cat([onto_start, attend], dim=-1),
        position_ids=positions,
        labels=packed_labels,
        segments=segments,
    )


def start_cache(llm: Any, packed: PackedInputs) -> Any:
    """The shared start's keys and values in every layer of `llm` (a transformers causal LM),
    computed once and repeated for each packed row; None for an empty start."""
    if packed.start_embeds.shape[1] == 0:
        return None
    return prefix_cache(llm, packed.start_embeds, packed.inputs_embeds.shape[0])[1]


def _segment_mask(segments: torch.Tensor) -> torch.Tensor:
    """(R, L) segment ids -> (R, 1, L, L): causal, within a segment. The diagonal is always
    allowed, so no query (padding included) attends to nothing."""
    length = segments.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool, device=segments.device).tril()
    same = segments[:, :, None] == segments[:, None, :]  # (R, L, L)
    return (causal & same)[:, None]  # (R, 1, L, L)
