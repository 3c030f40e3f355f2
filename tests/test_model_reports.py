"""Load reports: each original checkpoint kind gives exactly the keys the fixtures describe."""

from __future__ import annotations

import pytest
import torch
from _model_helpers import fixture_json, tensors

from videochat.errors import ModelLoadError
from videochat.model.config import VideoChatConfig
from videochat.model.convert import (
    convert_blip2,
    convert_eva,
    convert_hf_llm,
    convert_videochat,
    original_to_ours,
)
from videochat.model.load import build_skeleton
from videochat.model.videochat import target_shapes


@pytest.fixture(scope="module")
def target():
    return target_shapes(build_skeleton(VideoChatConfig.preset("tiny")))


def _ours(original_keys) -> list[str]:
    """Original names → ours; the rotary buffers have no counterpart (we recompute them)."""
    return sorted(k for k in map(original_to_ours, original_keys) if k is not None)


def test_blip2_report(target) -> None:
    ckpt = tensors("qformer/blip2_ckpt.safetensors")
    fixture = fixture_json("qformer/blip2_load_report.json")
    full = fixture_json("encode/released_layout.json")["blip2_ckpt_load_report_into_full_composite"]
    converted, report = convert_blip2(ckpt, target)
    # Missing in the original's full composite == our expected-missing (same weights, our names).
    assert sorted(report.expected_missing) == _ours(full["missing_keys"])
    # The original reports only t5_proj as unexpected and silently skips the text-side Q-Former
    # and position_ids; we report all of them as ignored.
    assert set(fixture["unexpected_keys"]) <= set(report.ignored)
    text_side = [k for k in ckpt if k.startswith("Qformer.") and original_to_ours(k) is None]
    assert sorted(report.ignored) == sorted(text_side + fixture["unexpected_keys"])
    assert any(".intermediate." in k for k in text_side) and any("cls." in k for k in text_side)
    assert sorted(report.loaded) == sorted(set(ckpt) - set(report.ignored))
    assert set(converted) == {original_to_ours(k) for k in report.loaded}
    assert fixture["qformer_values_equal_ckpt_after_load"]
    torch.testing.assert_close(converted["query_tokens"], ckpt["query_tokens"], rtol=0, atol=0)


def test_released_videochat_report(target) -> None:
    ckpt = tensors("encode/released_ckpt.safetensors")
    layout = fixture_json("encode/released_layout.json")
    assert sorted(ckpt) == sorted(layout["released_ckpt_keys_in_order"])
    converted, report = convert_videochat(ckpt, target)
    expected = layout["load_report_into_full_composite"]
    assert sorted(report.expected_missing) == _ours(expected["missing_keys"])
    assert len(expected["missing_keys"]) == 164 and expected["unexpected_keys"] == []
    stale = ["Qformer.bert.embeddings.position_ids"] + [k for k in ckpt if k.endswith("inv_freq")]
    assert sorted(report.ignored) == sorted(stale)
    assert len(report.loaded) == len(ckpt) - len(stale)
    assert "llama_proj.weight" in converted and "visual_encoder.gmhra.0.dpe.weight" in converted


def test_released_videochat_without_projection_is_refused(target) -> None:
    ckpt = dict(tensors("encode/released_ckpt.safetensors"))
    del ckpt["llama_proj.bias"]
    with pytest.raises(ModelLoadError, match=r"missing: llama_proj\.bias"):
        convert_videochat(ckpt, target, source="videochat_7b.pth")


def test_eva_report(target) -> None:
    ckpt = tensors("vision_inflate/ckpt_eva_img28.safetensors")
    converted, report = convert_eva(ckpt, target, VideoChatConfig.preset("tiny"))
    assert all(k.startswith("visual_encoder.") for k in converted)
    assert sorted(report.loaded) == sorted(set(ckpt) - set(report.ignored))
    gmhra = [k for k in target if k.startswith("visual_encoder.gmhra")]
    assert set(gmhra) <= set(report.expected_missing)
    assert not any(k.startswith("visual_encoder.blocks") for k in report.expected_missing)
    assert converted["visual_encoder.patch_embed.proj.weight"].ndim == 5  # inflated 2-D kernel


def test_hf_llm_report(target) -> None:
    sd = tensors("llm/hf/model.safetensors")
    converted, report = convert_hf_llm(sd, target)
    assert sorted(report.ignored) == sorted(k for k in sd if k.endswith("inv_freq"))
    assert set(converted) == {k for k in target if k.startswith("llm.")}
    assert not any(k.startswith("llm.") for k in report.expected_missing)
