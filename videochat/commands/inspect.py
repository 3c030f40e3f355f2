"""``videochat inspect MEDIA``: show exactly what the model would see of a video or image."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from videochat.errors import VideoChatError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("media", help="video or image file")
    parser.add_argument("--num-frames", type=int, default=8, help="frames to sample (default 8)")
    parser.add_argument(
        "--sampling",
        default="demo",
        help="demo | middle | rand | fps:X (default demo, the original demo's rule)",
    )
    parser.add_argument("--start", type=float, default=None, help="window start, seconds")
    parser.add_argument("--end", type=float, default=None, help="window end, seconds")
    parser.add_argument(
        "--model", default=None, help="model whose input size to show (default: embedded model)"
    )
    parser.add_argument(
        "--size", type=int, default=None, help="model input side (default: the model's)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--save-frames", metavar="DIR", type=Path, help="write the sampled frames as PNGs"
    )


def run(args: argparse.Namespace) -> int:
    from videochat.media import load_media
    from videochat.model import read_config

    size = args.size or read_config(args.model).vision.image_size  # reads no weights
    clip = load_media(
        args.media,
        num_frames=args.num_frames,
        sampling=args.sampling,
        size=size,
        start=args.start,
        end=args.end,
    )
    report = describe(clip, args.sampling)
    if args.save_frames is not None:
        report["saved_frames"] = [str(p) for p in save_frames(clip, args.save_frames)]
    if args.json:
        print(json.dumps(report))
    else:
        print_report(report)
    return 0


def describe(clip, sampling: str) -> dict:
    """The facts of a VideoClip/ImageClip as one JSON-ready dict (same keys for both kinds)."""
    if clip.kind == "image":
        return {
            "kind": "image",
            "source": clip.source_name,
            "codec": clip.format.lower(),
            "format": clip.format,
            "width": clip.width,
            "height": clip.height,
            "fps": None,
            "duration": None,
            "num_frames_total": 1,
            "indices": [0],
            "timestamps": [],
            "message": "",
            "input_shape": list(clip.pixels.shape),
        }
    return {
        "kind": "video",
        "source": clip.source_name,
        "codec": clip.codec,
        "width": clip.width,
        "height": clip.height,
        "fps": round(clip.fps, 6),
        "duration": round(clip.duration, 6),
        "num_frames_total": clip.num_frames_total,
        "frame_count_source": clip.count_source,
        "sampling": sampling,
        "indices": clip.indices,
        "timestamps": [round(t, 6) for t in clip.timestamps],
        "message": clip.message,
        "input_shape": list(clip.pixels.shape),
    }


def print_report(report: dict) -> None:
    lines = [
        ("file", report["source"]),
        ("kind", report["kind"]),
        ("codec", report["codec"]),
        ("size", f"{report['width']}x{report['height']}"),
    ]
    if report["kind"] == "video":
        lines += [
            ("fps", f"{report['fps']:.3f}"),
            ("duration", f"{report['duration']:.2f} s"),
            ("frames", f"{report['num_frames_total']} ({report['frame_count_source']})"),
            ("sampling", f"{report['sampling']}, {len(report['indices'])} frames"),
            ("indices", ", ".join(map(str, report["indices"]))),
            ("timestamps", ", ".join(f"{t:.2f}" for t in report["timestamps"])),
            ("message", report["message"]),
        ]
    lines.append(("model input", "x".join(map(str, report["input_shape"]))))
    lines += [("saved", path) for path in report.get("saved_frames", [])]
    for key, value in lines:
        print(f"{key + ':':<12} {value}")
    sys.stdout.flush()


def save_frames(clip, folder: Path) -> list[Path]:
    """Write the un-normalised RGB views (after resize/crop) as PNGs, in sampling order."""
    from PIL import Image

    from videochat.media.transform import denormalize

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VideoChatError(f"{folder}: cannot create the frames folder ({exc.strerror})") from exc
    views = denormalize(clip.pixels).numpy()  # (T, H, W, 3) uint8
    indices = clip.indices if clip.kind == "video" else [0]
    paths = []
    for k, (index, view) in enumerate(zip(indices, views, strict=True)):
        path = folder / f"frame_{k:03d}_index_{index:06d}.png"
        try:
            Image.fromarray(view).save(path)
        except OSError as exc:
            raise VideoChatError(f"{path}: cannot write the frame ({exc.strerror})") from exc
        paths.append(path)
    return paths
