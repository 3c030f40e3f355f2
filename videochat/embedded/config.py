"""The embedded model's architecture: the original's parts at a size a 2-core CPU can train.

Same modules as VideoChat-7B (EVA-style ViT + GMHRA, Q-Former with queries + extra queries,
llama_proj, a LLaMA LLM via transformers), scaled down, plus the temporal position embedding the
original lacks (so frame order and event times are learnable from scratch).
"""

from __future__ import annotations

from videochat.model.config import (
    LLMConfig,
    QFormerConfig,
    VideoChatConfig,
    VisionConfig,
    _llama_config,
)
from videochat.synth.vocab import SHAPES

IMAGE_SIZE = 112
NUM_FRAMES = 8
VIDEO_ROWS = 3  # last: rows for the whole video (`pretrain.FactHeads`)


def vocab_rows(tokenizer_size: int, multiple: int = 64) -> int:
    """Embedding rows for a tokenizer of this size, rounded up for aligned matmuls."""
    return -(-tokenizer_size // multiple) * multiple


def embedded_config(
    vocab_size: int,
    conv_stem: tuple[int, ...] = (),
    *,
    row_embed: bool = False,
    lmhra: bool = False,
    frame_rows: bool = False,
    row_tokens: list[list[int]] | None = None,
    row_name_scale: float = 1.0,
    shape_stretches: int = 1,
    visual_positions: bool = False,
    merge_stretches: bool = False,
    frame_times: bool = False,
    frame_row_times: bool = False,
    frame_stamps: bool = False,
    frame_pairs: bool = False,
    llm_layers: int = 4,
    frame_convs: bool = False,
) -> VideoChatConfig:
    """112 px, patch 28 (16 patches a frame), ViT 128×4, Q-Former 128×2 with 8+8 queries,
    LLaMA 192 wide with `llm_layers` layers (4 in the committed model).

    Patch 28 rather than 14: the Q-Former's queries must learn to find 1-5 small objects among
    all frames' tokens, and with 8×17 tokens instead of 8×65 that costs a quarter of the compute
    (measured: about the same loss per step, clip steps in 0.33 s instead of ~1 s).

    `conv_stem`: channels of the optional convolutional stem before the patchifier. Without one
    the ViT hardly tells the shapes apart (its patch tokens, trained on shapes alone: 19% of object
    patches right after 200 steps; with a 32+64 stem 31%, and 87% after 600; chance 20%). The
    committed model has the 32+64 stem (`BuildPlan.conv_stem`).

    `row_embed`: a learned embedding per visual row after llama_proj (`VideoChatConfig.row_embed`),
    so the LLM can find the row of the shape a question names (the b9 model, asked the
    colour of one of two objects, named the other's colour half the time). `lmhra`: UniFormerV2's
    local temporal module in every ViT block (the released VideoChat turns it off; without it a
    patch token never sees another frame; with it the vision stage also learns which patches
    show an event, `facts.patch_events`). Both are off in the committed model: one build with
    each did not beat it (model card, Limits); with the patch event targets and `frame_times`
    (v2, session 21) the LLM ranks the right event time first for 53.7% of the items (b1:
    23.9%) but lost the colour lookup (60.0%; task mean 69.6%); LMHRA alone (l1, session 22):
    event time ranked 46.3%, colour 64.2%, task mean 70.1%.

    `frame_rows`: the 8 rows after the per-shape ones read one frame each in the Q-Former's
    cross-attention (`QFormerConfig.frame_rows`). Without it every row reads a bag of all frames'
    tokens and the vision stage never learnt anything that depends on frame order (the previous
    model's rows moved by 0.8% when a clip was played backwards; with frame rows 36%). On in the
    committed model (it took state change from 4.3% to 43.5% in f3).

    `row_tokens`: token ids naming the first rows (`VideoChatConfig.row_tokens`; `shape_row_names`
    gives each per-shape row its shape's word), so the LLM finds the row of the shape a question
    names by the word itself instead of learning each row's identity. On in the committed model
    (b1, session 19), on merged rows (`merge_stretches`): colour in the scenes of four or five
    objects went from 59% to 93.5%, colour overall to 96.8%. On unmerged rows (an earlier
    build) it had moved the multiple-choice mean by half a point. `row_name_scale`: the names'
    gain (`VideoChatConfig.row_name_scale`); 3 on v2's recipe (n1, session 22) did not bring
    back the colour lookup that frame times cost (62.1% against v2's 60.0%).

    `shape_stretches`: rows per shape, each reading its own consecutive stretch of the frames
    (`QFormerConfig.stretch_rows`; 2: the first half's five shape rows, then the second half's),
    so a shape's rows can tell where it was early and late, i.e. its motion. 1: one row per
    shape reading every frame, which stays blind to motion. 2 in the committed model (its
    motion read-out still at the base rate; with the drill it is the best model,
    docs/embedded-experiments.md).
    Row layout: shape rows, then the frame rows (if any), then `VIDEO_ROWS` rows.

    `frame_times`: a code of each frame's timestamp in seconds on the Q-Former's cross-attention
    values (it implies `visual_positions`; `QFormerConfig.input_times`), so the per-shape rows
    can learn when their event happened in seconds (`pretrain.FactHeads` with `times`). Why:
    b1's rows place an event in its sampled frame for 26-40% of events, and its LLM, which must
    turn a frame into seconds through the timestamp message, answers event time and temporal
    order at chance (19.4% and 27.8%); with times on the rows, "When does the cross appear?"
    would be a lookup like the colour's. Off in the committed model: one build with it (t2)
    placed events within ±1.1 s (600 more clip steps did not improve that), answered event time
    and order at chance still, and lost b1's colour lookup (task mean 52.3%;
    docs/embedded-experiments.md, session 20).

    `frame_row_times`: the time codes as `frame_times` gives them, read by the frame rows only
    (`QFormerConfig.time_rows`); each reads one frame, so its code is that frame's time exactly,
    and with `lmhra` the vision stage also teaches each frame row which shapes' events show in
    its frame (`facts.event_frames`), so that a question's shape word can find the frame of its
    event, and the frame its time. Why: with the time codes on every row (t2, v2, n1) the LLM
    lost the colour lookup (58.9-62.1% against 96.8%), and the per-shape rows place their event
    within about ±1 s only (docs/embedded-experiments.md, sessions 20-22). Measured with
    `--lmhra` (f1): colour lost all the same (60.0%), event time ranked 25.4%, task mean 63.4%.

    `frame_stamps`: each frame row reaches the LLM after its frame's time as text (" 3", ".",
    "5"; `VideoChatConfig.frame_stamps`), in every layout, the drill's too, which has no
    timestamp message. Why: the frame rows tell which shapes show in their frame (b1: the first
    frame of an appearing object right 59%), but to answer "when" through the timestamp message
    the LLM must count rows and numbers, and no build did (event time at chance in b1, b2, bvf).

    `frame_pairs`: each frame row also reads the frame before its own
    (`QFormerConfig.frame_row_lookback` 1), and the vision stage teaches it which shapes' events
    happened since that frame (`facts.event_frames(changes=True)`). Why: an event's time is
    where an object changes between two sampled frames, and a row that reads one frame can only
    say what is there (b1's frame rows place an appearance in its frame for about a third of
    the events, session 25); with the frame before, "since the last frame" is in the row itself,
    and a question's shape word could find it (with `frame_stamps`, its time beside it). Off in
    the committed model: in a vision stage of b1's recipe (fp32, session 29) the paired rows
    named the frame of an event for 0.33 of the events (colour changes 0.52, the rest
    0.25-0.31) and placed appearances / disappearances by their visibility for 0.38 / 0.14,
    against 0.52 / 0.45 for the same stage with one frame a row: reading two frames blurs
    which one an object shows in.

    `visual_positions`: codes of each token's patch column, row and frame added to what the
    Q-Former reads (`QFormerConfig.input_positions`), so a per-shape row knows where its shape was
    in each stretch: on a copy of the committed vision side, 400 more clip steps read the
    displacement out at r = 0.97 with them and 0.76 without. The first full build with them (e1)
    saw motion (the displacement names 83% of directions) but the LLM did not answer direction
    better (25% against 35%; docs/embedded-experiments.md, session 14); with the merged rows
    and the motion stage (e2x, session 18) it did, and every committed model since b1 has them.

    `merge_stretches`: a shape's stretch rows reach the LLM as one row, a linear map of the rows
    side by side (`VideoChatConfig.merge_stretch_rows`; 16 LLM rows instead of 21). Why: where
    an object went is linear only in its rows together (on e1's vision side a linear probe names
    the direction of 46-59% of moving objects from either row alone, 84% from both), and the
    LLM, seeing them as two rows, memorised its direction questions instead (40-47% held out in
    a toy run); with the rows merged the same toy run answered 92.5-100%. The first build with it
    (m1) lifted the drill's direction (32.5% against 17.5%), which stage 0 lost again (25%; task
    mean 43.6%; docs/embedded-experiments.md, session 16); with the motion stage (e2x, session
    18) it held, and every committed model since b1 has it.

    `llm_layers`: the LLM's decoder layers. Why fewer: the LLM stages are most of a build's time
    and a step's time is nearly all the LLM's; with 2 layers a stage-0 step and a drill step
    take 0.72x and 0.61x the time of 4 layers' (`benchmarks/llm_layers.py`, session 45).

    `frame_convs`: the stem and patchifier as 2-D convolutions over each frame
    (`VisionConfig.frame_convs`: the same function, a vision step in 0.86x the time).
    """
    shape_rows = len(SHAPES) * shape_stretches
    width = 128
    llm = _llama_config(192, llm_layers, 4, 512, vocab=vocab_size)
    llm["max_position_embeddings"] = 1024
    return VideoChatConfig(
        vision=VisionConfig(
            image_size=IMAGE_SIZE,
            patch_size=28,
            width=width,
            depth=4,
            heads=4,
            mlp_ratio=4.0,
            gmhra_layers=2,
            gmhra_dropout=0.1,
            temporal_pos_embed=True,
            max_frames=16,
            conv_stem=conv_stem,
            lmhra=lmhra,
            frame_convs=frame_convs,
        ),
        qformer=QFormerConfig(
            width=128,
            layers=2,
            heads=4,
            ffn=512,
            cross_attention_freq=1,
            vision_width=width,
            num_query_tokens=8,
            num_extra_query_tokens=shape_rows + NUM_FRAMES + VIDEO_ROWS - 8,
            frame_rows=NUM_FRAMES if frame_rows else 0,
            frame_rows_start=shape_rows if frame_rows else 0,
            stretch_rows=[[0, shape_rows, shape_stretches]] if shape_stretches > 1 else [],
            input_positions=visual_positions or frame_times or frame_row_times,
            input_times=frame_times or frame_row_times,
            time_rows="frames" if frame_row_times else "all",
            frame_row_lookback=1 if frame_pairs else 0,
        ),
        llm=LLMConfig(hf_config=llm),
        num_frames=NUM_FRAMES,
        max_text_len=512,
        row_embed=row_embed,
        row_tokens=row_tokens or [],
        row_name_scale=row_name_scale,
        merge_stretch_rows=merge_stretches,
        frame_stamps=frame_stamps,
    )


def shape_stretches(config: VideoChatConfig) -> int:
    """How many stretches of the clip the per-shape rows split into (1: each reads it all)."""
    groups = [k for start, _, k in config.qformer.stretch_rows if start == 0]
    return groups[0] if groups else 1


def shape_row_names(tokenizer) -> list[list[int]]:
    """Token ids of each shape's word as the questions write it (" circle"), one list per
    per-shape row (rows 0-4, in `SHAPES` order)."""
    return [tokenizer(f" {shape}", add_special_tokens=False)["input_ids"] for shape in SHAPES]
