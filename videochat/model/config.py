"""Typed configuration of a VideoChat model, with named presets.

Field names are ours; `VideoChatConfig.from_original_json` maps the original `configs/config.json`.
Options the original lacks (e.g. temporal position embeddings for the small embedded model) default
to off, so the original presets compute exactly the original function.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class VisionConfig:
    """EVA ViT-g with UniFormerV2-style temporal modules (DESIGN.md §1.2)."""

    image_size: int = 224
    patch_size: int = 14
    width: int = 1408
    depth: int = 39
    heads: int = 16
    mlp_ratio: float = 4.3637  # hidden = int(width * mlp_ratio) = 6144 for ViT-g
    qkv_bias: bool = True  # separate q_bias / v_bias, no k bias
    layer_norm_eps: float = 1e-6
    lmhra: bool = False  # original `no_lmhra=true` in the released config
    double_lmhra: bool = False
    lmhra_reduction: float = 2.0
    gmhra_layers: int = 8
    gmhra_dropout: float = 0.5
    temporal_downsample: bool = False
    # Our additions (off in the original presets):
    temporal_pos_embed: bool = False  # learnable per-frame embedding added to the patch tokens
    max_frames: int = 64  # size of the temporal embedding table when enabled
    # Channels of 3×3 stride-2 convolutions run on each frame before the patchifier (an "early
    # convolution" stem, Xiao et al. 2021): a ViT trained from scratch on little compute sees
    # shapes through them. Empty = the original's plain patchifier.
    conv_stem: tuple[int, ...] = ()
    # The stem and the patchifier run as 2-D convolutions over each frame in channels-last
    # layout: the same weights and function as the 3-D ones (whose kernels span one frame), a
    # vision-stage step in 0.86x the time on a 2-core CPU (benchmarks/frame_convs.py). Not
    # with temporal_downsample, whose patchifier spans 3 frames.
    frame_convs: bool = False

    def __post_init__(self) -> None:
        self.conv_stem = tuple(self.conv_stem)  # JSON gives a list


@dataclass
class QFormerConfig:
    """BLIP-2 Q-Former, query path only (DESIGN.md §1.3)."""

    width: int = 768
    layers: int = 12
    heads: int = 12
    ffn: int = 3072
    layer_norm_eps: float = 1e-12
    cross_attention_freq: int = 2
    vision_width: int = 1408  # width of the encoder tokens the cross-attention reads
    num_query_tokens: int = 32
    num_extra_query_tokens: int = 64
    ln_vision_eps: float = 1e-5
    # Our addition (off in the original presets): `frame_rows` query rows from `frame_rows_start`
    # on read only their own stretch of frames in the cross-attention (`query_row_mask`), so
    # the rows know when, not only what. 0 = every row reads every frame, as the original.
    frame_rows: int = 0
    frame_rows_start: int = 0
    # Our addition too: groups `[first_row, rows, stretches]`: the `rows` rows from `first_row`
    # form `stretches` equal blocks of consecutive rows, block k reading the k-th stretch of the
    # frames (`[0, 10, 2]`: rows 0-4 read the first half, rows 5-9 the second). [] = none.
    stretch_rows: list[list[int]] = field(default_factory=list)
    # Our addition too: position codes (patch column, row and frame) added to the tokens the
    # cross-attention reads (`visual_positions.VisualPositions`). False = the original.
    input_positions: bool = False
    # Our addition too (needs `input_positions`): a code of each frame's timestamp in seconds on
    # the cross-attention's values (`VisualPositions.time_codes`), so a row can tell when in
    # seconds what it reads happened, not only in which sampled frame. False = the original.
    input_times: bool = False
    # Which rows read the time codes: "all", or "frames" (only the frame rows, each of which
    # reads one frame, so its code is that frame's time exactly; the other rows read no time).
    time_rows: str = "all"
    # Our addition too (needs `frame_rows`): each frame row also reads the `frame_row_lookback`
    # frames before its own, so it can see what changed into its frame (an object that came,
    # went, turned another colour or hit another since the frame before). 0 = its own only.
    frame_row_lookback: int = 0

    def row_groups(self) -> list[tuple[int, int, int]]:
        """Every group of rows that reads a part of the clip: `stretch_rows` + the frame rows."""
        groups = [(int(a), int(n), int(k)) for a, n, k in self.stretch_rows]
        if self.frame_rows:
            groups.append((self.frame_rows_start, self.frame_rows, self.frame_rows))
        return groups


@dataclass
class LLMConfig:
    """A Hugging Face LLaMA-family causal LM: either a directory/hub id, or an inline config dict."""

    path: str | None = None  # HF directory with config.json (+ weights, tokenizer)
    hf_config: dict[str, Any] | None = None  # inline transformers config (model_type + fields)
    tokenizer_path: str | None = None  # defaults to `path`
    chat_template: str = (
        "videochat"  # conversation format; "videochat" = the original's `###` format
    )


@dataclass
class CheckpointPaths:
    """The original's separate weight files (absolute paths), applied in this order when loading."""

    vit: str | None = None  # eva_vit_g.pth: plain EVA ViT state dict
    qformer: str | None = None  # blip2_pretrained_flant5xxl.pth: {'model': whole BLIP-2}
    videochat: str | None = None  # videochat_7b.pth: {'model': trainable params + buffers}


