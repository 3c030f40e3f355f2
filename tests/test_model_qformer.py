"""Q-Former parity with the original (tests/fixtures/parity/qformer) and key conversion."""

from __future__ import annotations

import pytest
import torch
from _model_helpers import fixture_json, tensors

from videochat.errors import ModelLoadError
from videochat.model.config import QFormerConfig, VideoChatConfig
from videochat.model.convert import convert_tensors, original_to_ours
from videochat.model.qformer import FP32LayerNorm, QFormer

TINY = VideoChatConfig.preset("tiny").qformer  # the fixtures' Q-Former


def _strip(key: str) -> str | None:
    ours = original_to_ours(key)
    return None if ours is None or not ours.startswith("qformer.") else ours[len("qformer.") :]


@pytest.fixture(scope="module")
def qformer() -> QFormer:
    model = QFormer(TINY).eval()
    target = {k: v.shape for k, v in model.state_dict().items()}
    sd, report = convert_tensors(
        tensors("qformer/weights.safetensors"),
        target,
        _strip,
        source="fixture",
        required=lambda k: True,
    )
    model.load_state_dict(sd, strict=True)
    assert report.expected_missing == []
    assert sorted(report.ignored) == [
        "Qformer.bert.embeddings.position_ids",
        "extra_query_tokens",
        "query_tokens",
    ]
    return model


@pytest.mark.parametrize(
    "mask, expected",
    [
        ("encoder_attention_mask", "output"),
        ("encoder_attention_mask_partial", "output_partial_mask"),
    ],
)
def test_qformer_matches_original(qformer: QFormer, mask: str, expected: str) -> None:
    io = tensors("qformer/io.safetensors")
    with torch.no_grad():
        out = qformer(io["query_embeds"], io["encoder_hidden_states"], io[mask])
    torch.testing.assert_close(out, io[expected], rtol=1e-5, atol=1e-5)


def test_partial_mask_changes_only_the_masked_sample(qformer: QFormer) -> None:
    io = tensors("qformer/io.safetensors")
    assert not torch.allclose(io["output"][1], io["output_partial_mask"][1])
    with torch.no_grad():
        out = qformer(
            io["query_embeds"], io["encoder_hidden_states"], io["encoder_attention_mask_partial"]
        )
    torch.testing.assert_close(out[0], io["output"][0], rtol=1e-5, atol=1e-5)


def test_intermediate_layers_match(qformer: QFormer) -> None:
    io = tensors("qformer/io.safetensors")
    with torch.no_grad():
        x = qformer.norm(io["query_embeds"])
        torch.testing.assert_close(x, io["debug.embeddings_out"], rtol=1e-5, atol=1e-5)
        for i, layer in enumerate(qformer.layers):
            x = layer(x, io["encoder_hidden_states"], None)
            torch.testing.assert_close(x, io[f"debug.layer_out.{i}"], rtol=1e-5, atol=1e-5)


def test_cross_attention_every_second_layer(qformer: QFormer) -> None:
    cfg = fixture_json("qformer/config.json")
    has_cross = [i for i, layer in enumerate(qformer.layers) if layer.cross_attn is not None]
    assert has_cross == cfg["cross_attention_layers"] == [0, 2]


def test_shape_mismatch_names_key_and_shapes() -> None:
    wide = QFormer(QFormerConfig(width=32, layers=4, heads=4, ffn=64, vision_width=48))
    target = {k: v.shape for k, v in wide.state_dict().items()}
    with pytest.raises(
        ModelLoadError,
        match=r"crossattention\.self\.key\.weight has shape \(32, 64\) but the model needs \(32, 48\)",
    ):
        convert_tensors(
            tensors("qformer/weights.safetensors"),
            target,
            _strip,
            source="fixture",
            required=lambda k: True,
        )


def test_fp32_layernorm_computes_in_float32() -> None:
    torch.manual_seed(0)
    norm = FP32LayerNorm(16, eps=1e-5)
    with torch.no_grad():
        norm.weight.normal_()
    x = torch.randn(2, 3, 16) * 50
    out = norm(x.to(torch.bfloat16))
    assert out.dtype == torch.bfloat16
    ref = torch.nn.functional.layer_norm(
        x.to(torch.bfloat16).float(), (16,), norm.weight, norm.bias, 1e-5
    )
    torch.testing.assert_close(out, ref.to(torch.bfloat16), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("frames", "stretches"),
    [
        (8, [(j, j + 1) for j in range(8)]),  # one frame a row
        (16, [(2 * j, 2 * j + 2) for j in range(8)]),
        (1, [(0, 1)] * 8),  # an image: every frame row reads it
        (12, [(0, 1), (1, 3), (3, 4), (4, 6), (6, 7), (7, 9), (9, 10), (10, 12)]),
    ],
)
def test_frame_row_mask_gives_each_frame_row_its_stretch_of_frames(frames, stretches) -> None:
    from videochat.model.qformer import query_row_mask

    cfg = QFormerConfig(num_query_tokens=8, num_extra_query_tokens=8, frame_rows=8)
    cfg.frame_rows_start, per_frame = 5, 17
    tokens = frames * per_frame + 1  # + the GMHRA token, which frame rows do not read
    mask = query_row_mask(cfg, frames, per_frame, tokens)
    assert mask.shape == (16, tokens) and mask.dtype == torch.bool
    for row in (*range(5), *range(13, 16)):
        assert mask[row].all()
    for j, (first, last) in enumerate(stretches):
        expected = torch.zeros(tokens, dtype=torch.bool)
        expected[first * per_frame : last * per_frame] = True
        assert torch.equal(mask[5 + j], expected), j


