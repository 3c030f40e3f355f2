"""Token generation on spliced embeddings: one call of transformers' `generate` for every variant.

Greedy, sampling, beam search, stop strings and streaming all go through `run_generate`; the
session passes a KV cache holding the conversation so far so each turn only processes new tokens.
Streaming uses a small `BaseStreamer` that holds back text which could still become a stop string
(a trailing ``#`` or ``##``), so a partial separator never reaches the user.
"""

from __future__ import annotations

import dataclasses
import inspect
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from videochat.errors import ChatError


@dataclass
class GenerationConfig:
    """Decoding settings; defaults are the original demo's (sampling, top-p 0.9, temperature 1)."""

    max_new_tokens: int = 1000
    do_sample: bool = True
    temperature: float = 1.0
    top_p: float = 0.9
    top_k: int | None = 50  # the original set none, so transformers' default 50 applied
    num_beams: int = 1
    repetition_penalty: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()  # extra stop strings, on top of the template's separator

    @classmethod
    def from_kwargs(cls, base: GenerationConfig | None = None, **kwargs: Any) -> GenerationConfig:
        """Overlay keyword overrides; unknown names are a user error, not a TypeError."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise ChatError(
                f"unknown generation option(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}"
            )
        if isinstance(kwargs.get("stop"), str):
            kwargs["stop"] = (kwargs["stop"],)
        config = dataclasses.replace(base or cls(), **kwargs)
        config.validate()
        return config

    def validate(self) -> None:
        checks = [
            (self.max_new_tokens >= 1, "max_new_tokens must be at least 1"),
            (self.temperature > 0, "temperature must be greater than 0"),
            (0 < self.top_p <= 1, "top_p must be in (0, 1]"),
            (self.top_k is None or self.top_k >= 0, "top_k must be 0 (off) or positive"),
            (self.num_beams >= 1, "num_beams must be at least 1"),
            (self.repetition_penalty > 0, "repetition_penalty must be greater than 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ChatError(f"bad generation setting: {message}")

    def hf_kwargs(self) -> dict[str, Any]:
        """Arguments for `PreTrainedModel.generate` (sampling knobs only when sampling)."""
        kwargs: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "do_sample": self.do_sample,
            "num_beams": self.num_beams,
            "repetition_penalty": self.repetition_penalty,
            "min_length": 1,
            "length_penalty": 1.0,
        }
        if self.do_sample:
            kwargs.update(temperature=self.temperature, top_p=self.top_p, top_k=self.top_k or 0)
        else:  # silence "flag only used in sample mode" warnings from the model's defaults
            kwargs.update(temperature=None, top_p=None, top_k=None)
        return kwargs


def cut_at_stop(text: str, stop_strings: Sequence[str], final: bool) -> str:
    """Text before the first stop string; unless final, also drop a tail that may start one."""
    for stop in stop_strings:
        index = text.find(stop)
        if index >= 0:
            text = text[:index]
            final = True  # a complete stop string: nothing after it can matter
    if final:
        return text
    hold = 0
    for stop in stop_strings:
        for size in range(min(len(stop) - 1, len(text)), hold, -1):
            if stop.startswith(text[-size:]):
                hold = size
                break
    return text[: len(text) - hold] if hold else text


def decode_answer(
    tokenizer: Any,
    template: Any,
    ids: Sequence[int],
    stop_strings: Sequence[str] = (),
    final: bool = True,
) -> str:
    """Generated ids → answer text, as the original post-processes it.

    Drops a leading <unk> (id 0, hard-coded in the original) then a leading BOS; decodes (the
    original keeps special tokens such as a final ``</s>``: callers drop EOS ids first); cuts at the first stop string (holding back a partial one unless `final`); then the
    template's cleaning (for the original format: text after the last ``Assistant:``, stripped).
    """
    ids = list(ids)
    if ids and ids[0] == 0:
        ids = ids[1:]
    if ids and ids[0] == tokenizer.bos_token_id:
        ids = ids[1:]
    text = tokenizer.decode(ids, skip_special_tokens=template.skip_special_tokens)
    if not final:
        text = text.rstrip("\ufffd")  # an incomplete multi-byte character
    return template.clean(cut_at_stop(text, [*template.stop_strings, *stop_strings], final))


class _CancelCriteria(StoppingCriteria):
    """Stops generation when the consumer of a stream goes away (or another thread asks)."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(
        self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any
    ) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool)


class FirstTokenClock(BaseStreamer):
    """Notes when `generate` produces its first token (time to first token, for stats)."""

    def __init__(self) -> None:
        self.first_token_at: float | None = None
        self._prompt_skipped = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_skipped:  # `generate` first reports the prompt (empty with embeds)
            self._prompt_skipped = True
            return
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        self.on_tokens([int(v) for v in value.reshape(-1).tolist()])

    def on_tokens(self, ids: list[int]) -> None:
        """New token ids; the clock alone only times the first one (streamers override)."""

    def end(self) -> None:
        """Generation finished; nothing to flush for the clock alone."""


