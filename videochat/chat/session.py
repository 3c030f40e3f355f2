"""ChatSession: one conversation about videos and images with a loaded VideoChat model.

Beyond the original `Chat` class it keeps two caches: visual embeddings (shared across sessions,
see cache.py) and the LLM's KV cache of the conversation so far, so turn N only runs its new
tokens. The KV cache is reused only for the longest prefix whose positions are identical to the
new prompt, so greedy answers are the same with and without reuse.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from videochat.chat.cache import VisualCache, default_cache
from videochat.chat.generate import (
    FirstTokenClock,
    GenerationConfig,
    GenerationRequest,
    GenerationResult,
    TokenQueueStreamer,
    decode_answer,
    run_generate,
    stream_generate,
)
from videochat.chat.prompt import MediaSlot, PromptPlan, common_prefix, plan_prompt
from videochat.chat.scoring import ReplyScore, reply_scores
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
class TurnStats:
    """What the last answer cost: prompt positions, how many came from the KV cache, timings."""

    prompt_tokens: int = 0  # text tokens + visual embeddings in the prompt
    reused_tokens: int = 0  # of which the KV cache already held
    new_tokens: int = 0  # generated (EOS excluded)
    dropped_messages: int = 0  # old messages left out to fit the context
    ttft_s: float = 0.0  # from ask() to the first generated token
    total_s: float = 0.0


@dataclass
class _Turn:
    plan: PromptPlan
    request: GenerationRequest
    answer_prefix: str
    started: float
    reused: int


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
        limits: Any = None,
    ) -> None:
        if getattr(model, "tokenizer", None) is None:
            raise ChatError(
                "this model has no tokenizer; load it from a model directory that includes one"
            )
        self.model = model
        self.template = make_template(model.config.llm.chat_template, model.tokenizer, system)
        self.cache = cache if cache is not None else default_cache()
        self.reuse_kv = reuse_kv
        self.limits = (
            limits  # MediaLimits for every file this session loads (None: library defaults)
        )
        self._messages: list[Message] = []
        self._media: list[_Media] = []
        self._kv = _KVState()
        self._lock = threading.Lock()
        self.last_stats = TurnStats()
        self._version = 0  # bumped on every change of history or media

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
            self._version += 1

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
                source,
                num_frames=num_frames,
                sampling=sampling,
                start=start,
                end=end,
                size=size,
                limits=self.limits,
            )

        clip, embeds = self._encode(source, params, load)
        self._append_media(clip, embeds, VIDEO_PLACEHOLDER, video_message(clip.message))
        return clip

    def add_image(self, source: Any) -> Any:
        """Add a still image (resized to the model's input size, as the original does)."""
        from videochat.media import load_image

        size = self.model.config.vision.image_size
        clip, embeds = self._encode(
            source, ("image", size), lambda: load_image(source, size=size, limits=self.limits)
        )
        self._append_media(clip, embeds, IMAGE_PLACEHOLDER, image_message())
        return clip

    def add_media(self, source: Any, num_frames: int = 8, sampling: str = "demo") -> Any:
        """Add a video or an image, whichever the file is."""
        from videochat.media import ImageClip, load_media

        size = self.model.config.vision.image_size
        params = ("media", num_frames, sampling, size)

        def load() -> Any:
            return load_media(
                source, num_frames=num_frames, sampling=sampling, size=size, limits=self.limits
            )

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
        times = getattr(clip, "timestamps", None)  # a video's; an image has none
        times = None if times is None else torch.tensor([times])  # (1, T) seconds
        with torch.inference_mode():
            embeds = self.model.encode_video(pixels, times)  # (1, Q, D)
        self.cache.put(key, clip, embeds)
        return clip, embeds

    def _append_media(self, clip: Any, embeds: torch.Tensor, kind: str, message: str) -> None:
        with self._busy():
            slot = MediaSlot(uid=next(_uids), kind=kind, num_tokens=embeds.shape[1])
            self._media.append(_Media(clip, embeds, slot))
            self._messages.append((self.template.roles[0], message))
            self._version += 1

    def add_turn(self, question: str, answer: str) -> None:
        """Replay a past exchange without generating (e.g. a conversation sent to the API)."""
        with self._busy():
            self._messages.append((self.template.roles[0], question_message(question)))
            self._messages.append((self.template.roles[1], answer.strip()))
            self._version += 1

    # ----- asking ------------------------------------------------------------------------
    def ask(
        self, text: str, stream: bool = False, *, answer_prefix: str = "", **generation: Any
    ) -> str | Iterator[str]:
        """Answer `text` given the media and history; a text iterator when `stream` is true.

        Generation keywords are `GenerationConfig` fields. `answer_prefix` is put after the
        assistant tag before generating; it is kept in the history but not in the returned answer.
        Errors in the request (empty question, bad setting, too long) are raised here, also
        when streaming.
        """
        started = time.perf_counter()
        config = GenerationConfig.from_kwargs(**generation)
        question = question_message(text)
        plan = self._plan(question, answer_prefix, config)
        version = self._version
        if stream:
            return self._stream(plan, version, answer_prefix, config, started)
        with self._busy():
            turn = self._start(plan, version, answer_prefix, config, started)
            clock = FirstTokenClock()
            result = run_generate(turn.request, streamer=clock)
            return self._finish(turn, result, clock)

    def prompt_inputs(
        self, text: str, *, answer_prefix: str = ""
    ) -> tuple[PromptPlan, torch.Tensor]:
        """The LLM's input for asking `text` (after `answer_prefix`) now, without asking it: the
        prompt's plan (`keys`: a token id or a (media uid, row) pair per position) and its
        embeddings (1, L, D). For looking inside the model; the conversation does not change."""
        plan = self._plan(question_message(text), answer_prefix, GenerationConfig.from_kwargs())
        with self._busy():
            return plan, self._embed(plan)

    def score_replies(
        self, text: str, replies: Sequence[str], *, answer_prefix: str = ""
    ) -> list[ReplyScore]:
        """How likely each of `replies` is as the answer to `text` (after `answer_prefix`),
        given the media and history: its total log-probability and whether greedy decoding would
        write it; nothing is generated and the conversation does not change. The likeliest reply
        is the model's choice among them (rank classification, as `videochat eval --protocol
        videochat2-rank` asks)."""
        if not replies or any(not reply for reply in replies):
            raise ChatError("give at least one reply to score, none of them empty")
        question = question_message(text)
        config = GenerationConfig.from_kwargs(max_new_tokens=1)
        with self._busy():
            prompt = self._plan(question, answer_prefix, config)
            plans = [self._plan(question, answer_prefix + reply, config) for reply in replies]
            if any(plan.dropped_messages != prompt.dropped_messages for plan in plans):
                raise ChatError("a reply to score does not fit in the model's context")
            visual = [item.embeds for item in self._media]
            return reply_scores(self.model, prompt, plans, visual)

    def _stream(
        self,
        plan: PromptPlan,
        version: int,
        answer_prefix: str,
        config: GenerationConfig,
        started: float,
    ) -> Iterator[str]:
        with self._busy():
            turn = self._start(plan, version, answer_prefix, config, started)
            streamer = TokenQueueStreamer()
            tokenizer, stops = self.model.tokenizer, turn.request.stop_strings

            def decode(ids: list[int], final: bool) -> str:
                ids = [i for i in ids if i != tokenizer.eos_token_id]
                return decode_answer(tokenizer, self.template, ids, stops, final)

            def done(result: GenerationResult | None, seen: list[int]) -> None:
                if result is not None:  # after an error the KV cache stays dropped
                    self._finish(turn, result, streamer)

            yield from stream_generate(turn.request, decode, done, streamer)

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

    def _start(
        self,
        plan: PromptPlan,
        version: int,
        answer_prefix: str,
        config: GenerationConfig,
        started: float,
    ) -> _Turn:
        """Embed the prompt and claim the reusable part of the KV cache (under the lock)."""
        if version != self._version:  # the session changed between ask() and streaming
            plan = self._plan(plan.messages[-1][1], answer_prefix, config)
        embeds = self._embed(plan)  # (1, L, D)
        config = GenerationConfig.from_kwargs(config, max_new_tokens=plan.max_new_tokens)
        cache, reused = None, 0
        if self.reuse_kv and config.num_beams == 1 and self._kv.cache is not None:
            reused = min(common_prefix(self._kv.keys, plan.keys), len(plan.keys) - 1)
            if reused > 0:
                _truncate_cache(self._kv.cache, reused)
                cache = self._kv.cache
        self._kv = _KVState()  # consumed; rebuilt by _finish
        stops = tuple(dict.fromkeys([*self.template.stop_strings, *config.stop]))
        request = GenerationRequest(
            self.model.llm, self.model.tokenizer, embeds, config, stops, cache=cache
        )
        return _Turn(plan, request, answer_prefix, started, reused if cache is not None else 0)

    def _embed(self, plan: PromptPlan) -> torch.Tensor:
        """The LLM's input embeddings (1, L, D) of `plan`, with the session's media."""
        visual = [item.embeds for item in self._media]  # (1, Q, D) each
        segments = [torch.tensor(ids, dtype=torch.long) for ids in plan.segment_ids]
        with torch.inference_mode():
            return self.model.embed_segments(segments, visual)

    def _finish(self, turn: _Turn, result: GenerationResult, clock: FirstTokenClock) -> str:
        ids = result.token_ids
        tokenizer, stops = self.model.tokenizer, turn.request.stop_strings
        answer = decode_answer(tokenizer, self.template, ids, stops, final=True)
        assistant = (self.template.roles[1], turn.answer_prefix + answer)
        self._messages = turn.plan.messages + [assistant]
        self._version += 1
        if self.reuse_kv and result.cache is not None:
            cached = result.cache.get_seq_length()
            self._kv = _KVState(result.cache, (turn.plan.keys + ids)[:cached])
        now = time.perf_counter()
        first = clock.first_token_at
        self.last_stats = TurnStats(
            prompt_tokens=len(turn.plan.keys),
            reused_tokens=turn.reused,
            new_tokens=len(ids),
            dropped_messages=turn.plan.dropped_messages,
            ttft_s=(first if first is not None else now) - turn.started,
            total_s=now - turn.started,
        )
        return answer

    @contextmanager
    def _busy(self) -> Iterator[None]:
        if not self._lock.acquire(blocking=False):
            raise ChatError("this chat session is busy answering a question; wait for the answer")
        try:
            yield
        finally:
            self._lock.release()
