"""Conversation → what the LLM reads: segment token ids, visual slots and per-position cache keys.

Also enforces the context window: when a conversation outgrows the LLM's context, the oldest
question/answer turns are dropped (media messages are kept); if the media and the new question
alone do not fit, a ChatError says so. Nothing here crashes on a long conversation.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from videochat.chat.template import (
    PLACEHOLDERS,
    ChatTemplate,
    Message,
    encode_segments,
    split_prompt,
)
from videochat.errors import ChatError


@dataclass
class MediaSlot:
    """One media item's visual embeddings and the key its positions carry in the KV cache."""

    uid: int
    kind: str  # placeholder text, e.g. "<VideoHere>"
    num_tokens: int


@dataclass
class PromptPlan:
    """Everything needed to embed and run one turn."""

    messages: list[Message]  # the history actually used (oldest turns possibly dropped)
    segment_ids: list[list[int]]  # len(slots) + 1 segments, BOS only on the first
    slots: list[MediaSlot]  # in placeholder order
    keys: list[Hashable]  # one key per input position: a token id or (media uid, index)
    max_new_tokens: int  # possibly clipped so prompt + answer fits the context
    dropped_messages: int


def is_media_message(content: str) -> bool:
    return any(marker in content for marker in PLACEHOLDERS)


def _position_keys(segment_ids: Sequence[list[int]], slots: Sequence[MediaSlot]) -> list[Hashable]:
    keys: list[Hashable] = list(segment_ids[0])
    for slot, ids in zip(slots, segment_ids[1:], strict=True):
        keys += [(slot.uid, j) for j in range(slot.num_tokens)]
        keys += ids
    return keys


def _encode(
    template: ChatTemplate,
    tokenizer: Any,
    messages: Sequence[Message],
    slots: Sequence[MediaSlot],
    answer_prefix: str,
) -> tuple[list[list[int]], list[Hashable]]:
    segments, kinds = split_prompt(template.render(messages, answer_prefix))
    if kinds != [slot.kind for slot in slots]:  # a bug if it happens: history and media disagree
        raise RuntimeError(f"prompt placeholders {kinds} do not match the session's media")
    segment_ids = encode_segments(tokenizer, segments, template.add_bos)
    return segment_ids, _position_keys(segment_ids, slots)


def _drop_oldest_turn(messages: list[Message], user_role: str) -> bool:
    """Remove the oldest question (and the answer after it); media messages stay."""
    for i, (role, content) in enumerate(messages[:-1]):  # the last message is the new question
        if role == user_role and not is_media_message(content):
            end = i + 2 if i + 1 < len(messages) - 1 and messages[i + 1][0] != user_role else i + 1
            del messages[i:end]
            return True
    return False


def plan_prompt(
    template: ChatTemplate,
    tokenizer: Any,
    messages: Sequence[Message],
    slots: Sequence[MediaSlot],
    answer_prefix: str,
    max_new_tokens: int,
    max_context: int | None,
) -> PromptPlan:
    """Tokenise the conversation (ending with the new question) and fit it into the context."""
    kept = list(messages)
    while True:
        segment_ids, keys = _encode(template, tokenizer, kept, slots, answer_prefix)
        if max_context is None:
            break
        wanted = min(max_new_tokens, max(1, max_context // 4))  # room kept for the answer
        if len(keys) + wanted <= max_context or not _drop_oldest_turn(kept, template.roles[0]):
            break
    if max_context is not None:
        if len(keys) >= max_context:
            raise ChatError(
                f"the media and question need {len(keys)} tokens but the model's context holds "
                f"{max_context}; use fewer frames or media items, or a shorter question"
            )
        max_new_tokens = min(max_new_tokens, max_context - len(keys))
    return PromptPlan(
        kept, segment_ids, list(slots), keys, max_new_tokens, len(messages) - len(kept)
    )


def common_prefix(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Length of the shared prefix of two key sequences (how much of a KV cache stays valid)."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
