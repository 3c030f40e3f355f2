"""The next-token loss computed at the labelled positions only (`videochat.train.loss`) is
transformers' causal-LM loss, and its per-sample mean weighs each answer equally."""

from __future__ import annotations

import torch
from torch import nn

from tests._train_helpers import tiny_llama
from videochat.train.labels import IGNORE_INDEX
from videochat.train.loss import llm_loss, next_token_loss


def _grads(llm: nn.Module) -> list[torch.Tensor]:
    grads = [p.grad.clone() for p in llm.parameters() if p.grad is not None]  # not embed_tokens
    llm.zero_grad()
    return grads


def test_the_loss_and_gradients_are_transformers_causal_lm_loss():
    llm = tiny_llama(vocab=40, positions=64)
    embeds = torch.randn(3, 12, 32)  # (B, L, D)
    mask = torch.ones(3, 12, dtype=torch.long)
    mask[1, 9:] = 0  # right padding
    labels = torch.full((3, 12), IGNORE_INDEX)
    labels[0, 4:8] = torch.tensor([3, 9, 27, 1])
    labels[1, 6:9] = torch.tensor([5, 5, 39])
    labels[2, 11] = 12
    feed = {"inputs_embeds": embeds, "attention_mask": mask}

    reference = llm(**feed, labels=labels).loss  # logits everywhere, then the loss
    reference.backward()
    reference_grads = _grads(llm)
    ours = llm_loss(llm, feed, labels)
    ours.backward()
    torch.testing.assert_close(ours, reference)
    for a, b in zip(_grads(llm), reference_grads, strict=True):
        torch.testing.assert_close(a, b)
    assert reference > 0 and any(g.abs().sum() > 0 for g in reference_grads)


def test_the_per_sample_mean_weighs_each_answer_equally():
    torch.manual_seed(1)
    hidden, head = torch.randn(2, 6, 8), nn.Linear(8, 9)  # (B, L, D), D -> V
    labels = torch.full((2, 6), IGNORE_INDEX)
    labels[0, 5] = 3  # one target token
    labels[1, 2:5] = torch.tensor([1, 4, 7])  # three
    token = nn.functional.cross_entropy(
        head(hidden)[:, :-1].reshape(-1, 9), labels[:, 1:].reshape(-1), reduction="none"
    ).view(2, 5)
    expected = (token[0, 4] + token[1, 1:4].mean()) / 2
    torch.testing.assert_close(next_token_loss(hidden, head, labels, per_sample=True), expected)
    token_mean = (token[0, 4] + token[1, 1:4].sum()) / 4
    torch.testing.assert_close(next_token_loss(hidden, head, labels), token_mean)
    labels[0] = IGNORE_INDEX  # a sample with nothing to learn is left out, not counted as 0
    torch.testing.assert_close(
        next_token_loss(hidden, head, labels, per_sample=True), token[1, 1:4].mean()
    )


def test_no_target_left_gives_a_zero_loss_that_still_reaches_the_head():
    hidden, head = torch.randn(2, 5, 8, requires_grad=True), nn.Linear(8, 9)
    labels = torch.full((2, 5), IGNORE_INDEX)
    loss = next_token_loss(hidden, head, labels, per_sample=True)
    loss.backward()
    assert loss.item() == 0.0
    assert head.weight.grad is not None and head.weight.grad.abs().sum() == 0
