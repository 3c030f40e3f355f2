"""The model's one worker thread and its bounded queue.

Requests never touch the model directly: each becomes a Job, queued (429 when the queue is full),
and run by a single worker thread on a fresh ChatSession that replays the conversation. Events
(ready, text pieces, done, error) go back to the request's event loop thread-safely; the request
sets `cancelled` when its client goes away and the worker stops generating at the next piece.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from videochat.errors import VideoChatError
from videochat.serve.conversation import Conversation
from videochat.serve.errors import APIError, to_api_error

log = logging.getLogger("videochat.serve")


class Backend(Protocol):
    """What the engine needs from a loaded model (the real one wraps ChatSession)."""

    model_id: str

    def new_session(self, system: str) -> Any: ...

    def add_media(self, session: Any, item: Any, num_frames: int) -> None: ...

    def add_turn(self, session: Any, question: str, answer: str) -> None: ...

    def ask(self, session: Any, question: str, generation: dict[str, Any]) -> Iterator[str]: ...

    def usage(self, session: Any, answer: str) -> tuple[int, int]:
        """(prompt tokens, completion tokens) of the last answer."""
        ...


@dataclass
class Job:
    """One chat request on its way through the worker."""

    conversation: Conversation
    generation: dict[str, Any]
    num_frames: int
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue = field(default_factory=asyncio.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)

    def emit(self, kind: str, value: Any = None) -> None:
        """Hand an event to the request's loop; a closed loop means the client is gone."""
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, (kind, value))
        except RuntimeError:
            self.cancelled.set()


@dataclass
class EngineStats:
    completed: int = 0
    cancelled: int = 0  # jobs whose client left (skipped in the queue or stopped mid-answer)
    interrupted: int = 0  # of which generation was stopped before the model finished
    failed: int = 0
    rejected: int = 0


class Engine:
    """Loads the backend in the background, then serves jobs one at a time."""

    def __init__(
        self,
        load: Callable[[], Backend],
        max_queue: int = 8,
        on_load_failed: Callable[[str], None] | None = None,
    ) -> None:
        self._load = load
        self._on_load_failed = on_load_failed
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=max(1, max_queue))
        self.backend: Backend | None = None
        self.state = "loading"  # loading | ready | failed
        self.load_error: str | None = None
        self.stats = EngineStats()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="videochat-engine", daemon=True)
        self._thread.start()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the model is loaded (or failed); True when ready."""
        self._ready.wait(timeout)
        return self.state == "ready"

    def check_ready(self) -> None:
        """Raise 503 unless the model is loaded."""
        if self.state != "ready":
            msg = "the model is still loading" if self.state == "loading" else "the model failed"
            raise APIError(503, msg + "; retry later", code="model_not_ready")

    def submit(self, job: Job) -> None:
        """Queue a job, or refuse it with 503 (not ready) / 429 (queue full)."""
        self.check_ready()
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self.stats.rejected += 1
            raise APIError(429, "the server is busy; retry shortly", code="queue_full") from None

    def close(self, timeout: float = 10.0) -> None:
        """Stop the worker after the current job."""
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)

    def _main(self) -> None:
        try:
            self.backend = self._load()
            self.state = "ready"
        except Exception as exc:  # reported by /health (503) and to on_load_failed
            if isinstance(exc, VideoChatError):  # a user error: its message says it all
                log.error("model failed to load: %s", exc)
            else:
                log.error("model failed to load", exc_info=exc)
            self.state, self.load_error = "failed", str(exc)
        self._ready.set()
        if self.state == "failed" and self._on_load_failed is not None:
            self._on_load_failed(self.load_error or "unknown error")
        if self.state != "ready":
            return
        while (job := self._queue.get()) is not None:
            if job.cancelled.is_set():
                self.stats.cancelled += 1
                continue
            self._run(job)

    def _run(self, job: Job) -> None:
        backend = self.backend
        assert backend is not None
        try:
            session = backend.new_session(job.conversation.system)
            *history, last = job.conversation.turns
            for turn in history:
                for item in turn.media:
                    _add_media(backend, session, item, job.num_frames)
                backend.add_turn(session, turn.question, turn.answer or "")
            for item in last.media:
                _add_media(backend, session, item, job.num_frames)
            job.emit("ready")
            text = self._generate(job, backend, session, last.question)
            prompt_tokens, completion_tokens = backend.usage(session, text)
        except Exception as exc:
            self.stats.failed += 1
            job.emit("error", to_api_error(exc))
            return
        if job.cancelled.is_set():
            self.stats.cancelled += 1
            return
        self.stats.completed += 1
        job.emit(
            "done",
            {"text": text, "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
        )

    def _generate(self, job: Job, backend: Backend, session: Any, question: str) -> str:
        pieces = backend.ask(session, question, job.generation)
        text: list[str] = []
        try:
            for piece in pieces:
                if job.cancelled.is_set():
                    self.stats.interrupted += 1
                    break
                if piece:
                    text.append(piece)
                    job.emit("piece", piece)
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()
        return "".join(text)


def _add_media(backend: Any, session: Any, item: Any, num_frames: int) -> None:
    """Decode one media part; its error names the part (`param`) a client must fix."""
    try:
        backend.add_media(session, item, num_frames)
    except VideoChatError as exc:
        raise to_api_error(exc, param=item.param) from None