@dataclass
class VideoChatConfig:
    vision: VisionConfig = field(default_factory=VisionConfig)
    qformer: QFormerConfig = field(default_factory=QFormerConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    num_frames: int = 8  # default frames sampled per video
    max_text_len: int = 512
    low_resource: bool = False  # original's 8-bit LLM + vision on CPU mode
    checkpoints: CheckpointPaths = field(default_factory=CheckpointPaths)
    # Our addition (off in the original presets): a learnable embedding per visual row the LLM
    # sees (`llm_rows`), added after llama_proj, so an LLM trained from scratch can find a row
    # by its index.
    row_embed: bool = False
    # Our addition (off in the original presets): token ids naming the visual rows the LLM sees
    # (`llm_rows`: a merged stretch group is one row), one list per row from the first ([] for
    # none). Their mean input embedding is added to the row after llama_proj, so an LLM trained
    # from scratch finds the row a question names by its word.
    row_tokens: list[list[int]] = field(default_factory=list)
    # What the name embeddings are multiplied by before they are added (1: as they are). Why a
    # gain: the committed embedded model's named rows have norms of 28-37 against 12-14 for the
    # names, so a name is a faint part of what the LLM's lookup must match.
    row_name_scale: float = 1.0
    # Our addition (off in the original presets): the rows of the stretch group
    # (`qformer.stretch_rows`) that belong to one object go to the LLM as one row,
    # `stretch_proj_*` of their concatenation, so a fact that needs every stretch (where the object
    # went: its motion) is linear in one row instead of spread over several.
    merge_stretch_rows: bool = False
    # Our addition (off in the original presets): before each frame row (`qformer.frame_rows`) the
    # LLM reads that frame's time as text, " 3", ".", "5" (the token embeddings the answers spell
    # times with), so "when" is a copy from beside the frame that shows the event, not a count of
    # rows matched against the timestamp message's k-th number. Needs the model's tokenizer and
    # each frame's time; an image (one frame, no time) gets none.
    frame_stamps: bool = False

    @property
    def num_queries(self) -> int:
        return self.qformer.num_query_tokens + self.qformer.num_extra_query_tokens

    @property
    def llm_rows(self) -> int:
        """Visual rows the LLM sees per clip (fewer than the queries with `merge_stretch_rows`)."""
        if not self.merge_stretch_rows:
            return self.num_queries
        _, count, stretches = self.qformer.stretch_rows[0]
        return self.num_queries - count + count // stretches

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VideoChatConfig:
        return cls(
            vision=VisionConfig(**data.get("vision", {})),
            qformer=QFormerConfig(**data.get("qformer", {})),
            llm=LLMConfig(**data.get("llm", {})),
            checkpoints=CheckpointPaths(**(data.get("checkpoints") or {})),
            **{k: v for k, v in data.items() if k not in _NESTED},
        )

    @classmethod
    def from_original_json(cls, path: str | Path) -> VideoChatConfig:
        """Read the original `configs/config.json` (`{"model": {vit_model_path, ...}}`).

        Relative checkpoint paths are resolved against the config's folder, its parent (the
        original's working directory, `video_chat/`) and the current directory, first hit wins.
        Our one extension: `"preset": NAME` picks the base architecture (default videochat-7b;
        the original's sizes are fixed by `vit_model: eva_clip_g` and BERT-base).
        """
        path = Path(path)
        try:
            model = json.loads(path.read_text())["model"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"{path}: not an original VideoChat config (expected JSON with a 'model' object): "
                f"{exc}"
            ) from None
        if model.get("vit_model", "eva_clip_g") != "eva_clip_g":
            raise ValueError(
                f"{path}: vit_model {model['vit_model']!r} unsupported (eva_clip_g only)"
            )
        cfg = cls.preset(model.get("preset", "videochat-7b"))
        _apply_original_fields(cfg, model)
        find = _path_finder(path)
        cfg.checkpoints = CheckpointPaths(
            vit=find(model.get("vit_model_path")),
            qformer=find(model.get("q_former_model_path")),
            videochat=find(model.get("videochat_model_path")),
        )
        if model.get("llama_model_path"):
            cfg.llm = LLMConfig(path=find(model["llama_model_path"]), hf_config=None)
        return cfg

    def validate(self) -> None:
        """Raise ValueError naming the fields when the parts cannot be joined."""
        if self.qformer.vision_width != self.vision.width:
            raise ValueError(
                f"qformer.vision_width ({self.qformer.vision_width}) must equal vision.width "
                f"({self.vision.width}): the Q-Former cross-attends to the vision tokens"
            )
        if self.llm.path is None and self.llm.hf_config is None:
            raise ValueError("llm needs either `path` (an HF model directory) or `hf_config`")
        if self.qformer.input_times and not self.qformer.input_positions:
            raise ValueError("qformer.input_times needs qformer.input_positions (its codes' home)")
        if self.qformer.time_rows not in ("all", "frames"):
            raise ValueError(
                f"qformer.time_rows must be 'all' or 'frames', got {self.qformer.time_rows!r}"
            )
        if self.qformer.time_rows == "frames" and not self.qformer.frame_rows:
            raise ValueError("qformer.time_rows 'frames' needs frame rows (qformer.frame_rows)")
        if self.qformer.frame_row_lookback < 0:
            raise ValueError(
                f"qformer.frame_row_lookback must be >= 0, got {self.qformer.frame_row_lookback}"
            )
        if self.qformer.frame_row_lookback and not self.qformer.frame_rows:
            raise ValueError("qformer.frame_row_lookback needs frame rows (qformer.frame_rows)")
        if self.frame_stamps and not self.qformer.frame_rows:
            raise ValueError("frame_stamps needs frame rows (qformer.frame_rows) to stamp")
        if self.merge_stretch_rows and len(self.qformer.stretch_rows) != 1:
            raise ValueError("merge_stretch_rows needs exactly one qformer.stretch_rows group")
        if len(self.row_tokens) > self.llm_rows:
            raise ValueError(
                f"row_tokens names {len(self.row_tokens)} rows; the LLM sees {self.llm_rows}"
            )
        if not self.row_name_scale > 0:
            raise ValueError(f"row_name_scale must be > 0, got {self.row_name_scale}")
        taken: set[int] = set()
        for start, count, stretches in self.qformer.row_groups():
            rows = set(range(start, start + count))
            if stretches < 1 or count % stretches or start < 0 or start + count > self.num_queries:
                raise ValueError(
                    f"qformer row group (first row {start}, {count} rows, {stretches} stretches): "
                    f"the rows must split evenly into the stretches and lie within the "
                    f"{self.num_queries} query rows"
                )
            if rows & taken:  # the mask would silently give the shared rows the later stretch
                raise ValueError(
                    f"qformer row group (first row {start}, {count} rows) overlaps another "
                    f"(stretch_rows or the frame rows) at rows {sorted(rows & taken)}"
                )
            taken |= rows
        vocab = (self.llm.hf_config or {}).get("vocab_size")  # unknown for an LLM directory
        bound = f"in [0, {vocab})" if vocab else ">= 0"
        for row, ids in enumerate(self.row_tokens):
            if any(not isinstance(i, int) or i < 0 or (vocab and i >= vocab) for i in ids):
                raise ValueError(f"row_tokens[{row}] = {ids}: token ids must be ints {bound}")

    @classmethod
    def preset(cls, name: str) -> VideoChatConfig:
        try:
            factory = PRESETS[name]
        except KeyError:
            raise KeyError(
                f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}"
            ) from None
        return factory()


