"""The embedded build's stage 0 with and without `group_by_length`, side by side in one run.

    python benchmarks/group_by_length.py [--videos 64] [--steps 40]

Both runs train the packaged default model's LLM and llama_proj with the `embedded_stage0`
recipe (visual cache on, as the build runs it) on the same small synthetic set; the only change
is the recipe's `group_by_length`. Its samples differ in length from ~50 to ~170 tokens (an
open-ended description against a one-word option), so a random batch of 16 is mostly padding to
its longest member. Also printed: the pad share of each plan's batches, in characters of text.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.visual_cache import embedded_data, stage0_recipe, step_time  # noqa: E402


def pad_share(data_dir: Path, grouped: bool) -> float:
    """Fraction of a batch's (longest × size) text budget that is padding, over epoch 0's plan."""
    from videochat.train.data import read_all, text_length
    from videochat.train.sampler import plan_epoch

    entries = read_all(stage0_recipe(data_dir, data_dir / "unused", 1, 1))
    lengths = [text_length(e) for e in entries]
    media = [e.media for e in entries]
    plan = plan_epoch(media, 16, 1, 0, 0, 0, lengths if grouped else None)
    padded = sum(max(lengths[i] for _, i in batch) * len(batch) for batch in plan)
    return 1 - sum(lengths) / padded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=64)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        embedded_data(data_dir, args.videos)
        shares = {grouped: pad_share(data_dir, grouped) for grouped in (False, True)}
        plain = step_time(data_dir, Path(tmp) / "plain", args.steps, 1)
        grouped = step_time(data_dir, Path(tmp) / "grouped", args.steps, 1, "group_by_length=true")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"embedded stage 0, {args.videos} videos, {args.steps} steps of 16, "
        f"{os.cpu_count()} CPU cores, load average {load:.1f} at the end"
    )
    print(f"random batches:        {plain:.3f} s/step, {shares[False]:.0%} of the text is padding")
    print(f"grouped by length:     {grouped:.3f} s/step, {shares[True]:.0%} of the text is padding")
    print(f"ratio step time grouped / random: {grouped / plain:.2f}x")


if __name__ == "__main__":
    main()
