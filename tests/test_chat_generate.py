"""Generation on the fixture LLM: greedy vs a reference loop, stop strings, streaming, sampling."""

from __future__ import annotations

import pytest
import torch

from tests._chat_helpers import fixture_llm, fixture_tokenizer
from videochat.chat.generate import (
    GenerationConfig,
    GenerationRequest,
    cut_at_stop,
    decode_answer,
    run_generate,
    stream_generate,
)
from videochat.chat.template import VideoChatTemplate
from videochat.errors import ChatError

PROMPT = "###Human: What is happening?\n###Assistant:"
GREEDY = GenerationConfig(do_sample=False, max_new_tokens=24)


@pytest.fixture(scope="module")
def tokenizer():
    return fixture_tokenizer()


@pytest.fixture(scope="module")
def llm():
    return fixture_llm()


@pytest.fixture(scope="module")
def embeds(llm, tokenizer):
    ids = [tokenizer.bos_token_id, *tokenizer(PROMPT, add_special_tokens=False).input_ids]
    with torch.no_grad():
        return llm.get_input_embeddings()(torch.tensor([ids]))  # (1, L, D)


def _request(llm, tokenizer, embeds, config=GREEDY, stops=()):
    return GenerationRequest(llm, tokenizer, embeds, config, tuple(stops))


def _reference_greedy(llm, embeds, n):
    """Plain argmax over full forward passes (no cache, no generate)."""
    ids: list[int] = []
    x = embeds
    with torch.no_grad():
        for _ in range(n):
            nxt = int(llm(inputs_embeds=x).logits[0, -1].argmax())
            ids.append(nxt)
            x = torch.cat([x, llm.get_input_embeddings()(torch.tensor([[nxt]]))], dim=1)
    return ids


@pytest.fixture(scope="module")
def free_run(llm, tokenizer, embeds):
    """Greedy ids without stop strings (the random model never emits EOS early here)."""
    return run_generate(_request(llm, tokenizer, embeds)).token_ids


def test_greedy_matches_reference_loop(llm, embeds, free_run):
    assert len(free_run) == GREEDY.max_new_tokens
    assert free_run == _reference_greedy(llm, embeds, len(free_run))


def _boundary_stop(tokenizer, ids):
    """A 2-character stop string that spans two generated tokens, and the token it completes at."""
    for k in range(4, len(ids) - 1):
        before = tokenizer.decode(ids[:k])
        after = tokenizer.decode(ids[: k + 1])
        if before and len(after) > len(before):
            stop = before[-1] + after[len(before)]
            if stop.isascii() and stop.isalpha() and stop not in before:
                return stop, k + 1
    raise AssertionError("no suitable boundary in the greedy output")


def test_stop_string_across_tokens_stops_and_is_cut(llm, tokenizer, embeds, free_run):
    stop, stop_len = _boundary_stop(tokenizer, free_run)
    result = run_generate(_request(llm, tokenizer, embeds, stops=[stop]))
    assert result.token_ids == free_run[:stop_len]
    template = VideoChatTemplate()
    answer = decode_answer(tokenizer, template, result.token_ids, [stop])
    full = tokenizer.decode(free_run[:stop_len])
    assert answer == template.clean(full[: full.index(stop)])
    assert stop not in answer


def test_stream_holds_back_a_partial_stop_string(llm, tokenizer, embeds, free_run):
    stop, _ = _boundary_stop(tokenizer, free_run)
    template = VideoChatTemplate()
    seen: dict = {}

    def decode(ids, final):
        return decode_answer(tokenizer, template, ids, [stop], final)

    def done(result, ids):
        seen["result"], seen["ids"] = result, ids

    pieces = list(stream_generate(_request(llm, tokenizer, embeds, stops=[stop]), decode, done))
    answer = decode(seen["result"].token_ids, True)
    assert len(pieces) > 1
    assert "".join(pieces) == answer
    shown = ""
    for piece in pieces:  # every prefix the user saw is a prefix of the final answer
        shown += piece
        assert answer.startswith(shown)  # so the held-back first char of the stop never showed
    assert not answer.endswith(stop[0])


def test_stream_stops_generation_when_consumer_leaves(llm, tokenizer, embeds):
    seen: dict = {}
    config = GenerationConfig(do_sample=False, max_new_tokens=200)
    stream = stream_generate(
        _request(llm, tokenizer, embeds, config),
        lambda ids, final: tokenizer.decode(ids),
        lambda result, ids: seen.update(result=result),
    )
    next(stream)
    stream.close()
    assert len(seen["result"].token_ids) < 200


def test_cut_at_stop_hold_back():
    assert cut_at_stop("abc#", ["###"], final=False) == "abc"
    assert cut_at_stop("abc##", ["###"], final=False) == "abc"
    assert cut_at_stop("abc#", ["###"], final=True) == "abc#"
    assert cut_at_stop("abc###def#", ["###"], final=False) == "abc"
    assert cut_at_stop("a#b", ["###"], final=False) == "a#b"
    assert cut_at_stop("x END", ["###", "END"], final=False) == "x "


def test_sampling_is_reproducible_with_seed(llm, tokenizer, embeds, free_run):
    sample = GenerationConfig(do_sample=True, max_new_tokens=12, temperature=1.5, seed=3)
    a = run_generate(_request(llm, tokenizer, embeds, sample)).token_ids
    b = run_generate(_request(llm, tokenizer, embeds, sample)).token_ids
    assert a == b
    other = GenerationConfig.from_kwargs(sample, seed=4)
    assert run_generate(_request(llm, tokenizer, embeds, other)).token_ids != a
    top1 = GenerationConfig.from_kwargs(sample, top_k=1)  # top-k 1 sampling is greedy
    assert run_generate(_request(llm, tokenizer, embeds, top1)).token_ids == free_run[:12]


def test_beam_search_and_repetition_penalty_run(llm, tokenizer, embeds, free_run):
    beams = GenerationConfig(do_sample=False, num_beams=3, max_new_tokens=10)
    result = run_generate(_request(llm, tokenizer, embeds, beams))
    assert len(result.token_ids) == 10 and result.cache is None
    penalised = GenerationConfig(do_sample=False, max_new_tokens=24, repetition_penalty=5.0)
    ids = run_generate(_request(llm, tokenizer, embeds, penalised)).token_ids
    assert len(set(ids)) > len(set(free_run))  # the penalty discourages repeats


def test_generation_reuses_a_prefix_cache_token_identically(llm, tokenizer, embeds, free_run):
    from transformers import DynamicCache

    cache = DynamicCache(config=llm.config)
    with torch.no_grad():
        llm(inputs_embeds=embeds[:, :-4], use_cache=True, **{"cache": cache})
    result = run_generate(GenerationRequest(llm, tokenizer, embeds, GREEDY, (), cache=cache))
    assert result.token_ids == free_run
    assert result.cache.get_seq_length() == embeds.shape[1] + len(free_run) - 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"temperature": 0}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"num_beams": 0}, "num_beams"),
        ({"beams": 2}, "unknown generation option"),
    ],
)
def test_bad_generation_settings_are_chat_errors(kwargs, match):
    with pytest.raises(ChatError, match=match):
        GenerationConfig.from_kwargs(**kwargs)


def test_defaults_are_the_original_demo():
    config = GenerationConfig()
    assert (config.do_sample, config.top_p, config.temperature) == (True, 0.9, 1.0)
    assert (config.num_beams, config.max_new_tokens) == (1, 1000)
