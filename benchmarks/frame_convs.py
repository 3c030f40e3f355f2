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

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.attention_kernel import best_vision_seconds  # noqa: E402


def with_frame_convs(on: bool):
    """A variant of `best_vision_seconds`: the copy's patchifier path set, the math kernel."""

    def prepare(model) -> str:
        model.visual_encoder.patch_embed.frame_convs = on
        return "math"

    return prepare


def main() -> None:
    best = best_vision_seconds({"3-D": with_frame_convs(False), "2-D": with_frame_convs(True)})
    print(f"3-D convolutions: {best['3-D']:.3f} s/step")
    print(f"2-D convolutions over each frame (frame_convs): {best['2-D']:.3f} s/step")
    print(f"ratio step time frame_convs / 3-D: {best['2-D'] / best['3-D']:.2f}x")


if __name__ == "__main__":
    main()