@pytest.mark.parametrize(
    ("frames", "lookback", "spans"),
    [
        (8, 1, [(0, 1)] + [(j - 1, j + 1) for j in range(1, 8)]),  # the frame before too
        (8, 2, [(0, 1), (0, 2)] + [(j - 2, j + 1) for j in range(2, 8)]),
        (16, 1, [(0, 2)] + [(2 * j - 1, 2 * j + 2) for j in range(1, 8)]),
        (1, 1, [(0, 1)] * 8),  # an image: nothing before it
    ],
)
def test_frame_rows_with_lookback_read_the_frames_before_their_own(frames, lookback, spans):
    from videochat.model.qformer import query_row_mask

    cfg = QFormerConfig(num_query_tokens=8, num_extra_query_tokens=13, frame_rows=8)
    cfg.frame_rows_start, cfg.stretch_rows, per_frame = 10, [[0, 10, 2]], 17
    plain = query_row_mask(cfg, frames, per_frame, frames * per_frame + 1)
    cfg.frame_row_lookback = lookback
    mask = query_row_mask(cfg, frames, per_frame, frames * per_frame + 1)
    for j, (first, last) in enumerate(spans):
        expected = torch.zeros(frames * per_frame + 1, dtype=torch.bool)
        expected[first * per_frame : last * per_frame] = True
        assert torch.equal(mask[10 + j], expected), j
    assert torch.equal(mask[:10], plain[:10]) and torch.equal(mask[18:], plain[18:])


def test_a_frame_row_lookback_without_frame_rows_or_below_zero_is_refused() -> None:
    from videochat.embedded.config import embedded_config, vocab_rows

    config = embedded_config(vocab_rows(300))
    config.qformer.frame_row_lookback = 1
    with pytest.raises(ValueError, match="frame_row_lookback needs frame rows"):
        config.validate()
    config = embedded_config(vocab_rows(300), frame_rows=True)
    config.qformer.frame_row_lookback = -1
    with pytest.raises(ValueError, match="frame_row_lookback must be >= 0, got -1"):
        config.validate()


def test_stretch_rows_split_their_rows_into_blocks_reading_one_stretch_each() -> None:
    from videochat.model.qformer import query_row_mask

    cfg = QFormerConfig(num_query_tokens=8, num_extra_query_tokens=13, frame_rows=8)
    cfg.frame_rows_start, cfg.stretch_rows, per_frame = 10, [[0, 10, 2]], 17
    tokens = 8 * per_frame + 1
    mask = query_row_mask(cfg, 8, per_frame, tokens)
    first_half = torch.zeros(tokens, dtype=torch.bool)
    first_half[: 4 * per_frame] = True
    second_half = torch.zeros(tokens, dtype=torch.bool)
    second_half[4 * per_frame : 8 * per_frame] = True
    for row in range(5):
        assert torch.equal(mask[row], first_half) and torch.equal(mask[5 + row], second_half)
    assert mask[10, :per_frame].all() and not mask[10, per_frame:].any()  # frame rows unchanged
    assert mask[18:].all()


@pytest.mark.parametrize(
    ("group", "why"),
    [
        ([0, 10, 3], "split evenly"),
        ([12, 10, 2], "within the 21 query rows"),
        ([6, 6, 2], r"overlaps another \(stretch_rows or the frame rows\) at rows \[10, 11\]"),
    ],
)
def test_a_row_group_that_does_not_fit_is_refused(group, why) -> None:
    from videochat.embedded.config import embedded_config, vocab_rows

    config = embedded_config(vocab_rows(300), frame_rows=True, shape_stretches=2)
    config.qformer.stretch_rows = [group]
    with pytest.raises(ValueError, match=why):
        config.validate()


@pytest.mark.parametrize(
    ("stretches", "moved_shape_rows"),
    [(1, [True] * 5), (2, [False] * 5 + [True] * 5)],  # frame 6: in the second half
)
def test_frame_and_shape_rows_read_only_their_own_frames(stretches, moved_shape_rows) -> None:
    from videochat.embedded.config import embedded_config, vocab_rows
    from videochat.model import build_model

    config = embedded_config(vocab_rows(300), frame_rows=True, shape_stretches=stretches)
    config.qformer.layers = 1  # one layer: the self-attention runs before any row has read
    model = build_model(config, None, seed=0).eval()
    pixels = torch.randn(1, 8, 3, 112, 112)
    changed = pixels.clone()
    changed[:, 6] = torch.randn(3, 112, 112)
    with torch.no_grad():
        before = model.encode_video_steps(pixels)["qformer_last_hidden_state"][0]
        after = model.encode_video_steps(changed)["qformer_last_hidden_state"][0]
    moved = (after - before).norm(dim=-1) > 1e-4  # (Q,)
    assert moved.tolist() == moved_shape_rows + [j == 6 for j in range(8)] + [True] * 3


def test_frame_rows_off_every_row_reads_every_frame() -> None:
    from videochat.embedded.config import embedded_config, vocab_rows
    from videochat.model import build_model

    config = embedded_config(vocab_rows(300), frame_rows=False)
    config.qformer.layers = 1
    pixels = torch.randn(1, 8, 3, 112, 112)
    changed = pixels.clone()
    changed[:, 3] = torch.randn(3, 112, 112)
    plain = build_model(config, None, seed=0).eval()
    with torch.no_grad():
        before = plain.encode_video_steps(pixels)["qformer_last_hidden_state"][0]
        after = plain.encode_video_steps(changed)["qformer_last_hidden_state"][0]
    assert ((after - before).norm(dim=-1) > 1e-4).all()
