"""MODEL_CARD.md for a built model, written from the build and measurement records (no hand-copied
numbers)."""

from __future__ import annotations

import json
from pathlib import Path

from videochat.embedded.config import shape_stretches
from videochat.embedded.data import (
    FOCUS_TASKS,
    STAGE0_MIX,
    STAGE0_MIX_LOOKUP_SHARE,
    STAGE0_MIX_LOOKUPS,
    STAGE0_MIX_REPEATS,
    TIMING_MIX,
    TIMING_MIX_REPEATS,
)
from videochat.embedded.plan import LATE_STAGES, STAGES, SWITCHES, cli_flag, late_data_seed
from videochat.model.config import VideoChatConfig, VisionConfig
from videochat.synth.vocab import SHAPES

REBUILD = (
    "python -m videochat.embedded --out build --seed {seed} --videos {videos} "
    "--late-videos {late_videos} "
    + " ".join(f"--{cli_flag(stage)}-steps {{{stage}}}" for stage in STAGES)
    + " --measure"
)


def _table(mc: dict) -> list[str]:
    counts = mc["counts"]
    rows = ["| task | correct / items | accuracy |", "|---|---|---|"]
    for task, acc in mc["tasks"].items():
        c = counts[task]
        rows.append(f"| {task} | {c['correct']} / {c['total']} | {acc:.1f}% |")
    mean = sum(mc["tasks"].values()) / max(1, len(mc["tasks"]))
    rows.append(f"| **mean over tasks** | | **{mean:.1f}%** |")
    rows.append(f"| all items pooled | {mc['num_items']} items | {mc['average']:.1f}% |")
    return rows


def _section(title: str, intro: str, columns: list[str], rows: list[list[str]]) -> list[str]:
    """A `## title` section: one intro paragraph, then a markdown table."""
    lines = [f"## {title}", "", intro, "", "| " + " | ".join(columns) + " |"]
    lines.append("|" + "---|" * len(columns))
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _ranked(mc: dict, ranked: dict | None) -> list[str]:
    """The same items answered by the likeliest option (`measure.multiple_choice` with the
    videochat2-rank protocol) beside the generated answers."""
    if not ranked:
        return []
    intro = (
        "The same items answered by the option whose text the model finds likeliest after "
        "`Best option:(` instead of by a generated answer (`--protocol videochat2-rank`, rank "
        "classification): which option the model prefers, also where it writes an answer of its "
        "own words. Not the videochat2 protocol's number:"
    )
    rows = [[t, f"{mc['tasks'][t]:.1f}%", f"{acc:.1f}%"] for t, acc in ranked["tasks"].items()]
    means = [sum(m["tasks"].values()) / max(1, len(m["tasks"])) for m in (mc, ranked)]
    rows.append(["**mean over tasks**", *(f"**{m:.1f}%**" for m in means)])
    rows.append(["all items pooled", f"{mc['average']:.1f}%", f"{ranked['average']:.1f}%"])
    return _section(
        "Multiple choice, the likeliest option", intro, ["task", "generated", "ranked"], rows
    )


TIME_CHECKS = ("reversal_change", "displacement_r")  # not accuracies: `readout.time_readout`


def _facts(facts: dict | None) -> list[str]:
    """What the vision side alone gets right on the benchmark videos (the vision stage's heads)."""
    if not facts:
        return []
    intro = (
        "Accuracy of the vision stage's linear read-out heads on the benchmark videos (per shape "
        "and frame for visible/colour; per shape for motion/event; per video for count/effect; "
        "per patch an object covers for patch_shape/patch_colour, from the ViT's patch tokens):"
    )
    rows = [[name, f"{100 * acc:.1f}%"] for name, acc in facts.items() if name not in TIME_CHECKS]
    section = _section("What the vision side sees", intro, ["fact", "accuracy"], rows)
    if "reversal_change" not in facts:  # measured before these checks existed
        return section
    time_seen = (
        "Does it see time? Played backwards, a clip's Q-Former rows move by "
        f"{100 * facts['reversal_change']:.1f}% of the distance to another clip's rows; the "
        "first-to-last-frame displacement of the objects moving in a straight line, read from "
        f"the per-shape rows, correlates with the true one at r = {facts['displacement_r']:.2f} "
        "(`videochat.embedded.readout.time_readout`; 0 and 0 for rows blind to frame order)."
    )
    return [*section, time_seen, ""]


