"""The end-to-end rebuild: synthetic data → tokenizer → vision pretraining → focus stages →
drill → stage 0 → late stages → stage 1/2 → export.

Stages: `vision` (ours: ViT + Q-Former learn the scene facts, `videochat.embedded.pretrain`),
the focus stages `lookup`, `reverse`, `motion`, `order` and `timing` (ours; 0 steps skips each:
the drill's recipe on its colour, shape, direction, temporal-order, then event-time questions
alone, so the LLM learns to find the rows of the object a question names and to read each fact
from them one at a time, `stage_recipe`), `drill` (ours; 0 steps skips it: the LLM and
llama_proj learn the multiple-choice questions about each object in a short layout,
`embedded_drill.yaml`), `stage0` (ours: the LLM and llama_proj learn to answer from the frozen
vision side, the project's training loop), the late stages `late_lookup`, `late_reverse`, `late_timing`,
`late_order`, `late_drill` and `late_stage0` (ours; 0 steps skips each: those stages again,
then `late_timing_mix`, the event-time questions among the drill's; `LATE_STAGES`; with
`late_stamps` the frame stamps come on for them, `stamp_rows`; with `late_decimal_tokens` a
time's decimal becomes one token, `decimal_token_rows`), then the original's `stage1`
(captions) and `stage2` (instructions) with the original's freezing.

Every random choice derives from `--seed` (data seed S, benchmark seed S + 1000, never used for
training; `--llm-seed` redraws the stages after the vision stage), so the same command on the
same software and thread count gives the same data and weights, byte for byte, in any folder
(measured on a 200-video build of every stage); stages 1-2 may differ within a step (GMHRA's
depthwise Conv3d gradient is not bit-reproducible on a multi-threaded CPU: it was in a 2-frame
smoke build). b1, an earlier committed model, was built before session 25 removed two sources
of difference (the videos' x264 mbtree pass, the visual cache's path-drawn frames): reruns of
its command built siblings (task mean 71.5% and 71.8% against 73.9%;
docs/embedded-experiments.md)."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from videochat.embedded import data
from videochat.embedded.alter import decimal_token_rows, finish, stamp_rows, time_token_rows
from videochat.embedded.config import (
    IMAGE_SIZE,
    NUM_FRAMES,
    embedded_config,
    shape_row_names,
    vocab_rows,
)

if TYPE_CHECKING:
    from videochat.train.recipe import Recipe

from videochat.errors import VideoChatError

log = logging.getLogger("videochat.embedded")
# stages rerun after stage 0 (0 steps skips each), as the earlier stage named: the colour
# questions alone, the event-time questions alone (session 32: on the 3,200-step vision side's
# frame rows with their stamps, 300 steps of them after the finished model took event time from
# 19% to 61%), the temporal-order questions alone, then the balanced drill, then stage 0's
# conversations. Why: on LMHRA's rows (and on the 3,200-step vision side's: b33, 61%) the colour
# lookup never forms in the mixed stages, and 300 steps of colour alone after the finished model
# form it (98.9%; b36 98.9%); the drill then brings the other tasks back (l1y: task mean
# 75.4%), but the open-ended answers halve, which stage 0's conversations restore in part (r3,
# session 23: free form 71.4% against b1's 64.5%; b36 70.8%; docs/embedded-experiments.md);
# last, the event-time questions among as many drill questions (`data.timing_mix_entries`).
# The shape questions alone ("What shape is the orange object?") after the colour ones: the
# shape lookup forms in stage 0 in some draws and not in others (session 39)
LATE_STAGES: dict[str, str] = {
    "late_lookup": "lookup",
    "late_reverse": "reverse",
    "late_timing": "timing",
    "late_order": "order",
    "late_drill": "drill",
    "late_stage0": "stage0",
    "late_timing_mix": data.TIMING_MIX,
}
STAGES = ("vision", *data.FOCUS_TASKS, "drill", "stage0", *LATE_STAGES, "stage1", "stage2")
# each stage's training seed is the build's seed + this (fixed when the drill came in, so the
# builds from before it keep their seeds)
SEED_OFFSET = {
    "vision": 0,
    "stage0": 1,
    "stage1": 2,
    "stage2": 3,
    "drill": 4,
    "lookup": 5,
    "motion": 6,
    "reverse": 7,
    "order": 8,
    "timing": 9,
    "late_lookup": 10,
    "late_drill": 11,
    "late_stage0": 12,
    "late_timing": 13,
    "late_order": 14,
    "late_timing_mix": 15,
    "late_reverse": 16,
}
BENCH_SEED_OFFSET = 1000
# the late stages' fresh videos (`BuildPlan.late_videos`): a seed neither the training set nor the
# benchmark uses
LATE_DATA_SEED_OFFSET = 2000
FACT_HEADS = "fact_heads.pt"  # under runs/vision/: the vision stage's read-out heads


@dataclass
class BuildPlan:
    """Sizes of one rebuild (the defaults made the committed model)."""

    out: Path
    seed: int = 0
    # the seeds of every stage after the vision stage (batch order, the runs' random draws)
    # instead of `seed`'s: another draw of them on the same data and vision stage (None: `seed`)
    llm_seed: int | None = None
    videos: int = 3000
    bench_videos: int = 100
    vocab: int = 1024
    steps: dict[str, int] = field(
        default_factory=lambda: {
            "vision": 1600,
            **dict.fromkeys(data.FOCUS_TASKS, 0),
            "drill": 1200,
            "stage0": 2300,
            **dict.fromkeys(LATE_STAGES, 0),
            "stage1": 20,
            "stage2": 20,
        }
    )
    vision_image_steps: int = 700  # of the vision steps, single frames first
    vision_shape_steps: int = 500  # of those, patch facts only (see `pretrain`)
    comes_goes_weight: float = 1.0  # visibility of appearing/vanishing objects (`PretrainPlan`)
    comes_goes_rows: str = "both"  # the rows that weight reaches (`PretrainPlan`)
    conv_stem: tuple[int, ...] = (32, 64)  # channels of the ViT's convolutional stem (): none
    shape_stretches: int = 2  # rows per shape, one per stretch of the clip (`embedded_config`)
    row_embed: bool = False  # a learned embedding per visual row (`embedded_config`)
    lmhra: bool = False  # local temporal modules in the ViT (`embedded_config`)
    frame_rows: bool = True  # one Q-Former row per frame (`embedded_config`)
    row_names: bool = False  # each per-shape row carries its shape's word (`embedded_config`)
    row_name_scale: float = 1.0  # the names' gain (`VideoChatConfig.row_name_scale`)
    every_object: bool = False  # colour/shape/direction asked about every object (`data`)
    group_by_length: bool = False  # stage batches of alike text length (the recipe key)
    visual_positions: bool = False  # position codes on the Q-Former's input (`embedded_config`)
    balanced_drill: bool = False  # the drill asks every task as often (`data.balance_tasks`)
    bare_drill: bool = False  # the drill asks most questions without options (`data.drill_turn`)
    merge_stretches: bool = False  # a shape's stretch rows reach the LLM as one (`embedded_config`)
    bare_lookup: bool = False  # the lookup stage asks without options (`data.write_annotations`)
    frame_times: bool = False  # frame timestamps on the Q-Former's values (`embedded_config`)
    frame_row_times: bool = False  # the timestamps reach only the frame rows (`embedded_config`)
    frame_stamps: bool = False  # each frame row's time as text before it (`embedded_config`)
    frame_pairs: bool = False  # frame rows also read the frame before (`embedded_config`)
    late_stamps: bool = False  # `frame_stamps` switched on for the late stages only (`stamp_rows`)
    time_tokens: bool = False  # one token per option time, LLM stages (`time_token_rows`)
    late_time_tokens: bool = False  # the same from the late stages on
    # the late stages spell a time's decimal as one token (" 3", ".5"; `decimal_token_rows`)
    late_decimal_tokens: bool = False
    nearest_times: bool = False  # late stages: right time listed near the truth (`data`)
    # the same in the stages before them (focus stages, drill, stage 0): there the LLM first
    # learns to answer event times, and with the truth listed its own estimate is as right as
    # the option (session 38)
    early_nearest_times: bool = False
    # the LLM stages draw their visual caches' frames with the build's seed, not each stage's
    # own, and keep them in out/visual_cache: a stage on videos an earlier stage encoded loads
    # their rows instead of encoding them again (each late stage spent about 2 minutes on it)
    shared_visual_cache: bool = False
    # stage 0 and the late stage 0 lay each batch's samples end to end in fewer rows, their
    # common start once a row (`train.packing`): the same loss, a step in ~0.7x the time
    pack_batches: bool = False
    # every stage's attention on PyTorch's math kernel (`train.setup.attention_kernel`): a
    # vision step in ~0.83x the time
    math_attention: bool = False
    # fresh videos for the late stages (0: the training set's). Why: after stage 0 the LLM has
    # fitted the training videos' answers (the late timing stage's loss ends at 0.004), so on
    # them it never needs the options; on held-out videos it then writes its own estimate ("at
    # 4.5 seconds" where 4.0 is listed) instead of choosing the option nearest to it
    late_videos: int = 0
    vision_batch: int = 16  # clips per vision step
    # every stage's matmuls: "fp32", or "bf16" (CPU autocast; weights stay fp32), which on a
    # CPU with bf16 dot products runs a step in 0.6-0.7× the time (benchmarks/cpu_bf16.py)
    precision: str = "fp32"
    workers: int = 2
    overrides: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # refused when planned, not when the vision stage starts after the data is generated
        from videochat.embedded.pretrain import check_comes_goes_rows

        check_comes_goes_rows(self.comes_goes_rows)
        if self.late_stamps and (self.frame_stamps or not self.frame_rows):
            raise ValueError(
                "late_stamps switches the frame stamps on after stage 0: it needs frame_rows "
                "and frame_stamps off (with frame_stamps the stamps are on from the start)"
            )
        if self.time_tokens and self.late_time_tokens:
            raise ValueError(
                "time_tokens adds the option-time tokens before the first LLM stage, "
                "late_time_tokens before the late stages: choose one"
            )
        if self.late_videos < 0:
            raise ValueError(f"late_videos must be 0 or more, got {self.late_videos}")


# the plan's on/off options, as `--name` / `--no-name` on the command line and in the card
SWITCHES: dict[str, str] = {
    "row_embed": "a learned embedding per visual row after llama_proj",
    "lmhra": "UniFormerV2's local temporal module in every ViT block (and patch event targets)",
    "frame_rows": "Q-Former rows that read one frame each (frame order reaches the rows)",
    "row_names": "each per-shape row carries its shape's word embedding (the LLM finds it by name)",
    "every_object": "training questions on colour, shape and direction about every object",
    "group_by_length": "train stages 0-2 on batches of alike text length (less padding)",
    "visual_positions": "patch column, row and frame codes on the tokens the Q-Former reads",
    "balanced_drill": "the drill asks every task as often (rarer tasks re-asked, options reshuffled)",
    "bare_drill": "the drill asks without the options, except temporal order and event times",
    "merge_stretches": "each shape's stretch rows reach the LLM as one row (its motion in one row)",
    "bare_lookup": "the lookup stage asks its colour questions without the options",
    "frame_times": "each frame's timestamp in seconds coded on the Q-Former's cross-attention values",
    "frame_row_times": "the timestamps reach only the frame rows (one frame each: the time exact)",
    "frame_stamps": "each frame row reaches the LLM after its frame's time as text (' 3.5')",
    "frame_pairs": "each frame row also reads the frame before its own (what changed since)",
    "late_stamps": "the frame stamps come on for the late stages only (stage 0 learns without)",
    "time_tokens": "each option time ('at 3.5 seconds') is one token in every LLM stage",
    "late_time_tokens": "each option time ('at 3.5 seconds') is one token from the late stages on",
    "late_decimal_tokens": "from the late stages on a time's decimal is one token (' 3', '.5')",
    "nearest_times": "the late stages' event-time questions list the right time up to 0.5 s off: "
    "the answer is the option nearest the truth",
    "early_nearest_times": "the same in the focus stages, the drill and stage 0",
    "shared_visual_cache": "the LLM stages share one frame draw per video, encoded once",
    "pack_batches": "stage 0 packs each batch's samples end to end, their shared start once a row",
    "math_attention": "every stage's attention on PyTorch's math kernel (faster for tiny heads)",
}


def cli_flag(name: str) -> str:
    """A stage's or switch's name as the command line spells it (`late-lookup`, `row-names`)."""
    return name.replace("_", "-")


def recipe_path(stage: str) -> str:
    """The packaged recipe file of a stage (`videochat/configs/recipes/embedded_<stage>.yaml`)."""
    res = resources.files("videochat") / "configs" / "recipes" / f"embedded_{stage}.yaml"
    return str(res)


def stage_recipe(stage: str, overrides: list[str]) -> Recipe:
    """A stage's recipe with `overrides` applied. A focus stage (`data.FOCUS_TASKS`) is the
    drill's recipe on the drill's questions of one task alone. Why: in toy runs on the frozen
    rows of a vision side with position codes (batch 64, no options), 300 steps of colour
    questions alone and then the mixed questions reached 100% on colour by step 600, where the
    mixed questions from the start stayed at 55-62% (session 15); direction formed alone and not
    in the mix (session 16; docs/embedded-experiments.md). The timing mix (`data.TIMING_MIX`)
    is the drill's recipe on its own file. A late stage (`LATE_STAGES`) is the recipe of the
    stage it repeats."""
    from videochat.train.recipe import load_recipe

    stage = LATE_STAGES.get(stage, stage)
    if stage in data.FOCUS_TASKS or stage == data.TIMING_MIX:
        data_file = f"data.0.file=${{data_dir}}/{data.focus_file(stage)}"
        return load_recipe(recipe_path("drill"), [data_file, *overrides])
    return load_recipe(recipe_path(stage), overrides)


class DataMismatchError(VideoChatError):
    """A resumed build found a data folder written for another number of videos."""


def make_data(plan: BuildPlan, out: Path, seed: int, videos: int) -> Path:
    """Synthetic videos at the model's resolution (skipped when already written: a resumed
    build; refused when the folder holds another number of videos than asked for)."""
    from videochat.synth.dataset import write_dataset

    scenes = out / "scenes.jsonl"
    if not scenes.is_file():
        size = (IMAGE_SIZE, IMAGE_SIZE)
        write_dataset(out, videos, 0, seed, size, workers=plan.workers)
        return out
    with scenes.open(encoding="utf-8") as lines:
        found = sum(1 for line in lines if line.strip())
    if found != videos:
        raise DataMismatchError(
            f"{out} holds {found} videos from an earlier build, but this one asks for {videos}: "
            "give the build another --out (or the same --videos / --late-videos as before)"
        )
    return out


def late_data_seed(seed: int) -> int:
    """The seed of the late stages' fresh videos for a build of data seed `seed`."""
    return seed + LATE_DATA_SEED_OFFSET


