"""The video encoder: EVA ViT-g run per frame, with UniFormerV2 GMHRA (and optional LMHRA) modules.

`VisionEncoder(cfg)(video)` maps (B, C, T, H, W) pixels to (B, T'·(N+1) + 1, D): for every frame its
cls token and N patch tokens (frames in order), then one GMHRA token that has read all frames.
Its `state_dict()` uses the original key names, so `visual_encoder.*` weights load 1:1.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from videochat.model.config import VisionConfig
from videochat.model.vision_blocks import EvaBlock, GlobalMHRA


def output_frames(cfg: VisionConfig, frames: int) -> int:
    """Frames left after the patch embedding (the temporal-downsampling conv halves them, rounding up)."""
    return (frames + 1) // 2 if cfg.temporal_downsample else frames


def tokens_per_frame(cfg: VisionConfig) -> int:
    """Tokens the encoder returns for each output frame: its cls token and its patches."""
    return (cfg.image_size // cfg.patch_size) ** 2 + 1


def output_tokens(cfg: VisionConfig, frames: int) -> int:
    """Number of tokens the encoder returns for a clip of `frames` frames."""
    return output_frames(cfg, frames) * tokens_per_frame(cfg) + (1 if cfg.gmhra_layers > 0 else 0)


class PatchEmbed(nn.Module):
    """Conv3d patchifier; with temporal downsampling it also merges neighbouring frames (stride 2).

    With `cfg.conv_stem`, per-frame 3×3 stride-2 convolutions (+ GELU) run first and the
    patchifier covers the remaining patch_size / 2^layers pixels of their output."""

    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        kt, st, pt = (3, 2, 1) if cfg.temporal_downsample else (1, 1, 0)
        channels = [3, *cfg.conv_stem]
        self.stem = nn.ModuleList(
            nn.Conv3d(c_in, c_out, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
            for c_in, c_out in itertools.pairwise(channels)
        )
        p = cfg.patch_size >> len(cfg.conv_stem)
        self.proj = nn.Conv3d(
            channels[-1], cfg.width, (kt, p, p), stride=(st, p, p), padding=(pt, 0, 0)
        )
        self.frame_convs = cfg.frame_convs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.frame_convs:
            return self._per_frame(x)
        for conv in self.stem:  # (B, C, T, H, W) → (B, C', T, H/2, W/2)
            x = nn.functional.gelu(conv(x))
        return self.proj(x)  # (B, C, T, h, w) → (B, D, T', H/p, W/p)

    def _per_frame(self, x: torch.Tensor) -> torch.Tensor:
        """The same convolutions as 2-D ones over the B·T frames (each 3-D kernel spans one
        frame), channels-last: oneDNN's fast layout on CPU."""
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)  # (B·T, C, H, W)
        x = frames.contiguous(memory_format=torch.channels_last)
        for conv in self.stem:  # (B·T, C, H, W) → (B·T, C', H/2, W/2)
            x = nn.functional.gelu(_frame_conv(conv, x))
        x = _frame_conv(self.proj, x)  # (B·T, D, H/p, W/p)
        return x.reshape(b, t, *x.shape[1:]).transpose(1, 2)  # (B, D, T, H/p, W/p)


def _frame_conv(conv: nn.Conv3d, frames: torch.Tensor) -> torch.Tensor:
    """A Conv3d whose kernel is one frame deep, applied to (N, C, H, W) frames as a Conv2d."""
    return nn.functional.conv2d(
        frames, conv.weight[:, :, 0], conv.bias, conv.stride[1:], conv.padding[1:]
    )


