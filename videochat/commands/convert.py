"""`videochat convert --config ORIGINAL.json --out DIR`: original checkpoints → one model directory.

Reads the original's separate files (EVA ViT `.pth`, BLIP-2 `.pth`, the LLM directory, the
VideoChat `.pth`) safely (`weights_only`), streams them into the target dtype and writes sharded
safetensors + config + tokenizer, which `videochat --model DIR ...` and `load_model(DIR)` open.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from videochat.errors import ModelLoadError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", required=True, type=Path, help="the original configs/config.json"
    )
    parser.add_argument("--out", required=True, type=Path, help="model directory to write")
    parser.add_argument(
        "--dtype", default="bf16", choices=["bf16", "fp16", "fp32"], help="stored dtype (bf16)"
    )
    parser.add_argument(
        "--shard-size", default="2GB", help="largest safetensors shard, e.g. 500MB, 2GB (2GB)"
    )
    parser.add_argument(
        "--force", action="store_true", help="write into --out even if it is not empty"
    )


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise ModelLoadError(f"--out {out} is a file; give a folder path")
    if out.exists() and any(out.iterdir()) and not args.force:
        raise ModelLoadError(f"{out} exists and is not empty; choose another --out or pass --force")
    if not args.config.is_file():
        what = "is a folder, not the config .json" if args.config.is_dir() else "not found"
        raise ModelLoadError(f"config {args.config} {what}")
    shard_size = _shard_size(args.shard_size)  # a typo fails now, not after minutes of reading
    out.mkdir(parents=True, exist_ok=True)  # an unwritable --out fails now too

    from videochat.model.config import VideoChatConfig
    from videochat.model.load import load_model, save_model

    try:
        config = VideoChatConfig.from_original_json(args.config)
    except ValueError as exc:
        raise ModelLoadError(str(exc)) from None
    config.low_resource = False  # a run-time choice, not part of the stored model
    start = time.perf_counter()
    model = load_model(config, device="cpu", dtype=args.dtype)
    report = model.load_report
    print(f"read {report.summary()}")
    if report.initialized:
        print(f"note: {len(report.initialized)} weights had no checkpoint and start fresh")
    save_model(model, out, max_shard_size=shard_size)
    print(f"wrote {out} ({args.dtype}) in {time.perf_counter() - start:.1f} s")
    return 0


def _shard_size(text: str) -> int:
    """Accept "2GB", "500MB" (KB/MB/GB/TB, decimal) or a byte count; reject anything else."""
    from huggingface_hub.serialization._base import parse_size_to_int

    try:
        size = int(text) if text.strip().isdigit() else parse_size_to_int(text)
    except ValueError:
        raise ModelLoadError(f"--shard-size {text!r}: use a size like 500MB or 2GB") from None
    if size < 1:
        raise ModelLoadError(f"--shard-size {text!r}: must be more than 0 bytes")
    return size