def annotated_data(plan: BuildPlan, out: Path, seed: int, videos: int, late: bool = False) -> Path:
    """`make_data`, then the training annotations the plan's data options ask for (`late`: the
    late stages' own videos, which `nearest_times` reaches; the others `early_nearest_times`)."""
    data_dir = make_data(plan, out, seed, videos)
    data.write_annotations(
        data_dir,
        plan.every_object,
        plan.balanced_drill,
        not plan.bare_drill,
        plan.bare_lookup,
        plan.nearest_times if late else plan.early_nearest_times,
    )
    return data_dir


def init_model(plan: BuildPlan, data_dir: Path) -> Path:
    """Tokenizer learned on the training corpus + a randomly initialised model, saved as a dir."""
    from videochat.embedded.tokenizer import train_tokenizer
    from videochat.model import build_model, save_model

    target = plan.out / "init"
    if (target / "config.json").is_file():
        return target
    tok = train_tokenizer(data.corpus(data_dir), plan.vocab)
    config = embedded_config(
        vocab_rows(len(tok)),
        plan.conv_stem,
        row_embed=plan.row_embed,
        lmhra=plan.lmhra,
        frame_rows=plan.frame_rows,
        row_tokens=shape_row_names(tok) if plan.row_names else None,
        row_name_scale=plan.row_name_scale,
        shape_stretches=plan.shape_stretches,
        visual_positions=plan.visual_positions,
        merge_stretches=plan.merge_stretches,
        frame_times=plan.frame_times,
        frame_row_times=plan.frame_row_times,
        frame_stamps=plan.frame_stamps,
        frame_pairs=plan.frame_pairs,
    )
    model = build_model(config, tok, seed=plan.seed)
    rescale_cross_attention(model, plan.seed)
    save_model(model, target)
    return target


