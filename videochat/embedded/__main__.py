"""`python -m videochat.embedded --out DIR [--seed S]`: rebuild (and measure) the embedded model."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from videochat.embedded.build import LOG_FORMAT, build, check_steps
from videochat.embedded.plan import RECIPE_STAGES, STAGES, SWITCHES, BuildPlan, cli_flag
from videochat.embedded.pretrain import COMES_GOES_ROWS
from videochat.errors import VideoChatError


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m videochat.embedded", description=__doc__)
    p.add_argument("--out", type=Path, required=True, help="work folder (data, runs, model)")
    p.add_argument("--seed", type=int, default=0, help="data/init seed (benchmark: seed+1000)")
    p.add_argument(
        "--llm-seed",
        type=int,
        default=None,
        help="seed of every stage after the vision stage (batch order, the runs' random draws) "
        "instead of --seed: another draw of them on the same data and vision stage",
    )
    p.add_argument("--videos", type=int, default=BuildPlan.videos, help="training videos")
    p.add_argument(
        "--late-videos",
        type=int,
        default=BuildPlan.late_videos,
        help="fresh videos (seed+2000) the late stages train on instead of the training videos, "
        "whose answers stage 0 has fitted (0: the training videos)",
    )
    p.add_argument("--bench-videos", type=int, default=BuildPlan.bench_videos)
    for stage in STAGES:
        p.add_argument(
            f"--{cli_flag(stage)}-steps",
            type=int,
            default=None,
            help=f"{stage} optimizer steps (0: skip)",
        )
        if stage in RECIPE_STAGES:
            p.add_argument(
                f"--{cli_flag(stage)}-batch",
                type=_count,
                default=None,
                help=f"{stage} batch size (default: its recipe's)",
            )
    p.add_argument(
        "--vision-image-steps",
        type=int,
        default=BuildPlan.vision_image_steps,
        help="of the vision steps, the first ones on single frames",
    )
    p.add_argument(
        "--vision-shape-steps",
        type=int,
        default=BuildPlan.vision_shape_steps,
        help="of those, the first ones on the patch facts only",
    )
    p.add_argument(
        "--comes-goes-weight",
        type=_positive,
        default=BuildPlan.comes_goes_weight,
        help="weight of the per-frame visibility of objects that appear or disappear in the "
        "vision stage (1: like every other object)",
    )
    p.add_argument(
        "--comes-goes-rows",
        choices=COMES_GOES_ROWS,
        default=BuildPlan.comes_goes_rows,
        help="the rows --comes-goes-weight reaches: both (per-shape and frame rows) or frame "
        "(the frame rows only)",
    )
    p.add_argument(
        "--conv-stem",
        type=_channels,
        default=BuildPlan.conv_stem,
        help="channels of the ViT's convolutional stem, e.g. 32,64, or none (default: 32,64)",
    )
    p.add_argument(
        "--shape-stretches",
        type=int,
        choices=(1, 2, 4, 8),
        default=BuildPlan.shape_stretches,
        help="Q-Former rows per shape, each reading its own stretch of the 8 frames (1: all)",
    )
    p.add_argument(
        "--event-draws",
        type=int,
        default=BuildPlan.event_draws,
        help="with --every-event: each event's time asked this often, options drawn anew",
    )
    p.add_argument(
        "--llm-layers",
        type=int,
        choices=range(1, 9),
        metavar="{1..8}",
        default=BuildPlan.llm_layers,
        help="the LLM's decoder layers (default: 4)",
    )
    p.add_argument(
        "--row-name-scale",
        type=_positive,
        default=BuildPlan.row_name_scale,
        help="gain of the shape-word embeddings added to the named rows (--row-names)",
    )
    for name, text in SWITCHES.items():
        flag = "--" + cli_flag(name)
        p.add_argument(
            flag, action=argparse.BooleanOptionalAction, default=getattr(BuildPlan, name), help=text
        )
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default=BuildPlan.precision,
        help="every stage's matmuls; bf16: CPU autocast, 0.6-0.7x the time where the CPU has "
        "bf16 dot products (weights stay fp32), 9.5x where it has not (AVX2: use fp32; the "
        "build warns)",
    )
    p.add_argument("--workers", type=int, default=2, help="processes for data generation")
    p.add_argument("--measure", action="store_true", help="evaluate the result on a fresh seed")
    return p.parse_args(argv)


def _channels(text: str) -> tuple[int, ...]:
    """`--conv-stem 32,64` → (32, 64); `none` → () (the patchifier alone)."""
    if text.strip().lower() == "none":
        return ()
    parts = text.split(",")
    if not all(part.strip().isdigit() and int(part) > 0 for part in parts):
        raise argparse.ArgumentTypeError(
            f"expected positive channel counts like 32,64 (or none), got {text!r}"
        )
    return tuple(int(part) for part in parts)


def _count(text: str) -> int:
    """`--late-timing-batch 32` → 32; anything but a whole number above 0 is refused."""
    if not text.strip().isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"expected a whole number above 0, got {text!r}")
    return int(text)


def _positive(text: str) -> float:
    """`--row-name-scale 3` → 3.0 (likewise `--comes-goes-weight`); anything not a number above
    0 is refused."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}")
    return value


def make_plan(args: argparse.Namespace) -> BuildPlan:
    """The build plan the parsed options ask for; ValueError where they do not fit together."""
    plan = BuildPlan(
        args.out,
        args.seed,
        llm_seed=args.llm_seed,
        videos=args.videos,
        bench_videos=args.bench_videos,
        vision_image_steps=args.vision_image_steps,
        vision_shape_steps=args.vision_shape_steps,
        comes_goes_weight=args.comes_goes_weight,
        comes_goes_rows=args.comes_goes_rows,
        conv_stem=args.conv_stem,
        shape_stretches=args.shape_stretches,
        event_draws=args.event_draws,
        llm_layers=args.llm_layers,
        row_name_scale=args.row_name_scale,
        precision=args.precision,
        **{name: getattr(args, name) for name in SWITCHES},
        workers=args.workers,
        late_videos=args.late_videos,
    )
    for stage in STAGES:
        value = getattr(args, f"{stage}_steps")
        if value is not None:
            plan.steps[stage] = value
        batch = getattr(args, f"{stage}_batch", None)  # none for the vision stage
        if batch is not None:
            plan.batches[stage] = batch
    check_steps(plan)
    return plan


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    try:
        plan = make_plan(args)
    except ValueError as exc:  # options that do not fit together: said, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        summary = build(plan)
        if args.measure:
            from videochat.embedded.measure import measure

            summary["measure"] = measure(
                plan.out / "model", plan.out, plan.seed, plan.bench_videos, plan.workers
            )
    except VideoChatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
