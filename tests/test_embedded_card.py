"""The embedded model's card and its rebuild command line: what a build record renders as."""

from __future__ import annotations

import pytest

from videochat.embedded import data
from videochat.embedded.config import embedded_config
from videochat.embedded.plan import BuildPlan


def test_model_card_reports_the_recorded_numbers() -> None:
    from videochat.embedded.card import describe_rows, describe_vision, render

    build_record = {
        "seed": 0,
        "videos": 600,
        "steps": {"vision": 100, "stage0": 1200, "stage1": 20, "stage2": 30},
        "seconds": {"data": 10.0, "init": 5.0, "stage0": 600.0, "stage1": 30.0, "stage2": 40.0},
    }
    counts = {"object_colour": {"correct": 9, "total": 10, "failed": 0}}
    measure_record = {
        "bench_seed": 1000,
        "item_limit_per_task": 10,
        "multiple_choice": {
            "tasks": {"object_colour": 90.0},
            "counts": counts,
            "average": 90.0,
            "num_items": 10,
        },
        "descriptions": {"videos": 2, "score": 0.75, "mismatched_floor": 0.25, "examples": []},
        "free_form": {
            "average": 85.0,
            "tasks": {"object_count": 85.0},
            "items_per_task": {"object_count": 40},
        },
    }
    vision = describe_vision(embedded_config(64, conv_stem=(32, 64), lmhra=True).vision, 8)
    assert vision == (
        "112 px, patch 28 (16 patches a frame), a 32+64-channel convolutional stem (our option), "
        "LMHRA in every block (off in the released model), "
        "temporal position embedding (our option), 8 frames"
    )
    rows = describe_rows(embedded_config(64, row_embed=True, frame_rows=True))
    assert rows == (
        "16 visual rows (8 queries + 8 extra) through `llama_proj`, rows 5-12 reading one frame "
        "each (our option), plus a learned embedding per row (our option)"
    )
    stretched = describe_rows(embedded_config(64, frame_rows=True, shape_stretches=2))
    assert stretched.startswith("21 visual rows (8 queries + 13 extra) through `llama_proj`, rows")
    per_stretch = "rows 0-9 one per shape and stretch of the clip (2 stretches, our option)"
    assert f"{per_stretch}, rows 10-17" in stretched
    merged_named = describe_rows(
        embedded_config(64, shape_stretches=2, merge_stretches=True, row_tokens=[[3]] * 5)
    )
    assert merged_named.endswith(
        "16 LLM rows (our option), LLM rows 0-4 carrying their shape's word embedding (our option)"
    )
    merged = describe_rows(embedded_config(64, shape_stretches=2, merge_stretches=True))
    assert merged.endswith(
        "; each shape's stretch rows reach the LLM as one row through `stretch_proj_*`, "
        "16 LLM rows (our option)"
    )
    coded = describe_rows(embedded_config(64, visual_positions=True))
    assert coded.endswith(
        "reading tokens that carry their patch's and frame's position codes (our option)"
    )
    timed = describe_rows(embedded_config(64, frame_times=True))
    assert timed.endswith(
        "position codes (our option), with their frame's timestamp in seconds on the values "
        "(our option)"
    )
    framed = describe_rows(embedded_config(64, frame_rows=True, frame_row_times=True))
    assert framed.endswith(
        "position codes (our option), the frame rows with their frame's timestamp in seconds on "
        "the values (our option)"
    )
    named = describe_rows(embedded_config(64, frame_rows=True, row_tokens=[[3]] * 5))
    assert named.endswith(
        "each (our option), rows 0-4 carrying their shape's word embedding (our option)"
    )
    stamped = describe_rows(embedded_config(64, frame_rows=True, frame_stamps=True))
    assert stamped.endswith(
        "each (our option), each frame row after its frame's time as text, 3 token rows "
        "(our option)"
    )
    paired = describe_rows(embedded_config(64, frame_rows=True, frame_pairs=True))
    assert "rows 5-12 reading one frame each (our option) and the frame before it (our option)" in (
        paired
    )
    amplified = embedded_config(64, frame_rows=True, row_tokens=[[3]] * 5, row_name_scale=3)
    assert describe_rows(amplified).endswith("shape's word embedding × 3 (our option)")
    card = render(build_record, measure_record, {"llm": 1_500_000}, vision=vision, rows=rows)
    assert f"- vision: {vision}" in card and f"- LLM input: {rows}" in card
    assert "**0.75**" in card and "Of the colours and shapes" not in card  # measured before it
    precise = measure_record | {"descriptions": measure_record["descriptions"] | {"precision": 0.9}}
    assert "a fraction of **0.90** are in the video" in render(build_record, precise, {})
    # a record from before the curriculum options: the values those builds used, written out
    old_flags = "--vision-image-steps 300 --vision-shape-steps 0 --comes-goes-weight 1"
    old_flags += " --comes-goes-rows both --conv-stem none --shape-stretches 1 --llm-layers 4"
    old_flags += " --precision fp32 --event-draws 1 --row-name-scale 1 --no-row-embed"
    old_flags += " --no-lmhra --no-frame-rows --no-row-names --no-every-object --no-group-by-length"
    old_flags += " --no-visual-positions --no-balanced-drill --no-bare-drill --no-merge-stretches"
    old_flags += " --no-bare-lookup --no-frame-times --no-frame-row-times --no-frame-stamps"
    old_flags += " --no-frame-pairs --no-late-stamps --no-time-tokens --no-late-time-tokens"
    old_flags += " --no-late-decimal-tokens --no-nearest-times"
    old_flags += " --no-early-nearest-times --no-every-event --no-every-order"
    old_flags += " --no-shared-visual-cache"
    old_flags += " --no-pack-batches --no-math-attention --no-mix-lookups --no-frame-convs --no-shared-prefix"
    old_flags += " --no-compile-layers"
    assert f"--measure {old_flags}\n" in card
    stemmed = build_record | {"vision_image_steps": 700, "vision_shape_steps": 500}
    options = {"conv_stem": [32, 64], "row_embed": True, "lmhra": True, "every_object": True}
    options["group_by_length"] = options["frame_rows"] = options["row_names"] = True
    options["shape_stretches"] = 2
    options["visual_positions"] = options["balanced_drill"] = options["bare_drill"] = True
    options["merge_stretches"] = options["bare_lookup"] = options["frame_times"] = True
    options["precision"], options["row_name_scale"] = "bf16", 2.5
    options["frame_row_times"], options["comes_goes_weight"] = True, 8.0
    options["comes_goes_rows"], options["frame_stamps"] = "frame", True
    options["frame_pairs"] = options["frame_convs"] = options["shared_prefix"] = True
    options["llm_layers"] = 2
    card = render(stemmed | options, measure_record, {"llm": 1})
    flags = (
        "--vision-image-steps 700 --vision-shape-steps 500 --comes-goes-weight 8"
        " --comes-goes-rows frame --conv-stem 32,64 --shape-stretches 2 --llm-layers 2"
        " --precision bf16 --event-draws 1 --row-name-scale 2.5 --row-embed --lmhra"
        " --frame-rows --row-names --every-object --group-by-length"
        " --visual-positions --balanced-drill --bare-drill --merge-stretches --bare-lookup"
        " --frame-times --frame-row-times --frame-stamps --frame-pairs --no-late-stamps"
        " --no-time-tokens --no-late-time-tokens --no-late-decimal-tokens --no-nearest-times"
        " --no-early-nearest-times --no-every-event --no-every-order --no-shared-visual-cache"
        " --no-pack-batches"
        " --no-math-attention --no-mix-lookups --frame-convs --shared-prefix --no-compile-layers"
    )
    assert f"--measure {flags}\n" in card
    assert "## Training (2-core CPU, bf16 autocast, fp32 weights)" in card
    # a record from before the drill: 0 drill steps (the stage skipped)
    focus = " ".join(f"--{stage}-steps 0" for stage in data.FOCUS_TASKS)
    assert f"--vision-steps 100 {focus} --drill-steps 0 --stage0-steps 1200" in card
    drilled = render(
        build_record | {"steps": build_record["steps"] | {"drill": 900}}, measure_record, {}
    )
    assert "--drill-steps 900 --stage0-steps 1200" in drilled and "| 900 |" in drilled
    late_off = "--late-lookup-steps 0 --late-reverse-steps 0 --late-timing-steps 0 --late-order-steps 0 --late-drill-steps 0"
    assert f"--stage0-steps 1200 {late_off}" in drilled  # a record from before late_timing
    late = {"late_lookup": 300, "late_timing": 200, "late_drill": 250, "late_stage0": 600}
    relearnt = render(build_record | {"steps": build_record["steps"] | late}, measure_record, {})
    assert (
        "--late-lookup-steps 300 --late-reverse-steps 0 --late-timing-steps 200 --late-order-steps 0 --late-drill-steps 250"
        " --late-stage0-steps 600" in relearnt
    )
    assert "| late_lookup | lookup again, after stage0 (ours) | 300 |" in relearnt
    assert "--no-late-stamps" in relearnt  # a record from before the option: off
    stamped = render(
        build_record | {"steps": build_record["steps"] | late, "late_stamps": True},
        measure_record,
        {},
    )
    assert "| late_timing | timing again, after stage0, the frame stamps on (ours) | 200 |" in (
        stamped
    )
    assert " --late-stamps" in stamped and " --no-late-time-tokens" in stamped
    timed = render(
        build_record | {"steps": build_record["steps"] | late, "late_time_tokens": True},
        measure_record,
        {},
    )
    row = "| late_drill | drill again, after stage0, each option time one token (ours) | 250 |"
    assert row in timed
    assert " --late-time-tokens" in timed and " --no-late-decimal-tokens" in timed
    decimal = render(
        build_record | {"steps": build_record["steps"] | late, "late_decimal_tokens": True},
        measure_record,
        {},
    )
    row = "| late_drill | drill again, after stage0, each decimal one token ('.5') (ours) | 250 |"
    assert row in decimal and " --late-decimal-tokens" in decimal
    near = render(
        build_record
        | {"steps": build_record["steps"] | late, "late_videos": 600, "nearest_times": True},
        measure_record,
        {},
    )
    how = "again, after stage0, on 600 fresh videos, the right event times listed up to 0.5 s off"
    assert f"| late_timing | timing {how} (ours) |" in near and " --nearest-times" in near
    assert f"| late_drill | drill {how} (ours) |" in near
    assert "| late_lookup | lookup again, after stage0, on 600 fresh videos (ours) |" in near
    mix = "event-time questions x2 among as many drill questions, after stage0, on 600 fresh videos"
    assert (
        f"| late_timing_mix | {mix}, the right event times listed up to 0.5 s off (ours) |" in near
    )
    mixed = render(
        build_record
        | {"steps": build_record["steps"] | {"late_stage0_mix": 600}, "nearest_times": True},
        measure_record,
        {},
    )
    asked = (
        "temporal_order x2, event_localisation x1, state_change x1, cause_effect x1 questions"
        " in stage 0's layout"
    )
    assert (
        f"| late_stage0_mix | {asked} among as many stage-0 conversations, after stage0, the"
        " right event times listed up to 0.5 s off (ours) | 600 |" in mixed
    )
    assert "--late-timing-mix-steps 0 --late-stage0-mix-steps 600 --stage1-steps" in mixed
    assert " --no-mix-lookups" in mixed
    lookups = render(
        build_record
        | {"steps": build_record["steps"] | {"late_stage0_mix": 600}, "mix_lookups": True},
        measure_record,
        {},
    )
    sample = "object_colour x0.25 (a sample), object_shape x0.25 (a sample) questions"
    assert f"cause_effect x1, {sample} in stage 0's layout" in lookups
    assert " --mix-lookups" in lookups
    assert "listed up to 0.5 s off" not in timed and " --no-nearest-times" in timed
    early = render(build_record | {"early_nearest_times": True}, measure_record, {})
    off = ", the right event times listed up to 0.5 s off (ours) |"
    assert (
        f"| drill | LLM + llama_proj on the multiple-choice questions, short layout{off}" in early
    )
    assert f"| stage0 | LLM + llama_proj on the frozen vision side{off}" in early
    assert f"event_localisation questions alone{off}" in early
    assert f"object_colour questions alone{off}" not in early  # asks no event times
    assert off not in near.split("| late_lookup")[0]  # the late option alone: late rows only
    assert " --early-nearest-times" in early and " --no-early-nearest-times" in near
    assert "--videos 600 --late-videos 0 " in stamped  # a record from before the option: none
    assert "late stages'" not in stamped
    fresh = render(
        build_record | {"steps": build_record["steps"] | late, "late_videos": 6000},
        measure_record,
        {},
    )
    assert "--seed 0 --videos 600 --late-videos 6000 --vision-steps 100" in fresh
    assert "--llm-seed" not in fresh  # a record from before the option, or None: --seed's draw
    redrawn = render(build_record | {"llm_seed": 7}, measure_record, {})
    assert " --stage2-steps 30 --measure --llm-seed 7 --vision-image-steps" in redrawn
    assert "| late_drill | drill again, after stage0, on 6000 fresh videos (ours) | 250 |" in fresh
    assert "(600 training videos, 112×112; the late stages' 6000 videos seed 2000)" in fresh
    assert "| object_colour | 9 / 10 | 90.0% |" in card and "--limit 10" in card
    assert "**0.75**" in card and "0.25" in card and "(11.4 min)" in card
    assert "| object_count | 40 | 85.0% |" in card
    assert "likeliest option" not in card  # a record from before the ranking protocol
    ranked = {**measure_record["multiple_choice"], "tasks": {"object_colour": 95.0}}
    ranked_card = render(build_record, measure_record | {"multiple_choice_rank": ranked}, {})
    assert "## Multiple choice, the likeliest option" in ranked_card
    assert "| object_colour | 90.0% | 95.0% |" in ranked_card
    assert "| **mean over tasks** | **90.0%** | **95.0%** |" in ranked_card


