"""The embedded vision stage's clip steps without and with frame times, side by side in one run.

    python benchmarks/frame_times.py [--steps 30] [--rounds 2]

Both variants are the committed recipe's vision side (stem, two rows per shape, frame rows,
position codes) from the same seed under CPU bf16 autocast, trained on freshly rendered clips
of 8 frames, 16 a step; the only change is `--frame-times` (each frame's timestamp coded on the
Q-Former's cross-attention values, plus the event-time read-outs it trains). The variants
alternate `--rounds` times and the fastest round of each counts, as this machine is noisy.
Printed: seconds per clip step of each and their ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def seconds_per_step(frame_times: bool, steps: int) -> float:
    """One vision stage of `steps` clip steps (no single-frame phase) on a fresh model."""
    from videochat.embedded.config import IMAGE_SIZE, NUM_FRAMES, embedded_config, vocab_rows
    from videochat.embedded.facts import stack_facts
    from videochat.embedded.pretrain import PretrainPlan, pretrain_vision, render_clip
    from videochat.model import build_model

    config = embedded_config(
        vocab_rows(1024),
        (32, 64),
        frame_rows=True,
        shape_stretches=2,
        visual_positions=True,
        merge_stretches=True,
        frame_times=frame_times,
    )
    model = build_model(config, None, seed=0)
    rng = np.random.default_rng(0)
    rendered = [render_clip(rng, NUM_FRAMES, IMAGE_SIZE) for _ in range(2)]
    clips = stack_facts([facts for _, facts in rendered])  # shapes only: no real clips are mixed
    clips["pixels"] = torch.stack([pixels for pixels, _ in rendered])
    plan = PretrainPlan(steps=steps, image_steps=0, real_fraction=0.0, precision="bf16")
    start = time.perf_counter()
    pretrain_vision(model, clips, plan)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    best = {False: float("inf"), True: float("inf")}
    for _ in range(args.rounds):
        for frame_times in best:
            best[frame_times] = min(best[frame_times], seconds_per_step(frame_times, args.steps))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"embedded vision stage, {args.steps} clip steps of 16 × 8 frames, bf16, best of "
        f"{args.rounds}; {os.cpu_count()} CPU cores, load average {load:.1f} at the end"
    )
    print(f"without frame times: {best[False]:.3f} s/step")
    print(f"with frame times:    {best[True]:.3f} s/step")
    print(f"ratio: {best[True] / best[False]:.2f}×")


if __name__ == "__main__":
    main()
