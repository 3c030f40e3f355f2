"""A padded batch's common start run through the LLM once (`videochat.train.shared_prefix`) gives
the loss and gradients of running every row whole."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch

from tests._train_helpers import tiny_llama
from videochat.train.labels import IGNORE_INDEX
from videochat.train.loss import llm_loss
from videochat.train.shared_prefix import MIN_SHARED, shared_prefix_length


def _batch(shared: int, rows: int = 4, width: int = 30, dim: int = 32):
    """Right-padded rows whose first `shared` positions are alike, answers labelled after them."""
    torch.manual_seed(3)
    embeds = torch.randn(rows, width, dim)  # (B, L, D)
    embeds[:, :shared] = torch.randn(1, shared, dim)
    mask = torch.ones(rows, width, dtype=torch.long)
    mask[1, 22:] = 0
    mask[3, 17:] = 0
    labels = torch.full((rows, width), IGNORE_INDEX)
    labels[0, 25:29] = torch.tensor([3, 9, 27, 1])
    labels[1, 18:22] = torch.tensor([5, 5, 39, 2])
    labels[2, 14] = 12
    labels[3, 12:17] = torch.tensor([7, 8, 9, 10, 11])
    return {"inputs_embeds": embeds, "attention_mask": mask}, labels


@contextmanager
def _decoder_inputs(llm):
    """The (rows, width) of every input the decoder is called with, while inside."""
    shapes: list[tuple[int, int]] = []
    hook = llm.get_decoder().register_forward_pre_hook(
        lambda module, args, kwargs: shapes.append(tuple(kwargs["inputs_embeds"].shape[:2])),
        with_kwargs=True,
    )
    try:
        yield shapes
    finally:
        hook.remove()


def _loss_and_grads(llm, feed, labels, **options):
    llm.zero_grad()
    loss = llm_loss(llm, feed, labels, **options)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in llm.parameters() if p.grad is not None]


@pytest.mark.parametrize("per_sample", [False, True])
def test_the_start_once_gives_every_rows_loss_and_gradients(per_sample):
    llm = tiny_llama(vocab=40, positions=64)
    feed, labels = _batch(shared=11)
    assert shared_prefix_length(**feed) == 11
    whole, whole_grads = _loss_and_grads(llm, feed, labels, per_sample=per_sample)
    once, once_grads = _loss_and_grads(llm, feed, labels, per_sample=per_sample, share_prefix=True)
    torch.testing.assert_close(once, whole)
    assert len(once_grads) == len(whole_grads)
    for a, b in zip(once_grads, whole_grads, strict=True):
        torch.testing.assert_close(a, b)
    assert whole > 0 and all(g.abs().sum() > 0 for g in whole_grads)


def test_rows_alike_to_the_end_give_their_loss_and_gradients():
    llm = tiny_llama(vocab=40, positions=64)
    feed, labels = _batch(shared=30)
    feed["attention_mask"][:] = 1
    labels[:] = labels[:1]
    assert shared_prefix_length(**feed) == 30
    whole, whole_grads = _loss_and_grads(llm, feed, labels)
    once, once_grads = _loss_and_grads(llm, feed, labels, share_prefix=True)
    torch.testing.assert_close(once, whole)
    for a, b in zip(once_grads, whole_grads, strict=True):
        torch.testing.assert_close(a, b)


def test_the_start_is_run_once_for_the_batch():
    llm = tiny_llama(vocab=40, positions=64)
    feed, labels = _batch(shared=11)
    with _decoder_inputs(llm) as widths:
        llm_loss(llm, feed, labels, share_prefix=True)
        llm_loss(llm, feed, labels)
    assert widths == [(1, 11), (4, 19), (4, 30)]


def test_the_shared_start_ends_where_a_row_differs_or_is_padded():
    feed, _ = _batch(shared=11)
    embeds, mask = feed["inputs_embeds"], feed["attention_mask"]
    embeds[2, 6] += 1e-3  # one row differs at position 6
    assert shared_prefix_length(embeds, mask) == 6
    embeds[:, :20] = embeds[:1, :20]  # alike up to 20, but row 3 is padding from 17
    assert shared_prefix_length(embeds, mask) == 17
    assert shared_prefix_length(embeds[:1], mask[:1]) == 0  # one row: nothing to share


def test_a_short_shared_start_runs_the_rows_whole():
    llm = tiny_llama(vocab=40, positions=64)
    feed, labels = _batch(shared=MIN_SHARED - 1)
    with _decoder_inputs(llm) as shapes:
        llm_loss(llm, feed, labels, share_prefix=True)
    assert [rows for rows, _ in shapes] == [4]


def test_with_gradient_checkpointing_the_rows_run_whole():
    llm = tiny_llama(vocab=40, positions=64)
    feed, labels = _batch(shared=11)
    whole, whole_grads = _loss_and_grads(llm, feed, labels)
    llm.config.use_cache = False
    llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    with _decoder_inputs(llm) as shapes:
        once, once_grads = _loss_and_grads(llm, feed, labels, share_prefix=True)
    assert [rows for rows, _ in shapes] == [4]  # no cache to share the start through
    torch.testing.assert_close(once, whole)
    for a, b in zip(once_grads, whole_grads, strict=True):
        torch.testing.assert_close(a, b)


def test_compiled_decoder_layers_give_the_same_loss_and_gradients():
    from videochat.train.setup import compile_decoder_layers

    llm = tiny_llama(vocab=40, positions=64)
    feed, labels = _batch(shared=11)
    eager, eager_grads = _loss_and_grads(llm, feed, labels, share_prefix=True)

    class Holder(torch.nn.Module):  # what a run compiles: a VideoChat's `llm`
        def __init__(self):
            super().__init__()
            self.llm = llm

    if not compile_decoder_layers(Holder()):
        pytest.skip("no C++ compiler for torch.compile on this machine")
    for share_prefix in (True, False):  # two layouts: the start once, and the rows whole
        compiled, compiled_grads = _loss_and_grads(llm, feed, labels, share_prefix=share_prefix)
        torch.testing.assert_close(compiled, eager)
        for a, b in zip(compiled_grads, eager_grads, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
