"""Everything a run needs before its first step: model, freezing, optimizer, schedule, precision."""

from __future__ import annotations

import logging
import math
import shutil
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch
from torch import nn

from videochat.errors import VideoChatError
from videochat.train.recipe import FreezeSpec, OptimSpec, Recipe

log = logging.getLogger("videochat.train")


class TrainSetupError(VideoChatError):
    """The recipe asks for something this machine or model cannot do."""


def build_model(recipe: Recipe) -> nn.Module:
    """A model directory (load_model) or a preset with random weights (+ optional init weights)."""
    from videochat.model import build_model as build
    from videochat.model import load_model

    spec = recipe.model
    if spec.path:
        model = load_model(spec.path)
    else:
        from videochat.model.config import VideoChatConfig

        try:
            config = VideoChatConfig.preset(spec.preset or "")
        except KeyError as exc:
            raise TrainSetupError(f"recipe model.preset: {exc.args[0]}") from None
        config.num_frames = recipe.num_frames
        model = build(
            config, _tokenizer(spec.tokenizer or config.llm.tokenizer_path), seed=recipe.seed
        )
    if spec.init:
        _load_init(model, spec.init)
    return model


def _tokenizer(path: str | None):
    if not path:
        raise TrainSetupError("recipe model.tokenizer is needed for a preset without a tokenizer")
    from videochat.model import load_tokenizer

    return load_tokenizer(path)


def _load_init(model: nn.Module, source: str) -> None:
    from videochat.train.checkpoint import load_trainable

    weights = load_trainable(source)
    own = dict(model.named_parameters())
    unknown = sorted(set(weights) - set(own))
    if unknown:
        raise TrainSetupError(
            f"model.init {source}: {len(unknown)} unknown keys, e.g. {unknown[0]}"
        )
    for name, value in weights.items():
        if own[name].shape != value.shape:
            raise TrainSetupError(
                f"model.init {source}: {name} has shape {tuple(value.shape)}, "
                f"the model expects {tuple(own[name].shape)}"
            )
        with torch.no_grad():
            own[name].copy_(value)


def apply_freeze(model: nn.Module, spec: FreezeSpec) -> list[str]:
    """Set requires_grad per module group as the recipe says; return the trainable names."""
    groups = {
        "visual_encoder": lambda name: spec.mhra if "mhra" in name else spec.vit,
        "ln_vision": lambda name: spec.ln_vision,
        "qformer": lambda name: spec.qformer,
        "visual_positions": lambda name: spec.qformer,  # the Q-Former's input codes
        "query_tokens": lambda name: spec.query_tokens,
        "extra_query_tokens": lambda name: spec.extra_query_tokens,
        "llama_proj": lambda name: spec.llama_proj,
        "row_embed": lambda name: spec.llama_proj,  # the interface trains as one
        "stretch_proj_weight": lambda name: spec.llama_proj,
        "stretch_proj_bias": lambda name: spec.llama_proj,
        "llm": lambda name: spec.llm,
    }
    trainable = []
    for name, param in model.named_parameters():
        head = name.split(".", 1)[0]
        rule = groups.get(head)
        frozen = True if rule is None else rule(name)
        param.requires_grad_(not frozen)
        if not frozen:
            trainable.append(name)
    if not trainable:
        raise TrainSetupError("the freeze settings leave no parameter to train")
    return trainable


def hold_frozen_in_eval(model: nn.Module, spec: FreezeSpec) -> None:
    """Put the frozen vision modules in eval mode (call after every `.train()`).

    The original does this once for good (BLIP-2's `disabled_train`): a frozen Q-Former, and a
    visual encoder whose GMHRA is frozen too, never apply dropout while the rest trains."""
    if spec.vit and spec.mhra:
        model.visual_encoder.eval()
    if spec.qformer:
        model.qformer.eval()


def make_optimizer(model: nn.Module, spec: OptimSpec) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases, norms and other 1-D parameters (as the original)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim <= 1 or name.endswith(".bias") else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": spec.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(
        [g for g in groups if g["params"]], lr=spec.lr, betas=tuple(spec.betas)
    )


