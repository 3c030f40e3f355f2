"""Packed batches (`videochat.train.packing`) give the padded batch's loss and gradients, and the
attention kernel switch (`setup.attention_kernel`) changes no number."""

from __future__ import annotations

import random

import pytest
import torch
from transformers import LlamaForCausalLM

from tests._train_helpers import loss_and_grads, make_data, tiny_llama
from videochat.train.labels import IGNORE_INDEX, LabelledText, LLMInputs, assemble
from videochat.train.loss import llm_loss
from videochat.train.packing import PAD, PREFIX, pack, shared_prefix_length
from videochat.train.recipe import RecipeError, load_recipe
from videochat.train.setup import attention_kernel

BEFORE = [5, 6, 7, 8]  # the same text before every sample's visual rows (the system text)


def _batch(llm: LlamaForCausalLM, sizes: list[int], seed: int = 1) -> LLMInputs:
    """Samples of `sizes` ids after 3 visual rows, labels on all but their first two ids."""
    draw = random.Random(seed)
    texts = []
    for size in sizes:
        after = [draw.randint(3, 49) for _ in range(size)]
        texts.append(LabelledText(BEFORE, after, [IGNORE_INDEX] * 2 + after[2:]))
    visual = torch.randn(len(sizes), 3, 32, generator=torch.Generator().manual_seed(seed))
    embed = llm.get_input_embeddings()
    return assemble(visual, texts, embed, bos_id=1, pad_id=0, bos_mode="constant")


def _loss(llm, inputs: LLMInputs, packed: bool, per_sample: bool):
    """(loss, logits at each sample's own labelled positions, every parameter's gradient)."""
    llm.zero_grad()
    labels, segments = inputs.labels, None
    feed = {"inputs_embeds": inputs.inputs_embeds, "attention_mask": inputs.attention_mask}
    if packed:
        rows = pack(inputs)
        labels, segments = rows.labels, rows.segments
        feed = {
            "inputs_embeds": rows.inputs_embeds,
            "attention_mask": rows.attention_mask,
            "position_ids": rows.position_ids,
        }
    loss = llm_loss(llm, feed, labels, segments, per_sample)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in llm.parameters()]


@pytest.mark.parametrize("per_sample", [False, True])
def test_a_packed_batch_has_the_padded_batchs_loss_and_gradients(per_sample: bool) -> None:
    llm = tiny_llama().eval()
    sizes = [3, 17, 6, 11, 4, 20]
    padded_loss, padded_grads = _loss(llm, _batch(llm, sizes), packed=False, per_sample=per_sample)
    packed_loss, packed_grads = _loss(llm, _batch(llm, sizes), packed=True, per_sample=per_sample)
    torch.testing.assert_close(packed_loss, padded_loss)
    for packed_grad, padded_grad in zip(packed_grads, padded_grads, strict=True):
        torch.testing.assert_close(packed_grad, padded_grad, atol=1e-6, rtol=1e-4)
    assert padded_loss > 0 and any(g.abs().sum() > 0 for g in padded_grads)


def test_packing_shares_the_common_start_and_lays_samples_end_to_end() -> None:
    llm = tiny_llama().eval()
    sizes = [3, 17, 6, 11, 4, 20]
    inputs = _batch(llm, sizes)
    start = shared_prefix_length(inputs)
    assert start == 1 + len(BEFORE)  # the bos row and the text before the visual rows
    rows = pack(inputs)
    own = [3 + size for size in sizes]  # visual rows + ids: each sample's positions after it
    width = inputs.inputs_embeds.shape[1]  # (B, L, D): L = 1 + 4 + 3 + 20 + 1
    assert len(rows.inputs_embeds) < len(sizes)
    assert rows.inputs_embeds.shape[1] <= start + 2 * (width - start)
    for sample, count in enumerate(own):  # every position of every sample once, in order
        where = (rows.segments == sample).nonzero()
        assert len(where) == count and where[:, 0].unique().numel() == 1
        row, columns = where[0, 0], where[:, 1]
        torch.testing.assert_close(
            rows.inputs_embeds[row, columns], inputs.inputs_embeds[sample, start : start + count]
        )
        assert rows.position_ids[row, columns].tolist() == list(range(start, start + count))
        assert torch.equal(rows.labels[row, columns], inputs.labels[sample, start : start + count])
    assert (rows.segments[:, :start] == PREFIX).all()
    assert (rows.labels[rows.segments == PAD] == IGNORE_INDEX).all()
    assert (rows.labels != IGNORE_INDEX).sum() == (inputs.labels != IGNORE_INDEX).sum()


def test_a_packed_sample_sees_only_the_common_start_and_itself() -> None:
    llm = tiny_llama().eval()
    inputs = _batch(llm, [9, 9, 9, 9])
    changed = _batch(llm, [9, 9, 9, 9])
    changed.inputs_embeds[2, 6:] += 1.0  # sample 2's own positions (after bos, 4 ids, 1 row)
    before, after = pack(inputs), pack(changed)
    assert len(before.inputs_embeds) < 4  # samples share rows
    with torch.no_grad():
        logits = [
            llm(
                inputs_embeds=rows.inputs_embeds,
                attention_mask=rows.attention_mask,
                position_ids=rows.position_ids,
            ).logits
            for rows in (before, after)
        ]
    others = (before.segments >= 0) & (before.segments != 2)
    torch.testing.assert_close(logits[0][others], logits[1][others])
    assert not torch.allclose(logits[0][before.segments == 2], logits[1][before.segments == 2])


def test_the_common_start_ends_before_any_label_and_leaves_each_sample_a_position() -> None:
    llm = tiny_llama().eval()
    inputs = _batch(llm, [5, 5, 5])
    inputs.labels[:, 3] = 7  # a target inside the shared text: the start stops before it
    assert shared_prefix_length(inputs) == 2  # the id at 3 is predicted at 2: 2 stays shared
    same = _batch(llm, [5, 5, 5])
    same.inputs_embeds[1:] = same.inputs_embeds[0]  # three identical samples
    same.labels[:] = IGNORE_INDEX
    real = int(same.attention_mask[0].sum())
    assert shared_prefix_length(same) == real - 1


def test_packed_training_steps_give_the_padded_steps_loss(tmp_path) -> None:
    data = make_data(tmp_path, videos=3, images=0)
    padded = loss_and_grads(load_recipe("tiny", data), samples=3)
    packed = loss_and_grads(load_recipe("tiny", [*data, "pack_batches=true"]), samples=3)
    for a, b in zip(padded, packed, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)
    assert padded[1].abs().sum() > 0


def test_the_math_attention_kernel_gives_the_same_attention() -> None:
    q, k, v = torch.randn(3, 2, 4, 9, 8).unbind(0)  # (B, heads, L, channels) each
    auto = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    with attention_kernel("math"):
        math = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(math, auto)
    with pytest.raises(ValueError, match="attention must be auto or math, not 'flash'"):
        attention_kernel("flash")
    with pytest.raises(RecipeError, match="attention must be auto or math"):
        load_recipe("tiny", ["data=[{file: x.json}]", "attention=flash"])