def rescale_cross_attention(model, seed: int) -> None:
    """Re-draw the Q-Former's cross-attention weights N(0, 1/fan_in) for training from scratch.

    BERT's N(0, 0.02) init suits a pretrained Q-Former; from scratch it adds a visual term ~1% of
    the query residual (measured: the output rows differ by 1% between videos), too faint to
    learn from. N(0, 1/fan_in) keeps each projection's scale (rows differ by 12%). Session 1's
    query/key ×4 on top (rows differ by 66%, attention near one-hot) never learnt in our runs.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.qformer.named_parameters():
            if ".cross_attn." not in name or not name.endswith(".weight") or ".norm." in name:
                continue
            param.copy_(torch.randn(param.shape, generator=gen) * param.shape[1] ** -0.5)


def llm_base_seed(plan: BuildPlan) -> int:
    """The LLM stages' base seed: `llm_seed`, else the data seed."""
    return plan.seed if plan.llm_seed is None else plan.llm_seed


def stage_seed(plan: BuildPlan, stage: str) -> int:
    """The seed of an LLM stage's run: the base seed (`llm_seed`) + the stage's offset."""
    return llm_base_seed(plan) + SEED_OFFSET[stage]


def run_stage(plan: BuildPlan, stage: str, model_dir: Path, data_dir: Path) -> Path:
    """Train one stage from `model_dir` with its packaged recipe; export and return the result
    (`model_dir` itself for a stage of 0 steps)."""
    from videochat.train.loop import train

    if plan.steps.get(stage, 0) == 0:
        return model_dir
    export = plan.out / stage
    if (export / "config.json").is_file():
        return export
    if stage == "vision":
        return run_vision(plan, model_dir, data_dir, export)
    overrides = [
        f"model.path={model_dir}",
        f"data_dir={data_dir}",
        f"output_dir={plan.out / 'runs' / stage}",
        f"export={export}",
        f"max_steps={plan.steps[stage]}",
        f"seed={stage_seed(plan, stage)}",
        f"precision={plan.precision}",
        *(["group_by_length=true"] if plan.group_by_length else []),
        *(shared_cache(plan) if plan.shared_visual_cache else []),
        *(["attention=math"] if plan.math_attention else []),
        *(["pack_batches=true"] if plan.pack_batches and packs(stage) else []),
        *plan.overrides.get(stage, []),
    ]
    recipe = stage_recipe(stage, overrides)
    start = time.perf_counter()
    result = train(recipe)
    log.info(
        "%s: %d steps, loss %.4f, %.0f s",
        stage,
        result.steps,
        result.last_loss or 0,
        time.perf_counter() - start,
    )
    return export