def _free_form(ff: dict | None) -> list[str]:
    """The benchmark questions asked without options (`videochat.embedded.measure.free_form`)."""
    if not ff:
        return []
    intro = (
        "The same benchmark questions asked without options; an answer counts when it is exactly "
        'the ground-truth sentence of the instruction data ("There are 3 objects in total."), '
        "so a right fact in other words counts wrong:"
    )
    items = ff["items_per_task"]
    rows = [[task, str(items[task]), f"{acc:.1f}%"] for task, acc in ff["tasks"].items()]
    rows.append(["**mean over tasks**", "", f"**{ff['average']:.1f}%**"])
    return _section("Free-form answers", intro, ["task", "items", "exact answer"], rows)


# what a build record written before these options existed used (every switch was off)
_BEFORE_OPTIONS = {
    "vision_image_steps": 300,
    "vision_shape_steps": 0,
    "comes_goes_weight": 1.0,
    "comes_goes_rows": "both",
    "conv_stem": [],
    "shape_stretches": 1,
    "event_draws": 1,
    "llm_layers": 4,
    "row_name_scale": 1.0,
    "precision": "fp32",
    **dict.fromkeys(SWITCHES, False),
}


_PRECISION_TEXT = {"fp32": "fp32", "bf16": "bf16 autocast, fp32 weights"}


def _late_what(base: str, build: dict) -> str:
    """What a late stage trains on: a stage again, or a mix (which has no early run)."""
    if base == TIMING_MIX:
        return f"event-time questions x{TIMING_MIX_REPEATS} among as many drill questions"
    if base == STAGE0_MIX:
        asked = ", ".join(f"{task} x{n}" for task, n in STAGE0_MIX_REPEATS.items())
        if build.get("mix_lookups"):
            share = f"x{STAGE0_MIX_LOOKUP_SHARE:g} (a sample)"
            asked += "".join(f", {task} {share}" for task in STAGE0_MIX_LOOKUPS)
        return f"{asked} questions in stage 0's layout among as many stage-0 conversations"
    return f"{base} again"


def _model_flags(build: dict) -> str:
    """The rebuild flags for the vision stage's curriculum, every architecture option and the
    data and batching options, always written out, so the command rebuilds the model whatever
    the defaults are later."""
    get = {name: build.get(name, default) for name, default in _BEFORE_OPTIONS.items()}
    stem = ",".join(str(c) for c in get["conv_stem"]) or "none"
    return (
        f" --vision-image-steps {get['vision_image_steps']}"
        f" --vision-shape-steps {get['vision_shape_steps']}"
        f" --comes-goes-weight {get['comes_goes_weight']:g}"
        f" --comes-goes-rows {get['comes_goes_rows']} --conv-stem {stem}"
        f" --shape-stretches {get['shape_stretches']} --llm-layers {get['llm_layers']}"
        f" --precision {get['precision']} --event-draws {get['event_draws']}"
        f" --row-name-scale {get['row_name_scale']:g}"
    ) + "".join(f" --{'' if get[name] else 'no-'}{cli_flag(name)}" for name in SWITCHES)


def describe_vision(vision: VisionConfig, frames: int) -> str:
    """One line on the input and our additions, e.g. '112 px, patch 28 (16 patches a frame), …'."""
    parts = [
        f"{vision.image_size} px",
        f"patch {vision.patch_size} ({(vision.image_size // vision.patch_size) ** 2} patches a frame)",
    ]
    if vision.conv_stem:
        channels = "+".join(str(c) for c in vision.conv_stem)
        parts.append(f"a {channels}-channel convolutional stem (our option)")
    if vision.lmhra:
        parts.append("LMHRA in every block (off in the released model)")
    if vision.temporal_pos_embed:
        parts.append("temporal position embedding (our option)")
    return ", ".join([*parts, f"{frames} frames"])


