"""The assembled VideoChat model: video encoder → ln_vision → Q-Former → llama_proj → LLM.

`encode_video` is the original `encode_img`; `embed_segments` interleaves text embeddings and
visual embeddings the way the original chat builds its context. Generation and losses run on
`model.llm` (a transformers causal LM) with `inputs_embeds`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from videochat.errors import ModelLoadError
from videochat.model.config import VideoChatConfig
from videochat.model.convert import LoadReport, convert_original
from videochat.model.qformer import FP32LayerNorm, QFormer, query_row_mask, stretch_span
from videochat.model.vision import VisionEncoder, output_frames, tokens_per_frame
from videochat.model.visual_positions import VisualPositions


class VideoChat(nn.Module):
    """VideoChat (arXiv 2305.06355). Build it with `build_model` / `load_model`, not directly."""

    def __init__(self, config: VideoChatConfig, llm: nn.Module, tokenizer: Any = None) -> None:
        super().__init__()
        config.validate()
        self.config = config
        q = config.qformer
        self.visual_encoder = VisionEncoder(config.vision)
        self.ln_vision = FP32LayerNorm(config.vision.width, eps=q.ln_vision_eps)
        self.qformer = QFormer(q)
        self.visual_positions = (
            VisualPositions(
                config.vision.width,
                config.vision.image_size // config.vision.patch_size,
                output_frames(config.vision, config.vision.max_frames),
                times=q.input_times,
            )
            if q.input_positions
            else None
        )
        self.query_tokens = nn.Parameter(torch.zeros(1, q.num_query_tokens, q.width))
        self.extra_query_tokens = (
            nn.Parameter(torch.zeros(1, q.num_extra_query_tokens, q.width))
            if q.num_extra_query_tokens > 0
            else None
        )
        self.llm = llm
        self.llama_proj = nn.Linear(q.width, llm.config.hidden_size)
        # `merge_stretch_rows`: a linear map, as the model's own parameters rather than a child
        # module so that `fresh_init` draws them after the query tokens (it initialises the
        # model's own parameters last): switching it on changes no other initial weight
        self.stretch_proj_weight, self.stretch_proj_bias = None, None
        if config.merge_stretch_rows:
            merged = q.width * q.stretch_rows[0][2]
            self.stretch_proj_weight = nn.Parameter(torch.zeros(llm.config.hidden_size, merged))
            self.stretch_proj_bias = nn.Parameter(torch.zeros(llm.config.hidden_size))
        self.row_embed = (
            nn.Parameter(torch.zeros(1, config.llm_rows, llm.config.hidden_size))
            if config.row_embed
            else None
        )
        self.tokenizer = tokenizer
        self._stamp_ids: dict[str, list[list[int]]] = {}  # "3.5" → token ids of its slots

    def _reset_parameters(self) -> None:
        """Zero the row embedding (`fresh_init` calls this last): a model that gains one
        computes the same function at first. `stretch_proj_*` start as a fresh nn.Linear would."""
        if self.row_embed is not None:
            self.row_embed.zero_()
        if self.stretch_proj_weight is not None:
            bound = self.stretch_proj_weight.shape[1] ** -0.5
            nn.init.kaiming_uniform_(self.stretch_proj_weight, a=math.sqrt(5))
            nn.init.uniform_(self.stretch_proj_bias, -bound, bound)

    @property
    def device(self) -> torch.device:
        """Where the LLM (and the text side) lives; inputs for `llm` go here."""
        return self.llm.get_input_embeddings().weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.llama_proj.weight.dtype

    @property
    def image_size(self) -> int:
        return self.config.vision.image_size

    @property
    def vision_device(self) -> torch.device:
        """Where pixels must go (CPU in low-resource mode, else the model's device)."""
        return self.visual_encoder.pos_embed.device

    def encode_video_steps(self, pixels: Tensor, times: Tensor | None = None) -> dict[str, Tensor]:
        """`encode_video` with every intermediate (for parity checks and inspection)."""
        if pixels.ndim == 4:  # (B, 3, H, W): one image
            pixels = pixels[:, None]
        if pixels.ndim != 5 or pixels.shape[2] != 3:
            raise ValueError(
                f"encode_video expects pixels (B, T, 3, H, W); got {tuple(pixels.shape)}"
            )
        if self.config.frame_stamps and pixels.shape[1] > 1 and times is None:
            raise ValueError(  # before the encoder runs
                "this model stamps each frame row with its time (config.frame_stamps): "
                "pass the frames' times, encode_video(pixels, times)"
            )
        vis = self.visual_encoder
        video = pixels.to(self.vision_device, vis.pos_embed.dtype).permute(0, 2, 1, 3, 4)
        tokens = vis(video)  # (B, T·(N+1)+1, Dv)
        image_embeds = self.ln_vision(tokens.to(self.ln_vision.weight.device))  # (B, L, Dv)
        frames = output_frames(self.config.vision, pixels.shape[1])  # after temporal downsampling
        value_codes = None
        if self.visual_positions is not None:
            image_embeds = self.visual_positions(image_embeds, frames)
            if self.visual_positions.times:  # (B, L, Dv), on the cross-attention's values
                value_codes = self.visual_positions.time_codes(
                    image_embeds, frames, _output_times(times, frames)
                )
        queries = self.query_tokens
        if self.extra_query_tokens is not None:
            queries = torch.cat([queries, self.extra_query_tokens], dim=1)  # (1, Q, C)
        queries = queries.expand(pixels.shape[0], -1, -1)  # (B, Q, C)
        mask = self._query_mask(frames, tokens)
        hidden = self.qformer(
            queries,
            image_embeds,
            query_mask=mask,
            value_codes=value_codes,
            value_rows=self._time_rows(queries.shape[1]),
        )
        return {
            "visual_encoder_out": tokens,
            "image_embeds": image_embeds,
            "qformer_last_hidden_state": hidden,
            "inputs_llama": self.project_rows(hidden, times),
        }

    def _time_rows(self, rows: int) -> Tensor | None:
        """(Q,) bool: the rows that read the time codes (`QFormerConfig.time_rows`); None: all."""
        q = self.config.qformer
        if q.time_rows == "all":
            return None
        marked = torch.zeros(rows, dtype=torch.bool)
        marked[q.frame_rows_start : q.frame_rows_start + q.frame_rows] = True
        return marked

    def _query_mask(self, frames: int, tokens: Tensor) -> Tensor | None:
        """The Q-Former's query mask when some rows read a stretch of the `frames` (the encoder's
        output frames) each, else None."""
        if not self.config.qformer.row_groups():
            return None
        per_frame = tokens_per_frame(self.config.vision)
        return query_row_mask(self.config.qformer, frames, per_frame, tokens.shape[1])

    def project_rows(self, hidden: Tensor, times: Tensor | None = None) -> Tensor:
        """Q-Former output rows (B, Q, C) → LLM input embeddings (B, config.llm_rows, D_llm) on the
        LLM's device (Q rows unless `merge_stretch_rows`). With `config.frame_stamps` and the
        frames' times (B, T), T > 1: 3 more rows per frame row, its time before it."""
        hidden = hidden.to(self.llama_proj.weight.device)
        if self.stretch_proj_weight is None:
            rows = self.llama_proj(hidden)  # (B, Q, D_llm)
        else:
            rows = self._merge_stretches(hidden)  # (B, config.llm_rows, D_llm)
        if self.row_embed is not None:
            rows = rows + self.row_embed
        rows = rows.to(self.device)
        if self.config.row_tokens:
            rows = rows + self._row_names().to(rows.dtype)
        if self.config.frame_stamps and times is not None and times.shape[1] > 1:
            rows = self._stamp_frames(rows, times)
        return rows

    def _stamp_frames(self, rows: Tensor, times: Tensor) -> Tensor:
        """(B, R, D) LLM rows + (B, T) input frames' seconds → (B, R + 3·F, D): before frame row
        k, the embeddings of its frame's time (the mean of the frames it reads, where a row reads
        several) as the text spells it (`config.frame_stamps`)."""
        q = self.config.qformer
        times = _output_times(times, output_frames(self.config.vision, times.shape[1]))
        spans = [stretch_span(k, q.frame_rows, times.shape[1]) for k in range(q.frame_rows)]
        times = torch.stack([times[:, a:b].mean(1) for a, b in spans], dim=1)  # (B, F) rows' times
        start = self._llm_row(q.frame_rows_start)
        frames = rows[:, start : start + q.frame_rows]  # (B, F, D)
        table = self.llm.get_input_embeddings().weight
        bags = [part for t in times.flatten().tolist() for part in self._stamp_ids_of(t)]
        ids = torch.tensor([i for bag in bags for i in bag], device=table.device)
        offsets = torch.tensor([0, *itertools.accumulate(map(len, bags))][:-1], device=table.device)
        stamps = F.embedding_bag(ids, table, offsets, mode="sum")  # (B·F·3, D): one lookup
        stamps = stamps.unflatten(0, (*times.shape, 3)).to(rows)  # (B, F, 3, D)
        stamped = torch.cat([stamps, frames[:, :, None]], dim=2).flatten(1, 2)  # (B, 4·F, D)
        return torch.cat([rows[:, :start], stamped, rows[:, start + q.frame_rows :]], dim=1)

    def _stamp_ids_of(self, seconds: float) -> list[list[int]]:
        """The token ids of the three slots " 3", ".", "5" for 3.5 s (a slot's embedding is the
        sum of its tokens': one token each where the tokenizer has it, e.g. " 3"; " 0" may be
        two). Remembered per time, so a training step tokenizes nothing it has seen."""
        text = f"{seconds:.1f}"
        if text not in self._stamp_ids:
            if self.tokenizer is None:
                raise ValueError("config.frame_stamps needs the model's tokenizer to spell times")
            whole, tenths = text.split(".")
            self._stamp_ids[text] = [
                self.tokenizer(part, add_special_tokens=False)["input_ids"]
                for part in (f" {whole}", ".", tenths)
            ]
        return self._stamp_ids[text]

    def _llm_row(self, query_row: int) -> int:
        """The LLM row a query row outside a merged stretch group reaches."""
        if self.config.merge_stretch_rows:
            start, count, _ = self.config.qformer.stretch_rows[0]
            if query_row >= start + count:  # after the group, which the LLM sees merged
                return query_row - (self.config.num_queries - self.config.llm_rows)
        return query_row

    def _merge_stretches(self, hidden: Tensor) -> Tensor:
        """`config.merge_stretch_rows`: each object's stretch rows, side by side, through
        `stretch_proj_*` into one row in place of the group; the others through llama_proj."""
        start, count, stretches = self.config.qformer.stretch_rows[0]
        end = start + count
        group = hidden[:, start:end].unflatten(1, (stretches, count // stretches))  # (B, K, S, C)
        side_by_side = group.transpose(1, 2).flatten(2)  # (B, S, K·C)
        merged = F.linear(side_by_side, self.stretch_proj_weight, self.stretch_proj_bias)
        before, after = self.llama_proj(hidden[:, :start]), self.llama_proj(hidden[:, end:])
        return torch.cat([before, merged, after], dim=1)

    def _row_names(self) -> Tensor:
        """(config.llm_rows, D_llm): each LLM row's mean name-token embedding (`config.row_tokens`)
        times `config.row_name_scale`, 0 for none."""
        table = self.llm.get_input_embeddings()
        names = torch.zeros(self.config.llm_rows, table.embedding_dim, device=self.device)
        for row, ids in enumerate(self.config.row_tokens):
            if ids:
                names[row] = table(torch.tensor(ids, device=self.device)).mean(0)
        return names * self.config.row_name_scale

    def encode_video(self, pixels: Tensor, times: Tensor | None = None) -> Tensor:
        """(B, T, 3, H, W) normalised pixels (T=1 for an image) → (B, Q, D_llm) LLM embeddings.
        times: (B, T) seconds of each frame; read only by a model with `qformer.input_times`,
        which needs them for a video."""
        return self.encode_video_steps(pixels, times)["inputs_llama"]

    def embed_segments(self, segment_ids: list[Tensor], visual: list[Tensor]) -> Tensor:
        """embed(seg0), visual[0], embed(seg1), visual[1], … → (1, L, D_llm).

        segment_ids: token ids per text segment, (L_i,) or (1, L_i); visual: (Q, D) or (1, Q, D)
        each, one fewer than segments (the original's prompt split at its placeholders).
        """
        if len(visual) != len(segment_ids) - 1:
            raise ValueError(
                f"{len(segment_ids)} text segments need {len(segment_ids) - 1} visual "
                f"embeddings between them; got {len(visual)}"
            )
        table = self.llm.get_input_embeddings()
        parts = []
        for i, ids in enumerate(segment_ids):
            parts.append(table(ids.reshape(-1).to(table.weight.device)))  # (L_i, D)
            if i < len(visual):
                parts.append(visual[i].reshape(-1, table.embedding_dim).to(parts[-1]))  # (Q, D)
        return torch.cat(parts)[None]  # (1, L, D)

    def load_original_state_dict(self, sd: Mapping[str, Tensor]) -> LoadReport:
        """Load a full original-layout state dict (`VideoChat.state_dict()` of the original).

        Every weight must be present with the right shape; tensors take this model's dtype.
        """
        dtype = self.dtype
        tensors, report = convert_original(
            sd, target_shapes(self), source="original state dict", cast=_caster(dtype)
        )
        device = self.llama_proj.weight.device
        device = torch.device("cpu") if device.type == "meta" else device  # a fresh skeleton
        assign_tensors(self, tensors, device)
        finalize(self, device)
        return report


def _output_times(times: Tensor | None, frames: int) -> Tensor | None:
    """(B, T) input frame times → (B, frames) times of the encoder's output frames: the mean of
    each group of input frames a temporal downsampling joins."""
    if times is None or times.shape[1] == frames:
        return times
    return times.unflatten(1, (frames, -1)).mean(-1)


def _caster(dtype: torch.dtype):
    return lambda t: t.to(dtype) if t.is_floating_point() else t


def target_shapes(model: nn.Module) -> dict[str, torch.Size]:
    """`{key: shape}` of the state dict, tied duplicates (e.g. a tied lm_head) listed once."""
    seen: set[int] = set()
    out: dict[str, torch.Size] = {}
    for key, tensor in model.state_dict(keep_vars=True).items():
        if id(tensor) not in seen:
            seen.add(id(tensor))
            out[key] = tensor.shape
    return out


def assign_tensors(
    model: nn.Module, tensors: dict[str, torch.Tensor], device: torch.device
) -> None:
    """Put each tensor in place (replacing the meta one), popping it so one copy exists."""
    for key in list(tensors):
        owner, _, name = key.rpartition(".")
        module = model.get_submodule(owner)
        value = tensors.pop(key).to(_device_for(model, key, device))
        if name in module._parameters:
            grad = module._parameters[name].requires_grad
            module._parameters[name] = nn.Parameter(
                value, requires_grad=grad and value.is_floating_point()
            )
        else:
            module._buffers[name] = value


def _device_for(model: nn.Module, key: str, device: torch.device) -> torch.device:
    """Low-resource mode keeps the vision encoder on the CPU (the original's `vit_to_cpu`)."""
    low = getattr(model, "config", None) is not None and model.config.low_resource
    return torch.device("cpu") if low and key.startswith("visual_encoder.") else device


def fresh_init(model: nn.Module, keys: set[str], device: torch.device, dtype: torch.dtype) -> None:
    """Random-initialise the named meta tensors with each module's own initialiser.

    Children before parents, so a parent's `_reset_parameters` (GMHRA's zero-init projections)
    has the last word. Plain tensors (tokens, embeddings, norm scales) get N(0, 0.02) / ones.
    """
    for prefix, module in reversed(list(model.named_modules())):
        own = [n for n, p in module.named_parameters(recurse=False) if _full(prefix, n) in keys]
        fresh_below = any(k.startswith(prefix + ".") for k in keys) if prefix else bool(keys)
        where = _device_for(model, prefix, device)
        for name in own:
            old = module._parameters[name]
            value = torch.empty(old.shape, device=where, dtype=dtype)
            module._parameters[name] = nn.Parameter(value, requires_grad=old.requires_grad)
        for name, old in list(module._buffers.items()):  # e.g. BatchNorm running statistics
            if old is not None and _full(prefix, name) in keys:
                kind = dtype if old.is_floating_point() else old.dtype
                module._buffers[name] = torch.zeros(old.shape, device=where, dtype=kind)
        with torch.no_grad():
            if own and hasattr(module, "reset_parameters"):
                module.reset_parameters()
            elif own:
                for name in own:
                    _plain_init(module, name)
            if fresh_below and hasattr(module, "_reset_parameters"):
                module._reset_parameters()


def _full(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _plain_init(module: nn.Module, name: str) -> None:
    param = module._parameters[name]
    if "Norm" in type(module).__name__:
        param.fill_(1.0 if name == "weight" else 0.0)
    elif name == "bias":
        param.zero_()
    else:
        param.normal_(0.0, 0.02)


def finalize(model: VideoChat, device: torch.device) -> None:
    """Rebuild unsaved buffers (rotary tables), zero BatchNorm counters, re-tie, check nothing
    is left on the meta device."""
    for prefix, module in list(model.named_modules()):
        metas = [n for n, b in module.named_buffers(recurse=False) if b.is_meta]
        if metas and "Rotary" in type(module).__name__ and hasattr(module, "config"):
            owner, _, attr = prefix.rpartition(".")
            fresh = type(module)(config=module.config).to(_device_for(model, prefix, device))
            setattr(model.get_submodule(owner), attr, fresh)
        for name in metas:
            if name == "num_batches_tracked":
                where = _device_for(model, prefix, device)
                module._buffers[name] = torch.zeros((), dtype=torch.long, device=where)
    if getattr(model.llm.config, "tie_word_embeddings", False):
        model.llm.tie_weights()
    left = [k for k, t in model.state_dict(keep_vars=True).items() if t.is_meta]
    left += [
        f"{p}.{n}"
        for p, m in model.named_modules()
        for n, b in m.named_buffers(recurse=False)
        if b.is_meta
    ]
    if left:
        shown = ", ".join(sorted(set(left))[:5])
        raise ModelLoadError(f"{len(set(left))} weight(s) were never loaded: {shown}")
    model.eval()
