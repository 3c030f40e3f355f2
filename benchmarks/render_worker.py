"""The embedded vision stage's steps with its DataLoader worker rendering fresh clips (as the
build runs it) and with that worker handing out one batch rendered beforehand, side by side in
one run: what the rendering costs the step on a machine whose cores the step also uses.

    python benchmarks/render_worker.py [--steps 30] [--rounds 2]

Both train the packaged default model's vision side with the vision stage's trainer (clip steps,
batch 16, bf16 autocast, the math attention kernel, 2-D frame convolutions as the build runs
them), from the same weights. The two alternate `--rounds` times; each round's 3 warm-up steps
are not timed. Printed: the best round's seconds a step of each, and their ratio.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.attention_kernel import best_vision_seconds  # noqa: E402
from videochat.embedded import pretrain  # noqa: E402

RENDERING = pretrain.RenderedBatches.__iter__


def first_batch_again(self: pretrain.RenderedBatches):
    """The plan's first rendered batch at every step: the worker renders once."""
    _, batch = next(RENDERING(self))
    for step in range(self.plan.steps):
        yield step, batch


def with_rendering(fresh: bool):
    """A variant of `best_vision_seconds`: fresh clips every step or one batch over again."""

    def prepare(model) -> str:
        pretrain.RenderedBatches.__iter__ = RENDERING if fresh else first_batch_again
        model.visual_encoder.patch_embed.frame_convs = True
        return "math"

    return prepare


def main() -> None:
    try:
        best = best_vision_seconds({"fresh": with_rendering(True), "once": with_rendering(False)})
    finally:
        pretrain.RenderedBatches.__iter__ = RENDERING
    print(f"worker rendering every batch: {best['fresh']:.3f} s/step")
    print(f"worker rendering once: {best['once']:.3f} s/step")
    print(f"ratio step time rendered once / every batch: {best['once'] / best['fresh']:.2f}x")


if __name__ == "__main__":
    main()
