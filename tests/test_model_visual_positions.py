"""The position codes on the Q-Former's input (`QFormerConfig.input_positions`, our option)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _model_helpers import FIXTURES

from videochat.model import VideoChatConfig, build_model, load_model, save_model
from videochat.model.load import load_tokenizer
from videochat.model.visual_positions import VisualPositions, sines
from videochat.train.recipe import FreezeSpec
from videochat.train.setup import apply_freeze


def test_codes_give_column_row_and_frame_in_their_own_channels() -> None:
    codes = VisualPositions(width=32, grid=4, max_frames=8)
    spatial, temporal = codes.spatial.detach(), codes.temporal.detach()  # (17, 32), (8, 32)
    assert not spatial[0].any()  # the cls token has no place in the frame
    # patch 6 (row 1, column 2) and patch 9 (row 2, column 1): columns in channels 0-7 only
    torch.testing.assert_close(spatial[1 + 6, :8], sines(torch.tensor([2.5 / 4]), 8)[0])
    torch.testing.assert_close(spatial[1 + 9, 8:16], sines(torch.tensor([2.5 / 4]), 8)[0])
    assert not spatial[:, 16:].any() and not temporal[:, :16].any() and not temporal[:, 24:].any()
    # the lowest frequency's sine rises with the column, the row and the frame, so a linear
    # read-out of an average of codes is an average position
    assert (spatial[1:5, 0].diff() > 0).all() and (spatial[1::4, 8].diff() > 0).all()
    assert (temporal[:, 16].diff() > 0).all()


def test_codes_are_added_per_token_and_frame_and_spare_the_gmhra_token() -> None:
    codes = VisualPositions(width=32, grid=4, max_frames=8)
    tokens = torch.zeros(2, 3 * 17 + 1, 32)  # 3 frames of cls + 16 patches, one GMHRA token
    out = codes(tokens, frames=3)
    frame2 = out[0, 2 * 17 : 3 * 17]
    torch.testing.assert_close(frame2, (codes.spatial + codes.temporal[2]).detach())
    assert not out[:, -1].any()
    with pytest.raises(ValueError, match="do not fit 3 frames of 17"):
        codes(torch.zeros(1, 3 * 17 + 2, 32), frames=3)
    with pytest.raises(ValueError, match="hold 8 frames, the clip has 9"):
        codes(torch.zeros(1, 9 * 17, 32), frames=9)


def test_model_with_input_positions_sees_where_and_when(tmp_path: Path) -> None:
    tok = load_tokenizer(FIXTURES / "tokenizer")
    plain_cfg = VideoChatConfig.preset("tiny")
    cfg = VideoChatConfig.preset("tiny")
    cfg.qformer.input_positions = True
    plain, model = build_model(plain_cfg, tok, seed=0), build_model(cfg, tok, seed=0)
    assert plain.visual_positions is None and "visual_positions" not in str(plain.state_dict())
    pixels = torch.randn(2, 2, 3, 28, 28)
    with torch.no_grad():
        moved = model.encode_video(pixels) - plain.encode_video(pixels)
        swapped = model.encode_video(pixels.flip(1)) - plain.encode_video(pixels.flip(1))
    assert moved.abs().amax() > 1e-3  # the codes change what the rows read
    assert not torch.allclose(moved, swapped)  # and depend on the frames' order
    save_model(model, tmp_path / "m")
    back = load_model(tmp_path / "m", device="cpu", dtype="fp32")
    assert back.config.qformer.input_positions and back.load_report.expected_missing == []
    torch.testing.assert_close(back.visual_positions.temporal, model.visual_positions.temporal)
    assert "visual_positions.spatial" in apply_freeze(back, FreezeSpec(qformer=False))
    assert "visual_positions.spatial" not in apply_freeze(back, FreezeSpec(qformer=True))


def test_time_codes_give_each_frames_seconds_in_the_fourth_quarter() -> None:
    from videochat.model.visual_positions import TIME_HORIZON

    codes = VisualPositions(width=32, grid=4, max_frames=8, times=True)
    tokens = torch.zeros(2, 3 * 17 + 1, 32)  # 2 clips of 3 frames, one GMHRA token
    times = torch.tensor([[0.5, 1.5, 2.5], [1.0, 5.0, 9.0]])
    added = codes.time_codes(tokens, 3, times)  # (2, 52, 32)
    assert added.shape == tokens.shape and not added[:, -1].any()  # none on the GMHRA token
    per_frame = added[:, :-1].unflatten(1, (3, 17))  # (2, 3, 17, 32)
    assert not per_frame[..., :24].any()  # quarters 1-3 are the position codes' alone
    for clip, frame in ((0, 1), (1, 2)):
        expected = sines(times[clip, frame : frame + 1] / TIME_HORIZON, 8)[0]
        for token in (0, 5, 16):  # every token of the frame, its cls token included
            torch.testing.assert_close(per_frame[clip, frame, token, 24:], expected)
    # the same frame index at another time gets another code: time is not the frame's place
    assert not torch.allclose(per_frame[0, 1], per_frame[1, 1])
    assert (per_frame[1, :, 0, 24].diff() > 0).all()  # the lowest sine rises with the seconds
    # one frame without times (an image) is at 0 s; a clip without them is refused
    torch.testing.assert_close(
        codes.time_codes(torch.zeros(1, 17, 32), 1, None)[0, :, 24:],
        sines(torch.zeros(1), 8).expand(17, 8),
    )
    with pytest.raises(ValueError, match="pass the clip's timestamps"):
        codes.time_codes(tokens, 3, None)
    with pytest.raises(ValueError, match=r"times must be \(batch, frames\) = \(2, 3\)"):
        codes.time_codes(tokens, 3, times[:, :2])


def test_value_codes_change_what_a_token_says_not_where_attention_goes() -> None:
    from videochat.model.qformer import QFormerAttention

    torch.manual_seed(0)
    attention = QFormerAttention(width=16, context_width=8, heads=2, eps=1e-6).eval()
    x, context = torch.randn(1, 3, 16), torch.randn(1, 5, 8)
    codes = torch.randn(1, 5, 8)
    with torch.no_grad():
        coded = attention(x, context, value_context=context + codes)
        # by hand: the keys from the context alone, the values from context + codes
        q = attention._split(attention.query(x))
        k = attention._split(attention.key(context))
        v = attention._split(attention.value(context + codes))
        weights = torch.softmax(q @ k.transpose(-1, -2) / 8**0.5, -1)  # (1, 2, 3, 5)
        mixed = (weights @ v).transpose(1, 2).reshape(x.shape)
        torch.testing.assert_close(coded, attention.norm(attention.out(mixed) + x))
        assert not torch.allclose(coded, attention(x, context))


def test_a_model_reading_times_encodes_when_the_frames_were_shown() -> None:
    tok = load_tokenizer(FIXTURES / "tokenizer")
    cfg = VideoChatConfig.preset("tiny")
    cfg.qformer.input_positions = cfg.qformer.input_times = True
    model = build_model(cfg, tok, seed=0)
    plain = build_model(VideoChatConfig.preset("tiny"), tok, seed=0)
    pixels = torch.randn(1, 2, 3, 28, 28)
    with torch.no_grad():
        early = model.encode_video(pixels, torch.tensor([[0.5, 1.0]]))
        late = model.encode_video(pixels, torch.tensor([[4.5, 9.0]]))
        # a model without the option ignores times
        torch.testing.assert_close(
            plain.encode_video(pixels, torch.tensor([[4.5, 9.0]])), plain.encode_video(pixels)
        )
    assert (early - late).abs().amax() > 1e-3
    with pytest.raises(ValueError, match="reads each frame's timestamp"):
        model.encode_video(pixels)
    cfg = VideoChatConfig.preset("tiny")
    cfg.qformer.input_times = True
    with pytest.raises(ValueError, match="input_times needs qformer.input_positions"):
        cfg.validate()


def test_value_rows_read_the_codes_and_the_other_rows_the_plain_values() -> None:
    from videochat.model.qformer import QFormerAttention

    torch.manual_seed(0)
    attention = QFormerAttention(width=16, context_width=8, heads=2, eps=1e-6).eval()
    x, context = torch.randn(1, 4, 16), torch.randn(1, 5, 8)
    coded_context = context + torch.randn(1, 5, 8)
    rows = torch.tensor([False, True, False, True])
    with torch.no_grad():
        mixed = attention(x, context, value_context=coded_context, value_rows=rows)
        torch.testing.assert_close(
            mixed[:, rows], attention(x, context, None, coded_context)[:, rows]
        )
        torch.testing.assert_close(mixed[:, ~rows], attention(x, context)[:, ~rows])


def test_times_on_the_frame_rows_only_leave_the_other_rows_untimed() -> None:
    from videochat.embedded.config import embedded_config, vocab_rows

    config = embedded_config(vocab_rows(300), frame_rows=True, frame_row_times=True)
    q = config.qformer
    assert q.input_times and q.input_positions and q.time_rows == "frames"
    config.qformer.layers = 1  # one layer: no self-attention after the cross-attention
    model = build_model(config, None, seed=0).eval()
    pixels = torch.randn(1, 8, 3, 112, 112)
    with torch.no_grad():
        early = model.encode_video_steps(pixels, torch.linspace(0, 3.5, 8)[None])
        late = model.encode_video_steps(pixels, torch.linspace(0, 10.5, 8)[None])
    moved = (early["qformer_last_hidden_state"] - late["qformer_last_hidden_state"]).abs()
    frames = slice(q.frame_rows_start, q.frame_rows_start + q.frame_rows)
    assert (moved[0, frames][1:].amax(-1) > 1e-3).all()  # frames 1-7: later in `late`
    assert float(moved[0, : q.frame_rows_start].amax()) == 0.0  # the shape rows read no time
    assert float(moved[0, frames.stop :].amax()) == 0.0  # nor do the video rows
    assert float(moved[0, frames][0].amax()) == 0.0  # frame 0 is at 0 s in both clips


def test_time_rows_are_all_or_the_frame_rows() -> None:
    cfg = VideoChatConfig.preset("tiny")
    cfg.qformer.input_positions = cfg.qformer.input_times = True
    cfg.qformer.time_rows = "shapes"
    with pytest.raises(ValueError, match="time_rows must be 'all' or 'frames', got 'shapes'"):
        cfg.validate()
    cfg.qformer.time_rows = "frames"
    with pytest.raises(ValueError, match="'frames' needs frame rows"):
        cfg.validate()
