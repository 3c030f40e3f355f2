"""`videochat web`: the Gradio web demo."""

from __future__ import annotations

import argparse

from videochat.errors import VideoChatError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", default=None, help="model directory or config (default: embedded)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=7860, help="TCP port (default 7860)")
    parser.add_argument(
        "--max-upload-mb", type=float, default=200.0, help="upload size cap, MB (default 200)"
    )
    parser.add_argument(
        "--max-frames", type=int, default=64, help="upper end of the frame slider (8-64)"
    )
    parser.add_argument(
        "--max-new-tokens", type=int, default=1000, help="answer length cap (demo default 1000)"
    )


def run(args: argparse.Namespace) -> int:
    from videochat.model.load import load_model
    from videochat.serve.web import WebSettings, build_demo, launch

    if args.max_upload_mb <= 0:
        raise VideoChatError("--max-upload-mb must be positive")
    if not 8 <= args.max_frames <= 64:
        raise VideoChatError("--max-frames must be between 8 and 64")
    if args.max_new_tokens < 1:
        raise VideoChatError("--max-new-tokens must be at least 1")
    from videochat.serve.runner import check_can_listen

    check_can_listen(args.host, args.port)
    settings = WebSettings(
        max_upload_mb=args.max_upload_mb,
        max_frames=args.max_frames,
        max_new_tokens=args.max_new_tokens,
    )
    model = load_model(args.model)
    launch(build_demo(model, settings), args.host, args.port, settings)
    return 0