def describe_rows(config: VideoChatConfig) -> str:
    """One line on what the LLM gets from the vision side."""
    q = config.qformer
    line = (
        f"{config.num_queries} visual rows ({q.num_query_tokens} queries + "
        f"{q.num_extra_query_tokens} extra) through `llama_proj`"
    )
    stretches = shape_stretches(config)
    if stretches > 1:
        line += (
            f", rows 0-{len(SHAPES) * stretches - 1} one per shape and stretch of the clip "
            f"({stretches} stretches, our option)"
        )
    if q.frame_rows:
        first, last = q.frame_rows_start, q.frame_rows_start + q.frame_rows - 1
        line += f", rows {first}-{last} reading one frame each (our option)"
        if q.frame_row_lookback:
            before = "the frame" if q.frame_row_lookback == 1 else f"{q.frame_row_lookback} frames"
            line += f" and {before} before it (our option)"
    if q.input_positions:
        line += ", reading tokens that carry their patch's and frame's position codes (our option)"
    if q.input_times:
        timed = "the frame rows with" if q.time_rows == "frames" else "with"
        line += f", {timed} their frame's timestamp in seconds on the values (our option)"
    named = sum(bool(ids) for ids in config.row_tokens)
    gain = "" if config.row_name_scale == 1 else f" × {config.row_name_scale:g}"
    names = f"rows 0-{named - 1} carrying their shape's word embedding{gain} (our option)"
    if config.merge_stretch_rows:  # the names go to the merged rows (`row_tokens` index LLM rows)
        line += (
            f"; each shape's stretch rows reach the LLM as one row through `stretch_proj_*`, "
            f"{config.llm_rows} LLM rows (our option)"
        )
        names = f"LLM {names}"
    if named:
        line += f", {names}"
    if config.row_embed:
        line += ", plus a learned embedding per row (our option)"
    if config.frame_stamps:
        line += ", each frame row after its frame's time as text, 3 token rows (our option)"
    return line


def rebuild_command(build: dict) -> str:
    """The command that rebuilds the model a build record (`build.json`) describes."""
    steps = {**dict.fromkeys(STAGES, 0), **build["steps"]}
    command = REBUILD.format(
        seed=build["seed"], videos=build["videos"], late_videos=build.get("late_videos", 0), **steps
    )
    if build.get("llm_seed") is not None:  # another draw of the LLM stages
        command += f" --llm-seed {build['llm_seed']}"
    batches = build.get("batches", {})  # stages whose batch size is not their recipe's
    command += "".join(f" --{cli_flag(stage)}-batch {n}" for stage, n in batches.items())
    return command + _model_flags(build)


