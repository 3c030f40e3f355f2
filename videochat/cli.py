"""`videochat` command line: one table of verbs, each implemented by a module under videochat.commands.

Each verb module defines ``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported
only when their verb runs, so ``videochat --help`` stays fast (no torch import).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from videochat.errors import VideoChatError

# verb -> (module implementing it, one-line help)
VERBS: dict[str, tuple[str, str]] = {
    "ask": ("videochat.commands.ask", "answer one question about a video or image"),
    "chat": ("videochat.commands.chat", "interactive multi-turn chat about videos and images"),
    "inspect": ("videochat.commands.inspect", "show what the model would see of a media file"),
    "convert": (
        "videochat.commands.convert",
        "convert the original checkpoints into a model directory",
    ),
    "train": ("videochat.commands.train", "train a model from a recipe (stage 1 / stage 2)"),
    "eval": ("videochat.commands.eval", "run an MVBench-format benchmark"),
    "synth": ("videochat.commands.synth", "generate procedural videos with ground truth"),
    "serve": ("videochat.commands.serve", "OpenAI-compatible HTTP API"),
    "web": ("videochat.commands.web", "Gradio web demo"),
}


def _verb_module(verb: str):
    module_name, _ = VERBS[verb]
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="videochat", description="Chat with videos and images.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for name, (_, help_text) in VERBS.items():
        verb_parser = sub.add_parser(name, help=help_text, description=help_text)
        # also accepted after the verb (`videochat ask ... --debug`); SUPPRESS keeps the top value
        verb_parser.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
        if name == verb:
            module = _verb_module(name)
            if module is not None:
                module.add_arguments(verb_parser)
            else:
                verb_parser.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verb = next((a for a in argv if not a.startswith("-")), None)
    verb = verb if verb in VERBS else None
    args = build_parser(verb).parse_args(argv)
    if args.verb is None:
        build_parser().print_help()
        return 2
    debug = args.debug or os.environ.get("VIDEOCHAT_DEBUG") == "1"
    module = _verb_module(args.verb)
    if module is None:
        print(f"error: 'videochat {args.verb}' is not built yet in this version", file=sys.stderr)
        return 2
    try:
        return int(module.run(args) or 0)
    except VideoChatError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line for the user, full trace with --debug
        if debug:
            raise
        if isinstance(exc, OSError) and exc.filename is not None:
            # a path that cannot be made or written (missing parent, permissions, disk full)
            print(f"error: {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        print(
            f"error: internal error ({type(exc).__name__}: {exc}); rerun with --debug for details",
            file=sys.stderr,
        )
        return 3


if __name__ == "__main__":
    sys.exit(main())
