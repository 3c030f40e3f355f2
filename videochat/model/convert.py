"""Original checkpoint layouts → our `VideoChat` state dict: pure conversion tables + `LoadReport`.

One function per source a user has (DESIGN.md §1.4). Each takes the source state dict and the
model's target shapes (`{our key: shape}`), renames with an explicit table, checks every shape, and
returns `(converted, LoadReport)`. Nothing is silently dropped: keys a source has no use for are
listed as ignored, keys it is not meant to provide as expected-missing, and a key it *should*
provide but lacks, or a shape that does not fit, raises `ModelLoadError` naming the key.

Our names: the original's, except `Qformer.bert.*` → `qformer.*` (table below) and
`llama_model.*` → `llm.*`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch

from videochat.errors import ModelLoadError
from videochat.model.config import VideoChatConfig

Shapes = Mapping[str, torch.Size]
Cast = Callable[[torch.Tensor], torch.Tensor] | None  # applied to each tensor as it is read

_LAYER = r"^Qformer\.bert\.encoder\.layer\.(\d+)\."
_RENAMES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p), r)
    for p, r in [
        (r"^Qformer\.bert\.embeddings\.LayerNorm\.", "qformer.norm."),
        (_LAYER + r"attention\.self\.(query|key|value)\.", r"qformer.layers.\1.self_attn.\2."),
        (_LAYER + r"attention\.output\.dense\.", r"qformer.layers.\1.self_attn.out."),
        (_LAYER + r"attention\.output\.LayerNorm\.", r"qformer.layers.\1.self_attn.norm."),
        (
            _LAYER + r"crossattention\.self\.(query|key|value)\.",
            r"qformer.layers.\1.cross_attn.\2.",
        ),
        (_LAYER + r"crossattention\.output\.dense\.", r"qformer.layers.\1.cross_attn.out."),
        (_LAYER + r"crossattention\.output\.LayerNorm\.", r"qformer.layers.\1.cross_attn.norm."),
        (_LAYER + r"intermediate_query\.dense\.", r"qformer.layers.\1.fc1."),
        (_LAYER + r"output_query\.dense\.", r"qformer.layers.\1.fc2."),
        (_LAYER + r"output_query\.LayerNorm\.", r"qformer.layers.\1.ffn_norm."),
        (r"^llama_model\.", "llm."),
        (r"^(visual_encoder\.|ln_vision\.|llama_proj\.|query_tokens$|extra_query_tokens$)", r"\1"),
    ]
]
# Keys of the original layout we know and do not use: the Q-Former's text side (VideoChat removes
# it), BLIP-2's T5 projection, and buffers we recompute (position ids, rotary frequencies).
_UNUSED = re.compile(
    r"^Qformer\.bert\.embeddings\.(position_ids|word_embeddings\.|position_embeddings\.)"
    r"|^Qformer\.bert\.encoder\.layer\.\d+\.(intermediate|output)\."
    r"|^Qformer\.cls\.|^t5_proj\.|\.rotary_emb\.inv_freq$"
)


def original_to_ours(key: str) -> str | None:
    """Our name for an original-layout key, or None when the key has no counterpart."""
    if _UNUSED.search(key):
        return None
    for pattern, repl in _RENAMES:
        if pattern.search(key):
            return pattern.sub(repl, key, count=1)
    return None


@dataclass
class LoadReport:
    """What one or more sources gave the model.

    loaded / ignored: the source's own key names; expected_missing: our keys the source is not
    meant to provide (another source does); initialized: our keys no source provided that were
    freshly initialised on purpose (e.g. new trainable parts before stage-1 training).
    """

    loaded: list[str] = field(default_factory=list)
    expected_missing: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    initialized: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def merge(self, other: LoadReport) -> LoadReport:
        """Combine sources applied one after another: missing = missing from all of them."""
        missing = set(other.expected_missing)
        return LoadReport(
            loaded=self.loaded + other.loaded,
            expected_missing=[k for k in self.expected_missing if k in missing],
            ignored=self.ignored + other.ignored,
            initialized=self.initialized + other.initialized,
            sources=self.sources + other.sources,
        )

    def summary(self) -> str:
        return (
            f"{', '.join(self.sources) or 'weights'}: loaded {len(self.loaded)}, "
            f"ignored {len(self.ignored)}, not provided {len(self.expected_missing)}, "
            f"freshly initialised {len(self.initialized)}"
        )


def convert_tensors(
    sd: Mapping[str, torch.Tensor],
    target: Shapes,
    rename: Callable[[str], str | None],
    *,
    source: str,
    required: Callable[[str], bool],
    cast: Cast = None,
) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """The shared core: rename, check shapes, cast one tensor at a time, report."""
    converted: dict[str, torch.Tensor] = {}
    report = LoadReport(sources=[source])
    for key in sd:
        ours = rename(key)
        if ours is None:
            report.ignored.append(key)
            continue
        if ours not in target:
            raise ModelLoadError(
                f"{source}: weight {key!r} has no place in the model built from this config "
                f"(it would be {ours!r}); does the config match the checkpoint?"
            )
        value = sd[key]
        if value.shape != target[ours]:
            raise ModelLoadError(
                f"{source}: {key} has shape {tuple(value.shape)} but the model needs "
                f"{tuple(target[ours])}; does the config match the checkpoint?"
            )
        converted[ours] = cast(value) if cast is not None else value
        report.loaded.append(key)
    lacking = [k for k in target if required(k) and k not in converted]
    if lacking:
        shown = ", ".join(lacking[:5]) + (" …" if len(lacking) > 5 else "")
        raise ModelLoadError(f"{source}: {len(lacking)} weight(s) missing: {shown}")
    report.expected_missing = [k for k in target if k not in converted]
    return converted, report


def convert_original(
    sd: Mapping[str, torch.Tensor], target: Shapes, *, source: str = "state dict", cast: Cast = None
) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """A full original-layout `VideoChat.state_dict()`: must provide every weight."""
    return convert_tensors(
        sd, target, original_to_ours, source=source, required=lambda k: True, cast=cast
    )


_BLIP2_PARTS = ("query_tokens", "ln_vision.", "qformer.")


def convert_blip2(
    sd: Mapping[str, torch.Tensor],
    target: Shapes,
    *,
    source: str = "BLIP-2 checkpoint",
    cast: Cast = None,
) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """`blip2_pretrained_*.pth` `model` dict: query tokens, ln_vision and the query-path Q-Former.

    Text-side Q-Former weights, `t5_proj` and anything outside those parts are reported ignored.
    """

    def rename(key: str) -> str | None:
        ours = original_to_ours(key)
        return ours if ours is not None and ours.startswith(_BLIP2_PARTS) else None

    return convert_tensors(
        sd, target, rename, source=source, required=lambda k: k.startswith(_BLIP2_PARTS), cast=cast
    )


def convert_videochat(
    sd: Mapping[str, torch.Tensor],
    target: Shapes,
    *,
    source: str = "VideoChat checkpoint",
    cast: Cast = None,
) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """A released `videochat_*.pth` `model` dict: only the trained parameters, plus stale buffers.

    It must hold the parts only VideoChat trains (`llama_proj`, `extra_query_tokens`); whatever
    else it holds (GMHRA, ln_vision, ...) overrides earlier sources.
    """
    own = ("llama_proj.", "extra_query_tokens")
    return convert_tensors(
        sd, target, original_to_ours, source=source, required=lambda k: k.startswith(own), cast=cast
    )


def convert_hf_llm(
    sd: Mapping[str, torch.Tensor],
    target: Shapes,
    *,
    source: str = "LLM directory",
    cast: Cast = None,
) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """A Hugging Face causal-LM state dict (`model.*`, `lm_head.*`) → `llm.*`; must be complete."""

    def rename(key: str) -> str | None:
        return None if key.endswith("rotary_emb.inv_freq") else "llm." + key

    return convert_tensors(
        sd, target, rename, source=source, required=lambda k: k.startswith("llm."), cast=cast
    )


def convert_eva(
    sd: Mapping[str, torch.Tensor],
    target: Shapes,
    config: VideoChatConfig,
    *,
    source: str = "EVA checkpoint",
    cast: Cast = None,
) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """Plain `eva_vit_g.pth` → `visual_encoder.*` (inflation/resizing done by `convert_vision`)."""
    from videochat.model.convert_vision import convert_eva_checkpoint

    prefix = "visual_encoder."
    vision_target = {k[len(prefix) :]: v for k, v in target.items() if k.startswith(prefix)}
    vision_sd = {k: torch.empty(v, device="meta") for k, v in vision_target.items()}
    converted, info = convert_eva_checkpoint(sd, config.vision, vision_sd, source=source)
    out = {prefix + k: cast(v) if cast is not None else v for k, v in converted.items()}
    report = LoadReport(loaded=info.loaded, ignored=info.ignored, sources=[source])
    report.expected_missing = [k for k in target if k not in out]
    return out, report
