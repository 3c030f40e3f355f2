"""Each frame row's time as text before it (`VideoChatConfig.frame_stamps`, ours)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from videochat.embedded.config import embedded_config
from videochat.model import build_model, load_model, save_model
from videochat.model.load import load_tokenizer
from videochat.train.visual_cache import build_visual_cache

ASSET = Path(__file__).parents[1] / "videochat" / "assets" / "default"


def _model(stamps: bool = True):
    """The embedded layout: 5 shapes × 2 stretches merged into 5 LLM rows, 8 frame rows, 3 video
    rows (16 LLM rows), with the shipped tokenizer, which spells " 3" as one token."""
    tok = load_tokenizer(ASSET)
    config = embedded_config(
        len(tok), frame_rows=True, shape_stretches=2, merge_stretches=True, frame_stamps=stamps
    )
    return build_model(config, tok, seed=0)


def _embed(model, text: str) -> torch.Tensor:
    ids = model.tokenizer(text, add_special_tokens=False)["input_ids"]
    return model.llm.get_input_embeddings()(torch.tensor(ids))  # (L, D)


def test_each_frame_row_follows_its_time_spelt_as_the_answers_spell_it() -> None:
    model = _model()
    hidden = torch.randn(2, model.config.num_queries, 128)  # (B, Q, C)
    times = torch.tensor([[0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5], [1.0, 2.2] + [3.0] * 6])
    with torch.no_grad():
        plain = model.project_rows(hidden)  # (B, 16, D): no times, no stamps
        stamped = model.project_rows(hidden, times)  # (B, 16 + 3·8, D)
        assert plain.shape[1] == 16 and stamped.shape[1] == 40
        # the 5 merged shape rows come first, as before; the 3 video rows last
        torch.testing.assert_close(stamped[:, :5], plain[:, :5])
        torch.testing.assert_close(stamped[:, -3:], plain[:, -3:])
        for k in range(8):  # frame row k (LLM row 5 + k) after its three stamp rows
            torch.testing.assert_close(stamped[:, 5 + 4 * k + 3], plain[:, 5 + k])
        # 3.5 s is " 3", ".", "5": exactly the tokens of "at 3.5 seconds"
        assert model.tokenizer.tokenize(" 3.5") == ["Ġ3", ".", "5"]
        torch.testing.assert_close(stamped[0, 5 + 12 : 5 + 15], _embed(model, " 3.5"))
        torch.testing.assert_close(stamped[1, 5 + 4 : 5 + 7], _embed(model, " 2.2"))


def test_a_video_needs_its_times_and_an_image_gets_no_stamps() -> None:
    model = _model()
    with torch.no_grad(), pytest.raises(ValueError, match=r"pass the frames' times"):
        model.encode_video(torch.randn(1, 8, 3, 112, 112))
    with torch.no_grad():
        image = model.encode_video(torch.randn(1, 1, 3, 112, 112), torch.zeros(1, 1))
        video = model.encode_video(torch.randn(1, 8, 3, 112, 112), torch.arange(8.0)[None])
    assert image.shape[1] == 16 and video.shape[1] == 40


def test_it_is_off_unless_asked_and_needs_frame_rows() -> None:
    config = embedded_config(64, frame_rows=True)
    assert not config.frame_stamps  # the original presets and the embedded default: off
    with pytest.raises(ValueError, match="frame_stamps needs frame rows"):
        embedded_config(64, frame_stamps=True).validate()


def test_cached_rows_keep_their_times_and_survive_a_round_trip(tmp_path: Path) -> None:
    model = _model()
    save_model(model, tmp_path / "m")
    back = load_model(tmp_path / "m", device="cpu", dtype="fp32")
    assert back.config.frame_stamps
    pixels, times = torch.randn(8, 3, 112, 112), torch.linspace(0.4, 7.4, 8)

    def load(media, path, rng):  # one fixed "sampling" of one video
        return pixels, times, "msg"

    cache = build_visual_cache(back, {"v.mp4": "video"}, load, 1, seed=0)
    clip = cache.pick("v.mp4", random.Random(0))
    torch.testing.assert_close(clip.times, times)
    with torch.no_grad():  # the training loop's cached path gives what encoding the clip gives
        from_cache = back.project_rows(clip.rows[None], clip.times[None])
        direct = back.encode_video(pixels[None], times[None])
    torch.testing.assert_close(from_cache, direct)
