"""Packed batches: a padded batch's samples laid end to end in fewer rows, their common start
computed once a row.

Why: the embedded model's stage-0 batches are about 30% padding, and their first 54 positions
(the bos row, the system text, the video marker) are the same in every sample; an LLM step's time
on the CPU grows with the positions it computes, and packed a stage-0 batch has 0.72x of them
(0.87x the step time over 40 steps; `benchmarks/packing.py`, where the drill's batches, which
share one position, ran slower packed). Over longer runs packed steps slow down as the
process's memory grows: 1.18x the padded step time over 200 steps, and in whole embedded
builds stage 0 and the stages after it ran 1.2-1.3x slower with it (docs/embedded-experiments.md,
sessions 43-44).

Exact: every sample's tokens attend to what they attended to in the padded layout (the common
start, then their own earlier tokens) at the same position ids, so each token's output and the
loss are the padded batch's; only the order of floating-point sums moves.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from videochat.train.labels import IGNORE_INDEX, LLMInputs

PREFIX, PAD = -1, -2  # segment ids of the shared start and of padding; samples are 0, 1, …
ROW_SCALE = 2  # a packed row's own positions: at most this many times the padded batch's


@dataclass
class PackedInputs:
    """What the LLM receives for one packed batch (R rows, R <= the batch's samples)."""

    inputs_embeds: torch.Tensor  # (R, L, D)
    attention_mask: torch.Tensor  # (R, 1, L, L) bool, True where a query may attend a key
    position_ids: torch.Tensor  # (R, L) int64
    labels: torch.Tensor  # (R, L) int64, IGNORE_INDEX where no loss
    segments: torch.Tensor  # (R, L) int64: the sample of each position, PREFIX or PAD


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


def _fill_rows(lengths: list[int], capacity: int) -> list[list[int]]:
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
    """Pack a right-padded batch: each row is the shared start once, then whole samples' own
    positions, at most `ROW_SCALE` times the padded batch's own positions a row."""
    embeds, mask, labels = inputs.inputs_embeds, inputs.attention_mask, inputs.labels
    width = embeds.shape[1]  # embeds: (B, L, D)
    start = shared_prefix_length(inputs)
    own = [int(n) - start for n in mask.sum(dim=1)]  # each sample's positions after the start
    # rows twice as long as the padded batch's: fewer rows recompute the start, and the
    # attention's cost (quadratic in the row) stays small (measured on stage 0: 1x, 1.5x, 2x,
    # 3x, 4x gave 0.230, 0.188, 0.181, 0.195, 0.232 s a step; padded 0.261)
    rows = _fill_rows(own, ROW_SCALE * (width - start))
    length = start + max(sum(own[i] for i in row) for row in rows)
    device = embeds.device
    packed = embeds[:1, :1].expand(len(rows), length, -1).clone()  # pad rows: any real vector
    packed[:, :start] = embeds[0, :start]
    positions = torch.zeros(len(rows), length, dtype=torch.long, device=device)
    positions[:, :start] = torch.arange(start, device=device)
    packed_labels = torch.full_like(positions, IGNORE_INDEX)
    segments = torch.full_like(positions, PAD)
    segments[:, :start] = PREFIX
    for r, row in enumerate(rows):
        at = start
        for i in row:
            span = slice(at, at + own[i])
            packed[r, span] = embeds[i, start : start + own[i]]
            positions[r, span] = torch.arange(start, start + own[i], device=device)
            packed_labels[r, span] = labels[i, start : start + own[i]]
            segments[r, span] = i
            at += own[i]
    return PackedInputs(packed, _segment_mask(segments), positions, packed_labels, segments)


def _segment_mask(segments: torch.Tensor) -> torch.Tensor:
    """(R, L) segment ids -> (R, 1, L, L): causal, within a segment or onto the shared start.
    The diagonal is always allowed, so no query (padding included) attends to nothing."""
    length = segments.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool, device=segments.device).tril()
    same = segments[:, :, None] == segments[:, None, :]  # (R, L, L)
    onto_start = (segments == PREFIX)[:, None, :]  # (R, 1, L)
    return (causal & (same | onto_start))[:, None]  # (R, 1, L, L)
