"""The embedded build's LLM stages with a training recipe switch off and on, side by side in
one run: `shared_prefix` (a batch's common start run once, `videochat.train.shared_prefix`) or
`compile_layers` (torch.compile'd decoder layers, `train.setup.compile_decoder_layers`).

    python benchmarks/llm_switch.py SWITCH [--stages stage0 drill] [--base KEY=VALUE ...]
        [--videos 64] [--steps 40] [--rounds 2] [--model DIR]

Each run trains the LLM and llama_proj of the packaged default model with its decoder cut to
2 layers (the 2-layer recipe's step; or `--model` as it is) with the stage's packaged recipe
(visual cache on, bf16 autocast, math attention, padded batches, `--base` overrides on both) on
the same small synthetic set, from the same seed. Stage 0's rows share their first 54 positions
(bos, the system text, the video marker), the drill's only bos. Off and on alternate `--rounds`
times. Printed for each: the best round's seconds a step (between the first and the last logged
step, so a compile in the first step is not in it), the whole run's seconds (compile
included), the LLM positions a step, the mean loss over the last third of the steps (off and on
should agree to bf16 rounding), and the ratio of the steps' times.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.cpu_bf16 import late_loss  # noqa: E402
from benchmarks.llm_layers import two_layer_setup  # noqa: E402
from benchmarks.packing import run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("switch", choices=("shared_prefix", "compile_layers"))
    parser.add_argument("--stages", nargs="+", default=["stage0", "drill"])
    parser.add_argument("--base", nargs="*", default=[], help="recipe overrides on both runs")
    parser.add_argument("--videos", type=int, default=64)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--model", help="start from this model directory as it is")
    args = parser.parse_args()
    from videochat.train.setup import attention_kernel

    best: dict[tuple[str, bool], tuple[float, float, float]] = {}
    losses: dict[tuple[str, bool], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir, model = two_layer_setup(Path(tmp), args.videos, args.model)
        for round_ in range(args.rounds):
            for stage in args.stages:
                for on in (False, True):
                    out = Path(tmp) / f"{stage}-{on}-{round_}"
                    extra = (*args.base, f"{args.switch}={str(on).lower()}")
                    began = time.perf_counter()
                    with attention_kernel("math"):
                        seconds, positions = run(
                            stage, data_dir, out, args.steps, False, model, extra
                        )
                    result = (seconds, time.perf_counter() - began, positions)
                    best[stage, on] = min(best.get((stage, on), result), result)
                    losses[stage, on] = late_loss(out)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"embedded LLM stages, {args.switch} off/on, base {' '.join(args.base) or '-'}, "
        f"{args.videos} videos, {args.steps} steps each, best of {args.rounds} rounds, bf16, "
        f"{os.cpu_count()} CPU cores, load average {load:.1f} at the end"
    )
    for (stage, on), (seconds, whole, positions) in best.items():
        name = f"{stage} {args.switch} {'on' if on else 'off'}"
        print(
            f"{name:28} {seconds:.3f} s/step, run {whole:.1f} s, {positions:.0f} positions, "
            f"loss {losses[stage, on]:.6f}"
        )
    for stage in args.stages:
        ratio = best[stage, True][0] / best[stage, False][0]
        print(f"ratio step time on / off, {stage}: {ratio:.2f}x")


if __name__ == "__main__":
    main()