def _llama_config(hidden: int, layers: int, heads: int, ffn: int, vocab: int = 32000) -> dict:
    return {
        "model_type": "llama",
        "vocab_size": vocab,
        "hidden_size": hidden,
        "intermediate_size": ffn,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-6,
        "hidden_act": "silu",
        "pad_token_id": 0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "tie_word_embeddings": False,
    }


def videochat_7b() -> VideoChatConfig:
    """The released VideoChat-7B (EVA ViT-g + Vicuna-7B v0)."""
    return VideoChatConfig(llm=LLMConfig(hf_config=_llama_config(4096, 32, 32, 11008)))


def videochat_13b() -> VideoChatConfig:
    """The released VideoChat-13B (EVA ViT-g + StableVicuna-13B)."""
    return VideoChatConfig(llm=LLMConfig(hf_config=_llama_config(5120, 40, 40, 13824)))


def tiny() -> VideoChatConfig:
    """The parity fixtures' configuration (tests/fixtures/parity/encode): random weights, 28 px."""
    return VideoChatConfig(
        vision=VisionConfig(image_size=28, width=64, depth=4, heads=4, gmhra_layers=2),
        qformer=QFormerConfig(
            width=32,
            layers=4,
            heads=4,
            ffn=64,
            vision_width=64,
            num_query_tokens=6,
            num_extra_query_tokens=4,
        ),
        llm=LLMConfig(
            hf_config={**_llama_config(48, 2, 4, 128, vocab=512), "max_position_embeddings": 256}
        ),
        num_frames=4,
    )