def packs(stage: str) -> bool:
    """Whether `pack_batches` packs a stage's batches: stage 0's recipe only (and its late
    repeat), whose samples share 54 leading positions and are 30% padding; the drill's share
    one and are 15% padding, and packed its steps took 1.08x the time (session 40)."""
    return LATE_STAGES.get(stage, stage) == "stage0"


def shared_cache(plan: BuildPlan) -> list[str]:
    """Recipe overrides for `shared_visual_cache`: one cache seed for every LLM stage (the
    LLM stages' base seed), the caches kept in the build folder."""
    return [
        f"visual_cache_seed={llm_base_seed(plan)}",
        f"visual_cache_dir={plan.out / 'visual_cache'}",
    ]


def run_vision(plan: BuildPlan, model_dir: Path, data_dir: Path, export: Path) -> Path:
    """The vision pretraining stage; its fact heads are kept for the measurement."""
    from videochat.embedded.pretrain import PretrainPlan, cache_clips, pretrain_vision
    from videochat.model import load_model, save_model
    from videochat.train.setup import attention_kernel

    model = load_model(model_dir, device="cpu", dtype="fp32")
    clips = cache_clips(data_dir, NUM_FRAMES, IMAGE_SIZE)
    schedule = PretrainPlan(
        steps=plan.steps["vision"],
        image_steps=plan.vision_image_steps,
        shape_steps=plan.vision_shape_steps,
        batch=plan.vision_batch,
        seed=plan.seed,
        precision=plan.precision,
        comes_goes_weight=plan.comes_goes_weight,
        comes_goes_rows=plan.comes_goes_rows,
    )
    with attention_kernel("math" if plan.math_attention else "auto"):
        heads = pretrain_vision(model, clips, schedule)
    runs = plan.out / "runs" / "vision"
    runs.mkdir(parents=True, exist_ok=True)
    torch.save(heads.state_dict(), runs / FACT_HEADS)
    save_model(model, export)
    return export


