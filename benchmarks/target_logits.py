"""The embedded build's stage 0 and drill with the vocabulary projection at every position (as
transformers' causal-LM loss computes it) and only at the labelled positions
(`videochat.train.loss`, what training runs), side by side in one run.

    python benchmarks/target_logits.py [--videos 64] [--steps 40] [--rounds 2] [--model DIR]

Each run trains the LLM and llama_proj of the packaged default model with its decoder cut to
2 layers (the 2-layer recipe's step; or `--model` as it is) with the stage's packaged recipe
(visual cache on, bf16 autocast, math attention, padded batches) on the same small synthetic
set, from the same seed. The two alternate `--rounds` times. Printed: the best round's seconds
per step of each (between the first and the last logged step), each run's mean loss over its
last third of steps (the two should agree to bf16 rounding), and the ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.cpu_bf16 import late_loss  # noqa: E402
from benchmarks.llm_layers import two_layer_setup  # noqa: E402
from benchmarks.packing import run as padded_run  # noqa: E402


def logits_everywhere(llm, feed, labels, segments=None, per_sample=False, share_prefix=False):
    """The loss as transformers computes it: logits at all positions, then the cross-entropy."""
    assert segments is None and not per_sample, "the embedded LLM stages take the token mean"
    assert not share_prefix, "the padded rows run whole, as the recipes' default"
    return llm(**feed, labels=labels).loss


def run(stage: str, data_dir: Path, out: Path, steps: int, model: str, everywhere: bool) -> float:
    """Seconds a step of `steps` steps of `stage`'s recipe (`benchmarks/packing.py`'s padded
    run) on the math attention kernel, with the loss computed `everywhere` or at the targets."""
    from videochat.train import loop
    from videochat.train.setup import attention_kernel

    targets_only = loop.llm_loss
    loop.llm_loss = logits_everywhere if everywhere else targets_only
    try:
        with attention_kernel("math"):
            return padded_run(stage, data_dir, out, steps, False, model)[0]
    finally:
        loop.llm_loss = targets_only


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=64)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--model", help="start from this model directory as it is")
    args = parser.parse_args()

    best: dict[tuple[str, bool], float] = {}
    losses: dict[tuple[str, bool], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir, model = two_layer_setup(Path(tmp), args.videos, args.model)
        for round_ in range(args.rounds):
            for stage in ("stage0", "drill"):
                for everywhere in (True, False):
                    out = Path(tmp) / f"{stage}-{everywhere}-{round_}"
                    seconds = run(stage, data_dir, out, args.steps, model, everywhere)
                    key = (stage, everywhere)
                    best[key] = min(best.get(key, seconds), seconds)
                    losses[key] = late_loss(out)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"embedded stages, {args.videos} videos, {args.steps} steps each, best of "
        f"{args.rounds} rounds, bf16, {os.cpu_count()} CPU cores, load average {load:.1f} at the end"
    )
    for (stage, everywhere), seconds in best.items():
        name = f"{stage} logits {'everywhere' if everywhere else 'at targets'}"
        print(f"{name:28} {seconds:.3f} s/step, loss {losses[stage, everywhere]:.6f}")
    for stage in ("stage0", "drill"):
        ratio = best[stage, False] / best[stage, True]
        print(f"ratio step time at targets / everywhere, {stage}: {ratio:.2f}x")


if __name__ == "__main__":
    main()
