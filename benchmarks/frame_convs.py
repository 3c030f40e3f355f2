"""The embedded vision stage's steps with the ViT's stem and patchifier as 3-D convolutions and as
2-D ones over each frame (`VisionConfig.frame_convs`, `--frame-convs`), side by side in one run.

    python benchmarks/frame_convs.py [--steps 30] [--rounds 2]

Both train the packaged default model's vision side with the vision stage's trainer (clip steps,
batch 16, bf16 autocast, the math attention kernel as the build runs it) on the same freshly
rendered clips, from the same weights; the only change is `frame_convs` (the same function:
each 3-D kernel spans one frame). The two alternate `--rounds` times; each round's 3 warm-up
steps are not timed. Printed: the best round's seconds a step of each, and their ratio.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.attention_kernel import vision_clips, vision_seconds  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    from videochat.model import load_model

    clips = vision_clips()
    start = load_model(None, device="cpu", dtype="fp32")
    best = {False: float("inf"), True: float("inf")}
    for _ in range(args.rounds):
        for frame_convs in best:
            model = copy.deepcopy(start)
            model.visual_encoder.patch_embed.frame_convs = frame_convs
            seconds = vision_seconds(model, clips, args.steps, "math")
            best[frame_convs] = min(best[frame_convs], seconds)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"embedded vision stage, {args.steps} clip steps of 16 x {args.rounds} rounds, bf16, "
        f"{os.cpu_count()} CPU cores, load average {load:.1f} at the end"
    )
    print(f"3-D convolutions: {best[False]:.3f} s/step")
    print(f"2-D convolutions over each frame (frame_convs): {best[True]:.3f} s/step")
    print(f"ratio step time frame_convs / 3-D: {best[True] / best[False]:.2f}x")


if __name__ == "__main__":
    main()
