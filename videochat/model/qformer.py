"""BLIP-2 Q-Former, query path only (DESIGN.md §1.3), written compactly on SDPA.

VideoChat never feeds text through the Q-Former, so only what the 32+64 learnable queries touch is
built: LayerNorm on the query embeddings (no position embeddings), post-LN BERT blocks with
self-attention, cross-attention to the vision tokens every `cross_attention_freq` layers (from 0)
and the query feed-forward (`intermediate_query` / `output_query` in the original). Dropout is
omitted: the original always runs the Q-Former frozen in eval mode.

Masks follow the original: the (all-ones) self-attention mask would add -10000, the encoder mask
adds `finfo(dtype).min` at padded vision tokens.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from videochat.model.config import QFormerConfig


class QFormerAttention(nn.Module):
    """Multi-head attention + output projection + residual + post-LayerNorm (a BERT sub-block)."""

    def __init__(self, width: int, context_width: int, heads: int, eps: float) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"Q-Former width {width} is not divisible by {heads} heads")
        self.heads = heads
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(context_width, width)
        self.value = nn.Linear(context_width, width)
        self.out = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width, eps=eps)

    def _split(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        return x.view(b, n, self.heads, c // self.heads).transpose(1, 2)  # (B, H, N, C/H)

    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        bias: Tensor | None = None,
        value_context: Tensor | None = None,
        value_rows: Tensor | None = None,
    ) -> Tensor:
        """x: (B, Q, C); context: (B, N, Cc) or None for self-attention; bias: additive,
        broadcastable to (B, heads, Q, N); value_context: (B, N, Cc) the values are computed
        from instead of `context` (the keys still are: what a token says, not where attention
        goes); value_rows: (Q,) bool, the rows that read `value_context` (the others read
        `context`'s values); None: all of them."""
        context = x if context is None else context
        valued = context if value_context is None else value_context
        q, k, v = (
            self._split(self.query(x)),
            self._split(self.key(context)),
            self._split(self.value(valued)),
        )
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # (B, H, Q, C/H)
        if value_rows is not None and value_context is not None:
            plain = self._split(self.value(context))
            plain_attn = F.scaled_dot_product_attention(q, k, plain, attn_mask=bias)
            attn = torch.where(value_rows.to(attn.device)[:, None], attn, plain_attn)
        attn = attn.transpose(1, 2).reshape(x.shape)  # (B, Q, C)
        return self.norm(self.out(attn) + x)


class QFormerLayer(nn.Module):
    """One post-LN BERT block as the queries see it: self-attn, optional cross-attn, FFN."""

    def __init__(self, cfg: QFormerConfig, cross_attention: bool) -> None:
        super().__init__()
        eps = cfg.layer_norm_eps
        self.self_attn = QFormerAttention(cfg.width, cfg.width, cfg.heads, eps)
        self.cross_attn = (
            QFormerAttention(cfg.width, cfg.vision_width, cfg.heads, eps)
            if cross_attention
            else None
        )
        self.fc1 = nn.Linear(cfg.width, cfg.ffn)
        self.fc2 = nn.Linear(cfg.ffn, cfg.width)
        self.ffn_norm = nn.LayerNorm(cfg.width, eps=eps)

    def forward(
        self,
        x: Tensor,
        vision: Tensor,
        vision_bias: Tensor | None,
        vision_values: Tensor | None = None,
        value_rows: Tensor | None = None,
    ) -> Tensor:
        x = self.self_attn(x)  # (B, Q, C)
        if self.cross_attn is not None:
            x = self.cross_attn(x, vision, vision_bias, vision_values, value_rows)  # (B, Q, C)
        return self.ffn_norm(self.fc2(F.gelu(self.fc1(x))) + x)


class QFormer(nn.Module):
    """Queries (B, Q, C) attend to vision tokens (B, N, Cv) → (B, Q, C) (`last_hidden_state`)."""

    def __init__(self, cfg: QFormerConfig) -> None:
        super().__init__()
        self.config = cfg
        self.norm = nn.LayerNorm(cfg.width, eps=cfg.layer_norm_eps)
        self.layers = nn.ModuleList(
            QFormerLayer(cfg, cross_attention=i % cfg.cross_attention_freq == 0)
            for i in range(cfg.layers)
        )

    def forward(
        self,
        queries: Tensor,
        vision: Tensor,
        vision_mask: Tensor | None = None,
        query_mask: Tensor | None = None,
        value_codes: Tensor | None = None,
        value_rows: Tensor | None = None,
    ) -> Tensor:
        """vision_mask: (B, N) with 1 = attend, 0 = padding; None = attend to every token.
        query_mask: (Q, N) bool, which tokens each query row may read (`query_row_mask`).
        value_codes: (B, N, Cv) added to the tokens' values only (`QFormerAttention`), for the
        rows `value_rows` (Q,) bool marks (None: every row)."""
        x = self.norm(queries)  # (B, Q, C)
        vision = vision.to(x.dtype)
        # the codes join the values once here, not in every layer
        values = None if value_codes is None else vision + value_codes.to(x.dtype)  # (B, N, Cv)
        bias = None
        if vision_mask is not None:
            keep = vision_mask.to(dtype=x.dtype, device=x.device)[:, None, None, :]  # (B, 1, 1, N)
            bias = (1.0 - keep) * torch.finfo(x.dtype).min
        if query_mask is not None:
            blocked = torch.zeros(query_mask.shape, dtype=x.dtype, device=x.device)
            blocked.masked_fill_(~query_mask.to(x.device), torch.finfo(x.dtype).min)  # (Q, N)
            bias = blocked if bias is None else (bias + blocked).clamp(min=torch.finfo(x.dtype).min)
        for layer in self.layers:
            x = layer(x, vision, bias, values, value_rows)
        return x


def stretch_span(k: int, stretches: int, frames: int) -> tuple[int, int]:
    """The frames [first, last) that stretch k of `stretches` reads (at least one)."""
    first = k * frames // stretches
    return first, max(first + 1, (k + 1) * frames // stretches)


def query_row_mask(cfg: QFormerConfig, frames: int, per_frame: int, tokens: int) -> Tensor:
    """(Q, N) bool: which of the N vision tokens each query row reads. Each group of
    `cfg.row_groups()` splits its rows into blocks of consecutive rows and the frames into as
    many consecutive stretches, block k reading stretch k (the frame rows: 8 rows, 8 frames, one
    frame a row; 1 frame: all read it), a frame row also the `cfg.frame_row_lookback` frames
    before its stretch; every other row reads all tokens. The vision tokens are frame-major,
    `per_frame` a frame (its cls + patches), then any tokens after the frames (the GMHRA
    token), which the grouped rows do not read."""
    rows = cfg.num_query_tokens + cfg.num_extra_query_tokens
    mask = torch.ones(rows, tokens, dtype=torch.bool)
    for start, count, stretches in cfg.row_groups():
        block = count // stretches
        # the frame rows' group (no other group starts there: groups may not overlap)
        back = cfg.frame_row_lookback if cfg.frame_rows and start == cfg.frame_rows_start else 0
        for k in range(stretches):
            first, last = stretch_span(k, stretches, frames)
            first = max(0, first - back)
            rows_k = mask[start + k * block : start + (k + 1) * block]
            rows_k[:] = False
            rows_k[:, first * per_frame : last * per_frame] = True
    return mask


class FP32LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 whatever the input dtype (the original `ln_vision`)."""

    def forward(self, x: Tensor) -> Tensor:
        weight = None if self.weight is None else self.weight.float()
        bias = None if self.bias is None else self.bias.float()
        out = F.layer_norm(x.float(), self.normalized_shape, weight, bias, self.eps)
        return out.to(x.dtype)