def make_scheduler(
    optimizer: torch.optim.Optimizer, spec: OptimSpec, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up, then half a cosine down to min_lr_ratio × lr."""
    warmup = int(spec.warmup_ratio * total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        progress = (step - warmup) / max(1, total_steps - warmup)
        return max(spec.min_lr_ratio, 0.5 * (1.0 + math.cos(math.pi * progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass
class Precision:
    dtype: torch.dtype | None  # autocast dtype; None = fp32
    device_type: str

    def autocast(self) -> AbstractContextManager:
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    @property
    def needs_scaler(self) -> bool:
        return self.dtype == torch.float16


def pick_precision(requested: str, device: torch.device) -> Precision:
    """On GPU bf16/fp16 autocast (auto = bf16 where supported, else fp16). On CPU fp32, unless
    bf16 is asked for by name: CPU autocast then runs the matmuls in bf16, which CPUs with
    bf16 dot-product instructions (AVX512-BF16, AMX) do several times faster (a 3,200×192 by
    192×512 matmul on this project's 2-core machine: 11.3 ms fp32, 3.2 ms bf16); fp16 on CPU is
    not offered (no such speed-up, and it would need a loss scaler)."""
    if device.type != "cuda":
        bf16 = requested == "bf16" and device.type == "cpu"
        if bf16 and not cpu_has_bf16():
            log.warning(
                "precision bf16 on a CPU where oneDNN has no bf16 kernels (%s): the matmuls are "
                "emulated and run several times slower than fp32 (benchmarks/cpu_bf16.py on a "
                "2-core AVX2 EPYC: 9.5x the fp32 step time); use precision fp32 here",
                torch.backends.cpu.get_cpu_capability(),
            )
        return Precision(torch.bfloat16 if bf16 else None, device.type)
    if requested == "fp32":
        return Precision(None, device.type)
    if requested == "auto":
        requested = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return Precision(torch.bfloat16 if requested == "bf16" else torch.float16, device.type)


def attention_kernel(name: str) -> AbstractContextManager:
    """A context in which scaled-dot-product attention runs on `name`'s kernel: "auto"
    (PyTorch's pick) or "math" (plain matmuls and a softmax). Why math: for the embedded
    model's tiny heads (32 channels) on the 2-core CPU, PyTorch's pick (flash attention) spent
    19% of a vision-stage step in its backward; on math the step took 0.82x the time
    (`benchmarks/attention_kernel.py`)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    if name == "auto":
        return nullcontext()
    if name == "math":
        return sdpa_kernel(SDPBackend.MATH)
    raise ValueError(f"attention must be auto or math, not {name!r}")


def cpu_has_bf16() -> bool:
    """Whether oneDNN has bf16 kernels for this CPU (it needs AVX-512 or AMX; AVX2: no)."""
    return bool(
        torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )


def cast_frozen_llm(model: nn.Module, recipe: Recipe, precision: Precision) -> None:
    """Keep a frozen LLM in half precision on GPU (as the original loads LLaMA in fp16).

    Trainable weights stay fp32 for the optimizer; a trainable LLM is never cast.
    """
    if precision.device_type != "cuda" or not recipe.freeze.llm:
        return
    wanted = recipe.model.llm_dtype
    dtype = precision.dtype if wanted == "auto" else _DTYPES[wanted]
    if dtype is not None:
        model.llm.to(dtype)


_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def compile_decoder_layers(model: nn.Module) -> bool:
    """`torch.compile` each of the LLM's decoder layers in place (dynamic shapes: batches vary
    in width; the state dict keeps its keys). Fuses the small elementwise steps (norms, softmax,
    masking, SiLU) that dominate a tiny LLM's step: an embedded 2-layer step in 0.78-0.81x the
    time on a small set (`benchmarks/llm_switch.py compile_layers`), after up to a minute of
    compiling the first time in a process. On CPU it needs a C++ compiler; without one the
    layers run as they are (the same function). Returns whether it compiled."""
    from videochat.train.distributed import decoder_layers

    if model.llm.device.type == "cpu" and not any(map(shutil.which, ("g++", "c++", "clang++"))):
        log.warning("compile_layers: no C++ compiler on this machine; the layers run uncompiled")
        return False
    for layer in decoder_layers(model.llm):
        layer.compile(dynamic=True)
    return True


def enable_gradient_checkpointing(model: nn.Module) -> None:
    """Recompute activations in backward: the LLM via transformers, the ViT if it supports it."""
    model.llm.config.use_cache = False
    llm, kwargs = model.llm, {"use_reentrant": False}
    if hasattr(llm, "activation_checkpointing_enable"):  # transformers >= 5.x name
        llm.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    vision = model.visual_encoder
    if hasattr(vision, "set_gradient_checkpointing"):
        vision.set_gradient_checkpointing(True)
