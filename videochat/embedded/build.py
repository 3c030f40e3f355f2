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
then `late_timing_mix`, the event-time questions among the drill's, and `late_stage0_mix`, the
weakest tasks' questions among stage 0's conversations; `LATE_STAGES`; with
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
from videochat.embedded.plan import (
    LATE_STAGES,
    STAGES,
    SWITCHES,
    BuildPlan,
    late_data_seed,
    llm_base_seed,
    packs,
    stage_seed,
)

if TYPE_CHECKING:
    from videochat.train.recipe import Recipe

from videochat.errors import VideoChatError

log = logging.getLogger("videochat.embedded")
LOG_FORMAT = "%(asctime)s %(name)s: %(message)s"  # the build's log lines
FACT_HEADS = "fact_heads.pt"  # under runs/vision/: the vision stage's read-out heads


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
    is the drill's recipe on its own file, the stage-0 mix (`data.STAGE0_MIX`) stage 0's. A late
    stage (`LATE_STAGES`) is the recipe of the stage it repeats."""
    from videochat.train.recipe import load_recipe

    stage = LATE_STAGES.get(stage, stage)
    if stage in data.FOCUS_TASKS or stage in (data.TIMING_MIX, data.STAGE0_MIX):
        data_file = f"data.0.file=${{data_dir}}/{data.focus_file(stage)}"
        recipe = "stage0" if stage == data.STAGE0_MIX else "drill"
        return load_recipe(recipe_path(recipe), [data_file, *overrides])
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
        mix_lookups=plan.mix_lookups,
        every_event=plan.every_event and late,
        event_draws=plan.event_draws if late else 1,
        every_order=plan.every_order and late,
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
        llm_layers=plan.llm_layers,
        frame_convs=plan.frame_convs,
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
        *(["shared_prefix=true"] if plan.shared_prefix else []),
        *(["compile_layers=true"] if plan.compile_layers else []),
        *([f"batch_size={plan.batches[stage]}"] if stage in plan.batches else []),
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
    for switch in ("nearest_times", "every_event", "every_order"):
        if getattr(plan, switch) and not plan.late_videos:
            raise ValueError(
                f"{switch} changes the late stages' own videos' questions: it needs "
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
        "batches": plan.batches,
        "vision_image_steps": plan.vision_image_steps,
        "vision_shape_steps": plan.vision_shape_steps,
        "comes_goes_weight": plan.comes_goes_weight,
        "comes_goes_rows": plan.comes_goes_rows,
        "conv_stem": list(plan.conv_stem),
        "shape_stretches": plan.shape_stretches,
        "event_draws": plan.event_draws,
        "llm_layers": plan.llm_layers,
        "row_name_scale": plan.row_name_scale,
        "precision": plan.precision,
        **{name: getattr(plan, name) for name in SWITCHES},
        "seconds": times,
    }
    (plan.out / "build.json").write_text(json.dumps(summary, indent=1) + "\n")
    log.info("built %s in %.0f s", final, sum(times.values()))
    return summary
