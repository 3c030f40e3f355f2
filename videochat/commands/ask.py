"""`videochat ask MEDIA "question"`: one answer about a video or image.

Streams the answer when stdout is a terminal; `--json` prints {"answer", "media", "kind",
"timestamps"} for scripts. The CLI defaults follow the original demo (sampling, top-p 0.9).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

SAMPLING_HELP = "frame sampling: demo (default, as the original demo), middle, rand or fps:X"


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Model, frames and decoding options shared by `ask` and `chat`."""
    parser.add_argument("--model", default=None, help="model directory (default: embedded model)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: auto)")
    parser.add_argument("--dtype", default=None, help="bf16, fp16, fp32 (default: auto)")
    parser.add_argument(
        "--num-frames", type=int, default=None, help="frames per video (default: the model's)"
    )
    parser.add_argument("--sampling", default="demo", help=SAMPLING_HELP)
    parser.add_argument(
        "--temperature", type=float, default=1.0, help="default 1.0; 0 = greedy, as --greedy"
    )
    parser.add_argument("--top-p", type=float, default=0.9, help="default 0.9")
    parser.add_argument("--num-beams", type=int, default=1, help="beam search width (default 1)")
    parser.add_argument("--max-new-tokens", type=int, default=1000, help="default 1000")
    parser.add_argument("--greedy", action="store_true", help="greedy decoding (deterministic)")
    parser.add_argument("--seed", type=int, default=None, help="random seed for sampling")
    parser.add_argument("--system", default="", help="system message (default: none, as original)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("media", help="video or image file")
    parser.add_argument("question", help="what to ask about it")
    add_model_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print a JSON object, not plain text")


def generation_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """ChatSession.ask keywords from the command-line options."""
    greedy = args.greedy or args.temperature == 0  # temperature 0 = greedy, as in the API
    return {
        "do_sample": not greedy,
        "temperature": args.temperature if args.temperature != 0 else 1.0,
        "top_p": args.top_p,
        "num_beams": args.num_beams,
        "max_new_tokens": args.max_new_tokens,
        "seed": args.seed,
    }


def open_session(args: argparse.Namespace):
    """Load the model named on the command line and start a session on it."""
    from videochat.chat import ChatSession
    from videochat.model.load import load_model

    model = load_model(args.model, device=args.device, dtype=args.dtype)
    return ChatSession(model, system=args.system)


def add_media(session, path: str, args: argparse.Namespace):
    """Add a video or image with the command-line frame options."""
    num_frames = session.model.config.num_frames if args.num_frames is None else args.num_frames
    return session.add_media(path, num_frames=num_frames, sampling=args.sampling)


def media_facts(path: str, clip) -> dict[str, Any]:
    """What `--json` reports about the media the answer is based on."""
    return {"media": path, "kind": clip.kind, "timestamps": getattr(clip, "timestamps", None)}


def print_stream(pieces) -> str:
    """Write streamed text as it comes; returns the whole answer."""
    parts = []
    for piece in pieces:
        parts.append(piece)
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return "".join(parts)


def run(args: argparse.Namespace) -> int:
    session = open_session(args)
    clip = add_media(session, args.media, args)
    generation = generation_kwargs(args)
    if args.json:
        answer = session.ask(args.question, **generation)
        print(json.dumps({"answer": answer, **media_facts(args.media, clip)}, ensure_ascii=False))
    elif sys.stdout.isatty():
        print_stream(session.ask(args.question, stream=True, **generation))
    else:
        print(session.ask(args.question, **generation))
    return 0
