"""Typed training recipes: YAML files (built-in `stage1`, `stage2`, `tiny`, or a path) + key=value.

A recipe is a tree of dataclasses; unknown keys and wrongly typed values fail at load time with the
file and the key named, so a typo never silently trains with a default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from videochat.errors import VideoChatError


class RecipeError(VideoChatError):
    """A recipe file or override is missing, malformed or has an unknown / mistyped key."""


@dataclass
class DataSource:
    """One annotation file and the folder its media paths are relative to."""

    file: str
    root: str = ""
    media: str | None = None  # "video" | "image"; None: from each entry's key


@dataclass
class ModelSpec:
    preset: str | None = "videochat-7b"  # a VideoChatConfig preset, used when `path` is unset
    path: str | None = None  # a model directory (load_model); wins over `preset`
    init: str | None = None  # trainable weights to start from (a checkpoint dir or .safetensors)
    tokenizer: str | None = None  # tokenizer directory when the preset has none
    llm_dtype: str = (
        "auto"  # frozen LLM weights on GPU: auto (= the autocast dtype) | fp32 | bf16 | fp16
    )


@dataclass
class PromptSpec:
    template: str = "###Human: {} ###Assistant: "
    video_prompts: str | None = "builtin:video"  # file of prompt lines, "builtin:video" or None
    image_prompts: str | None = "builtin:image"
    end_sym: str = "###"
    system: str = ""
    start_token: str = "<Video>"
    end_token: str = "</Video>"
    img_start_token: str = "<Image>"
    img_end_token: str = "</Image>"
    add_second_msg: bool = True  # stage 2: "The video contains N frames sampled at … seconds."
    # stage 2: "conversation" (the original: system, ###Human: <Video>rows</Video>msg, turns) or
    # "rows_first" (ours: rows, then the turns alone; the embedded build's drill, see
    # `videochat.embedded.build`)
    layout: str = "conversation"


@dataclass
class FreezeSpec:
    """True = frozen. Defaults are the original's (both stages)."""

    vit: bool = True  # visual encoder except GMHRA/LMHRA (`mhra` in the name)
    mhra: bool = False
    ln_vision: bool = False
    qformer: bool = True
    query_tokens: bool = True
    extra_query_tokens: bool = False
    llama_proj: bool = False
    llm: bool = True

    @property
    def vision_side_frozen(self) -> bool:
        """Everything before llama_proj is frozen (its output is then a fixed function of the frames)."""
        parts = (self.vit, self.mhra, self.ln_vision, self.qformer)
        return all(parts) and self.query_tokens and self.extra_query_tokens


@dataclass
class OptimSpec:
    lr: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.02
    max_grad_norm: float = -1.0  # <= 0 disables clipping (original default)
    warmup_ratio: float = 0.2  # warm-up steps as a fraction of all steps
    min_lr_ratio: float = 0.01  # cosine floor as a fraction of lr


