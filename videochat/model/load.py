"""Build, load and save `VideoChat` models, memory-lean.

Every path starts from a skeleton built on the meta device (no memory, no init cost), then streams
tensors in one at a time (cast to the target dtype, moved to the target device) and assigns them
with `load_state_dict(assign=True)` semantics, so the weights exist once in memory. Buffers nobody
stores (rotary frequencies) are rebuilt at the end; anything still unset is an error.

Sources: a model directory written by `save_model` (config.json + safetensors shards + tokenizer),
an original-style `configs/config.json` (separate EVA / BLIP-2 / LLM / VideoChat files), or the
embedded default directory `videochat/assets/default/`.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from videochat.errors import ModelLoadError
from videochat.model import checkpoint_io, convert
from videochat.model.config import CheckpointPaths, LLMConfig, VideoChatConfig
from videochat.model.convert import LoadReport
from videochat.model.videochat import (
    VideoChat,
    assign_tensors,
    finalize,
    fresh_init,
    target_shapes,
)

log = logging.getLogger(__name__)

FORMAT = "videochat-model"
FORMAT_VERSION = 1
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "assets" / "default"
_DTYPES = {
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
    "half": torch.float16,
    "fp32": torch.float32,
    "float32": torch.float32,
    "float": torch.float32,
}
# Parts VideoChat adds on top of EVA + BLIP-2 + the LLM: initialised fresh when an original config
# names no VideoChat checkpoint (the start of stage-1 training).
_NEW_PARTS = ("visual_encoder.gmhra", "visual_encoder.lmhra", "extra_query_tokens", "llama_proj.")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """None / "auto" → cuda when available, else cpu."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ModelLoadError(f"unknown device {device!r}; use cpu, cuda, cuda:N or auto") from None
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ModelLoadError(f"device {device!r}: no CUDA GPU is available; use cpu or auto")
        if resolved.index is not None and resolved.index >= count:
            raise ModelLoadError(f"device {device!r}: only {count} CUDA GPU(s) are visible")
    return resolved


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """None / "auto" → bf16 on GPU, fp32 on CPU; names like "bf16", "fp16", "fp32"."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is None or dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    try:
        return _DTYPES[str(dtype).lower()]
    except KeyError:
        raise ModelLoadError(f"unknown dtype {dtype!r}; use bf16, fp16, fp32 or auto") from None


def load_tokenizer(path: str | Path) -> Any:
    """The LLM's tokenizer, with pad = eos (the original's call path).

    A bare `tokenizer.model` is converted by transformers' generic sentencepiece backend with BOS
    on, which reproduces the original `LlamaTokenizer` ids (transformers 5's own `LlamaTokenizer`
    class does not: it drops the space before `###` and the BOS).
    """
    from transformers import AutoTokenizer, TokenizersBackend

    path = Path(path)
    if not path.is_dir():
        raise ModelLoadError(f"tokenizer folder not found: {path} (check the LLM / tokenizer path)")
    try:
        if (path / "tokenizer.model").is_file() and not (path / "tokenizer.json").is_file():
            tok = TokenizersBackend.from_pretrained(str(path), add_bos_token=True)
        else:
            tok = AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load a tokenizer from {path}: {exc}") from None
    tok.pad_token = tok.eos_token
    return tok


def llm_config(cfg: LLMConfig) -> Any:
    """The transformers config of the LLM (inline dict or the HF directory's config.json)."""
    from transformers import AutoConfig

    if cfg.hf_config:
        data = dict(cfg.hf_config)
        return AutoConfig.for_model(data.pop("model_type"), **data)
    if cfg.path and (Path(cfg.path) / "config.json").is_file():
        return AutoConfig.from_pretrained(cfg.path)
    raise ModelLoadError(f"LLM directory {cfg.path!r} has no config.json; set llama_model_path")


def build_skeleton(config: VideoChatConfig, tokenizer: Any = None) -> VideoChat:
    """The full model with every tensor on the meta device (shapes only)."""
    from transformers import AutoModelForCausalLM

    hf = llm_config(config.llm)
    try:
        with torch.device("meta"):
            llm = AutoModelForCausalLM.from_config(hf, attn_implementation="sdpa")
            return VideoChat(config, llm, tokenizer)
    except ValueError as exc:
        raise ModelLoadError(f"invalid model config: {exc}") from None


def _caster(dtype: torch.dtype) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda t: t.to(dtype) if t.is_floating_point() else t


def build_model(
    config: VideoChatConfig,
    tokenizer: Any = None,
    *,
    seed: int | None = None,
    device: str | torch.device | None = "cpu",
    dtype: str | torch.dtype | None = None,
    cheap_init: bool = False,
) -> VideoChat:
    """A randomly initialised model (tests, training from scratch, benchmarks).

    `cheap_init` fills weights by tiling one random block instead of running every initialiser:
    seconds instead of minutes for a 7B model, for benchmarks that only need realistic sizes.
    """
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    if tokenizer is None and (config.llm.tokenizer_path or config.llm.path):
        tokenizer = load_tokenizer(config.llm.tokenizer_path or config.llm.path)
    model = build_skeleton(config, tokenizer)
    keys = set(target_shapes(model))
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        if cheap_init:
            _cheap_fill(model, keys, device, dtype)
        else:
            fresh_init(model, keys, device, dtype)
    finalize(model, device)
    return model


def _cheap_fill(model: nn.Module, keys: set[str], device: torch.device, dtype: torch.dtype) -> None:
    block = (torch.randn(1 << 20) * 0.02).to(device=device, dtype=dtype)
    for key in sorted(keys):
        owner, _, name = key.rpartition(".")
        module = model.get_submodule(owner)
        old = module._parameters.get(name, module._buffers.get(name))
        value = torch.empty(
            old.shape, device=device, dtype=dtype if old.is_floating_point() else old.dtype
        )
        flat = value.view(-1)
        for start in range(0, flat.numel(), block.numel()):
            chunk = flat[start : start + block.numel()]
            chunk.copy_(block[: chunk.numel()])
        assign_tensors(model, {key: value}, device)


def save_model(
    model: VideoChat, directory: str | Path, *, max_shard_size: int | str = "2GB"
) -> Path:
    """Write a self-contained model directory that `load_model(directory)` opens."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = copy.deepcopy(model.config)
    hf = model.llm.config.to_dict()
    hf.pop("_name_or_path", None)
    config.llm = LLMConfig(hf_config=hf, chat_template=config.llm.chat_template)
    config.checkpoints = CheckpointPaths()
    config.low_resource = False  # a run-time choice of the loader, not part of the model
    shapes = target_shapes(model)
    state = {
        k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items() if k in shapes
    }
    checkpoint_io.save_sharded(state, directory, max_shard_size=max_shard_size)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "dtype": str(model.dtype).removeprefix("torch."),
        "config": config.to_dict(),
    }
    (directory / "config.json").write_text(json.dumps(meta, indent=1))
    if model.tokenizer is not None:
        model.tokenizer.save_pretrained(str(directory))
    return directory


def load_model(
    source: str | Path | VideoChatConfig | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
) -> VideoChat:
    """Open a model directory, an original-style config json, or (None) the embedded model.

    The returned model carries `model.load_report` (what each file gave, ignored, left out).
    """
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    if isinstance(source, VideoChatConfig):
        return _load_original(source, device, dtype)
    path, config = _locate(source)
    if path.is_dir():
        return _load_dir(path, config, device, dtype)
    return _load_original(config, device, dtype)


def read_config(source: str | Path | None = None) -> VideoChatConfig:
    """The configuration of what `load_model(source)` would open, without reading any weights
    (e.g. its input size for `videochat inspect`)."""
    return _locate(source)[1]


def _locate(source: str | Path | None) -> tuple[Path, VideoChatConfig]:
    """A model directory (or an original config .json) and its configuration; clear errors."""
    if source is None:
        if not (DEFAULT_DIR / "config.json").is_file():
            raise ModelLoadError(
                "no embedded model in this build; pass a model directory or config"
            )
        source = DEFAULT_DIR
    path = Path(source)
    if path.is_dir():
        return path, _dir_config(path)
    if path.suffix == ".json" and path.is_file():
        data = _read_json(path)
        if data.get("format") == FORMAT:
            return path.parent, _dir_config(path.parent)
        if isinstance(data.get("model"), dict):
            try:
                return path, VideoChatConfig.from_original_json(path)
            except ValueError as exc:
                raise ModelLoadError(str(exc)) from None
        raise ModelLoadError(f"{path}: neither a videochat model config nor an original config")
    if path.exists():
        raise ModelLoadError(f"{path}: not a model; pass a model directory or a config .json file")
    raise ModelLoadError(f"{path}: no such model directory or config file")


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path}: expected a JSON object")
    return data


def _dir_config(directory: Path) -> VideoChatConfig:
    if not (directory / "config.json").is_file():
        raise ModelLoadError(
            f"{directory}: not a videochat model directory (no config.json); "
            "make one with `videochat convert` or save_model"
        )
    meta = _read_json(directory / "config.json")
    if meta.get("format") != FORMAT:
        raise ModelLoadError(
            f"{directory}: not a videochat model directory (config.json lacks format {FORMAT!r})"
        )
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ModelLoadError(
            f"{directory}: format version {meta['format_version']} is newer than this videochat; upgrade it"
        )
    return VideoChatConfig.from_dict(meta["config"])


def _load_dir(
    directory: Path, config: VideoChatConfig, device: torch.device, dtype: torch.dtype
) -> VideoChat:
    has_tok = any((directory / f).is_file() for f in ("tokenizer.json", "tokenizer.model"))
    model = build_skeleton(config, load_tokenizer(directory) if has_tok else None)
    tensors, report = convert.convert_tensors(
        checkpoint_io.read_weights_dir(directory),
        target_shapes(model),
        lambda k: k,
        source=str(directory),
        required=lambda k: True,
        cast=_caster(dtype),
    )
    assign_tensors(model, tensors, device)
    finalize(model, device)
    model.load_report = report
    return model


def _load_original(config: VideoChatConfig, device: torch.device, dtype: torch.dtype) -> VideoChat:
    """The original's order: EVA ViT, BLIP-2 (Q-Former, ln_vision, queries), LLM, VideoChat."""
    dtype = resolve_dtype(dtype, device)
    if config.low_resource:
        _check_low_resource(device)
    paths = config.checkpoints
    if not paths.vit or not paths.qformer or not config.llm.path:
        raise ModelLoadError(
            "the original config must name vit_model_path, q_former_model_path and llama_model_path"
        )
    tok_dir = config.llm.tokenizer_path or config.llm.path
    model = build_skeleton(config, load_tokenizer(tok_dir))
    if config.low_resource:
        model.llm = _llm_8bit(config.llm.path, device)
    target = {
        k: v
        for k, v in target_shapes(model).items()
        if not (config.low_resource and k.startswith("llm."))
    }
    steps = _original_steps(config, target, _caster(dtype))
    report = LoadReport(expected_missing=list(target))
    for file, step in steps:
        sd = _read_source(Path(file))
        tensors, part = step(sd, source=file)
        del sd
        assign_tensors(model, tensors, device)
        report = report.merge(part)
    _init_new_parts(model, report, device, dtype)
    finalize(model, device)
    if config.low_resource:
        model.visual_encoder.float()  # the original's vit_to_cpu: fp32 on the CPU
    model.load_report = report
    log.info("loaded %s", report.summary())
    return model


def _original_steps(config: VideoChatConfig, target: dict, cast) -> list[tuple[str, Callable]]:
    """(file, conversion) in the original's loading order; later files override earlier ones."""
    paths = config.checkpoints
    steps = [
        (paths.vit, partial(convert.convert_eva, target=target, config=config, cast=cast)),
        (paths.qformer, partial(convert.convert_blip2, target=target, cast=cast)),
    ]
    if not config.low_resource:  # low-resource mode loads the 8-bit LLM itself
        steps.append((config.llm.path, partial(convert.convert_hf_llm, target=target, cast=cast)))
    if paths.videochat:
        steps.append(
            (paths.videochat, partial(convert.convert_videochat, target=target, cast=cast))
        )
    return steps


def _read_source(path: Path) -> Mapping[str, torch.Tensor]:
    return (
        checkpoint_io.read_weights_dir(path)
        if path.is_dir()
        else checkpoint_io.read_state_dict(path)
    )


def _init_new_parts(model: VideoChat, report: LoadReport, device, dtype) -> None:
    """Without a VideoChat checkpoint, VideoChat's own parts start fresh; anything else missing
    is an error."""
    missing = [k for k in report.expected_missing if not k.endswith("num_batches_tracked")]
    fresh = {k for k in missing if k.startswith(_NEW_PARTS)}
    lacking = [k for k in missing if k not in fresh]
    if lacking:
        raise ModelLoadError(
            f"{len(lacking)} weight(s) provided by no checkpoint: {', '.join(lacking[:5])}"
        )
    if fresh:
        log.warning("no VideoChat checkpoint: %d new weights initialised fresh", len(fresh))
        fresh_init(model, fresh, device, dtype)
        report.initialized = sorted(fresh)
        report.expected_missing = [k for k in report.expected_missing if k not in fresh]


def _check_low_resource(device: torch.device) -> None:
    if device.type != "cuda" or not torch.cuda.is_available():
        raise ModelLoadError(
            "low_resource mode (8-bit LLM, vision on CPU) needs a CUDA GPU; set low_resource "
            "to false to run on this machine"
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise ModelLoadError(
            "low_resource mode needs bitsandbytes: pip install bitsandbytes"
        ) from None


def _llm_8bit(path: str, device: torch.device) -> nn.Module:
    """The original's low-resource LLM: 8-bit weights (bitsandbytes) on the GPU."""
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    return AutoModelForCausalLM.from_pretrained(
        path,
        quantization_config=BitsAndBytesConfig(load_in_8bit=True),
        dtype=torch.float16,
        device_map={"": device.index or 0},
        attn_implementation="sdpa",
    )
