"""The engine's view of a loaded VideoChat model: fresh ChatSessions over one shared visual cache.

Sessions load media under the server's caps (one decode per item), and media errors name the item
as the client sent it, never a server path.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from videochat.serve.conversation import MediaRef
from videochat.serve.settings import ServeSettings


class ChatBackend:
    """Implements serve.engine.Backend with videochat.chat.ChatSession (one per request)."""

    def __init__(self, model: Any, settings: ServeSettings, cache: Any = None) -> None:
        from videochat.chat import VisualCache

        self.model = model
        self.model_id = settings.model_id
        self.limits = settings.media_limits()
        self.cache = cache if cache is not None else VisualCache()

    def new_session(self, system: str) -> Any:
        from videochat.chat import ChatSession

        return ChatSession(self.model, system=system, cache=self.cache, limits=self.limits)

    def add_media(self, session: Any, item: MediaRef, num_frames: int) -> None:
        from videochat.media import MediaError

        source = item.resolved.source
        try:
            if item.kind == "video":
                session.add_video(source, num_frames=num_frames)
            elif item.kind == "image":
                session.add_image(source)
            else:
                session.add_media(source, num_frames=num_frames)
        except MediaError as exc:  # re-named: the client's name for it, not a server path
            raise type(exc)(item.resolved.name, exc.reason) from None

    def add_turn(self, session: Any, question: str, answer: str) -> None:
        session.add_turn(question, answer)

    def ask(self, session: Any, question: str, generation: dict[str, Any]) -> Iterator[str]:
        return session.ask(question, stream=True, **generation)

    def usage(self, session: Any, answer: str) -> tuple[int, int]:
        """Prompt positions (text + visual) and generated tokens, from the session's turn stats."""
        stats = session.last_stats
        return int(stats.prompt_tokens), int(stats.new_tokens)


def load_backend(model: str | None, settings: ServeSettings) -> ChatBackend:
    """Load a model (None: the embedded one) and wrap it; runs in the engine's thread."""
    from videochat.model.load import load_model

    return ChatBackend(load_model(model), settings)
