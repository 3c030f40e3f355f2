"""The embedded build's stage 0 with each batch in one piece and in parts of alike text length
(`length_chunks`), side by side in one run.

    python benchmarks/length_chunks.py [--videos 64] [--steps 40] [--chunks 2,4]

Every run trains the packaged default model's LLM and llama_proj with the `embedded_stage0`
recipe (visual cache on, bf16 autocast, as the build runs it) on the same small synthetic set
and the same batches; the only change is the recipe's `length_chunks`. Printed: seconds a step,
the ratio to one piece, and the last step's loss (the same samples and loss, so it may differ
only in rounding).
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

from benchmarks.visual_cache import step_time  # noqa: E402


def last_loss(out: Path) -> float:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return json.loads(lines[-1])["loss"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=64)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--chunks", default="2,4", help="part counts to compare with 1")
    parser.add_argument("--precision", default="bf16", choices=("fp32", "bf16"))
    args = parser.parse_args()
    from videochat.embedded.config import IMAGE_SIZE
    from videochat.embedded.data import write_annotations
    from videochat.synth.dataset import write_dataset

    counts = [1, *(int(c) for c in args.chunks.split(","))]
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        write_dataset(data_dir, args.videos, 0, 7, (IMAGE_SIZE, IMAGE_SIZE), workers=2)
        write_annotations(data_dir)
        seconds, losses = {}, {}
        for n in counts:
            out = Path(tmp) / f"chunks{n}"
            extra = (f"length_chunks={n}", f"precision={args.precision}")
            seconds[n] = step_time(data_dir, out, args.steps, 1, *extra)
            losses[n] = last_loss(out)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"embedded stage 0, {args.videos} videos, {args.steps} steps of 16, {args.precision}, "
        f"{os.cpu_count()} CPU cores, load average {load:.1f} at the end"
    )
    for n in counts:
        ratio = seconds[n] / seconds[1]
        print(
            f"length_chunks={n}: {seconds[n]:.3f} s/step ({ratio:.2f}x), last loss {losses[n]:.6f}"
        )


if __name__ == "__main__":
    main()
