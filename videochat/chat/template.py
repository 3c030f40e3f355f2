"""Conversation formats: messages → prompt text → text segments split at the media placeholders.

The "videochat" format is the original's exactly (DESIGN.md §1.6): system "" + "###", each message
``Role: text###``, the turn to answer ends with ``Assistant:``. Other LLM families use their
tokenizer's own chat template behind the same interface, so the session code never branches on it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol

from videochat.errors import ChatError

VIDEO_PLACEHOLDER = "<VideoHere>"
IMAGE_PLACEHOLDER = "<ImageHere>"
PLACEHOLDERS = (VIDEO_PLACEHOLDER, IMAGE_PLACEHOLDER)
_SPLIT = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS))

USER = "user"
ASSISTANT = "assistant"

Message = tuple[str, str]  # (role, content); role is the template's own role name


def video_message(message: str) -> str:
    """The user message the original adds when a video is uploaded."""
    return f"<Video>{VIDEO_PLACEHOLDER}</Video> {message}\n"


def image_message() -> str:
    """The user message the original adds when an image is uploaded."""
    return f"<Image>{IMAGE_PLACEHOLDER}</Image>\n"


def question_message(text: str) -> str:
    """A question as the original stores it (text + newline); rejects empty or marker-laden text."""
    if not text or not text.strip():
        raise ChatError("the question is empty: type a question about the media")
    for marker in PLACEHOLDERS:
        if marker in text:
            raise ChatError(f"the question contains the reserved marker {marker}; remove it")
    return f"{text}\n"


class ChatTemplate(Protocol):
    """Renders a conversation into the prompt text the LLM continues."""

    roles: tuple[str, str]  # (user role, assistant role) as stored in the history
    add_bos: bool  # whether the first segment gets the tokenizer's BOS id
    skip_special_tokens: bool  # when decoding answers
    stop_strings: tuple[str, ...]  # generation stops at any of these

    def render(self, messages: Sequence[Message], answer_prefix: str = "") -> str: ...

    def clean(self, text: str) -> str: ...


class VideoChatTemplate:
    """The original `###`-separated Human/Assistant format (SeparatorStyle.SINGLE)."""

    add_bos = True
    skip_special_tokens = False  # the original decodes with special tokens kept

    def __init__(self, system: str = "", sep: str = "###") -> None:
        self.system = system
        self.sep = sep
        self.roles = ("Human", "Assistant")
        self.stop_strings = (sep,)

    def render(self, messages: Sequence[Message], answer_prefix: str = "") -> str:
        parts = [self.system, self.sep]
        parts += [f"{role}: {content}{self.sep}" for role, content in messages]
        parts.append(f"{self.roles[1]}:" + (f" {answer_prefix}" if answer_prefix else ""))
        return "".join(parts)

    def clean(self, text: str) -> str:
        """The original's answer post-processing: cut at the separator, after the last role tag."""
        text = text.split(self.sep)[0]
        return text.split(f"{self.roles[1]}:")[-1].strip()


class HFChatTemplate:
    """Any tokenizer that ships a chat template (Llama-2/3, Vicuna v1.5, Qwen, ...)."""

    add_bos = False  # the template text carries its own BOS marker if the family uses one
    skip_special_tokens = True
    stop_strings: tuple[str, ...] = ()

    def __init__(self, tokenizer: Any, system: str = "") -> None:
        if not getattr(tokenizer, "chat_template", None):
            raise ChatError(
                "the model's config asks for the tokenizer's chat template but its tokenizer has "
                "none; set llm.chat_template to 'videochat' in the model's config.json"
            )
        self.tokenizer = tokenizer
        self.system = system
        self.roles = (USER, ASSISTANT)

    def render(self, messages: Sequence[Message], answer_prefix: str = "") -> str:
        turns: list[dict[str, str]] = [{"role": "system", "content": self.system}]
        turns = turns if self.system else []
        for role, content in messages:  # merge consecutive user messages (media + question)
            if turns and turns[-1]["role"] == role:
                turns[-1]["content"] += content
            else:
                turns.append({"role": role, "content": content})
        text = self.tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
        return text + answer_prefix

    def clean(self, text: str) -> str:
        return text.strip()


def make_template(chat_template: str, tokenizer: Any, system: str = "") -> ChatTemplate:
    """Pick the format named by the model config's ``llm.chat_template``."""
    if chat_template == "videochat":
        return VideoChatTemplate(system=system)
    return HFChatTemplate(tokenizer, system=system)


def split_prompt(prompt: str) -> tuple[list[str], list[str]]:
    """Split at every media placeholder: (text segments, placeholder kinds in order).

    With one video this is the original's ``prompt.split('<VideoHere>')``; several videos and images
    each get their own slot, in order.
    """
    return _SPLIT.split(prompt), _SPLIT.findall(prompt)


def encode_segments(tokenizer: Any, segments: Sequence[str], add_bos: bool) -> list[list[int]]:
    """Token ids of each segment, no special tokens except BOS on the first (original behaviour)."""
    ids = [list(tokenizer(seg, add_special_tokens=False).input_ids) for seg in segments]
    if add_bos and tokenizer.bos_token_id is not None:
        ids[0] = [tokenizer.bos_token_id, *ids[0]]
    return ids