@dataclass
class Recipe:
    stage: int = 1
    model: ModelSpec = field(default_factory=ModelSpec)
    data_dir: str = ""  # substituted for ${data_dir} in data paths
    data: list[DataSource] = field(default_factory=list)
    num_frames: int = 4
    sampling: str = "rand"
    batch_size: int = 32  # per process
    grad_accum_steps: int = 1
    epochs: int = 1
    max_steps: int = 0  # optimizer steps; 0 = epochs × steps per epoch
    max_txt_len: int = 32
    prompt: PromptSpec = field(default_factory=PromptSpec)
    freeze: FreezeSpec = field(default_factory=FreezeSpec)
    optim: OptimSpec = field(default_factory=OptimSpec)
    # auto (GPU: bf16 if supported, else fp16; CPU: fp32) | fp32 | bf16 | fp16; on CPU only a
    # named bf16 autocasts (`setup.pick_precision`), anything else runs fp32
    precision: str = "auto"
    # the scaled-dot-product attention kernel: auto (PyTorch's pick) or math (`setup.attention_kernel`)
    attention: str = "auto"
    gradient_checkpointing: bool = False
    strategy: str = "ddp"  # ddp | fsdp (shards the LLM's decoder layers)
    device: str = "auto"
    output_dir: str = "runs/train"
    save_every: int = 0  # optimizer steps between checkpoints; 0 = once per epoch
    keep_checkpoints: int = 2
    resume: bool = False
    export: str | None = None  # write a load_model directory here at the end
    seed: int = 42
    num_workers: int = 0
    log_every: int = 1
    max_bad_fraction: float = 0.05
    # >0: encode each video this many times (random samplings) before training and reuse the
    # Q-Former rows (`visual_cache`); needs the whole vision side frozen
    visual_cache: int = 0
    # the seed the cache's samplings are drawn with (None: `seed`); runs that share it, the data
    # and the frozen vision side ask for the same cache
    visual_cache_seed: int | None = None
    # keep each built cache in this folder and load it when a run asks for the same one
    # (`visual_cache.cache_key`) instead of encoding again
    visual_cache_dir: str | None = None
    # processes decoding the files while the frozen side encodes them (None: `num_workers`).
    # Why apart from `num_workers`: building the cache is mostly decoding (about 20 of 25 ms a
    # clip), where two processes help, while a step from the cache is cheap to batch
    # (benchmarks/visual_cache_workers.py)
    visual_cache_workers: int | None = None
    # batches of entries with similar text length (less padding; `sampler.group_by_length`)
    group_by_length: bool = False
    # "token": the loss is the mean over every answer token of the batch (the original);
    # "sample": the mean of each sample's own token mean, so a one-word answer weighs as much as
    # a paragraph
    loss_average: str = "token"
    # lay each batch's samples end to end in fewer rows, their common start (system text, video
    # marker) computed once a row (`packing.pack`): the same loss with fewer positions computed
    pack_batches: bool = False
    # run a padded batch's common start (stage 0: bos, the system text, the video marker) through
    # the LLM once, its keys and values shared by every row (`shared_prefix`): the same loss
    shared_prefix: bool = False
    # torch.compile the LLM's decoder layers (`setup.compile_decoder_layers`): the same function,
    # faster steps after a compile at the start
    compile_layers: bool = False

    def validate(self) -> None:
        checks = [
            (self.stage in (1, 2), "stage must be 1 or 2"),
            (self.sampling in ("rand", "middle"), "sampling must be 'rand' or 'middle'"),
            (self.precision in ("auto", "fp32", "bf16", "fp16"), "precision: auto|fp32|bf16|fp16"),
            (self.attention in ("auto", "math"), "attention must be auto or math"),
            (self.strategy in ("ddp", "fsdp"), "strategy must be 'ddp' or 'fsdp'"),
            (self.batch_size >= 1 and self.grad_accum_steps >= 1, "batch sizes must be >= 1"),
            (self.num_frames >= 1 and self.epochs >= 1, "num_frames and epochs must be >= 1"),
            (0.0 <= self.max_bad_fraction <= 1.0, "max_bad_fraction must be in [0, 1]"),
            (self.loss_average in ("token", "sample"), "loss_average must be token or sample"),
            (
                self.prompt.layout in ("conversation", "rows_first"),
                "prompt.layout must be conversation or rows_first",
            ),
            (bool(self.data), "the recipe lists no data (data: [{file: ..., root: ...}])"),
        ]
        for ok, message in checks:
            if not ok:
                raise RecipeError(f"recipe: {message}")
        if self.visual_cache < 0:
            raise RecipeError("recipe: visual_cache must be >= 0 (0 = off)")
        if self.visual_cache_workers is not None and self.visual_cache_workers < 0:
            raise RecipeError("recipe: visual_cache_workers must be >= 0 (0 = this process)")
        if self.visual_cache and not self.freeze.vision_side_frozen:
            raise RecipeError(
                "recipe: visual_cache needs the whole vision side frozen (freeze.vit, mhra, "
                "ln_vision, qformer, query_tokens and extra_query_tokens all true): cached rows "
                "of a vision side that trains would go stale"
            )
        if self.model.llm_dtype not in ("auto", "fp32", "bf16", "fp16"):
            raise RecipeError("recipe: model.llm_dtype must be auto, fp32, bf16 or fp16")
        for source in self.data:
            if source.media not in (None, "video", "image"):
                raise RecipeError(f"recipe: data media must be video or image: {source.file}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_recipe(name_or_path: str, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Load a built-in recipe or a YAML path, apply ``key=value`` overrides, type-check."""
    text, where = _recipe_text(name_or_path)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise RecipeError(f"{where}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{where}: a recipe must be a mapping of keys to values")
    for item in overrides:
        _apply_override(data, item)
    recipe = _build(Recipe, data, where)
    if where.startswith("built-in recipe"):
        recipe.model.tokenizer = _checkout_path(recipe.model.tokenizer)
    recipe.data = [_expand(source, recipe.data_dir) for source in recipe.data]
    recipe.validate()
    return recipe


def builtin_recipes() -> list[str]:
    """Names of the recipes shipped in videochat/configs/recipes (stage1, stage2, tiny, ...)."""
    folder = resources.files("videochat") / "configs" / "recipes"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _checkout_path(path: str | None) -> str | None:
    """A built-in recipe's relative path (e.g. the tiny recipe's tokenizer under tests/) names a
    file of the source checkout: use it from any working directory, unless it exists here."""
    if not path or Path(path).is_absolute() or Path(path).exists():
        return path
    in_checkout = Path(__file__).resolve().parents[2] / path
    return str(in_checkout) if in_checkout.exists() else path


def _recipe_text(name_or_path: str) -> tuple[str, str]:
    if "/" not in name_or_path and name_or_path in builtin_recipes():
        res = resources.files("videochat") / "configs" / "recipes" / f"{name_or_path}.yaml"
        return res.read_text(), f"built-in recipe {name_or_path}"
    path = Path(name_or_path)
    if not path.is_file():
        raise RecipeError(
            f"recipe {name_or_path!r} not found: give a YAML file or one of "
            f"{', '.join(builtin_recipes())}"
        )
    return path.read_text(), str(path)


def _apply_override(data: dict, item: str) -> None:
    if "=" not in item:
        raise RecipeError(f"override {item!r} must look like key=value (e.g. optim.lr=1e-4)")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError:
        value = raw
    node: Any = data
    parts = key.strip().split(".")
    for part in parts[:-1]:
        if isinstance(node, list):
            node = node[_list_index(part, node, key)]
        else:
            node = node.setdefault(part, {})
    last = parts[-1]
    if isinstance(node, list):
        node[_list_index(last, node, key)] = value
    else:
        node[last] = value


def _list_index(part: str, node: list, key: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise RecipeError(f"override {key!r}: {part!r} is not an index of a {len(node)}-item list")
    return int(part)


def _build(cls: type, data: Any, where: str, prefix: str = "") -> Any:
    if not isinstance(data, dict):
        raise RecipeError(f"{where}: {prefix or 'recipe'} must be a mapping")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise RecipeError(
            f"{where}: unknown key {prefix}{unknown[0]!r}; known: {', '.join(sorted(names))}"
        )
    kwargs = {k: _convert(hints[k], v, where, f"{prefix}{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise RecipeError(f"{where}: {prefix or 'recipe'}: {exc}") from None


def _convert(hint: Any, value: Any, where: str, key: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where, key + ".")
    if origin is list:
        if not isinstance(value, list):
            raise RecipeError(f"{where}: {key} must be a list")
        return [_convert(args[0], v, where, f"{key}.{i}") for i, v in enumerate(value)]
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:
            return float(value)  # YAML 1.1 reads "5e-3" as a string
        except ValueError:
            pass
    if hint is str and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise RecipeError(f"{where}: {key} must be {hint.__name__}, got {value!r}")
    return value


def _expand(source: DataSource, data_dir: str) -> DataSource:
    def sub(text: str) -> str:
        return text.replace("${data_dir}", data_dir)

    return dataclasses.replace(source, file=sub(source.file), root=sub(source.root))
