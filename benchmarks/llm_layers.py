"""The embedded build's stage 0 and drill with the committed 4-layer LLM and with 2 layers
(`--llm-layers 2`), side by side in one run.

    python benchmarks/llm_layers.py [--videos 64] [--steps 40] [--model DIR]

Each run trains the LLM and llama_proj of the packaged default model (or `--model`) with the
stage's packaged recipe (visual cache on, bf16 autocast, padded batches; `benchmarks/packing.py`'s
runs) on the same small synthetic set, from the same seed; the 2-layer run's model is
the same one with its last decoder layers dropped (a step's cost, not a trained 2-layer model).
Printed: seconds per step (between the first and the last logged step) of each, and the ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.packing import run  # noqa: E402
from benchmarks.visual_cache import embedded_data  # noqa: E402


def fewer_layers(model_dir: str, layers: int, target: Path) -> Path:
    """A copy of the model in `model_dir` keeping only its first `layers` decoder layers."""
    from videochat.model import load_model, save_model

    model = load_model(model_dir, device="cpu", dtype="fp32")
    del model.llm.model.layers[layers:]
    model.llm.config.num_hidden_layers = layers
    model.config.llm.hf_config["num_hidden_layers"] = layers
    save_model(model, target)
    return target


def two_layer_setup(tmp: Path, videos: int, model: str | None) -> tuple[Path, str]:
    """(data folder, model directory) of a benchmark of 2-layer LLM steps: a small synthetic
    set of `videos` in `tmp`, and `model` as it is or the packaged model cut to 2 layers."""
    from benchmarks.visual_cache import embedded_data
    from videochat.model.load import DEFAULT_DIR

    data_dir = tmp / "data"
    embedded_data(data_dir, videos)
    return data_dir, model or str(fewer_layers(str(DEFAULT_DIR), 2, tmp / "two"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=64)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--model", help="start from this model directory (default: packaged)")
    args = parser.parse_args()
    from videochat.model.load import DEFAULT_DIR

    start = args.model or str(DEFAULT_DIR)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        embedded_data(data_dir, args.videos)
        models = {4: start, 2: str(fewer_layers(start, 2, Path(tmp) / "two"))}
        for stage in ("stage0", "drill"):
            for layers, model in models.items():
                out = Path(tmp) / f"{stage}-{layers}"
                results[stage, layers] = run(stage, data_dir, out, args.steps, False, model)[0]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"embedded stages, {args.videos} videos, {args.steps} steps each, bf16, "
        f"{os.cpu_count()} CPU cores, load average {load:.1f} at the end"
    )
    for (stage, layers), seconds in results.items():
        print(f"{stage:7} {layers} layers: {seconds:.3f} s/step")
    for stage in ("stage0", "drill"):
        ratio = results[stage, 2] / results[stage, 4]
        print(f"ratio step time 2 layers / 4 layers, {stage}: {ratio:.2f}x")


if __name__ == "__main__":
    main()
