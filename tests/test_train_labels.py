"""Parity of the stage-1 / stage-2 prompt and label construction with the original's fixtures."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from tests._train_helpers import (
    PROMPTS,
    fixture_llm,
    fixture_tokenizer,
    load_cases,
    parse_conversation,
)
from videochat.train.labels import (
    IGNORE_INDEX,
    assemble,
    caption_sample,
    conversation_sample,
    conversation_text,
    rows_first_sample,
)

IT_CASES = load_cases("it_targets")
PT_CASES = load_cases("pt_targets")


def _check_against_fixture(inputs, tensors, prefix):
    torch.testing.assert_close(
        inputs.inputs_embeds, tensors[f"{prefix}.inputs_embeds"], atol=1e-5, rtol=1e-5
    )
    assert torch.equal(inputs.attention_mask, tensors[f"{prefix}.attention_mask"])
    assert torch.equal(inputs.labels, tensors[f"{prefix}.labels"])
    with torch.no_grad():
        out = fixture_llm()(
            inputs_embeds=inputs.inputs_embeds,
            attention_mask=inputs.attention_mask,
            labels=inputs.labels,
        )
    torch.testing.assert_close(out.loss.reshape(1), tensors[f"{prefix}.loss"], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("case", IT_CASES, ids=[c["name"] for c in IT_CASES])
def test_stage2_conversation_labels_match_original(case):
    tok = fixture_tokenizer()
    tensors = load_file(str(PROMPTS / "it_targets.safetensors"))
    start, end = ("<Video>", "</Video>") if case["media"] == "video" else ("<Image>", "</Image>")
    samples = []
    for fixture_sample in case["samples"]:
        parts = parse_conversation(fixture_sample["text_input"], start, end)
        text = conversation_text(
            parts["qa"], start_token=start, end_token=end, msg=parts["msg"], system=parts["system"]
        )
        assert text == fixture_sample["text_input"]
        sample = conversation_sample(tok, text, end)
        assert sample.before_ids == fixture_sample["p_before_ids"]
        assert sample.after_ids == fixture_sample["p_after_ids"]
        samples.append(sample)
    visual = tensors[f"{case['name']}.img_embeds"]
    embed = fixture_llm().get_input_embeddings()
    with torch.no_grad():
        inputs = assemble(
            visual,
            samples,
            embed,
            bos_id=tok.bos_token_id,
            pad_id=tok.pad_token_id,
            bos_mode="constant",
            max_len=case["max_txt_len"] + case["img_len"],
        )
    assert inputs.inputs_embeds.shape[1] == case["txt_len"]
    for i, fixture_sample in enumerate(case["samples"]):
        lo, hi = fixture_sample["img_pos_half_open"]
        torch.testing.assert_close(inputs.inputs_embeds[i, lo:hi], visual[i])
        assert int(inputs.attention_mask[i].sum()) == fixture_sample["input_len_kept"] + 1
    _check_against_fixture(inputs, tensors, case["name"])


def test_stage2_targets_are_answers_and_separators():
    """Readable check of the rule: questions and message masked, answers + `###` learned."""
    tok = fixture_tokenizer()
    text = conversation_text(
        [("Q one?", "Answer one."), ("Q two?", "Answer two.")],
        start_token="<Video>",
        end_token="</Video>",
        msg=" The video contains 1 frames sampled at 0.0 seconds. ",
    )
    sample = conversation_sample(tok, text, "</Video>")
    learned = tok.decode([t for t in sample.after_labels if t != IGNORE_INDEX])
    assert "Answer one." in learned and "Answer two." in learned
    assert "Q one" not in learned and "Q two" not in learned and "video contains" not in learned


def test_rows_first_layout_puts_nothing_before_the_rows_and_learns_the_answers():
    tok = fixture_tokenizer()
    sample = rows_first_sample(tok, [("Q one?", "Answer one."), ("Q two?", "Answer two.")])
    assert sample.before_ids == []
    assert tok.decode(sample.after_ids).strip().startswith("###Human: Q one?")
    learned = tok.decode([t for t in sample.after_labels if t != IGNORE_INDEX])
    assert "Answer one." in learned and "Answer two." in learned
    assert "Q one" not in learned and "Q two" not in learned


@pytest.mark.parametrize("case", PT_CASES, ids=[c["name"] for c in PT_CASES])
def test_stage1_caption_labels_match_original(case):
    tok = fixture_tokenizer()
    tensors = load_file(str(PROMPTS / "pt_targets.safetensors"))
    image = case["T"] == 1
    prompts = case["img_prompt_list"] if image else case["prompt_list"]
    prompt = prompts[0] if prompts else None
    samples = [
        caption_sample(
            tok,
            caption,
            prompt,
            image=image,
            end_sym=case["end_sym"],
            max_txt_len=case["max_txt_len"],
        )
        for caption in case["captions"]
    ]
    traced = case["tokenizer_call_trace"]
    if prompt:
        assert samples[0].before_ids == traced[0]["input_ids"][0]
    visual = tensors[f"{case['name']}.img_embeds"]
    with torch.no_grad():
        inputs = assemble(
            visual,
            samples,
            fixture_llm().get_input_embeddings(),
            bos_id=tok.bos_token_id,
            pad_id=tok.pad_token_id,
            bos_mode="embed",
        )
    assert inputs.inputs_embeds.shape[1] == case["total_len"]
    _check_against_fixture(inputs, tensors, case["name"])


def test_stage1_prompt_without_placeholder_is_rejected():
    with pytest.raises(ValueError, match="<VideoHere>"):
        caption_sample(fixture_tokenizer(), "a cat", "###Human: hi ###Assistant: ", image=False)
