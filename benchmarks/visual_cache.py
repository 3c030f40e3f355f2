"""The embedded build's stage 0 with and without `visual_cache`, side by side in one run.

    python benchmarks/visual_cache.py [--videos 64] [--steps 30] [--samplings 4]

Both runs train the packaged default model's LLM and llama_proj with the `embedded_stage0`
recipe on the same small synthetic set (112 px videos). Without the cache every step decodes 16
clips and runs the frozen ViT and Q-Former on them; with it, the frozen side encodes each video
`--samplings` times before the first step. Step time is taken between the first and the last
logged step (the first, with its start-up costs, is excluded); the cache's build time is measured
on its own, since it is paid once per run however long the run is.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def embedded_data(data_dir: Path, videos: int) -> None:
    """A small synthetic set (112 px, seed 0) with the embedded build's annotations."""
    from videochat.embedded.config import IMAGE_SIZE
    from videochat.embedded.data import write_annotations
    from videochat.synth.dataset import write_dataset

    write_dataset(data_dir, videos, 0, 7, (IMAGE_SIZE, IMAGE_SIZE), workers=2)
    write_annotations(data_dir)


def seconds_per_step(out: Path) -> float:
    """Seconds a step of a run logged every step, between its first and its last logged step
    (the first, with its start-up costs, is excluded)."""
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return (records[-1]["time"] - records[0]["time"]) / (len(records) - 1)


def stage0_recipe(data_dir: Path, out: Path, steps: int, samplings: int, *extra: str):
    """The packaged `embedded_stage0` recipe on the default model, logging every step."""
    from videochat.embedded.build import recipe_path
    from videochat.model.load import DEFAULT_DIR
    from videochat.train.recipe import load_recipe

    return load_recipe(
        recipe_path("stage0"),
        [
            f"model.path={DEFAULT_DIR}",
            f"data_dir={data_dir}",
            f"output_dir={out}",
            f"max_steps={steps}",
            f"visual_cache={samplings}",
            "log_every=1",
            *extra,
        ],
    )


def step_time(data_dir: Path, out: Path, steps: int, samplings: int, *extra: str) -> float:
    """Seconds per stage-0 step, between the first and the last logged step (`extra`: more
    recipe overrides)."""
    from videochat.train.loop import train

    train(stage0_recipe(data_dir, out, steps, samplings, *extra))
    return seconds_per_step(out)


def cache_time(data_dir: Path, out: Path, samplings: int) -> float:
    """Seconds to build the cache alone, as the loop builds it."""
    from videochat.train import setup
    from videochat.train.data import TrainDataset, read_all
    from videochat.train.visual_cache import build_visual_cache

    recipe = stage0_recipe(data_dir, out, 1, samplings)
    entries = read_all(recipe)
    model = setup.build_model(recipe)
    dataset = TrainDataset(entries, recipe, model.tokenizer, model.config.vision.image_size)
    media = {e.path: e.media for e in entries}
    start = time.perf_counter()
    build_visual_cache(
        model, media, dataset.load_media, samplings, seed=0, batch=16, workers=recipe.num_workers
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--samplings", type=int, default=4, help="visual_cache of the cached run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        embedded_data(data_dir, args.videos)
        plain = step_time(data_dir, Path(tmp) / "plain", args.steps, 0)
        cached = step_time(data_dir, Path(tmp) / "cached", args.steps, args.samplings)
        build = cache_time(data_dir, Path(tmp) / "build", args.samplings)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"embedded stage 0, {args.videos} videos, {args.steps} steps of 16, "
        f"{os.cpu_count()} CPU cores, load average {load:.1f} at the end"
    )
    print(f"encode every step:  {plain:.3f} s/step")
    print(f"cache, {args.samplings} samplings: {cached:.3f} s/step")
    clips = args.videos * args.samplings
    print(f"cache build: {build:.1f} s for {clips} clips ({1000 * build / clips:.0f} ms a clip)")
    print(f"ratio step time cached / encode every step: {cached / plain:.2f}x")


if __name__ == "__main__":
    main()
