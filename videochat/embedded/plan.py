"""What a rebuild of the embedded model is: its stages in order, their seeds, and the plan of
one rebuild (sizes and on/off switches) as the command line and the model card spell it.
`videochat.embedded.build` runs a plan."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from videochat.embedded import data

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
# shape lookup forms in stage 0 in some draws and not in others (session 39). Last, the
# questions of the weakest tasks (temporal order first) in stage 0's layout among as many of
# its conversations (`data.stage0_mix_entries`)
LATE_STAGES: dict[str, str] = {
    "late_lookup": "lookup",
    "late_reverse": "reverse",
    "late_timing": "timing",
    "late_order": "order",
    "late_drill": "drill",
    "late_stage0": "stage0",
    "late_timing_mix": data.TIMING_MIX,
    "late_stage0_mix": data.STAGE0_MIX,
}
STAGES = ("vision", *data.FOCUS_TASKS, "drill", "stage0", *LATE_STAGES, "stage1", "stage2")
RECIPE_STAGES = STAGES[1:]  # the stages that train with a recipe (all but the vision stage)
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
    "late_stage0_mix": 17,
}
BENCH_SEED_OFFSET = 1000
# the late stages' fresh videos (`BuildPlan.late_videos`): a seed neither the training set nor the
# benchmark uses
LATE_DATA_SEED_OFFSET = 2000


@dataclass
class BuildPlan:
    """Sizes of one rebuild (the card's command names each one the committed model used)."""

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
    llm_layers: int = 4  # the LLM's decoder layers (`embedded_config`)
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
    # the late stages' drill questions (so the late timing stage's) ask every scripted event's
    # time, not the benchmark's one event a video (`data.event_items`)
    every_event: bool = False
    # with every_event each event is asked this often, its options drawn anew each time
    # (session 53: 3 draws took event time to at least 63% on three benchmarks, one did not)
    event_draws: int = 1
    # the late stages' drill questions ask temporal order both ways (`data.order_items`)
    every_order: bool = False
    # the stage-0 mix asks a share of the colour and shape questions too (`data`)
    mix_lookups: bool = False
    # the LLM stages draw their visual caches' frames with the build's seed, not each stage's
    # own, and keep them in out/visual_cache: a stage on videos an earlier stage encoded loads
    # their rows instead of encoding them again (each late stage spent about 2 minutes on it)
    shared_visual_cache: bool = False
    # stage 0 lays each batch's samples end to end in fewer rows, their common start once a
    # row (`train.packing`, `packs`): the same loss; faster over 40 steps, slower over a whole
    # build (session 44: ~78 minutes without it, 91-96 with), kept where a card's command has it
    pack_batches: bool = False
    # every stage's attention on PyTorch's math kernel (`train.setup.attention_kernel`): a
    # vision step in ~0.82x the time
    math_attention: bool = False
    # the ViT's stem and patchifier as 2-D convolutions over each frame, channels-last
    # (`VisionConfig.frame_convs`): a vision step in 0.86x the time
    frame_convs: bool = False
    # every LLM stage runs a batch's common start once (`train.shared_prefix`; stage 0's 54
    # positions) and/or compiles the decoder layers (`train.setup.compile_decoder_layers`):
    # the same loss; both together a stage-0 step in 0.72-0.88x the time on a build's data
    shared_prefix: bool = False
    compile_layers: bool = False
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
    # a recipe stage's batch size instead of its recipe's (`--late-timing-batch 32`). Why: the
    # late timing stage's loss ends at 0.0000 (1,200 steps of 64 draw 76,800 samples from the
    # event questions of about 2,700 videos), and a stage that fits its videos' answers
    # writes its own estimate on held-out ones instead of choosing an option (see
    # `late_videos`); fewer samples a step also take less time. The six drill-recipe stages at
    # 32 kept the task mean in session 52; stage 0 at 12 or 14 lost temporal order
    batches: dict[str, int] = field(default_factory=dict)
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
        if self.event_draws < 1 or (self.event_draws > 1 and not self.every_event):
            raise ValueError(
                f"event_draws must be 1 or more, and above 1 only with every_event "
                f"(--every-event), got {self.event_draws}"
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
    "every_event": "the late stages' drill questions ask the time of every event of each video",
    "every_order": "the late stages' drill questions ask which event came first and which last",
    "shared_visual_cache": "the LLM stages share one frame draw per video, encoded once",
    "pack_batches": "stage 0 packs each batch's samples end to end, their shared start once a row",
    "math_attention": "every stage's attention on PyTorch's math kernel (faster for tiny heads)",
    "mix_lookups": "the stage-0 mix also asks a sample of the colour and shape questions",
    "frame_convs": "the ViT's stem and patchifier as 2-D convolutions over each frame (faster)",
    "shared_prefix": "the LLM stages run a batch's common start once, not once a row (faster)",
    "compile_layers": "the LLM stages run torch.compile'd decoder layers (faster after compiling)",
}


def cli_flag(name: str) -> str:
    """A stage's or switch's name as the command line spells it (`late-lookup`, `row-names`)."""
    return name.replace("_", "-")


def late_data_seed(seed: int) -> int:
    """The seed of the late stages' fresh videos for a build of data seed `seed`."""
    return seed + LATE_DATA_SEED_OFFSET


def llm_base_seed(plan: BuildPlan) -> int:
    """The LLM stages' base seed: `llm_seed`, else the data seed."""
    return plan.seed if plan.llm_seed is None else plan.llm_seed


def stage_seed(plan: BuildPlan, stage: str) -> int:
    """The seed of an LLM stage's run: the base seed (`llm_seed`) + the stage's offset."""
    return llm_base_seed(plan) + SEED_OFFSET[stage]


def packs(stage: str) -> bool:
    """Whether `pack_batches` packs a stage's batches: stage 0 only, whose samples share 54
    leading positions (0.87x the step time over 40 steps from the vision stage's export,
    `benchmarks/packing.py`; slower over a whole build: `BuildPlan.pack_batches`). Not the
    drill (one shared position, less padding: 1.15x) nor the late stage 0, whose frame rows
    carry their stamps (40 visual rows instead of 16: 1.19x on the packaged model; session
    40)."""
    return stage == "stage0"
