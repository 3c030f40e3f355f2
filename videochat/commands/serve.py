"""`videochat serve`: the OpenAI-compatible HTTP API (FastAPI + uvicorn)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from videochat.errors import VideoChatError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", default=None, help="model directory or config (default: embedded)"
    )
    parser.add_argument("--model-id", default="videochat", help="name clients pass as `model`")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("VIDEOCHAT_API_KEY"),
        help="require `Authorization: Bearer KEY` (default: $VIDEOCHAT_API_KEY, else no key)",
    )
    parser.add_argument(
        "--allowed-local-media-path",
        type=Path,
        default=None,
        help="directory whose files requests may name as local paths (default: none)",
    )
    parser.add_argument(
        "--allowed-media-domains",
        default=None,
        help="comma-separated https domains media may be fetched from; '*.a.com' = subdomains "
        "(default: no remote fetching)",
    )
    parser.add_argument(
        "--max-queue", type=int, default=8, help="waiting requests before 429 (default 8)"
    )
    parser.add_argument(
        "--max-media-mb", type=float, default=64, help="cap per media item, MiB (default 64)"
    )


def settings_from_args(args: argparse.Namespace):
    """ServeSettings from the parsed flags (validated: bad flags are one clear error line)."""
    from videochat.serve.settings import MIB, ServeSettings, parse_domains

    root = args.allowed_local_media_path
    if root is not None and not root.is_dir():
        raise VideoChatError(f"--allowed-local-media-path {root}: not a directory")
    if args.max_queue < 1:
        raise VideoChatError("--max-queue must be at least 1")
    if not args.max_media_mb > 0:
        raise VideoChatError("--max-media-mb must be positive")
    media_bytes = int(args.max_media_mb * MIB)
    return ServeSettings(
        model_id=args.model_id,
        api_key=args.api_key or None,
        allowed_local_media_path=root.resolve() if root is not None else None,
        allowed_media_domains=parse_domains(args.allowed_media_domains),
        max_queue=args.max_queue,
        max_media_bytes=media_bytes,
        max_body_bytes=max(media_bytes * 2, 16 * MIB),
    )


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from videochat.errors import ModelLoadError
    from videochat.serve.api import create_app
    from videochat.serve.backend import load_backend
    from videochat.serve.runner import check_can_listen

    settings = settings_from_args(args)
    check_can_listen(args.host, args.port)
    if args.model is not None and not Path(args.model).exists():
        raise ModelLoadError(f"--model {args.model}: no such model directory or config file")
    failure: list[str] = []

    def stop(message: str) -> None:  # the model cannot load: stop serving 503s forever
        failure.append(message)
        server.should_exit = True

    app = create_app(settings, lambda: load_backend(args.model, settings), on_load_failed=stop)
    server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="info"))
    if args.host not in ("127.0.0.1", "localhost", "::1") and settings.api_key is None:
        print("warning: listening beyond this machine without --api-key", file=sys.stderr)
    server.run()
    if failure:
        raise ModelLoadError(f"the model failed to load: {failure[0]}")
    return 0