def render(
    build: dict,
    measure: dict,
    params: dict[str, int],
    notes: str = "",
    vision: str = "",
    rows: str = "",
) -> str:
    """The card text; `params` maps module name → parameter count, `vision` and `rows` are
    `describe_vision`'s and `describe_rows`' lines."""
    # records from before the drill or the focus stages: none
    steps = {**dict.fromkeys(STAGES, 0), **build["steps"]}
    late_videos = build.get("late_videos", 0)
    command = rebuild_command(build)
    secs = build["seconds"]
    total = sum(secs.values())
    late_how = ", the frame stamps on" if build.get("late_stamps") else ""
    if build.get("late_time_tokens"):
        late_how += ", each option time one token"
    if build.get("late_decimal_tokens"):
        late_how += ", each decimal one token ('.5')"
    if late_videos:
        late_how += f", on {late_videos} fresh videos"
    if build.get("every_event"):
        draws = build.get("event_draws", 1)
        late_how += ", every event's time asked" + (f" {draws} times" if draws > 1 else "")
    if build.get("every_order"):
        late_how += ", temporal order asked both ways"
    near = ", the right event times listed up to 0.5 s off"

    def nearest(base: str, late: bool) -> str:  # only where `base` asks event times
        asks_times = "event_localisation" in FOCUS_TASKS.get(base, ("event_localisation",))
        on = build.get("nearest_times" if late else "early_nearest_times")
        return near if on and asks_times else ""

    def late_row_how(base: str) -> str:
        return late_how + nearest(base, late=True)

    mc, desc = measure["multiple_choice"], measure["descriptions"]
    lines = [
        "# videochat embedded default model",
        "",
        "A small VideoChat (same architecture as the released models: EVA-style ViT with GMHRA,",
        "Q-Former with queries + extra queries, `llama_proj`, a LLaMA LLM via transformers) trained",
        "from scratch by this project's own pipeline on its synthetic world (`videochat synth`).",
        "It knows only that world: coloured shapes on dark backgrounds, their motion and events.",
        "",
        "## Rebuild",
        "",
        f"    {command}",
        "",
        "then copy `build/model/*` here. Data seed "
        f"{build['seed']} ({build['videos']} training videos, 112×112"
        + (
            f"; the late stages' {late_videos} videos seed {late_data_seed(build['seed'])}"
            if late_videos
            else ""
        )
        + "); the benchmark below uses "
        f"seed {measure['bench_seed']}, never used in training.",
        "",
        "## Architecture",
        "",
        *(f"- {name}: {count / 1e6:.2f} M parameters" for name, count in params.items()),
        *([f"- vision: {vision}"] if vision else []),
        *([f"- LLM input: {rows}"] if rows else []),
        "- tokenizer: byte-level BPE learned on the synthetic corpus (saved here)",
        "",
        f"## Training (2-core CPU, {_PRECISION_TEXT[build.get('precision', 'fp32')]})",
        "",
        "| step | what | optimizer steps | seconds |",
        "|---|---|---|---|",
        f"| data | synth videos + annotations | | {secs.get('data', 0):.0f} |",
        f"| init | tokenizer + random init | | {secs.get('init', 0):.0f} |",
        f"| vision | ViT + Q-Former learn the scene facts (ours) | {steps['vision']} | "
        f"{secs.get('vision', 0):.0f} |",
        *(
            f"| {stage} | LLM + llama_proj on the drill's {' and '.join(tasks)} questions alone"
            f"{nearest(stage, late=False)} (ours) | {steps[stage]} | {secs.get(stage, 0):.0f} |"
            for stage, tasks in FOCUS_TASKS.items()
        ),
        f"| drill | LLM + llama_proj on the multiple-choice questions, short layout"
        f"{nearest('drill', late=False)} (ours) | {steps['drill']} | {secs.get('drill', 0):.0f} |",
        f"| stage0 | LLM + llama_proj on the frozen vision side{nearest('stage0', late=False)} "
        f"(ours) | {steps['stage0']} | {secs.get('stage0', 0):.0f} |",
        *(
            f"| {stage} | {_late_what(base, build)}, after stage0{late_row_how(base)} (ours) | "
            f"{steps[stage]} | "
            f"{secs.get(stage, 0):.0f} |"
            for stage, base in LATE_STAGES.items()
        ),
        f"| stage1 | captions, original freezing | {steps['stage1']} | {secs.get('stage1', 0):.0f} |",
        f"| stage2 | instructions, original freezing | {steps['stage2']} | "
        f"{secs.get('stage2', 0):.0f} |",
        f"| total | | | {total:.0f} ({total / 60:.1f} min) |",
        "",
        "## Multiple choice (`videochat eval BENCH --num-frames 8"
        + (
            f" --limit {measure['item_limit_per_task']}"
            if measure.get("item_limit_per_task")
            else ""
        )
        + "`, videochat2 protocol)",
        "",
        *_table(mc),
        "",
        "Chance is 25-33% per task.",
        "",
        *_ranked(mc, measure.get("multiple_choice_rank")),
        *_free_form(measure.get("free_form")),
        *_facts(measure.get("vision_facts")),
        "## Open-ended descriptions",
        "",
        f'"{"Describe the video in detail."}" on {desc["videos"]} benchmark videos, scored by',
        "`videochat.synth.describe.score_description` (fraction of the ground-truth colours, shapes",
        f"and events named): **{desc['score']:.2f}**; the same answers scored against another",
        f"video's ground truth: {desc['mismatched_floor']:.2f}.",
        *_precision(desc.get("precision")),
        "",
        "Example:",
        "",
        f"> {desc['examples'][0]['answer']}" if desc["examples"] else "",
        "",
        "## Limits",
        "",
        notes or "- Trained on synthetic shapes only: answers about real videos are meaningless.",
        "",
    ]
    return "\n".join(lines)


def _precision(value: float | None) -> list[str]:
    """The descriptions' precision (measurements made before it was added lack it)."""
    if value is None:
        return []
    return [
        "Of the colours and shapes they name, a fraction of "
        f"**{value:.2f}** are in the video (`videochat.synth.describe.description_precision`).",
    ]


def write_card(work: Path, model_dir: Path, notes: str = "") -> Path:
    """Render the card from `work/build.json` and `work/measure/summary.json` into `model_dir`."""
    from videochat.model import load_model

    build = json.loads((work / "build.json").read_text())
    measure = json.loads((work / "measure" / "summary.json").read_text())
    model = load_model(model_dir, device="cpu")
    params = {
        name: sum(p.numel() for p in getattr(model, name).parameters())
        for name in ("visual_encoder", "qformer", "llm")
    }
    params["total"] = sum(p.numel() for p in model.parameters())
    path = model_dir / "MODEL_CARD.md"
    vision = describe_vision(model.config.vision, model.config.num_frames)
    rows = describe_rows(model.config)
    path.write_text(render(build, measure, params, notes, vision, rows))
    return path
