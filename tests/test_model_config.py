"""VideoChatConfig: the original config format, round trips and validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from videochat.model.config import VideoChatConfig

# The released `video_chat/configs/config.json` (facts: keys and values of the original file).
ORIGINAL = {
    "model": {
        "vit_model": "eva_clip_g",
        "vit_model_path": "model/eva_vit_g.pth",
        "q_former_model_path": "model/blip2_pretrained_flant5xxl.pth",
        "llama_model_path": "model/stable-vicuna-13b",
        "videochat_model_path": "model/videochat_13b.pth",
        "img_size": 224,
        "num_query_token": 32,
        "drop_path_rate": 0.0,
        "use_grad_checkpoint": False,
        "vit_precision": "fp32",
        "freeze_vit": True,
        "freeze_mhra": False,
        "freeze_qformer": True,
        "low_resource": False,
        "max_txt_len": 320,
        "temporal_downsample": False,
        "no_lmhra": True,
        "double_lmhra": False,
        "lmhra_reduction": 2.0,
        "gmhra_layers": 8,
        "gmhra_drop_path_rate": 0.0,
        "gmhra_dropout": 0.5,
        "extra_num_query_token": 64,
    },
    "device": "cuda",
}


def test_original_config_fields_and_paths(tmp_path: Path) -> None:
    root = tmp_path / "video_chat"
    (root / "configs").mkdir(parents=True)
    (root / "model").mkdir()
    (root / "model" / "eva_vit_g.pth").write_bytes(b"")
    path = root / "configs" / "config.json"
    path.write_text(json.dumps(ORIGINAL))
    cfg = VideoChatConfig.from_original_json(path)
    assert cfg.vision.image_size == 224 and cfg.vision.gmhra_layers == 8
    assert cfg.vision.lmhra is False and cfg.vision.temporal_downsample is False
    assert (cfg.qformer.num_query_tokens, cfg.qformer.num_extra_query_tokens) == (32, 64)
    assert cfg.num_queries == 96 and cfg.max_text_len == 320 and cfg.low_resource is False
    # relative paths resolve against the original's working directory (the config's parent)
    assert cfg.checkpoints.vit == str((root / "model" / "eva_vit_g.pth").resolve())
    assert cfg.checkpoints.videochat.endswith("model/videochat_13b.pth")
    assert cfg.llm.path.endswith("model/stable-vicuna-13b") and cfg.llm.hf_config is None
    assert VideoChatConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_original_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "c.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="not an original VideoChat config"):
        VideoChatConfig.from_original_json(bad)
    bad.write_text(json.dumps({"model": {"vit_model": "clip_l"}}))
    with pytest.raises(ValueError, match="vit_model 'clip_l' unsupported"):
        VideoChatConfig.from_original_json(bad)


def test_validate_names_the_mismatch() -> None:
    cfg = VideoChatConfig.preset("tiny")
    cfg.qformer.vision_width = 32
    with pytest.raises(
        ValueError, match=r"qformer.vision_width \(32\) must equal vision.width \(64\)"
    ):
        cfg.validate()
