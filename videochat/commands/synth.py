"""`videochat synth`: generate procedural videos/images with ground truth, training data and a benchmark."""

from __future__ import annotations

import argparse
from pathlib import Path

_MAX_SIDE = 1920


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder (the media root of the data)")
    parser.add_argument("--videos", type=int, default=16, help="number of videos (default 16)")
    parser.add_argument("--images", type=int, default=0, help="number of still images (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same files)")
    parser.add_argument(
        "--size",
        type=int,
        nargs=2,
        metavar=("W", "H"),
        help="frame size for every file (even numbers); default: varied per scene",
    )
    parser.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    parser.add_argument(
        "--force", action="store_true", help="write into a folder that already holds a dataset"
    )


def _check(args: argparse.Namespace) -> None:
    from videochat.synth.encode import SynthError

    if args.videos < 0 or args.images < 0 or args.videos + args.images == 0:
        raise SynthError("--videos and --images must be >= 0 and not both 0")
    if args.workers < 1:
        raise SynthError(f"--workers must be at least 1, got {args.workers}")
    if args.seed < 0:
        raise SynthError(f"--seed must be >= 0, got {args.seed}")
    if args.size is not None:
        w, h = args.size
        if not (64 <= w <= _MAX_SIDE and 64 <= h <= _MAX_SIDE) or w % 2 or h % 2:
            raise SynthError(
                f"--size {w} {h}: width and height must be even numbers between 64 and {_MAX_SIDE}"
            )
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise SynthError(f"--out {out} is a file; give a folder path")
    if (out / "scenes.jsonl").exists() and not args.force:
        raise SynthError(f"{out} already holds a dataset; choose another --out or pass --force")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from videochat.synth.dataset import write_dataset

    _check(args)
    size = tuple(args.size) if args.size else None
    with tqdm(total=args.videos + args.images, unit="file", desc="synth") as bar:
        counts = write_dataset(
            args.out, args.videos, args.images, args.seed, size, args.workers, bar.update
        )
    tasks = ", ".join(f"{k} {v}" for k, v in counts.items() if k not in ("videos", "images"))
    print(f"wrote {counts['videos']} videos and {counts['images']} images to {args.out}")
    print(f"benchmark items per task: {tasks}")
    return 0
