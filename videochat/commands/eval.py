"""`videochat eval BENCH_DIR`: multiple-choice accuracy on an MVBench-format benchmark.

Writes per-item predictions (JSONL; rerunning with the same file resumes) and a results JSON, and
prints the per-task table. Every number printed or written names its protocol.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from videochat.errors import VideoChatError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bench_dir", type=Path, help="benchmark directory holding tasks.json")
    parser.add_argument("--model", default=None, help="model directory (default: embedded model)")
    parser.add_argument("--tasks", default=None, help="comma-separated task names (default: all)")
    parser.add_argument(
        "--protocol",
        default="videochat2",
        help="prompt and scoring protocol: videochat2 (default), lmms-eval, videochat2-rank (the "
        "likeliest option's text instead of a generated answer) or videochat2-rank-letter "
        "(the likeliest '<letter>) <text>')",
    )
    parser.add_argument(
        "--num-frames", type=int, default=None, help="frames per clip (default: the model's)"
    )
    parser.add_argument("--limit", type=int, default=None, help="first N items of each task only")
    parser.add_argument("--out", type=Path, default=Path("results.json"), help="results JSON path")
    parser.add_argument(
        "--predictions",
        type=Path,
        default=None,
        help="per-item JSONL; existing items are skipped (default: <out>.predictions.jsonl)",
    )
    parser.add_argument(
        "--retry-failed", action="store_true", help="ask again the items that failed last time"
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: auto)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _check_args(args: argparse.Namespace) -> None:
    if args.num_frames is not None and args.num_frames < 1:
        raise VideoChatError(f"--num-frames must be at least 1, got {args.num_frames}")
    if args.limit is not None and args.limit < 1:
        raise VideoChatError(f"--limit must be at least 1, got {args.limit}")
    for flag, path in (("--out", args.out), ("--predictions", args.predictions)):
        if path is not None and path.is_dir():
            raise VideoChatError(f"{flag} {path} is a folder; give a file path")


def _default_predictions(out: Path) -> Path:
    return out.with_name(out.stem + ".predictions.jsonl")


def run(args: argparse.Namespace) -> int:
    from videochat.eval import (
        evaluate,
        format_table,
        get_protocol,
        load_benchmark,
        open_session,
        summarize,
        write_results,
    )

    _check_args(args)
    protocol = get_protocol(args.protocol)
    names = [n.strip() for n in args.tasks.split(",") if n.strip()] if args.tasks else None
    items = load_benchmark(args.bench_dir, names, args.limit)  # fail on a bad table before loading
    if not items:
        raise VideoChatError(f"{args.bench_dir}: the selected tasks hold no items")
    predictions = args.predictions or _default_predictions(args.out)
    for folder in {args.out.parent, predictions.parent}:  # unwritable: fail before the model loads
        folder.mkdir(parents=True, exist_ok=True)

    from videochat.model import load_model

    model = load_model(args.model, device=args.device)
    session = open_session(model, protocol)
    num_frames = model.config.num_frames if args.num_frames is None else args.num_frames
    records = evaluate(
        session,
        items,
        protocol,
        num_frames=num_frames,
        predictions=predictions,
        retry_failed=args.retry_failed,
        progress=not args.no_progress,
    )
    model_name = args.model or "embedded default"
    results = summarize(
        records,
        protocol=protocol.name,
        num_frames=num_frames,
        model=str(model_name),
        notes=protocol.notes,
    )
    write_results(args.out, results)
    print(format_table(results))
    print(f"results: {args.out}   predictions: {predictions}")
    return _all_failed(records)


def _all_failed(records: list) -> int:
    """1 with one error line when no item could be answered (a setup problem, not a score)."""
    errors = [r.get("error") for r in records if isinstance(r, dict)]
    if records and len(errors) == len(records) and all(errors):
        raise VideoChatError(f"every item failed; the first: {errors[0]}")
    return 0
