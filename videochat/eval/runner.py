"""Running a protocol over benchmark items with a chat session: resumable, one bad item never aborts.

The session is anything with ``reset()``, ``add_video(source, num_frames=, sampling=, start=, end=)``
and ``ask(text, *, answer_prefix=, **generation) -> str`` (``videochat.chat.ChatSession``; a ranking
protocol calls ``score_replies(text, replies, answer_prefix=)`` instead). Each item gets a fresh
conversation (``reset``), its clip sampled with the ``middle`` rule (within [start, end] for bounded
tasks), one question, one greedy answer (or the likeliest of the protocol's replies).

Resume: records already in the predictions file are not asked again and count in the result as they
are (failed ones too, unless ``retry_failed``). A file written with another protocol or frame count is
refused, so numbers never mix.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from typing import Protocol as TypingProtocol

from tqdm import tqdm

from videochat.errors import VideoChatError
from videochat.eval.bench import BenchItem, BenchmarkError
from videochat.eval.frames import frame_folder_video
from videochat.eval.protocols import Protocol
from videochat.eval.results import Record, make_record, read_records, record_key, write_records

ABORT_AFTER = 5  # this many unexpected errors in a row, and nothing succeeded: a bug, not bad items


class Session(TypingProtocol):
    def reset(self) -> None: ...
    def add_video(
        self, source: Any, num_frames: int = 8, sampling: str = "demo", **kw: Any
    ) -> Any: ...
    def ask(self, text: str, stream: bool = False, **kw: Any) -> str: ...
    def score_replies(self, text: str, replies: Sequence[str], **kw: Any) -> list[Any]: ...


def open_session(model: Any, protocol: Protocol) -> Session:
    """A chat session over ``model`` with the protocol's system prompt."""
    from videochat.chat import ChatSession

    return ChatSession(model, system=protocol.system)


def add_clip(session: Session, item: BenchItem, num_frames: int) -> None:
    """Give the session this item's frames: files via the media pipeline, folders packed first."""
    if item.data_type == "frame":
        clip, count = frame_folder_video(
            item.media_path, num_frames, item.fps, item.start, item.end
        )
        session.add_video(io.BytesIO(clip), num_frames=count, sampling="middle")
        return
    session.add_video(
        str(item.media_path),
        num_frames=num_frames,
        sampling="middle",
        start=item.start,
        end=item.end,
    )


def evaluate_item(session: Session, item: BenchItem, protocol: Protocol, num_frames: int) -> Record:
    """Ask one item; any failure becomes a record with ``error`` set (counted wrong)."""
    common = {"protocol": protocol.name, "num_frames": num_frames}
    if item.problem:
        return make_record(item, error=f"bad item: {item.problem}", **common)
    try:
        session.reset()
        add_clip(session, item, num_frames)
        raw, scores = _answer(session, item, protocol)
    except VideoChatError as exc:
        return make_record(item, error=str(exc), **common)
    except Exception as exc:  # a generation failure must not end a long run
        return make_record(item, error=f"unexpected {type(exc).__name__}: {exc}", **common)
    text, letter = protocol.read_answer(raw, item.candidates)
    return make_record(
        item, prediction=raw, parsed_text=text, letter=letter, scores=scores, **common
    )


def _answer(session: Session, item: BenchItem, protocol: Protocol) -> tuple[str, list | None]:
    """The reply to the item's question: generated, or the likeliest of the protocol's replies
    (then with every reply's log-probability)."""
    question = protocol.question(item)
    if protocol.replies is None:
        return session.ask(
            question, answer_prefix=protocol.answer_prefix, **protocol.generation
        ), None
    replies = protocol.replies(item)
    scored = session.score_replies(question, replies, answer_prefix=protocol.answer_prefix)
    best = max(range(len(replies)), key=lambda i: scored[i].logprob)
    return replies[best], [round(score.logprob, 4) for score in scored]


def _check_compatible(records: list[Record], path: Path, protocol: str, num_frames: int) -> None:
    for record in records:
        if record.get("protocol") != protocol or record.get("num_frames") != num_frames:
            raise BenchmarkError(
                f"{path} holds predictions made with protocol {record.get('protocol')!r} and "
                f"{record.get('num_frames')} frames, not {protocol!r} and {num_frames}; "
                "pass a new --predictions file to start this run"
            )


def load_previous(
    path: Path | None, protocol: Protocol, num_frames: int, retry_failed: bool = False
) -> dict[tuple[str, int], Record]:
    """Records of an earlier run to reuse, by (task, index); rewrites the file if some are dropped."""
    if path is None:
        return {}
    records = read_records(path)
    _check_compatible(records, path, protocol.name, num_frames)
    kept = [r for r in records if not (retry_failed and r["error"] is not None)]
    if len(kept) != len(records) or (path.is_file() and not path.read_text().endswith("\n")):
        write_records(path, kept)  # drop retried failures and any torn last line
    return {record_key(r): r for r in kept}


@dataclass
class _AbortGuard:
    """Stop a run whose every item fails the same unexpected way (that is a bug, not bad data)."""

    streak: int = 0
    any_success: bool = False

    def update(self, record: Record) -> None:
        if record["error"] is None:
            self.any_success = True
        unexpected = (record["error"] or "").startswith("unexpected ")
        self.streak = self.streak + 1 if unexpected else 0
        if self.streak >= ABORT_AFTER and not self.any_success:
            raise VideoChatError(
                f"stopping: the first {self.streak} items all failed ({record['error']}); "
                "this looks like a problem with the model or setup, not with the items"
            )


def evaluate(
    session: Session,
    items: Sequence[BenchItem],
    protocol: Protocol,
    *,
    num_frames: int,
    predictions: Path | None = None,
    retry_failed: bool = False,
    progress: bool = True,
) -> list[Record]:
    """Records for all ``items`` in order, asking only those not already in ``predictions``."""
    previous = load_previous(predictions, protocol, num_frames, retry_failed)
    todo = [item for item in items if (item.task, item.index) not in previous]
    done = dict(previous)
    guard = _AbortGuard()
    handle = None
    if predictions is not None:
        predictions.parent.mkdir(parents=True, exist_ok=True)
        handle = predictions.open("a", encoding="utf-8")
    try:
        bar = tqdm(todo, desc=f"eval [{protocol.name}]", unit="item", disable=not progress)
        for item in bar:
            record = evaluate_item(session, item, protocol, num_frames)
            done[(item.task, item.index)] = record
            if handle is not None:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                handle.flush()
            guard.update(record)
    finally:
        if handle is not None:
            handle.close()
    return [done[(item.task, item.index)] for item in items]
