"""The LLM's copy warm-up: what it trains on, and that it really teaches copying."""

from __future__ import annotations

import torch

from videochat.embedded.warmup import IGNORE_INDEX, copy_warmup, repeated_segments


def test_repeated_segments_label_only_the_predictable_repeat() -> None:
    ids = torch.tensor([5, 6, 7, 8, 9])
    inputs, labels = repeated_segments(ids, 3, 4, torch.Generator().manual_seed(0))
    assert inputs.shape == labels.shape == (3, 8)
    assert torch.equal(inputs[:, :4], inputs[:, 4:])
    assert set(inputs.unique().tolist()) <= set(ids.tolist())
    assert (labels[:, :5] == IGNORE_INDEX).all()  # the first copy and the repeat's first token
    assert torch.equal(labels[:, 5:], inputs[:, 5:])


def test_copy_warmup_teaches_a_small_llama_to_copy() -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=64,
    )
    llm = LlamaForCausalLM(config)
    copied = copy_warmup(llm, list(range(3, 64)), steps=150, batch=32, segment=12, lr=3e-3)
    assert copied > 0.9  # chance is 1 in 61
    assert not llm.training
