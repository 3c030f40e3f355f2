"""The embedded build's LLM stages with their batches made by one DataLoader worker process and
in the training process itself (`num_workers` 1 and 0), side by side in one run.

    python benchmarks/loader_workers.py [--videos 256] [--steps 60] [--rounds 2] [--model DIR]

Each run trains the LLM and llama_proj of the packaged default model (or `--model`) with a
stage's packaged recipe (visual cache on, bf16 autocast, math attention, padded batches, as the
build runs them) on the same small synthetic set, from the same seed, for `--steps` steps; the
only change is `num_workers`. The visual cache is encoded once beforehand and loaded by every
run. Timed: the whole `train` call (cache load, every epoch's loader start and checkpoint,
export), since a new epoch's loader start is what one worker process adds. Printed: each
variant's best round in seconds a step, the epochs the run crossed, and the ratio.
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

from benchmarks.visual_cache import embedded_data  # noqa: E402

STAGES = ("drill", "stage0")


def seconds(stage: str, data_dir: Path, out: Path, steps: int, workers: int, model: str) -> float:
    """Wall-clock seconds of a whole `steps`-step run of `stage`'s recipe."""
    from videochat.embedded.build import stage_recipe
    from videochat.train.loop import train

    recipe = stage_recipe(
        stage,
        [
            f"model.path={model}",
            f"data_dir={data_dir}",
            f"output_dir={out}",
            f"export={out / 'export'}",
            f"max_steps={steps}",
            "precision=bf16",
            "attention=math",
            "visual_cache_seed=0",
            f"visual_cache_dir={data_dir.parent / 'cache'}",
            f"num_workers={workers}",
            "log_every=1",
        ],
    )
    began = time.perf_counter()
    train(recipe)
    return time.perf_counter() - began


def epochs_started(out: Path) -> int:
    """The epochs a run's logged steps fell in (each started its own loader)."""
    records = (out / "metrics.jsonl").read_text().splitlines()
    return len({json.loads(line)["epoch"] for line in records})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=256)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--model", help="start from this model directory (default: packaged)")
    args = parser.parse_args()
    from videochat.model.load import DEFAULT_DIR

    model = args.model or str(DEFAULT_DIR)
    best: dict[tuple[str, int], float] = {}
    crossed: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        embedded_data(data_dir, args.videos)
        for stage in STAGES:  # untimed: encodes the cache every later run loads
            seconds(stage, data_dir, Path(tmp) / f"warm-{stage}", 2, 0, model)
        for round_ in range(args.rounds):
            for stage in STAGES:
                for workers in (1, 0):
                    out = Path(tmp) / f"{stage}-{workers}-{round_}"
                    took = seconds(stage, data_dir, out, args.steps, workers, model) / args.steps
                    best[stage, workers] = min(best.get((stage, workers), took), took)
                    crossed[stage] = epochs_started(out)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"embedded LLM stages, {args.videos} videos, {args.steps} steps x {args.rounds} rounds, "
        f"bf16, {os.cpu_count()} CPU cores, load average {load:.1f} at the end"
    )
    for stage in STAGES:
        one, none = best[stage, 1], best[stage, 0]
        print(
            f"{stage}: one worker {one:.3f} s/step, in-process {none:.3f} s/step "
            f"({crossed[stage]} epoch(s) a run); ratio in-process / one worker: {none / one:.2f}x"
        )


if __name__ == "__main__":
    main()