def check_steps(plan: BuildPlan) -> None:
    """Refuse, before the data and hours of training, steps that leave an option without effect
    (the CLI sets the steps after the plan is made, so `BuildPlan` cannot check them)."""
    late_steps = any(plan.steps.get(stage, 0) for stage in LATE_STAGES)
    for switch, what in (
        ("late_stamps", "the frame stamps"),
        ("late_time_tokens", "the tokens"),
        ("late_decimal_tokens", "the tokens"),
    ):
        if getattr(plan, switch) and not late_steps:
            raise ValueError(
                f"{switch} needs a late stage with steps (e.g. --late-stage0-steps 600): "
                f"without one {what} never come on"
            )
    if plan.nearest_times and not plan.late_videos:
        raise ValueError(
            "nearest_times changes the late stages' own videos' questions: it needs "
            "late_videos (e.g. --late-videos 6000)"
        )
    if plan.late_videos and not late_steps:
        raise ValueError(
            "late_videos needs a late stage with steps (e.g. --late-stage0-steps 600): "
            "no other stage trains on them"
        )


def build(plan: BuildPlan) -> dict:
    """Run every step (each is skipped when its output exists, so a stopped build resumes)."""
    check_steps(plan)
    plan.out.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        times[name] = round(now - clock, 1)
        clock = now

    train_dir = annotated_data(plan, plan.out / "data", plan.seed, plan.videos)
    late_dir = train_dir
    if plan.late_videos:
        late_seed = late_data_seed(plan.seed)
        late_dir = annotated_data(
            plan, plan.out / "late_data", late_seed, plan.late_videos, late=True
        )
    lap("data")
    model_dir = init_model(plan, train_dir)
    lap("init")
    late_due = True  # once, before the first late stage that runs
    tokens_due = plan.time_tokens  # once, before the first LLM stage that runs
    for stage in STAGES:
        if tokens_due and stage != "vision" and plan.steps.get(stage, 0):
            model_dir, tokens_due = time_token_rows(model_dir, plan.out / "timed"), False
        if late_due and stage in LATE_STAGES and plan.steps.get(stage, 0):
            late_due = False
            if plan.late_stamps:
                model_dir = stamp_rows(model_dir, plan.out / "stamped")
            if plan.late_time_tokens:
                model_dir = time_token_rows(model_dir, plan.out / "timed")
            if plan.late_decimal_tokens:
                model_dir = decimal_token_rows(model_dir, plan.out / "decimals")
        model_dir = run_stage(
            plan, stage, model_dir, late_dir if stage in LATE_STAGES else train_dir
        )
        lap(stage)
    final = finish(model_dir, plan.out / "model")
    lap("export")
    summary = {
        "seed": plan.seed,
        "llm_seed": plan.llm_seed,
        "videos": plan.videos,
        "late_videos": plan.late_videos,
        "steps": plan.steps,
        "vision_image_steps": plan.vision_image_steps,
        "vision_shape_steps": plan.vision_shape_steps,
        "comes_goes_weight": plan.comes_goes_weight,
        "comes_goes_rows": plan.comes_goes_rows,
        "conv_stem": list(plan.conv_stem),
        "shape_stretches": plan.shape_stretches,
        "row_name_scale": plan.row_name_scale,
        "precision": plan.precision,
        **{name: getattr(plan, name) for name in SWITCHES},
        "seconds": times,
    }
    (plan.out / "build.json").write_text(json.dumps(summary, indent=1) + "\n")
    log.info("built %s in %.0f s", final, sum(times.values()))
    return summary
