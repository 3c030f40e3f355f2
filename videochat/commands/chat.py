"""`videochat chat MEDIA [MEDIA ...]`: a multi-turn conversation in the terminal.

Commands: `/add FILE` adds a video or image, `/reset` starts over with the media given on the
command line, `/quit` (or end of input) leaves; Ctrl-C stops an answer being written. When stdin is not a terminal each line is a
question; the question is echoed as `> question` and the answer follows on its own line(s), so
the command can be scripted; it then exits 1 if any line failed.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from videochat.commands.ask import add_media, add_model_arguments, generation_kwargs, open_session
from videochat.errors import VideoChatError

HELP = "commands: /add FILE, /reset, /quit; anything else is a question"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("media", nargs="*", help="videos or images to start with")
    add_model_arguments(parser)


def _lines(interactive: bool):
    """Questions from the terminal (with a prompt) or from piped stdin (plain lines)."""
    while True:
        try:
            line = input("> ") if interactive else sys.stdin.readline()
        except EOFError:  # Ctrl-D: end the prompt's line so the shell prompt starts clean
            print()
            return
        if not interactive and not line:
            return
        yield line.strip()


def _add(session, path: str, args: argparse.Namespace) -> None:
    clip = add_media(session, path, args)
    detail = getattr(clip, "message", "an image")
    print(f"[added {path}: {detail}]", flush=True)


def _answer(session, question: str, args: argparse.Namespace, interactive: bool) -> None:
    generation = generation_kwargs(args)
    if interactive:
        for piece in session.ask(question, stream=True, **generation):
            print(piece, end="", flush=True)
        print()
    else:
        print(f"> {question}")
        print(session.ask(question, **generation), flush=True)


def _path_argument(text: str) -> str:
    """The FILE of `/add FILE`, also quoted or backslash-escaped as terminal drag-and-drop writes it
    (several unquoted words are one path with spaces)."""
    text = text.strip()
    if not text:
        raise VideoChatError("usage: /add FILE")
    try:
        words = shlex.split(text)
    except ValueError:  # an unmatched quote: take the text as typed
        return text
    return words[0] if len(words) == 1 else text


def _handle(session, line: str, args: argparse.Namespace, interactive: bool) -> bool:
    """Run one input line; False when the user wants to leave."""
    if line in ("/quit", "/exit"):
        return False
    if line == "/reset":
        session.reset()
        for path in args.media:
            _add(session, path, args)
        print("[conversation reset]", flush=True)
    elif line == "/add" or line.startswith("/add "):
        _add(session, _path_argument(line[len("/add") :]), args)
    elif line.startswith("/"):
        print(HELP)
    else:
        _answer(session, line, args, interactive)
    return True


def run(args: argparse.Namespace) -> int:
    session = open_session(args)
    for path in args.media:
        _add(session, path, args)
    interactive = sys.stdin.isatty()
    if interactive:
        print(HELP)
    failed = 0
    for line in _lines(interactive):
        if not line:
            continue
        try:
            if not _handle(session, line, args, interactive):
                break
        except VideoChatError as exc:  # a bad file or question: say so and keep the session
            print(f"error: {exc}", file=sys.stderr, flush=True)
            failed += 1
        except KeyboardInterrupt:  # Ctrl-C during an answer stops it; at the prompt it exits
            if not interactive:
                raise
            print("\n[stopped]", flush=True)
    return 1 if failed and not interactive else 0  # a script learns that some lines failed
