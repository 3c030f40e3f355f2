"""The embedded build's stage 0 with and without `visual_cache`, side by side in one run.

    python benchmarks/visual_cache.py [--videos 64] [--steps 30] [--samplings 4]

Both runs train the packaged default model's LLM and llama_proj with the `embedded_stage0`
recipe on the same small synthetic set (112 px videos). Without the cache every step decodes 16
clips and runs the frozen ViT and Q-Former on them; with it, the frozen side encodes each video
`--samplings` times before the first step. Step time is taken between the first and the last
logged step (the first, with its start-up costs, is excluded); the cache's build time is printed
separately, since it is paid once per run however long the run is.
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


def stage0(data_dir: Path, out: Path, steps: int, samplings: int) -> dict:
    from videochat.embedded.build import recipe_path
    from videochat.model.load import DEFAULT_DIR
    from videochat.train.loop import train
    from videochat.train.recipe import load_recipe

    recipe = load_recipe(
        recipe_path("stage0"),
        [
            f"model.path={DEFAULT_DIR}",
            f"data_dir={data_dir}",
            f"output_dir={out}",
            f"max_steps={steps}",
            f"visual_cache={samplings}",
            "log_every=1",
        ],
    )
    start = time.perf_counter()
    train(recipe)
    wall = time.perf_counter() - start
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    per_step = (records[-1]["time"] - records[0]["time"]) / (len(records) - 1)
    return {"wall_s": wall, "step_s": per_step, "setup_s": wall - per_step * len(records)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--samplings", type=int, default=4, help="visual_cache of the cached run")
    args = parser.parse_args()
    from videochat.embedded.config import IMAGE_SIZE
    from videochat.embedded.data import write_annotations
    from videochat.synth.dataset import write_dataset

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        write_dataset(data_dir, args.videos, 0, 7, (IMAGE_SIZE, IMAGE_SIZE), workers=2)
        write_annotations(data_dir)
        plain = stage0(data_dir, Path(tmp) / "plain", args.steps, 0)
        cached = stage0(data_dir, Path(tmp) / "cached", args.steps, args.samplings)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"embedded stage 0, {args.videos} videos, {args.steps} steps of 16, "
        f"{os.cpu_count()} CPU cores, load average {load:.1f} at the end"
    )
    print(f"{'':28}{'s/step':>8}{'start-up s':>12}{'wall s':>9}")
    for name, r in (("encode every step", plain), (f"cache, {args.samplings} samplings", cached)):
        print(f"{name:28}{r['step_s']:8.3f}{r['setup_s']:12.1f}{r['wall_s']:9.1f}")
    clips = args.videos * args.samplings
    extra = cached["setup_s"] - plain["setup_s"]
    print(f"cache build: {extra:.1f} s for {clips} clips ({1000 * extra / clips:.0f} ms a clip)")
    print(f"ratio step time cached / encode every step: {cached['step_s'] / plain['step_s']:.2f}x")


if __name__ == "__main__":
    main()
