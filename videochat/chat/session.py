"""ChatSession: one conversation about videos and images with a loaded VideoChat model.

Beyond the original `Chat` class it keeps two caches: visual embeddings (shared across sessions,
see cache.py) and the LLM's KV cache of the conversation so far, so turn N only runs its new
tokens. The KV cache is reused only for the longest prefix whose positions are identical to the
new prompt, so greedy answers are the same with and without reuse.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from videochat.chat.cache import VisualCache, default_cache
from videochat.chat.generate import (
    GenerationConfig,
    GenerationRequest,
    GenerationResult,
    decode_answer,
    run_generate,
    stream_generate,
)
from videochat.chat.prompt import MediaSlot, PromptPlan, common_prefix, plan_prompt
from videochat.chat.template import (
    IMAGE_PLACEHOLDER,
    VIDEO_PLACEHOLDER,
    Message,
    image_message,
    make_template,
    question_message,
    video_message,
)
from videochat.errors import ChatError

_uids = itertools.count(1)


@dataclass
class _Media:
    clip: Any
    embeds: torch.Tensor  # (1, Q, D)
    slot: MediaSlot


@dataclass
class _KVState:
    cache: Any = None  # transformers Cache with the KV of `keys`
    keys: list = field(default_factory=list)


def _truncate_cache(cache: Any, keep: int) -> None:
    """Keep the first `keep` positions (a negative crop works in transformers 4.4x and 5.x)."""
    extra = cache.get_seq_length() - keep
    if extra > 0:
        cache.crop(-extra)


class ChatSession:
    """History, media and caches of one conversation; `ask` answers the next question."""

    def __init__(
        self,
        model: Any,
        system: str = "",
        cache: VisualCache | None = None,
        reuse_kv: bool = True,
    ) -> None:
        self.model = model
        self.template = make_template(model.config.llm.chat_template, model.tokenizer, system)
        self.cache = cache if cache is not None else default_cache()
        self.reuse_kv = reuse_kv
        self._messages: list[Message] = []
        self._media: list[_Media] = []
        self._kv = _KVState()
        self._lock = threading.Lock()
        self.last_prompt_tokens = 0  # positions in the last prompt (for stats and benchmarks)
        self.last_reused_tokens = 0  # of which came from the KV cache
        self._stops: tuple[str, ...] = ()

    # ----- state -------------------------------------------------------------------------
    @property
    def history(self) -> list[Message]:
        return list(self._messages)

    @property
    def media(self) -> list[Any]:
        return [item.clip for item in self._media]

    def reset(self) -> None:
        """Forget history, media and the KV cache (visual embeddings stay in the shared cache)."""
        with self._busy():
            self._messages.clear()
            self._media.clear()
            self._kv = _KVState()

    # ----- media -------------------------------------------------------------------------
    def add_video(
        self,
        source: Any,
        num_frames: int = 8,
        sampling: str = "demo",
        start: float | None = None,
        end: float | None = None,
    ) -> Any:
        """Decode, sample and encode a video (or take it from the cache) and add it to the chat."""
        from videochat.media import load_video

        size = self.model.config.vision.image_size
        params = ("video", num_frames, sampling, start, end, size)

        def load() -> Any:
            return load_video(
                source, num_frames=num_frames, sampling=sampling, start=start, end=end, size=size
            )

        clip, embeds = self._encode(source, params, load)
        self._append_media(clip, embeds, VIDEO_PLACEHOLDER, video_message(clip.message))
        return clip

    def add_image(self, source: Any) -> Any:
        """Add a still image (resized to the model's input size, as the original does)."""
        from videochat.media import load_image

        size = self.model.config.vision.image_size
        clip, embeds = self._encode(source, ("image", size), lambda: load_image(source, size=size))
        self._append_media(clip, embeds, IMAGE_PLACEHOLDER, image_message())
        return clip

    def add_media(self, source: Any, num_frames: int = 8, sampling: str = "demo") -> Any:
        """Add a video or an image, whichever the file is."""
        from videochat.media import ImageClip, load_media

        size = self.model.config.vision.image_size
        params = ("media", num_frames, sampling, size)

        def load() -> Any:
            return load_media(source, num_frames=num_frames, sampling=sampling, size=size)

        clip, embeds = self._encode(source, params, load)
        if isinstance(clip, ImageClip):
            self._append_media(clip, embeds, IMAGE_PLACEHOLDER, image_message())
        else:
            self._append_media(clip, embeds, VIDEO_PLACEHOLDER, video_message(clip.message))
        return clip

    def _encode(self, source: Any, params: tuple, load: Any) -> tuple[Any, torch.Tensor]:
        random_sampling = "rand" in params  # a fresh draw each time, as in training
        key = None if random_sampling else self.cache.make_key(source, self.model, params)
        entry = self.cache.get(key)
        if entry is not None:
            return entry.clip, entry.embeds
        clip = load()  # a MediaError propagates here, before any state changes
        pixels = clip.pixels.unsqueeze(0)  # (1, T, 3, S, S)
        with torch.inference_mode():
            embeds = self.model.encode_video(pixels)  # (1, Q, D)
        self.cache.put(key, clip, embeds)
        return clip, embeds

    def _append_media(self, clip: Any, embeds: torch.Tensor, kind: str, message: str) -> None:
        with self._busy():
            slot = MediaSlot(uid=next(_uids), kind=kind, num_tokens=embeds.shape[1])
            self._media.append(_Media(clip, embeds, slot))
            self._messages.append((self.template.roles[0], message))

    def add_turn(self, question: str, answer: str) -> None:
        """Replay a past exchange without generating (e.g. a conversation sent to the API)."""
        with self._busy():
            self._messages.append((self.template.roles[0], question_message(question)))
            self._messages.append((self.template.roles[1], answer.strip()))

    # ----- asking ------------------------------------------------------------------------
    def ask(
        self, text: str, stream: bool = False, *, answer_prefix: str = "", **generation: Any
    ) -> str | Iterator[str]:
        """Answer `text` given the media and history; a text iterator when `stream` is true.

        Generation keywords are `GenerationConfig` fields. `answer_prefix` is put after the
        assistant tag before generating; it is kept in the history but not in the returned answer.
        """
        config = GenerationConfig.from_kwargs(**generation)
        question = question_message(text)
        self._plan(question, answer_prefix, config)  # fail now (empty, too long), not on next()
        if stream:
            return self._stream(question, answer_prefix, config)
        with self._busy():
            plan = self._plan(question, answer_prefix, config)
            request = self._request(plan, config)
            result = run_generate(request)
            return self._finish(plan, question, answer_prefix, result, result.token_ids)

    def _stream(self, question: str, answer_prefix: str, config: GenerationConfig) -> Iterator[str]:
        with self._busy():
            plan = self._plan(question, answer_prefix, config)
            request = self._request(plan, config)

            def done(result: GenerationResult | None, seen: list[int]) -> None:
                if result is None:  # generation failed: the KV cache may be half-updated
                    self._kv = _KVState()
                else:
                    self._finish(plan, question, answer_prefix, result, result.token_ids)

            def decode(ids: list[int], final: bool) -> str:
                ids = [i for i in ids if i != tokenizer.eos_token_id]
                return decode_answer(tokenizer, self.template, ids, stops, final)

            tokenizer = self.model.tokenizer
            stops = request.stop_strings
            yield from stream_generate(request, decode, done)

    def _plan(self, question: str, answer_prefix: str, config: GenerationConfig) -> PromptPlan:
        llm_config = self.model.llm.config
        return plan_prompt(
            self.template,
            self.model.tokenizer,
            [*self._messages, (self.template.roles[0], question)],
            [item.slot for item in self._media],
            answer_prefix,
            config.max_new_tokens,
            getattr(llm_config, "max_position_embeddings", None),
        )

    def _request(self, plan: PromptPlan, config: GenerationConfig) -> GenerationRequest:
        visual = [item.embeds for item in self._media]  # (1, Q, D) each
        segments = [torch.tensor(ids, dtype=torch.long) for ids in plan.segment_ids]
        with torch.inference_mode():
            embeds = self.model.embed_segments(segments, visual)  # (1, L, D)
        config = GenerationConfig.from_kwargs(config, max_new_tokens=plan.max_new_tokens)
        cache = None
        reused = 0
        if self.reuse_kv and config.num_beams == 1 and self._kv.cache is not None:
            reused = min(common_prefix(self._kv.keys, plan.keys), len(plan.keys) - 1)
            if reused > 0:
                _truncate_cache(self._kv.cache, reused)
                cache = self._kv.cache
        self._kv = _KVState()  # consumed; rebuilt by _finish
        self.last_prompt_tokens, self.last_reused_tokens = len(plan.keys), reused if cache else 0
        self._stops = tuple(dict.fromkeys([*self.template.stop_strings, *config.stop]))
        return GenerationRequest(
            self.model.llm, self.model.tokenizer, embeds, config, self._stops, cache=cache
        )

    def _finish(
        self,
        plan: PromptPlan,
        question: str,
        answer_prefix: str,
        result: GenerationResult,
        ids: list[int],
    ) -> str:
        tokenizer, stops = self.model.tokenizer, self._stops
        answer = decode_answer(tokenizer, self.template, ids, stops, final=True)
        self._messages = plan.messages + [(self.template.roles[1], answer_prefix + answer)]
        if self.reuse_kv and result.cache is not None:
            cached = result.cache.get_seq_length()
            self._kv = _KVState(result.cache, (plan.keys + ids)[:cached])
        return answer

    @contextmanager
    def _busy(self) -> Iterator[None]:
        if not self._lock.acquire(blocking=False):
            raise ChatError("this chat session is busy answering a question; wait for the answer")
        try:
            yield
        finally:
            self._lock.release()
