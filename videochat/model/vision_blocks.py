"""Building blocks of the video encoder: EVA attention/MLP blocks and the UniFormerV2 temporal modules.

Attribute names mirror the original `visual_encoder.*` state-dict keys (`attn.qkv`, `attn.q_bias`,
`lmhra1.pos_embed.0`, `gmhra.J.ln_3`, ...) so original checkpoints load without renaming.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from videochat.model.config import VisionConfig


def drop_path(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Stochastic depth: drop the whole residual branch per sample (identity at inference)."""
    if rate == 0.0 or not training:
        return x
    keep = 1.0 - rate
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)  # (B, 1, ..., 1)
    return x * mask / keep


def frame_grid(tokens: torch.Tensor, frames: int) -> torch.Tensor:
    """Patch tokens of all frames as a video volume, for the 3-D convolutions of LMHRA/GMHRA.

    (B·T, 1+N, C) → (B, C, T, H, W); the frame cls token (index 0) is left out.
    """
    bt, n1, c = tokens.shape
    side = math.isqrt(n1 - 1)
    grid = tokens[:, 1:].reshape(bt // frames, frames, side, side, c)  # (B, T, H, W, C)
    return grid.permute(0, 4, 1, 2, 3)  # (B, C, T, H, W)


def grid_to_tokens(grid: torch.Tensor) -> torch.Tensor:
    """Inverse of `frame_grid` without the cls token: (B, C, T, H, W) → (B·T, H·W, C)."""
    b, c, t, h, w = grid.shape
    return grid.permute(0, 2, 3, 4, 1).reshape(b * t, h * w, c)  # (B·T, HW, C)


class EvaAttention(nn.Module):
    """EVA self-attention: one qkv matrix, separate q/v biases and no k bias."""

    def __init__(self, dim: int, heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim)) if qkv_bias else None
        self.v_bias = nn.Parameter(torch.zeros(dim)) if qkv_bias else None
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None
        if self.q_bias is not None:
            bias = torch.cat((self.q_bias, torch.zeros_like(self.q_bias), self.v_bias))  # (3C,)
        qkv = F.linear(x, self.qkv.weight, bias)  # (B, N, 3C)
        q, k, v = qkv.unflatten(-1, (3, self.heads, -1)).permute(2, 0, 3, 1, 4)  # 3×(B, h, N, d)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, h, N, d), scale d^-0.5
        return self.proj(out.transpose(1, 2).flatten(2))  # (B, N, C)


class Mlp(nn.Module):
    """Transformer feed-forward: fc1 → GELU → fc2."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class LocalMHRA(nn.Module):
    """Local temporal relation aggregator: a bottlenecked depthwise temporal conv on the patch grid."""

    def __init__(self, dim: int, reduction: float) -> None:
        super().__init__()
        inner = int(dim // reduction)
        self.pos_embed = nn.Sequential(
            nn.BatchNorm3d(dim),
            nn.Conv3d(dim, inner, kernel_size=1),
            nn.Conv3d(inner, inner, kernel_size=(3, 1, 1), padding=(1, 0, 0), groups=inner),
            nn.Conv3d(inner, dim, kernel_size=1),
        )
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """The last conv starts at zero, so a freshly added module is the identity (also called
        by `fresh_init` after the convs' own initialisers)."""
        nn.init.zeros_(self.pos_embed[3].weight)
        nn.init.zeros_(self.pos_embed[3].bias)

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        return self.pos_embed(grid)  # (B, C, T, H, W) → same


class EvaBlock(nn.Module):
    """Pre-LN EVA block, optionally with LMHRA before attention (`lmhra1`) and before the MLP."""

    def __init__(self, cfg: VisionConfig, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        dim = cfg.width
        self.lmhra1 = LocalMHRA(dim, cfg.lmhra_reduction) if cfg.lmhra else None
        self.lmhra2 = (
            LocalMHRA(dim, cfg.lmhra_reduction) if cfg.lmhra and cfg.double_lmhra else None
        )
        self.norm1 = nn.LayerNorm(dim, eps=cfg.layer_norm_eps)
        self.attn = EvaAttention(dim, cfg.heads, cfg.qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=cfg.layer_norm_eps)
        self.mlp = Mlp(dim, int(dim * cfg.mlp_ratio))
        self.drop_path_rate = drop_path_rate

    def _local(self, module: LocalMHRA, x: torch.Tensor, frames: int) -> torch.Tensor:
        grid = frame_grid(x, frames)  # (B, C, T, H, W)
        grid = grid + drop_path(module(grid), self.drop_path_rate, self.training)
        return torch.cat([x[:, :1], grid_to_tokens(grid)], dim=1)  # (B·T, 1+HW, C)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        """x: (B·T, 1+HW, C) tokens of every frame; `frames` = T (LMHRA mixes along it)."""
        rate, training = self.drop_path_rate, self.training
        if self.lmhra1 is not None:
            x = self._local(self.lmhra1, x, frames)
        x = x + drop_path(self.attn(self.norm1(x)), rate, training)
        if self.lmhra2 is not None:
            x = self._local(self.lmhra2, x, frames)
        return x + drop_path(self.mlp(self.norm2(x)), rate, training)


class GlobalMHRA(nn.Module):
    """Global relation aggregator: one query token cross-attends to all tokens of all frames.

    The LayerNorms use PyTorch's default eps (1e-5), as in the original; the ViT's use 1e-6.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.dpe = nn.Conv3d(dim, dim, kernel_size=3, padding=1, groups=dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ln_1 = nn.LayerNorm(dim)
        hidden = round(mlp_ratio * dim)
        self.mlp = nn.Sequential(
            OrderedDict(
                c_fc=nn.Linear(dim, hidden),
                gelu=nn.GELU(),
                dropout=nn.Dropout(dropout),
                c_proj=nn.Linear(hidden, dim),
            )
        )
        self.ln_2 = nn.LayerNorm(dim)
        self.ln_3 = nn.LayerNorm(dim)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """Residual branches start at zero so new modules do not disturb a pretrained ViT."""
        nn.init.zeros_(self.dpe.bias)
        nn.init.xavier_uniform_(self.attn.in_proj_weight)
        nn.init.zeros_(self.attn.out_proj.weight)
        nn.init.zeros_(self.attn.out_proj.bias)
        nn.init.xavier_uniform_(self.mlp.c_fc.weight)
        nn.init.zeros_(self.mlp.c_proj.weight)
        nn.init.zeros_(self.mlp.c_proj.bias)

    def forward(self, query: torch.Tensor, tokens: torch.Tensor, frames: int) -> torch.Tensor:
        """query: (B, 1, C) running token; tokens: (B·T, 1+HW, C) block output → new query."""
        kv = self.ln_3(tokens)  # (B·T, 1+HW, C)
        pos = grid_to_tokens(self.dpe(frame_grid(kv, frames)))  # (B·T, HW, C)
        kv = torch.cat([kv[:, :1], kv[:, 1:] + pos], dim=1)  # dpe only on patch tokens
        kv = kv.reshape(query.shape[0], -1, kv.shape[-1])  # (B, T·(1+HW), C), frame-major
        attended, _ = self.attn(self.ln_1(query), kv, kv, need_weights=False)  # (B, 1, C)
        query = query + attended
        return query + self.mlp(self.ln_2(query))
