"""The embedded vision stage's steps with the committed convolutional stem (32 then 64 channels,
`--conv-stem 32,64`) and a narrower one (16 then 32), side by side in one run: what the stem
costs a step.

    python benchmarks/conv_stem.py [--steps 30] [--rounds 2]

Both train the packaged default model's vision side with the vision stage's trainer (clip steps,
batch 16, bf16 autocast, the math attention kernel, 2-D frame convolutions as the build runs
them) on the same freshly rendered clips; the narrower stem's copy gets a freshly initialised
stem and patchifier (the same ViT, Q-Former and queries): a step's cost, not a trained model.
The two alternate `--rounds` times; each round's 3 warm-up steps are not timed. Printed: the
best round's seconds a step of each, and their ratio.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.attention_kernel import best_vision_seconds  # noqa: E402


def with_stem(channels: tuple[int, ...] | None):
    """A variant of `best_vision_seconds`: the copy's stem replaced by `channels` (None: kept)."""

    def prepare(model) -> str:
        from videochat.model.vision import PatchEmbed

        embed = model.visual_encoder.patch_embed
        if channels is not None:
            cfg = dataclasses.replace(model.config.vision, conv_stem=channels, frame_convs=True)
            embed = model.visual_encoder.patch_embed = PatchEmbed(cfg)
        embed.frame_convs = True
        return "math"

    return prepare


def main() -> None:
    best = best_vision_seconds({"32,64": with_stem(None), "16,32": with_stem((16, 32))})
    print(f"stem 32,64 (committed): {best['32,64']:.3f} s/step")
    print(f"stem 16,32: {best['16,32']:.3f} s/step")
    print(f"ratio step time 16,32 / 32,64: {best['16,32'] / best['32,64']:.2f}x")


if __name__ == "__main__":
    main()