class VisionEncoder(nn.Module):
    """EVA ViT-g + GMHRA video encoder (DESIGN.md §1.2). No final norm: `ln_vision` follows it."""

    def __init__(self, cfg: VisionConfig, *, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        _check_config(cfg)
        self.config = cfg
        dim, grid = cfg.width, cfg.image_size // cfg.patch_size
        self.patch_embed = PatchEmbed(cfg)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, dim))
        if cfg.gmhra_layers > 0:
            self.gmhra_cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        if cfg.temporal_pos_embed:
            # Our addition: zero-init, so a model that gains it computes the same function at first.
            self.temporal_embed = nn.Parameter(torch.zeros(1, cfg.max_frames, dim))
        steps = max(cfg.depth - 1, 1)  # stochastic depth rises linearly 0 → rate (meta-safe)
        rates = [drop_path_rate * i / steps for i in range(cfg.depth)]
        self.blocks = nn.ModuleList(EvaBlock(cfg, rate) for rate in rates)
        self.gmhra = nn.ModuleList(
            GlobalMHRA(dim, cfg.heads, cfg.mlp_ratio, cfg.gmhra_dropout)
            for _ in range(cfg.gmhra_layers)
        )
        self.gradient_checkpointing = False
        self._init_weights()

    def _init_weights(self) -> None:
        """The original's random init: small embeddings, residual projections scaled by depth."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        with torch.no_grad():
            for i, block in enumerate(self.blocks, start=1):
                block.attn.proj.weight.div_((2.0 * i) ** 0.5)
                block.mlp.fc2.weight.div_((2.0 * i) ** 0.5)

    def set_gradient_checkpointing(self, enable: bool = True) -> None:
        """Recompute ViT blocks in the backward pass (training saves activation memory)."""
        self.gradient_checkpointing = enable

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """video: (B, 3, T, H, W) normalised pixels → (B, T'·(N+1) [+ 1], D)."""
        self._check_input(video)
        x = self.patch_embed(video)  # (B, D, T', h, w)
        b, d, t = x.shape[:3]
        x = x.flatten(3).permute(0, 2, 3, 1).flatten(0, 1)  # (B·T', N, D)
        x = torch.cat([self.cls_token.expand(b * t, -1, -1), x], dim=1) + self.pos_embed
        if self.config.temporal_pos_embed:
            x = x.unflatten(0, (b, t)) + self.temporal_embed[0, :t, None]  # (B, T', N+1, D)
            x = x.flatten(0, 1)  # (B·T', N+1, D)
        first_gmhra = len(self.blocks) - len(self.gmhra)
        query = self.gmhra_cls_token.expand(b, -1, -1) if len(self.gmhra) else None  # (B, 1, D)
        for i, block in enumerate(self.blocks):
            x = self._run_block(block, x, t)
            if i >= first_gmhra:
                query = self.gmhra[i - first_gmhra](query, x, t)
        x = x.reshape(b, -1, d)  # (B, T'·(N+1), D), frame-major
        return x if query is None else torch.cat([x, query], dim=1)

    def _run_block(self, block: EvaBlock, x: torch.Tensor, frames: int) -> torch.Tensor:
        if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(block, x, frames, use_reentrant=False)
        return block(x, frames)

    def _check_input(self, video: torch.Tensor) -> None:
        cfg = self.config
        size = cfg.image_size
        if video.ndim != 5 or video.shape[1] != 3 or video.shape[-2:] != (size, size):
            raise ValueError(
                f"vision encoder expects pixels (B, 3, T, {size}, {size}) (B, C, T, H, W); got "
                f"{tuple(video.shape)}. Resize frames to the model's image_size first."
            )
        frames = output_frames(cfg, video.shape[2])
        if cfg.temporal_pos_embed and frames > cfg.max_frames:
            raise ValueError(
                f"clip has {frames} frames after patch embedding but the temporal embedding "
                f"holds {cfg.max_frames} (VisionConfig.max_frames); sample fewer frames."
            )


def _check_config(cfg: VisionConfig) -> None:
    """Reject configurations the architecture cannot build, with the field to change."""
    problems = []
    if cfg.image_size % cfg.patch_size:
        problems.append(f"image_size {cfg.image_size} is not a multiple of patch_size")
    if cfg.patch_size % (1 << len(cfg.conv_stem)):
        problems.append(
            f"patch_size {cfg.patch_size} is not divisible by 2^{len(cfg.conv_stem)} "
            "(each conv_stem layer halves the frame)"
        )
    if cfg.frame_convs and cfg.temporal_downsample:
        problems.append("frame_convs needs temporal_downsample off (its patchifier spans 3 frames)")
    if cfg.width % cfg.heads:
        problems.append(f"width {cfg.width} is not divisible by heads {cfg.heads}")
    if not 0 <= cfg.gmhra_layers <= cfg.depth:
        problems.append(f"gmhra_layers {cfg.gmhra_layers} must be within 0..depth ({cfg.depth})")
    if problems:
        raise ValueError("invalid VisionConfig: " + "; ".join(problems))
