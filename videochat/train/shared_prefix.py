"""Run a padded batch's common start through the decoder once instead of once per row.

Stage 0's rows begin with the same 54 positions (bos, the system text, the video marker). Under
causal attention a position sees only the positions before it, so those 54 hidden states are the
same in every row: the decoder can compute them for one row, hand their keys and values to every
row through its KV cache and run each row's own positions after them. The loss and gradients are
the full batch's (the cache's keys and values are repeated, so their gradients sum over the rows,
as the rows' own copies would). An embedded 2-layer stage-0 step (16 padded rows of about 250
positions, 54 of them shared) takes 0.78-0.90x the time on a small set
(`benchmarks/llm_switch.py shared_prefix`); with compiled layers as well, 0.72x on a build's own
stage-0 data in a fresh process (session 48).
"""

from __future__ import annotations

import torch
from torch import nn

from videochat.chat.generate import cache_keyword, output_cache

# below this many shared positions a second decoder call costs more than it saves (the drill's
# rows share only bos)
MIN_SHARED = 8


def shared_prefix_length(inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> int:
    """How many leading positions every row holds alike and attends to.

    inputs_embeds: (B, L, D); attention_mask: (B, L), 1 where a position is real. Counted to the
    first position where some row differs or is masked; 0 for a batch of one row."""
    if inputs_embeds.shape[0] < 2:
        return 0
    alike = (inputs_embeds == inputs_embeds[:1]).all(-1).all(0)  # (L,)
    alike &= attention_mask.bool().all(0)
    return int(alike.long().cumprod(0).sum())


def can_share(decoder: nn.Module) -> bool:
    """Whether `decoder` keeps a KV cache in training: not with gradient checkpointing, under
    which transformers turns the cache off (the rows then run whole)."""
    return not getattr(decoder, "gradient_checkpointing", False)


def decode_with_shared_prefix(
    decoder: nn.Module, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, shared: int
) -> torch.Tensor:
    """The decoder's last hidden states (B, L, D) of a right-padded batch whose first `shared`
    positions are the same in every row (`shared_prefix_length`), that start computed once."""
    rows, width = inputs_embeds.shape[:2]
    shared = min(shared, width - 1)  # rows alike to the end still run their last position
    start = decoder(inputs_embeds=inputs_embeds[:1, :shared], use_cache=True)
    cache = output_cache(start)
    cache.batch_repeat_interleave(rows)  # (1, H, P, d) keys and values → (B, H, P, d)
    rest = decoder(
        inputs_embeds=inputs_embeds[:, shared:],  # (B, L - P, D)
        attention_mask=attention_mask,  # (B, L): the cached start and each row's own positions
        use_cache=True,
        **{cache_keyword(decoder): cache},
    ).last_hidden_state
    head = start.last_hidden_state.expand(rows, -1, -1)  # (B, P, D)
    return torch.cat([head, rest], dim=1)  # (B, L, D)
