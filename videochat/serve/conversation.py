"""OpenAI messages -> a conversation to replay into a fresh ChatSession, and generation settings.

Pure functions (no I/O, no torch): system messages become the system prompt, user content parts
become media items (in order) and a question, assistant messages close a turn with its answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from videochat.serve.errors import APIError
from videochat.serve.schemas import (
    ChatCompletionRequest,
    FilePart,
    ImagePart,
    Message,
    TextPart,
    VideoPart,
)
from videochat.serve.settings import ServeSettings

MediaKind = Literal["video", "image", "auto"]


@dataclass
class MediaRef:
    kind: MediaKind
    reference: str  # data: URL, file id, path or URL; resolved later
    param: str  # where in the request it came from, for error messages
    resolved: Any = None  # ResolvedMedia once fetched/decoded (media_source.MediaResolver)


@dataclass
class Turn:
    media: list[MediaRef] = field(default_factory=list)
    question: str = ""
    answer: str | None = None  # None for the turn to generate


@dataclass
class Conversation:
    system: str
    turns: list[Turn]

    @property
    def media(self) -> list[MediaRef]:
        return [item for turn in self.turns for item in turn.media]


def _text_of(message: Message, param: str, *, text_only: bool) -> tuple[str, list[MediaRef]]:
    if message.content is None:
        return "", []
    if isinstance(message.content, str):
        return message.content, []
    texts: list[str] = []
    media: list[MediaRef] = []
    for j, part in enumerate(message.content):
        where = f"{param}.content.{j}"
        if isinstance(part, TextPart):
            texts.append(part.text)
        elif text_only:
            raise APIError(400, f"{message.role} messages may only hold text", param=where)
        elif isinstance(part, VideoPart):
            media.append(MediaRef("video", part.video_url.url, where))
        elif isinstance(part, ImagePart):
            media.append(MediaRef("image", part.image_url.url, where))
        elif isinstance(part, FilePart):
            media.append(MediaRef("auto", part.file.file_id, where))
    return "\n".join(t for t in texts if t), media


def build_conversation(messages: list[Message], settings: ServeSettings) -> Conversation:
    """Validate the message order and split it into turns (see module docstring)."""
    system: list[str] = []
    turns: list[Turn] = []
    current: Turn | None = None
    for i, message in enumerate(messages):
        param = f"messages.{i}"
        text, media = _text_of(message, param, text_only=message.role != "user")
        if message.role in ("system", "developer"):
            if turns or current is not None:
                raise APIError(
                    400, "system messages must come before the conversation", param=param
                )
            system.append(text)
        elif message.role == "user":
            current = current or Turn()
            current.media.extend(media)
            current.question = "\n".join(t for t in (current.question, text) if t)
        else:  # assistant
            if current is None:
                raise APIError(400, "an assistant message must follow a user message", param=param)
            if not current.question.strip():
                raise APIError(
                    400, "a user message answered by the assistant needs text", param=param
                )
            current.answer = text
            turns.append(current)
            current = None
    if current is None:
        raise APIError(400, "the last message must come from the user", param="messages")
    if not current.question.strip():
        raise APIError(400, "the last user message has no text to answer", param="messages")
    turns.append(current)
    conversation = Conversation("\n".join(system), turns)
    if len(conversation.media) > settings.max_media_items:
        msg = f"at most {settings.max_media_items} media items per request"
        raise APIError(400, msg, code="too_many_media", param="messages")
    return conversation


def generation_kwargs(request: ChatCompletionRequest, settings: ServeSettings) -> dict[str, Any]:
    """ChatSession.ask keyword arguments for an OpenAI request (temperature 0 = greedy)."""
    max_new = request.max_completion_tokens or request.max_tokens
    max_new = max_new or settings.default_max_new_tokens
    if max_new > settings.max_new_tokens:
        msg = f"max_tokens must be at most {settings.max_new_tokens}"
        raise APIError(400, msg, code="max_tokens_too_large", param="max_tokens")
    kwargs: dict[str, Any] = {"max_new_tokens": max_new}
    if request.temperature is not None:
        kwargs["do_sample"] = request.temperature > 0
        if request.temperature > 0:
            kwargs["temperature"] = request.temperature
    optional = {
        "top_p": request.top_p,
        "seed": request.seed,
        "num_beams": request.num_beams,
        "top_k": request.top_k,
        "repetition_penalty": request.repetition_penalty,
    }
    kwargs.update({k: v for k, v in optional.items() if v is not None})
    if request.stop:
        kwargs["stop"] = request.stop_list()
    return kwargs


def num_frames_for(request: ChatCompletionRequest, settings: ServeSettings) -> int:
    """Frames per video: the request's, else the server default, never above the server cap."""
    n = request.num_frames or settings.default_num_frames
    if n > settings.max_num_frames:
        msg = f"num_frames must be at most {settings.max_num_frames}"
        raise APIError(400, msg, code="too_many_frames", param="num_frames")
    return n
