"""Load-time and memory benchmark for model directories (`load_model`).

Builds a preset (default `videochat-7b`) with random bf16 weights (meta device + cheap fill),
saves it as a sharded model directory, then, each in a fresh subprocess so peak RSS is its own:
  1. reads every shard with plain `safetensors.torch.load_file` and drops it (the I/O floor),
  2. `load_model(DIR)`: build skeleton, stream, assign.
Prints load time next to the raw read time, and the load's peak RSS as a multiple of the weights'
byte size (target ≤ 1.3×).

    python benchmarks/load.py                       # videochat-7b, needs ~18 GiB RAM, ~16 GB disk
    python benchmarks/load.py --preset tiny         # smoke run
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def stage_build(preset: str, directory: Path) -> dict:
    from videochat.model import VideoChatConfig, build_model, save_model

    start = time.perf_counter()
    model = build_model(VideoChatConfig.preset(preset), device="cpu", dtype="bf16", cheap_init=True)
    built = time.perf_counter()
    save_model(model, directory, max_shard_size="2GB")
    nbytes = sum(p.numel() * p.element_size() for p in model.state_dict().values())
    return {"build_s": built - start, "save_s": time.perf_counter() - built, "weight_bytes": nbytes}


def _touch(tensors) -> None:
    """Read every 4 KiB page: safetensors maps files lazily, so nothing is loaded until used."""
    for t in tensors:
        flat = t.reshape(-1)
        float(flat[:: max(1, 4096 // t.element_size())].float().sum())


def stage_read(directory: Path) -> dict:
    from safetensors.torch import load_file

    start = time.perf_counter()
    for shard in sorted(directory.glob("model*.safetensors")):
        tensors = load_file(str(shard))
        _touch(tensors.values())
        del tensors
    return {"read_s": time.perf_counter() - start, "peak_rss": _peak_rss_bytes()}


def stage_load(directory: Path) -> dict:
    import torch  # noqa: F401  (imports counted in the baseline, not the load time)
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401
    from transformers.models.llama import modeling_llama  # noqa: F401

    from videochat.model import load_model

    baseline = _peak_rss_bytes()
    start = time.perf_counter()
    model = load_model(directory, device="cpu", dtype="bf16")
    opened = time.perf_counter() - start
    _touch(model.state_dict().values())
    seconds = time.perf_counter() - start
    params = sum(p.numel() for p in model.parameters())
    return {
        "open_s": opened,
        "load_s": seconds,
        "peak_rss": _peak_rss_bytes(),
        "baseline_rss": baseline,
        "params": params,
    }


def _child(stage: str, *args: str) -> dict:
    cmd = [sys.executable, __file__, "--stage", stage, *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"stage {stage} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="videochat-7b")
    parser.add_argument("--dir", type=Path, default=None, help="parent folder for the temp model")
    parser.add_argument("--keep", type=Path, default=None, help="write/reuse the model here")
    parser.add_argument("--stage", choices=["build", "read", "load"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        stages = {
            "build": lambda: stage_build(args.preset, args.dir),
            "read": lambda: stage_read(args.dir),
            "load": lambda: stage_load(args.dir),
        }
        print(json.dumps(stages[args.stage]()))
        return
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        directory = args.keep or Path(tmp) / "model"
        if args.keep and (directory / "build.json").is_file():
            build = json.loads((directory / "build.json").read_text())
        else:
            build = _child("build", "--preset", args.preset, "--dir", str(directory))
            (directory / "build.json").write_text(json.dumps(build))
        read = _child("read", "--dir", str(directory))
        load = _child("load", "--dir", str(directory))
    gib = 1024**3
    weights = build["weight_bytes"]
    print(
        f"preset {args.preset}: {load['params'] / 1e9:.2f} B params, bf16 weights {weights / gib:.2f} GiB"
    )
    print(f"  build (meta + cheap fill) {build['build_s']:.1f} s, save {build['save_s']:.1f} s")
    print(f"  {'':28}{'raw safetensors read':>22}{'load_model':>14}")
    print(f"  {'time to all weights read (s)':28}{read['read_s']:>22.1f}{load['load_s']:>14.1f}")
    print(f"  {'peak RSS (GiB)':28}{read['peak_rss'] / gib:>22.2f}{load['peak_rss'] / gib:>14.2f}")
    print(
        f"  {'peak RSS / weight bytes':28}{read['peak_rss'] / weights:>22.2f}{load['peak_rss'] / weights:>14.2f}"
    )
    print(
        f"  load time / raw read time: {load['load_s'] / read['read_s']:.2f}x; "
        f"RSS before load (imports): {load['baseline_rss'] / gib:.2f} GiB; target RSS <= 1.3x"
    )
    print(
        f"  load_model returned after {load['open_s']:.1f} s (weights memory-mapped, then every "
        "page read); shard files were in the page cache (warm) for both columns"
    )


if __name__ == "__main__":
    main()
