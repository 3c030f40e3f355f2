"""Plain EVA ViT checkpoint (`eva_vit_g.pth`) → `VisionEncoder` state dict.

A pure state_dict → state_dict function (timm's `checkpoint_filter_fn` idea): it inflates the 2-D
patch conv to the encoder's Conv3d, resizes the position grid when the checkpoint was made for another
image size, and says which encoder keys the checkpoint cannot provide (the temporal modules, which the
VideoChat checkpoint supplies later). Anything else that does not fit is an error, never a silent skip.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from videochat.errors import ModelLoadError
from videochat.model.config import VisionConfig

# Encoder keys a plain EVA checkpoint never has: VideoChat's temporal modules and our additions.
_TEMPORAL_PARTS = ("gmhra_cls_token", "gmhra.", ".lmhra1.", ".lmhra2.", "temporal_embed")
# Buffers PyTorch fills in itself when absent (BatchNorm), so loaders never report them missing.
_SELF_FILLED = ("num_batches_tracked",)


@dataclass
class VisionLoadInfo:
    """What a conversion used: same fields as the model package's `LoadReport`."""

    loaded: list[str] = field(default_factory=list)  # checkpoint keys converted for the encoder
    expected_missing: list[str] = field(default_factory=list)  # encoder keys left at their init
    ignored: list[str] = field(default_factory=list)  # checkpoint keys the encoder has no use for


def is_temporal_key(name: str) -> bool:
    """True for encoder keys that belong to the temporal modules (GMHRA, LMHRA, temporal embed)."""
    return any(part in name for part in _TEMPORAL_PARTS)


def convert_eva_checkpoint(
    eva_sd: Mapping[str, torch.Tensor],
    cfg: VisionConfig,
    target_sd: Mapping[str, torch.Tensor] | None = None,
    *,
    source: str = "EVA checkpoint",
) -> tuple[dict[str, torch.Tensor], VisionLoadInfo]:
    """Convert a plain EVA ViT state dict for `VisionEncoder(cfg)`.

    `target_sd` (the encoder's own state dict) gives the target shapes; without it they come from a
    meta-device encoder built from `cfg`. `source` names the file in error messages.
    Returns the converted tensors (checkpoint keys only) and the load info.
    """
    target = _target_shapes(cfg, target_sd)
    converted: dict[str, torch.Tensor] = {}
    info = VisionLoadInfo()
    for name, value in eva_sd.items():
        if name not in target:
            info.ignored.append(name)
            continue
        converted[name] = _convert_tensor(name, value, target[name], source)
        info.loaded.append(name)
    info.expected_missing = [
        k for k in target if k not in converted and not k.endswith(_SELF_FILLED)
    ]
    lacking = [k for k in info.expected_missing if not is_temporal_key(k)]
    if lacking:
        shown = ", ".join(lacking[:5]) + (" …" if len(lacking) > 5 else "")
        raise ModelLoadError(
            f"{source}: {len(lacking)} vision weight(s) missing ({shown}); is this an EVA ViT "
            f"checkpoint for depth {cfg.depth}, width {cfg.width}?"
        )
    return converted, info


def _target_shapes(
    cfg: VisionConfig, target_sd: Mapping[str, torch.Tensor] | None
) -> dict[str, torch.Size]:
    if target_sd is None:
        from videochat.model.vision import VisionEncoder

        with torch.device("meta"):  # shapes only: no memory, no init cost
            target_sd = VisionEncoder(cfg).state_dict()
    return {k: v.shape for k, v in target_sd.items()}


def _convert_tensor(name: str, value: torch.Tensor, shape: torch.Size, source: str) -> torch.Tensor:
    if value.shape == shape:
        return value
    if name == "pos_embed" and value.ndim == 3 and value.shape[-1] == shape[-1]:
        return resize_pos_embed(value, shape[1] - 1, source)
    if name == "patch_embed.proj.weight" and _inflatable(value.shape, shape):
        return inflate_patch_weight(value, shape[2])
    raise ModelLoadError(
        f"{source}: {name} has shape {tuple(value.shape)} but the vision encoder needs "
        f"{tuple(shape)}; check image_size/patch_size/width/depth of the vision config."
    )


def _inflatable(have: torch.Size, want: torch.Size) -> bool:
    """A 2-D kernel [D, C, p, p] (or a 1-frame 3-D one) fits a Conv3d weight [D, C, t, p, p]."""
    spatial = have[:2] + have[-2:] == want[:2] + want[-2:]
    return len(want) == 5 and spatial and (len(have) == 4 or (len(have) == 5 and have[2] == 1))


def inflate_patch_weight(weight: torch.Tensor, time_dim: int) -> torch.Tensor:
    """2-D patch kernel → 3-D: centre time slice = the 2-D weight, other slices zero (no scaling)."""
    weight_2d = weight.reshape(weight.shape[:2] + weight.shape[-2:])  # (D, C, p, p)
    out = weight.new_zeros(weight_2d.shape[:2] + (time_dim,) + weight_2d.shape[2:])  # (D,C,t,p,p)
    out[:, :, time_dim // 2] = weight_2d
    return out


def resize_pos_embed(
    pos_embed: torch.Tensor, num_patches: int, source: str = "checkpoint"
) -> torch.Tensor:
    """Bicubically resize the patch grid of [1, 1+g², D] to [1, 1+num_patches, D]; cls row kept."""
    old = pos_embed.shape[1] - 1
    old_side, new_side = math.isqrt(old), math.isqrt(num_patches)
    if old_side * old_side != old or new_side * new_side != num_patches:
        raise ModelLoadError(
            f"{source}: pos_embed covers {old} patches, which is not a square grid; "
            "only square position grids can be resized."
        )
    cls_row, grid = pos_embed[:, :1], pos_embed[:, 1:].float()  # (1, 1, D), (1, g², D)
    grid = grid.reshape(1, old_side, old_side, -1).permute(0, 3, 1, 2)  # (1, D, g, g)
    grid = F.interpolate(grid, size=(new_side, new_side), mode="bicubic", align_corners=False)
    grid = grid.permute(0, 2, 3, 1).flatten(1, 2).to(pos_embed.dtype)  # (1, n², D)
    return torch.cat([cls_row, grid], dim=1)  # (1, 1+n², D)
