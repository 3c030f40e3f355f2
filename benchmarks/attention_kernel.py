"""The embedded vision stage's steps on PyTorch's own attention kernel and on the math kernel,
side by side in one run.

    python benchmarks/attention_kernel.py [--steps 30] [--rounds 2]

Both train the packaged default model's vision side (ViT, Q-Former, queries) with the vision
stage's trainer (`embedded.pretrain.pretrain_vision`, clip steps, batch 16, bf16 autocast) on
freshly rendered clips, from the same seed and the same starting weights; the only change is the
`setup.attention_kernel` around it ("auto": PyTorch's pick, flash attention on this CPU; "math":
plain matmuls and a softmax). The two alternate `--rounds` times; each round's 3 warm-up steps
are not timed. Printed: the best round's seconds a step of each, and their ratio.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def vision_clips():
    """16 freshly rendered 8-frame clips with their scene facts: one vision-stage batch."""
    import numpy as np
    import torch

    from videochat.embedded.pretrain import render_clip, stack_facts

    rng = np.random.default_rng(0)
    rendered = [render_clip(rng, 8, 112) for _ in range(16)]
    clips = stack_facts([facts for _, facts in rendered])  # the "real" clips mixed in
    clips["pixels"] = torch.stack([pixels for pixels, _ in rendered]).half()
    return clips


def vision_seconds(model, clips, steps: int, kernel: str) -> float:
    """Seconds a clip step of the vision stage's trainer (bf16) on `model`, in place, after 3
    untimed warm-up steps, with scaled-dot-product attention on `kernel`."""
    from videochat.embedded.pretrain import PretrainPlan, pretrain_vision
    from videochat.train.setup import attention_kernel

    with attention_kernel(kernel):
        pretrain_vision(model, clips, PretrainPlan(steps=3, image_steps=0, precision="bf16"))
        began = time.perf_counter()
        pretrain_vision(model, clips, PretrainPlan(steps=steps, image_steps=0, precision="bf16"))
    return (time.perf_counter() - began) / steps


def best_vision_seconds(variants: dict[str, Callable]) -> dict[str, float]:
    """Parse `--steps` and `--rounds`, then time each variant's vision steps on a fresh copy of
    the packaged default model, the variants alternating `--rounds` times; print the run's
    header and return each variant's best seconds a step. A variant prepares its copy and
    returns the attention kernel to run it on."""
    parser = argparse.ArgumentParser(description=sys.modules["__main__"].__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    from videochat.model import load_model

    clips = vision_clips()
    start = load_model(None, device="cpu", dtype="fp32")
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(args.rounds):
        for name, prepare in variants.items():
            model = copy.deepcopy(start)
            kernel = prepare(model)
            best[name] = min(best[name], vision_seconds(model, clips, args.steps, kernel))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"embedded vision stage, {args.steps} clip steps of 16 x {args.rounds} rounds, bf16, "
        f"{os.cpu_count()} CPU cores, load average {load:.1f} at the end"
    )
    return best


def main() -> None:
    best = best_vision_seconds({"auto": lambda model: "auto", "math": lambda model: "math"})
    for kernel, seconds in best.items():
        print(f"{kernel}: {seconds:.3f} s/step")
    print(f"ratio step time math / auto: {best['math'] / best['auto']:.2f}x")


if __name__ == "__main__":
    main()
