"""Whole encode path and LLM parity with the original (fixtures `encode/`, `llm/`, `prompts/`)."""

from __future__ import annotations

import pytest
import torch
from _model_helpers import encode_model, fixture_json, tensors

from videochat.errors import ModelLoadError
from videochat.model.config import VideoChatConfig
from videochat.model.load import build_skeleton

TOL = {"rtol": 1e-5, "atol": 1e-5}
STEPS = ("visual_encoder_out", "image_embeds", "qformer_last_hidden_state", "inputs_llama")


@pytest.fixture(scope="module")
def model():
    return encode_model()


@pytest.mark.parametrize("case", ["video", "image"])
def test_encode_matches_original(model, case: str) -> None:
    io = tensors("encode/io.safetensors")
    with torch.no_grad():
        steps = model.encode_video_steps(io[f"{case}.input"])
    for name in STEPS:
        torch.testing.assert_close(steps[name], io[f"{case}.{name}"], **TOL, msg=name)
    torch.testing.assert_close(
        model.encode_video(io[f"{case}.input"]), io[f"{case}.inputs_llama"], **TOL
    )


def test_llm_logits_and_loss_match_original(model) -> None:
    io = tensors("llm/io.safetensors")
    with torch.no_grad():
        out = model.llm(inputs_embeds=io["inputs_embeds"])
        torch.testing.assert_close(out.logits, io["logits_inputs_embeds"], **TOL)
        out = model.llm(input_ids=io["input_ids"], labels=io["labels"])
        torch.testing.assert_close(out.logits, io["logits_input_ids"], **TOL)
        torch.testing.assert_close(out.loss.reshape(1), io["loss"], **TOL)
        out = model.llm(
            input_ids=io["padded_input_ids"], attention_mask=io["padded_attention_mask"]
        )
        torch.testing.assert_close(out.logits, io["logits_padded"], **TOL)


def test_embed_segments_matches_chat_context(model) -> None:
    chat = fixture_json("prompts/chat.json")
    embeds = tensors("prompts/chat.safetensors")
    case = next(c for c in chat["cases"] if c["name"] == "video_two_turns")
    turn = case["turns"][0]
    ids = [torch.tensor(s) for s in turn["segment_ids (bos only on first)"]]
    visual = [embeds["video_two_turns.img_list.0"]]
    out = model.embed_segments(ids, visual)
    torch.testing.assert_close(out, embeds["video_two_turns.turn0.context_embeds"], **TOL)
    with pytest.raises(ValueError, match="2 text segments need 1 visual"):
        model.embed_segments(ids, [])


def test_load_original_reports_and_rejects_bad_dicts() -> None:
    sd = tensors("encode/weights.safetensors")
    model = build_skeleton(VideoChatConfig.preset("tiny"))
    report = model.load_original_state_dict(sd)
    assert report.expected_missing == [] and report.initialized == []
    inv_freq = sorted(k for k in sd if k.endswith("rotary_emb.inv_freq"))
    assert sorted(report.ignored) == sorted(["Qformer.bert.embeddings.position_ids", *inv_freq])
    assert len(report.loaded) == len(sd) - len(report.ignored)

    bad = dict(sd)
    bad["llama_proj.weight"] = torch.zeros(48, 16)
    with pytest.raises(
        ModelLoadError,
        match=r"llama_proj\.weight has shape \(48, 16\) but the model needs \(48, 32\)",
    ):
        build_skeleton(VideoChatConfig.preset("tiny")).load_original_state_dict(bad)
    del bad["llama_proj.weight"]
    with pytest.raises(ModelLoadError, match=r"missing: llama_proj\.weight"):
        build_skeleton(VideoChatConfig.preset("tiny")).load_original_state_dict(bad)
