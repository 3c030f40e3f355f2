"""Decoding the embedded build's videos in this process vs in 2 worker processes, side by side.

    python benchmarks/visual_cache_workers.py [--videos 400] [--workers 2]

Two places of the build decode every training video: the vision stage's real clips
(`pretrain.cache_clips`) and each LLM stage's visual cache (`visual_cache_workers` of the
embedded recipes: the files decoded by workers while this process encodes them). Both are timed
with 0 workers and with `--workers`, on the same small synthetic set (112 px, the build's data
options), and checked to give the same tensors.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from visual_cache import embedded_data, stage0_recipe  # noqa: E402


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def clip_times(data_dir: Path, workers: int) -> tuple[float, float]:
    """Seconds for `cache_clips` with 0 and with `workers` processes (checked equal)."""
    from videochat.embedded.config import IMAGE_SIZE, NUM_FRAMES
    from videochat.embedded.pretrain import cache_clips

    here, alone = timed(lambda: cache_clips(data_dir, NUM_FRAMES, IMAGE_SIZE, workers=0))
    there, helped = timed(lambda: cache_clips(data_dir, NUM_FRAMES, IMAGE_SIZE, workers=workers))
    if here.keys() != there.keys() or not all(torch.equal(here[k], there[k]) for k in here):
        raise SystemExit("cache_clips gave other clips with workers")
    return alone, helped


def cache_times(data_dir: Path, out: Path, workers: int) -> tuple[float, float]:
    """Seconds to build stage 0's visual cache with 0 and with `workers` decoding processes
    (checked equal), as the training loop builds it."""
    from videochat.train import setup
    from videochat.train.data import TrainDataset, read_all
    from videochat.train.visual_cache import build_visual_cache

    recipe = stage0_recipe(data_dir, out, 1, 1, "precision=bf16")
    entries = read_all(recipe)
    model = setup.build_model(recipe)
    dataset = TrainDataset(entries, recipe, model.tokenizer, model.config.vision.image_size)
    media = {e.path: e.media for e in entries}
    autocast = setup.pick_precision("bf16", model.vision_device).autocast

    def build(count: int):
        return build_visual_cache(
            model, media, dataset.load_media, 1, seed=0, workers=count, autocast=autocast
        )

    here, alone = timed(lambda: build(0))
    there, helped = timed(lambda: build(workers))
    for path, clips in here.clips.items():
        if not all(
            torch.equal(a.rows, b.rows) for a, b in zip(clips, there.clips[path], strict=True)
        ):
            raise SystemExit(f"the visual cache of {path} differs with workers")
    return alone, helped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        embedded_data(data_dir, args.videos)
        clips = clip_times(data_dir, args.workers)
        cache = cache_times(data_dir, Path(tmp) / "run", args.workers)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"embedded build's decoding, {args.videos} videos, {os.cpu_count()} CPU cores, "
        f"load average {load:.1f} at the end"
    )
    for what, (alone, helped) in (("vision stage clips", clips), ("visual cache", cache)):
        print(
            f"{what}: {alone:.1f} s here, {helped:.1f} s with {args.workers} workers "
            f"(ratio {helped / alone:.2f}x)"
        )


if __name__ == "__main__":
    main()
