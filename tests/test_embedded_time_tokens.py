"""Whole option-time tokens added to a trained embedded model (`videochat.embedded.time_tokens`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from videochat.embedded.config import embedded_config, vocab_rows
from videochat.embedded.time_tokens import (
    DECIMAL_TOKENS,
    TIME_TOKENS,
    add_decimal_tokens,
    add_time_tokens,
)
from videochat.embedded.tokenizer import train_tokenizer
from videochat.model import build_model, load_model, save_model

CORPUS = [
    "Question: When does the red circle appear? Options: (A) at 3.5 seconds (B) at 6.0 seconds",
    "Best option:(at 3.5 seconds) The red circle appears at about 3.5 seconds.",
    "The video contains 8 frames sampled at 0.6, 1.9, 3.1 seconds. At 12.0 seconds it stops.",
] * 20


@pytest.fixture()
def model():
    tok = train_tokenizer(CORPUS, 400)
    return build_model(embedded_config(vocab_rows(len(tok))), tok, seed=0)


def ids(model, text: str) -> list[int]:
    return model.tokenizer(text, add_special_tokens=False)["input_ids"]


def test_every_option_time_becomes_one_token_and_reads_back_as_written(model) -> None:
    untouched = ("at about 3.5 seconds", "At 3.5 seconds", " 3.5")
    before = {text: ids(model, text) for text in (*TIME_TOKENS, *untouched)}
    assert all(len(before[text]) > 1 for text in TIME_TOKENS)  # "at", " 3", ".", "5", ...
    assert add_time_tokens(model) == len(TIME_TOKENS) == 25  # 0.0, 0.5, ..., 12.0
    assert add_time_tokens(model) == 0  # a second call finds them all
    prompt = "(A) at 3.5 seconds\n(B) at 12.0 seconds\nBest option:(at 3.5 seconds)"
    tokens = model.tokenizer.convert_ids_to_tokens(ids(model, prompt))
    assert tokens.count("at 3.5 seconds") == 2 and "at 12.0 seconds" in tokens
    assert model.tokenizer.decode(ids(model, prompt)) == prompt.replace("\n", " ")
    # "at about", "At" and the frame stamps keep their pieces
    for text in untouched:
        assert ids(model, text) == before[text]
        assert not set(model.tokenizer.convert_ids_to_tokens(ids(model, text))) & set(TIME_TOKENS)
    assert model.llm.get_input_embeddings().weight.shape[0] == vocab_rows(len(model.tokenizer))


def test_new_rows_start_from_the_pieces_and_old_answers_do_not_move(model) -> None:
    probe = torch.tensor([ids(model, "Best option:(at about 3.5")])
    with torch.no_grad():
        old_logits = model.llm(input_ids=probe).logits[0]
    pieces = ids(model, "at 6.0 seconds")
    (at,) = ids(model, "at")
    old_embed = model.llm.get_input_embeddings().weight[pieces].clone()
    old_head = model.llm.get_output_embeddings().weight[at].clone()
    known = len(model.tokenizer)  # the new tokens take the padding rows' ids from here on
    add_time_tokens(model)
    (new,) = ids(model, "at 6.0 seconds")
    torch.testing.assert_close(model.llm.get_input_embeddings().weight[new], old_embed.mean(0))
    torch.testing.assert_close(model.llm.get_output_embeddings().weight[new], old_head)
    with torch.no_grad():
        logits = model.llm(input_ids=probe).logits[0]
    torch.testing.assert_close(logits[:, :known], old_logits[:, :known])


def test_the_tokens_survive_a_save_and_load(model, tmp_path: Path) -> None:
    add_time_tokens(model)
    add_decimal_tokens(model)  # both: the longer time token wins where it matches
    save_model(model, tmp_path / "timed")
    loaded = load_model(tmp_path / "timed", device="cpu", dtype="fp32")
    assert len(ids(loaded, "at 9.5 seconds")) == 1
    assert loaded.tokenizer.convert_ids_to_tokens(ids(loaded, "about 9.5"))[-2:] == ["9", ".5"]
    assert loaded.llm.config.vocab_size == vocab_rows(len(loaded.tokenizer))
    torch.testing.assert_close(
        loaded.llm.get_input_embeddings().weight, model.llm.get_input_embeddings().weight
    )


def test_decimal_tokens_join_the_point_to_its_digit_and_keep_the_integer(model) -> None:
    prompt = "(A) at 3.5 seconds\n(B) at 12.0 seconds sampled at 0.6, 1.9\nBest option:(at 3.5"
    before = model.tokenizer.convert_ids_to_tokens(ids(model, prompt))
    assert before.count(".") == 5 and not set(before) & set(DECIMAL_TOKENS)
    assert add_decimal_tokens(model) == len(DECIMAL_TOKENS) == 10  # .0 ... .9
    assert add_decimal_tokens(model) == 0
    tokens = model.tokenizer.convert_ids_to_tokens(ids(model, prompt))
    assert tokens.count(".5") == 2 and {".0", ".6", ".9"} <= set(tokens) and "." not in tokens
    # the integers keep their own tokens: the answer's " 3" is the option's " 3"
    integers = ["Ġ3", "Ġ12", "Ġ0", "Ġ1", "Ġ3"]
    assert [t for t in before if t.startswith("Ġ") and t[1:].isdigit()] == integers
    assert [t for t in tokens if t.startswith("Ġ") and t[1:].isdigit()] == integers
    assert tokens[tokens.index("Ġ12") + 1] == ".0" and tokens[-2:] == ["Ġ3", ".5"]
    assert model.tokenizer.decode(ids(model, prompt)) == prompt.replace("\n", " ")


def test_decimal_rows_start_from_the_point_and_its_digit(model) -> None:
    (point,), (five,) = ids(model, "."), ids(model, "5")
    embed = model.llm.get_input_embeddings().weight
    old = (embed[point] + embed[five]).clone() / 2
    old_head = model.llm.get_output_embeddings().weight[point].clone()
    add_decimal_tokens(model)
    (new,) = ids(model, ".5")
    torch.testing.assert_close(model.llm.get_input_embeddings().weight[new], old)
    torch.testing.assert_close(model.llm.get_output_embeddings().weight[new], old_head)
