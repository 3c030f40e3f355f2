"""One LLM row per object from its stretch rows (`VideoChatConfig.merge_stretch_rows`, ours)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from _model_helpers import FIXTURES

from videochat.model import VideoChatConfig, build_model, load_model, save_model
from videochat.model.load import load_tokenizer
from videochat.train.recipe import FreezeSpec
from videochat.train.setup import apply_freeze


def _config(merge: bool) -> VideoChatConfig:
    """The tiny preset with rows 1-6 as 3 objects × 2 stretches (10 queries in all)."""
    config = VideoChatConfig.preset("tiny")
    config.qformer.stretch_rows = [[1, 6, 2]]
    config.merge_stretch_rows = merge
    return config


def _merged():
    return build_model(_config(True), load_tokenizer(FIXTURES / "tokenizer"), seed=0)


def test_each_objects_stretch_rows_become_one_llm_row() -> None:
    merged = _merged()
    assert merged.config.num_queries == 10 and merged.config.llm_rows == 7
    hidden = torch.randn(2, 10, 32)  # (B, Q, C)
    with torch.no_grad():
        rows = merged.project_rows(hidden)  # (B, 7, D)
        # object j: its first-stretch row 1 + j and its second-stretch row 4 + j, side by side
        side_by_side = torch.cat([hidden[:, 1:4], hidden[:, 4:7]], dim=-1)  # (B, 3, 2C)
        expected = F.linear(side_by_side, merged.stretch_proj_weight, merged.stretch_proj_bias)
        torch.testing.assert_close(rows[:, 1:4], expected)
        torch.testing.assert_close(rows[:, :1], merged.llama_proj(hidden[:, :1]))
        torch.testing.assert_close(rows[:, 4:], merged.llama_proj(hidden[:, 7:]))
        # what only both rows hold (here: their difference) is linear in the one merged row
        merged.stretch_proj_weight.zero_()
        merged.stretch_proj_bias.zero_()
        merged.stretch_proj_weight[:32, :32] = -torch.eye(32)
        merged.stretch_proj_weight[:32, 32:] = torch.eye(32)
        moved = merged.project_rows(hidden)[:, 1:4, :32]
    torch.testing.assert_close(moved, hidden[:, 4:7] - hidden[:, 1:4])


def test_switching_it_on_changes_no_other_initial_weight() -> None:
    tok = load_tokenizer(FIXTURES / "tokenizer")
    plain, merged = (
        build_model(_config(False), tok, seed=0),
        build_model(_config(True), tok, seed=0),
    )
    a, b = plain.state_dict(), merged.state_dict()
    assert set(b) - set(a) == {"stretch_proj_weight", "stretch_proj_bias"}
    assert all(torch.equal(a[k], b[k]) for k in a)  # a seeded build's vision stage is kept
    bound = (2 * 32) ** -0.5  # initialised as a fresh nn.Linear(64, D) would be
    weight = b["stretch_proj_weight"]
    assert weight.std() > 0.2 * bound and weight.abs().max() <= bound


def test_it_trains_with_llama_proj_and_survives_a_round_trip(tmp_path: Path) -> None:
    merged = _merged()
    trainable = apply_freeze(merged, FreezeSpec())  # the original's rule: llama_proj trains
    assert {"stretch_proj_weight", "stretch_proj_bias"} <= set(trainable)
    assert {n for n in trainable if "llama_proj" in n} == {"llama_proj.weight", "llama_proj.bias"}
    frozen = apply_freeze(merged, FreezeSpec(llama_proj=True))
    assert not any(n.startswith("stretch_proj") for n in frozen)
    save_model(merged, tmp_path / "m")
    back = load_model(tmp_path / "m", device="cpu", dtype="fp32")
    assert back.config.merge_stretch_rows and back.config.llm_rows == 7
    pixels = torch.randn(1, 2, 3, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(back.encode_video(pixels), merged.encode_video(pixels))
    assert back.encode_video(pixels).shape == (1, 7, 48)


def test_it_needs_exactly_one_stretch_group() -> None:
    config = _config(True)
    config.qformer.stretch_rows = []
    with pytest.raises(ValueError, match="exactly one qformer.stretch_rows group"):
        config.validate()


def test_row_names_and_row_embeddings_go_to_the_merged_rows() -> None:
    """`row_tokens` and `row_embed` index the rows the LLM sees: object j's one merged row is
    LLM row 1 + j (row 0 is the query before the group)."""
    config = _config(True)
    config.row_tokens = [[], [5], [7, 9]]  # objects 0 and 1 named, object 2 not
    config.row_embed = True
    named = build_model(config, load_tokenizer(FIXTURES / "tokenizer"), seed=0)
    assert named.row_embed.shape == (1, 7, 48)
    hidden = torch.randn(2, 10, 32)  # (B, Q, C)
    with torch.no_grad():
        config.row_tokens = []  # the rows without either addition (row_embed starts at zero)
        plain = named.project_rows(hidden)  # (B, 7, D)
        config.row_tokens = [[], [5], [7, 9]]
        named.row_embed.fill_(0.5)
        added = named.project_rows(hidden) - plain
    table = named.llm.get_input_embeddings().weight
    expected = torch.full((7, 48), 0.5)
    expected[1] += table[5]
    expected[2] += (table[7] + table[9]) / 2
    torch.testing.assert_close(added, expected.expand(2, -1, -1))
    config.row_tokens = [[5]] * 8
    with pytest.raises(ValueError, match="row_tokens names 8 rows; the LLM sees 7"):
        config.validate()