_NESTED = ("vision", "qformer", "llm", "checkpoints")

# original config key → (our section, our field, converter)
_ORIGINAL_FIELDS: dict[str, tuple[str | None, str, Any]] = {
    "img_size": ("vision", "image_size", int),
    "temporal_downsample": ("vision", "temporal_downsample", bool),
    "no_lmhra": ("vision", "lmhra", lambda v: not v),
    "double_lmhra": ("vision", "double_lmhra", bool),
    "lmhra_reduction": ("vision", "lmhra_reduction", float),
    "gmhra_layers": ("vision", "gmhra_layers", int),
    "gmhra_dropout": ("vision", "gmhra_dropout", float),
    "num_query_token": ("qformer", "num_query_tokens", int),
    "extra_num_query_token": ("qformer", "num_extra_query_tokens", int),
    "max_txt_len": (None, "max_text_len", int),
    "low_resource": (None, "low_resource", bool),
}


def _apply_original_fields(cfg: VideoChatConfig, model: dict[str, Any]) -> None:
    for key, (section, name, convert) in _ORIGINAL_FIELDS.items():
        if key in model:
            target = cfg if section is None else getattr(cfg, section)
            setattr(target, name, convert(model[key]))


def _path_finder(config_path: Path):
    """Resolve the original's relative paths (it ran from `video_chat/`, the config's parent)."""
    bases = [config_path.parent, config_path.parent.parent, Path.cwd()]

    def find(value: str | None) -> str | None:
        if not value:
            return None
        candidates = [Path(value)] if Path(value).is_absolute() else [b / value for b in bases]
        hit = next((c for c in candidates if c.exists()), candidates[0])
        return str(hit.resolve())

    return find


PRESETS = {"videochat-7b": videochat_7b, "videochat-13b": videochat_13b, "tiny": tiny}
