"""Padded stage-0 steps after packed ones in the same process, against a fresh process.

    python benchmarks/packing_after.py --model BUILD/drill [--videos 64] [--steps 300]

Three processes, one after another, each training stage 0's packaged recipe (visual cache on,
bf16, as the build runs it) from `--model` on the same small synthetic set: a fresh one runs
100 padded steps; one runs `--steps` packed steps first, then 100 padded ones; one runs
`--steps` padded steps first, then 100 padded ones. Printed: each process's pace of its last
100 padded steps, its peak resident memory, and the ratios. Why: in whole builds the stages
after a packed stage 0 ran about 25% slower than after a padded one (docs/embedded-experiments.md,
session 44); this shows whether the packed steps leave the process slower.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.packing import run  # noqa: E402
from benchmarks.visual_cache import embedded_data  # noqa: E402

LAST = 100  # the padded steps whose pace is compared


def child(work: Path, model: str, first: str, steps: int) -> None:
    """In this process: `steps` steps (`first`: packed or padded), then `LAST` padded ones."""
    if steps:
        run("stage0", work / "data", work / first / "first", steps, first == "packed", model)
    seconds, _ = run("stage0", work / "data", work / first / "then", LAST, False, model)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{seconds:.4f} {peak:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="where stage 0 starts (BUILD/drill)")
    parser.add_argument("--videos", type=int, default=64)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--child", nargs=3, metavar=("WORK", "FIRST", "STEPS"), help="internal")
    args = parser.parse_args()
    if args.child:
        work, first, steps = args.child
        child(Path(work), args.model, first, int(steps))
        return
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        embedded_data(Path(tmp) / "data", args.videos)
        for first, steps in (("fresh", 0), ("packed", args.steps), ("padded", args.steps)):
            command = [sys.executable, __file__, "--model", args.model]
            command += ["--child", tmp, first, str(steps)]
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            seconds, peak = out.split()[-2:]
            results[first] = float(seconds), float(peak)
    print(f"stage 0, {args.videos} videos, {LAST} padded steps after {args.steps} others, bf16")
    for first, (seconds, peak) in results.items():
        name = "fresh process" if first == "fresh" else f"after {args.steps} {first}"
        print(f"{name:18} {seconds:.3f} s/step, peak resident {peak:.0f} MiB")
    for first in ("packed", "padded"):
        ratio = results[first][0] / results["fresh"][0]
        print(f"ratio padded step time after {first} / fresh process: {ratio:.2f}x")


if __name__ == "__main__":
    main()