class TokenQueueStreamer(FirstTokenClock):
    """Hands the generated ids to the consuming thread as `generate` produces them."""

    def __init__(self) -> None:
        super().__init__()
        self.queue: queue.Queue[list[int] | None] = queue.Queue()

    def on_tokens(self, ids: list[int]) -> None:
        self.queue.put(ids)

    def end(self) -> None:
        self.queue.put(None)


def cache_keyword(llm: Any) -> str:
    """Name of the KV-cache argument (`cache` in transformers ≥5.2x, `past_key_values` before)."""
    params = inspect.signature(type(llm).forward).parameters
    return "cache" if "cache" in params else "past_key_values"


@dataclass
class GenerationRequest:
    """Everything `run_generate` needs for one answer."""

    llm: Any
    tokenizer: Any
    inputs_embeds: torch.Tensor  # (1, L, D): the whole conversation; a cache covers a prefix
    config: GenerationConfig
    stop_strings: tuple[str, ...]
    cache: Any | None = None  # transformers Cache holding the KV of a prefix of inputs_embeds


@dataclass
class GenerationResult:
    token_ids: list[int]  # generated ids (stop string tokens included, eos excluded)
    cache: Any | None  # the cache after generation (None for beam search)


def run_generate(
    request: GenerationRequest,
    streamer: BaseStreamer | None = None,
    cancel: threading.Event | None = None,
) -> GenerationResult:
    """Run `llm.generate` once; the only decoding loop in the package.

    Beam search cannot stream in transformers: with `num_beams > 1` the streamer is not used.
    """
    config = request.config
    streamer = streamer if config.num_beams == 1 else None
    llm = request.llm
    kwargs = config.hf_kwargs()
    criteria = StoppingCriteriaList([_CancelCriteria(cancel)] if cancel is not None else [])
    if request.stop_strings:
        kwargs.update(stop_strings=list(request.stop_strings), tokenizer=request.tokenizer)
    if request.cache is not None:
        kwargs[cache_keyword(llm)] = request.cache
    if config.seed is not None:
        torch.manual_seed(config.seed)
    embeds = request.inputs_embeds  # (1, L, D)
    mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device)  # (1, L)
    pad_id = request.tokenizer.pad_token_id
    pad_id = request.tokenizer.eos_token_id if pad_id is None else pad_id
    with torch.inference_mode():
        out = llm.generate(
            inputs_embeds=embeds,
            attention_mask=mask,
            stopping_criteria=criteria,
            streamer=streamer,
            return_dict_in_generate=True,
            pad_token_id=pad_id,
            **kwargs,
        )
    ids = [int(t) for t in out.sequences[0].tolist()]
    eos = _eos_ids(llm, request.tokenizer)
    while ids and ids[-1] in eos:
        ids.pop()
    cache = output_cache(out) if config.num_beams == 1 else None
    return GenerationResult(ids, cache)


def output_cache(out: Any) -> Any:
    """The KV cache `generate` or a forward pass returns (`cache` in transformers 5.2x,
    `past_key_values` before)."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else getattr(out, "past_key_values", None)


def _eos_ids(llm: Any, tokenizer: Any) -> set[int]:
    eos = getattr(llm.generation_config, "eos_token_id", None)
    eos = eos if isinstance(eos, list) else [eos]
    return {int(e) for e in [*eos, tokenizer.eos_token_id] if e is not None}


def stream_generate(
    request: GenerationRequest,
    decode: Callable[[list[int], bool], str],
    on_done: Callable[[GenerationResult | None, list[int]], None],
    streamer: TokenQueueStreamer | None = None,
) -> Iterator[str]:
    """Yield text pieces as tokens arrive; `decode(ids, final)` turns ids so far into visible text.

    Generation runs in a worker thread (transformers' streaming pattern). If the consumer stops
    early the worker is cancelled and joined; `on_done` always runs with the result (or None
    after an error) and the ids seen so far. Beam search yields its answer in one piece.
    """
    streamer = streamer or TokenQueueStreamer()
    cancel = threading.Event()
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["result"] = run_generate(request, streamer=streamer, cancel=cancel)
        except BaseException as exc:  # re-raised in the consumer's thread
            box["error"] = exc
        finally:
            streamer.end()  # harmless twice; needed when generate did not stream (beams, error)

    thread = threading.Thread(target=work, name="videochat-generate", daemon=True)
    thread.start()
    seen: list[int] = []
    shown = ""
    try:
        while (piece := streamer.queue.get()) is not None:
            seen += piece
            text = decode(seen, False)
            if text.startswith(shown) and len(text) > len(shown):
                yield text[len(shown) :]
                shown = text
        thread.join()
        if "result" in box:
            text = decode(box["result"].token_ids, True)
            if text.startswith(shown) and len(text) > len(shown):
                yield text[len(shown) :]
    finally:
        cancel.set()
        thread.join()
        on_done(box.get("result"), seen)
    if "error" in box:
        raise box["error"]