def test_rebuild_cli_reads_the_vision_curriculum_and_stem(capsys) -> None:
    from videochat.embedded.__main__ import parse

    args = parse(["--out", "b", "--conv-stem", "32,64", "--vision-shape-steps", "500"])
    assert args.conv_stem == (32, 64) and args.vision_shape_steps == 500
    assert parse(["--out", "b", "--late-drill-steps", "300"]).late_drill_steps == 300
    assert parse(["--out", "b"]).comes_goes_weight == BuildPlan.comes_goes_weight == 1.0
    assert parse(["--out", "b", "--comes-goes-weight", "8"]).comes_goes_weight == 8.0
    assert parse(["--out", "b"]).comes_goes_rows == BuildPlan.comes_goes_rows == "both"
    assert parse(["--out", "b", "--comes-goes-rows", "frame"]).comes_goes_rows == "frame"
    with pytest.raises(SystemExit):
        parse(["--out", "b", "--comes-goes-rows", "shape"])
    assert "invalid choice: 'shape'" in capsys.readouterr().err
    assert parse(["--out", "b"]).conv_stem == BuildPlan.conv_stem == (32, 64)
    assert parse(["--out", "b", "--conv-stem", "none"]).conv_stem == ()
    assert parse(["--out", "b"]).row_embed == BuildPlan.row_embed
    assert parse(["--out", "b", "--row-embed"]).row_embed is True
    assert parse(["--out", "b", "--no-row-embed"]).row_embed is False
    assert parse(["--out", "b", "--lmhra"]).lmhra and not parse(["--out", "b", "--no-lmhra"]).lmhra
    assert parse(["--out", "b", "--every-object"]).every_object
    assert parse(["--out", "b"]).every_object is BuildPlan.every_object is False
    assert parse(["--out", "b", "--group-by-length"]).group_by_length
    assert parse(["--out", "b"]).group_by_length is BuildPlan.group_by_length is False
    assert parse(["--out", "b", "--frame-rows"]).frame_rows
    assert parse(["--out", "b"]).frame_rows is BuildPlan.frame_rows is True
    assert not parse(["--out", "b", "--no-frame-rows"]).frame_rows
    assert parse(["--out", "b", "--row-names"]).row_names
    assert parse(["--out", "b"]).row_names is BuildPlan.row_names
    assert not parse(["--out", "b", "--no-row-names"]).row_names
    with pytest.raises(SystemExit):
        parse(["--out", "b", "--conv-stem", "32,x"])
    assert "expected positive channel counts like 32,64 (or none), got '32,x'" in (
        capsys.readouterr().err
    )
    assert parse(["--out", "b"]).row_name_scale == BuildPlan.row_name_scale == 1.0
    assert parse(["--out", "b", "--row-name-scale", "2.5"]).row_name_scale == 2.5
    for flag in ("--row-name-scale", "--comes-goes-weight"):
        for bad in ("0", "-1", "nan", "x"):
            with pytest.raises(SystemExit):
                parse(["--out", "b", flag, bad])
            assert f"expected a number above 0, got '{bad}'" in capsys.readouterr().err


def test_model_card_writes_the_time_checks_as_a_sentence_not_as_accuracies() -> None:
    from videochat.embedded.card import _facts

    facts = {"count": 0.84, "motion": 0.657, "reversal_change": 0.0123, "displacement_r": 0.004}
    text = "\n".join(_facts(facts))
    assert "| count | 84.0% |" in text and "| motion | 65.7% |" in text
    assert "reversal_change" not in text and "displacement_r" not in text
    assert "move by 1.2% of the distance" in text and "at r = 0.00" in text
    older = "\n".join(_facts({"count": 0.84}))  # a record from before the checks
    assert "| count | 84.0% |" in older and "Does it see time?" not in older
