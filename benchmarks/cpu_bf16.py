"""The embedded build's stage 0 in fp32 and under CPU bf16 autocast, side by side in one run.

    python benchmarks/cpu_bf16.py [--videos 64] [--steps 30]

Both runs train the packaged default model's LLM and llama_proj with the `embedded_stage0`
recipe (visual cache on, as the build runs it) on the same small synthetic set, from the same
seed; the only change is the recipe's `precision` (`fp32`, or `bf16`: `torch.autocast("cpu")`,
weights and optimizer state stay fp32). Printed: seconds per step (between the first and the
last logged step) and each run's mean training loss over its last third of steps, so a
speed-up that broke the training would show.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.visual_cache import embedded_data, step_time  # noqa: E402


def late_loss(out: Path) -> float:
    """Mean logged training loss over the last third of a run's steps."""
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    tail = losses[-max(1, len(losses) // 3) :]
    return sum(tail) / len(tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        embedded_data(data_dir, args.videos)
        for precision in ("fp32", "bf16"):
            out = Path(tmp) / precision
            seconds = step_time(data_dir, out, args.steps, 1, f"precision={precision}")
            results[precision] = (seconds, late_loss(out))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"embedded stage 0, {args.videos} videos, {args.steps} steps of 16, "
        f"{os.cpu_count()} CPU cores, load average {load:.1f} at the end"
    )
    for precision, (seconds, loss) in results.items():
        print(f"{precision}: {seconds:.3f} s/step, loss over the last third {loss:.6f}")
    ratio = results["bf16"][0] / results["fp32"][0]
    print(f"ratio step time bf16 / fp32: {ratio:.2f}x")


if __name__ == "__main__":
    main()
