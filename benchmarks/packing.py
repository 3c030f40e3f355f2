"""The embedded build's stage 0 and drill with and without `pack_batches`, side by side in one run.

    python benchmarks/packing.py [--videos 64] [--steps 40] [--model DIR]

Each run trains the packaged default model's (or `--model`'s) LLM and llama_proj with the stage's
packaged recipe (visual cache on and bf16 autocast, as the build runs them) on the same small
synthetic set, from the same seed; the only change is the recipe's `pack_batches`
(`videochat.train.packing`). Stage 0's samples share their first 54 positions (bos, the system
text, the video marker) and a random batch of 16 is about a third padding; the drill's share only
the bos row and are less padded. Printed: seconds per step (between the first and the last logged
step), the positions the LLM computes a step, and each run's mean loss over its last third of steps
(packing is exact: the two should agree to bf16 rounding).
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
from benchmarks.visual_cache import embedded_data, seconds_per_step  # noqa: E402


def run(
    stage: str,
    data_dir: Path,
    out: Path,
    steps: int,
    packed: bool,
    model: str | None = None,
    extra: tuple[str, ...] = (),
) -> tuple[float, float]:
    """(seconds a step, LLM positions a step) of `steps` steps of `stage`'s recipe, `extra`
    recipe overrides on top."""
    from videochat.embedded.build import stage_recipe
    from videochat.model.load import DEFAULT_DIR
    from videochat.train import loop

    positions: list[int] = []
    init = loop.TrainStep.__init__

    def counting(self, model, recipe):  # the LLM's input width, padded or packed
        init(self, model, recipe)

        def count(module, args, kwargs):
            embeds = kwargs["inputs_embeds"]  # (rows, L, D)
            positions.append(embeds.shape[0] * embeds.shape[1])

        model.llm.get_decoder().register_forward_pre_hook(count, with_kwargs=True)

    recipe = stage_recipe(
        stage,
        [
            f"model.path={model or DEFAULT_DIR}",
            f"data_dir={data_dir}",
            f"output_dir={out}",
            f"max_steps={steps}",
            "precision=bf16",
            "log_every=1",
            f"pack_batches={str(packed).lower()}",
            *extra,
        ],
    )
    loop.TrainStep.__init__ = counting
    try:
        loop.train(recipe)
    finally:
        loop.TrainStep.__init__ = init
    return seconds_per_step(out), sum(positions) / steps  # one micro-batch a step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=64)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument(
        "--model",
        help="start from this model directory (default: the packaged model, whose frame rows "
        "carry their time stamps; a build's stage 0 starts from its vision stage, without them)",
    )
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        embedded_data(data_dir, args.videos)
        for stage in ("stage0", "drill"):
            for packed in (False, True):
                out = Path(tmp) / f"{stage}-{packed}"
                seconds, positions = run(stage, data_dir, out, args.steps, packed, args.model)
                results[stage, packed] = (seconds, positions, late_loss(out))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"embedded stages, {args.videos} videos, {args.steps} steps each, bf16, "
        f"{os.cpu_count()} CPU cores, load average {load:.1f} at the end"
    )
    for (stage, packed), (seconds, positions, loss) in results.items():
        name = f"{stage} {'packed' if packed else 'padded'}"
        print(f"{name:14} {seconds:.3f} s/step, {positions:.0f} positions, loss {loss:.6f}")
    for stage in ("stage0", "drill"):
        ratio = results[stage, True][0] / results[stage, False][0]
        print(f"ratio step time packed / padded, {stage}: {ratio:.2f}x")


if __name__ == "__main__":
    main()
