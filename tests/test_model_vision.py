"""Vision encoder and EVA conversion: parity with the original (fixture README §1–3) and behaviour."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file
from torch.testing import assert_close

from videochat.errors import ModelLoadError
from videochat.model.config import VisionConfig
from videochat.model.convert_vision import convert_eva_checkpoint, is_temporal_key
from videochat.model.vision import VisionEncoder, output_tokens

TOL = {"rtol": 1e-5, "atol": 1e-5}

# The fixtures' constructor kwargs in our config fields (config.json → constructor_kwargs).
RELEASED = VisionConfig(image_size=28, width=64, depth=4, heads=4, gmhra_layers=2)
LMHRA = dataclasses.replace(
    RELEASED, gmhra_layers=3, lmhra=True, double_lmhra=True, temporal_downsample=True
)
CONFIGS = {"vision_released": RELEASED, "vision_lmhra": LMHRA}
INFLATE_TARGET = {"same_size": RELEASED, "interp42to28": RELEASED, "inflate_t3": LMHRA}


def _encoder(fixtures_dir, name: str) -> VisionEncoder:
    """The encoder of fixture `name`, with its weights loaded strictly, in eval mode."""
    enc = VisionEncoder(CONFIGS[name]).eval()
    enc.load_state_dict(load_file(fixtures_dir / name / "weights.safetensors"), strict=True)
    return enc


def _capture_debug(enc: VisionEncoder) -> dict[str, torch.Tensor]:
    """Record block and GMHRA outputs under the fixture's `debug.*` names."""
    seen: dict[str, torch.Tensor] = {}
    for i, block in enumerate(enc.blocks):
        block.register_forward_hook(lambda m, a, out, i=i: seen.__setitem__(f"block_out.{i}", out))
    for j, module in enumerate(enc.gmhra):
        # The original keeps the GMHRA token as (1, B, C); ours is (B, 1, C).
        module.register_forward_hook(
            lambda m, a, out, j=j: seen.__setitem__(f"gmhra_cls_out.{j}", out.transpose(0, 1))
        )
    enc.patch_embed.register_forward_hook(
        lambda m, a, out: seen.__setitem__("patch_embed_out", out)
    )
    return seen


@pytest.mark.parametrize("name", ["vision_released", "vision_lmhra"])
def test_state_dict_keys_are_the_original_ones_in_order(fixtures_dir, name):
    meta = json.loads((fixtures_dir / name / "config.json").read_text())
    enc = VisionEncoder(CONFIGS[name])
    assert list(enc.state_dict()) == meta["state_dict_keys_in_order"]
    shapes = {k: list(v.shape) for k, v in enc.state_dict().items()}
    assert shapes == {k: v["shape"] for k, v in meta["state_dict"].items()}


@pytest.mark.parametrize("name", ["vision_released", "vision_lmhra"])
def test_forward_matches_original(fixtures_dir, name):
    enc = _encoder(fixtures_dir, name)
    io = load_file(fixtures_dir / name / "io.safetensors")
    seen = _capture_debug(enc)
    with torch.no_grad():
        out = enc(io["input"])
    assert out.shape == io["output"].shape
    assert_close(out, io["output"], **TOL)
    debug = {k.removeprefix("debug."): v for k, v in io.items() if k.startswith("debug.")}
    assert set(debug) == set(seen)
    for key, expected in debug.items():
        assert_close(seen[key], expected, **TOL, msg=lambda m, key=key: f"{key}: {m}")


def test_output_token_count_and_temporal_downsample_rounding():
    cfg = dataclasses.replace(LMHRA, depth=2, gmhra_layers=1)
    enc = VisionEncoder(cfg).eval()
    for frames, kept in [(1, 1), (3, 2), (4, 2), (5, 3)]:
        with torch.no_grad():
            out = enc(torch.randn(1, 3, frames, 28, 28))
        assert out.shape == (1, kept * 5 + 1, 64)
        assert output_tokens(cfg, frames) == kept * 5 + 1
    assert output_tokens(RELEASED, 8) == 8 * 5 + 1
    no_gmhra = dataclasses.replace(RELEASED, gmhra_layers=0)
    assert "gmhra_cls_token" not in VisionEncoder(no_gmhra).state_dict()
    with torch.no_grad():
        assert VisionEncoder(no_gmhra)(torch.randn(2, 3, 2, 28, 28)).shape == (2, 10, 64)


# --- EVA checkpoint conversion (fixture vision_inflate/) -------------------------------------


@pytest.mark.parametrize("case", ["same_size", "interp42to28", "inflate_t3"])
def test_eva_conversion_matches_original_loader(fixtures_dir, case):
    root = fixtures_dir / "vision_inflate"
    report = json.loads((root / "report.json").read_text())[case]
    cfg = INFLATE_TARGET[case]
    ckpt = load_file(root / report["checkpoint_file"])
    converted, info = convert_eva_checkpoint(ckpt, cfg)

    loaded = load_file(root / case / "loaded_values.safetensors")
    assert set(converted) == set(loaded)
    for key, expected in loaded.items():
        assert_close(converted[key], expected, rtol=0, atol=0, msg=lambda m, k=key: f"{k}: {m}")
    assert info.expected_missing == report["missing_keys"]
    assert info.ignored == report["unexpected_keys"] == []
    assert info.loaded == list(ckpt)

    enc = VisionEncoder(cfg).eval()
    enc.load_state_dict(load_file(fixtures_dir / report["target_initial_weights"]))
    result = enc.load_state_dict(converted, strict=False)
    assert result.missing_keys == report["missing_keys"]
    assert result.unexpected_keys == []
    io = load_file(root / case / "io.safetensors")
    with torch.no_grad():
        assert_close(enc(io["input"]), io["output_after_load"], **TOL)


def test_conversion_uses_given_target_state_dict_and_keeps_dtype(fixtures_dir):
    root = fixtures_dir / "vision_inflate"
    ckpt = {k: v.half() for k, v in load_file(root / "ckpt_eva_img42.safetensors").items()}
    target = VisionEncoder(RELEASED).state_dict()
    converted, info = convert_eva_checkpoint(ckpt, RELEASED, target)
    assert converted["pos_embed"].dtype == torch.float16
    assert converted["pos_embed"].shape == target["pos_embed"].shape
    assert converted["patch_embed.proj.weight"].shape == (64, 3, 1, 14, 14)
    assert all(is_temporal_key(k) for k in info.expected_missing)


def test_conversion_ignores_and_reports_extra_keys(fixtures_dir):
    ckpt = load_file(fixtures_dir / "vision_inflate" / "ckpt_eva_img28.safetensors")
    extra = {"norm.weight": torch.ones(64), "head.weight": torch.zeros(10, 64)}
    converted, info = convert_eva_checkpoint({**ckpt, **extra}, RELEASED)
    assert info.ignored == ["norm.weight", "head.weight"]
    assert "norm.weight" not in converted


def test_conversion_rejects_mismatched_shapes_with_key_and_shapes(fixtures_dir):
    ckpt = load_file(fixtures_dir / "vision_inflate" / "ckpt_eva_img28.safetensors")
    bad = {**ckpt, "blocks.1.mlp.fc1.weight": torch.zeros(100, 64)}
    with pytest.raises(
        ModelLoadError, match=r"my.pth: blocks\.1\.mlp\.fc1\.weight .*\(100, 64\).*\(279, 64\)"
    ):
        convert_eva_checkpoint(bad, RELEASED, source="my.pth")


def test_conversion_rejects_non_square_pos_grid_and_other_patch_size(fixtures_dir):
    ckpt = load_file(fixtures_dir / "vision_inflate" / "ckpt_eva_img28.safetensors")
    with pytest.raises(ModelLoadError, match="not a square grid"):
        convert_eva_checkpoint({**ckpt, "pos_embed": torch.zeros(1, 7, 64)}, RELEASED)
    with pytest.raises(
        ModelLoadError, match=r"patch_embed\.proj\.weight has shape \(64, 3, 16, 16\)"
    ):
        convert_eva_checkpoint(
            {**ckpt, "patch_embed.proj.weight": torch.zeros(64, 3, 16, 16)}, RELEASED
        )


def test_conversion_rejects_checkpoint_missing_vit_weights(fixtures_dir):
    ckpt = load_file(fixtures_dir / "vision_inflate" / "ckpt_eva_img28.safetensors")
    shallow = {k: v for k, v in ckpt.items() if not k.startswith("blocks.3.")}
    with pytest.raises(
        ModelLoadError, match=r"13 vision weight\(s\) missing \(blocks\.3\.norm1\.weight"
    ):
        convert_eva_checkpoint(shallow, RELEASED)


# --- our temporal position embedding -------------------------------------------------------


def test_temporal_pos_embed_off_has_no_key_and_zero_init_is_identity(fixtures_dir):
    assert not any("temporal" in k for k in VisionEncoder(RELEASED).state_dict())
    cfg = dataclasses.replace(RELEASED, temporal_pos_embed=True, max_frames=6)
    enc = VisionEncoder(cfg).eval()
    weights = load_file(fixtures_dir / "vision_released" / "weights.safetensors")
    result = enc.load_state_dict(weights, strict=False)
    assert result.missing_keys == ["temporal_embed"] and result.unexpected_keys == []
    assert enc.temporal_embed.shape == (1, 6, 64)
    io = load_file(fixtures_dir / "vision_released" / "io.safetensors")
    with torch.no_grad():
        assert_close(enc(io["input"]), io["output"], **TOL)


def test_temporal_pos_embed_makes_frame_tokens_depend_on_frame_order(fixtures_dir):
    weights = load_file(fixtures_dir / "vision_released" / "weights.safetensors")
    video = load_file(fixtures_dir / "vision_released" / "io.safetensors")["input"]  # (2,3,4,28,28)

    def frame_tokens(enc: VisionEncoder, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return enc(x)[:, :-1].unflatten(1, (4, 5))  # (B, T, N+1, C)

    plain = _encoder(fixtures_dir, "vision_released")
    # Without it the per-frame ViT does not see time: reversing the frames reverses the tokens.
    assert_close(frame_tokens(plain, video.flip(2)), frame_tokens(plain, video).flip(1), **TOL)

    timed = VisionEncoder(dataclasses.replace(RELEASED, temporal_pos_embed=True)).eval()
    timed.load_state_dict(weights, strict=False)
    with torch.no_grad():
        timed.temporal_embed.normal_(std=0.5, generator=torch.Generator().manual_seed(0))
    forward, backward = frame_tokens(timed, video), frame_tokens(timed, video.flip(2))
    assert (backward - forward.flip(1)).abs().amax() > 1e-2
    still = video[:, :, :1].expand(-1, -1, 4, -1, -1)  # four identical frames
    tokens = frame_tokens(timed, still)
    assert (tokens[:, 0] - tokens[:, 3]).abs().amax() > 1e-2
    assert_close(frame_tokens(plain, still)[:, 0], frame_tokens(plain, still)[:, 3], **TOL)


def test_temporal_pos_embed_rejects_clip_longer_than_table():
    enc = VisionEncoder(dataclasses.replace(RELEASED, temporal_pos_embed=True, max_frames=2))
    with pytest.raises(ValueError, match=r"3 frames .* holds 2 \(VisionConfig.max_frames\)"):
        enc(torch.zeros(1, 3, 3, 28, 28))


# --- our convolutional stem ------------------------------------------------------------------


def test_conv_stem_off_is_the_original_patchifier_and_on_keeps_the_token_grid():
    assert not any("stem" in k for k in VisionEncoder(RELEASED).state_dict())
    for cfg in (RELEASED, LMHRA):
        stemmed = dataclasses.replace(cfg, conv_stem=(8,))
        enc = VisionEncoder(stemmed).eval()
        weights = enc.state_dict()
        assert weights["patch_embed.stem.0.weight"].shape == (8, 3, 1, 3, 3)
        # The patchifier covers patch_size / 2 pixels of the stem's half-size map.
        assert weights["patch_embed.proj.weight"].shape[1:] == (
            8,
            3 if cfg.temporal_downsample else 1,
            7,
            7,
        )
        with torch.no_grad():
            out = enc(torch.randn(2, 3, 4, 28, 28))
        assert out.shape == (2, output_tokens(stemmed, 4), 64)


def test_conv_stem_survives_the_json_config_and_rejects_a_patch_it_cannot_halve():
    from videochat.model.config import VideoChatConfig

    config = VideoChatConfig(vision=dataclasses.replace(RELEASED, conv_stem=(8,)))
    again = VideoChatConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again.vision == config.vision and again.vision.conv_stem == (8,)
    with pytest.raises(ValueError, match=r"patch_size 14 is not divisible by 2\^2"):
        VisionEncoder(dataclasses.replace(RELEASED, conv_stem=(8, 8)))


def test_frame_convs_compute_the_3d_convolutions_output_and_gradients():
    """The per-frame 2-D path (channels-last) is the Conv3d path's function, same weights."""
    stemmed = dataclasses.replace(RELEASED, conv_stem=(8, 16), patch_size=8, image_size=32)
    three_d = VisionEncoder(stemmed).eval()
    two_d = VisionEncoder(dataclasses.replace(stemmed, frame_convs=True)).eval()
    two_d.load_state_dict(three_d.state_dict())  # the same keys and shapes
    video = torch.randn(2, 3, 4, 32, 32)
    outputs, grads = [], []
    for enc in (three_d, two_d):
        out = enc(video)
        out.square().mean().backward()
        outputs.append(out)
        grads.append(enc.patch_embed.stem[0].weight.grad)
    assert outputs[1].shape == (2, output_tokens(stemmed, 4), 64)
    assert_close(outputs[1], outputs[0], **TOL)
    assert_close(grads[1], grads[0], **TOL)
    with pytest.raises(ValueError, match="frame_convs needs temporal_downsample off"):
        VisionEncoder(dataclasses.replace(LMHRA, frame_convs=True))


# --- training features and input checks ----------------------------------------------------


def test_gradient_checkpointing_gives_same_outputs_and_gradients(fixtures_dir):
    cfg = dataclasses.replace(LMHRA, gmhra_dropout=0.0)
    weights = load_file(fixtures_dir / "vision_lmhra" / "weights.safetensors")
    video = load_file(fixtures_dir / "vision_lmhra" / "io.safetensors")["input"]
    results = []
    for enabled in (False, True):
        enc = VisionEncoder(cfg)
        enc.load_state_dict(weights)
        enc.train().set_gradient_checkpointing(enabled)
        out = enc(video)
        out.square().mean().backward()
        results.append((out.detach(), {n: p.grad for n, p in enc.named_parameters()}))
    (out_a, grads_a), (out_b, grads_b) = results
    assert_close(out_b, out_a, **TOL)
    assert grads_a.keys() == grads_b.keys()
    for name, grad in grads_a.items():
        assert_close(grads_b[name], grad, **TOL, msg=lambda m, n=name: f"{n}: {m}")


def test_drop_path_is_identity_in_eval_and_random_in_training(fixtures_dir):
    weights = load_file(fixtures_dir / "vision_released" / "weights.safetensors")
    video = load_file(fixtures_dir / "vision_released" / "io.safetensors")["input"]
    cfg = dataclasses.replace(RELEASED, gmhra_dropout=0.0)  # only drop path is random here
    outputs = {}
    for rate in (0.0, 0.5):
        enc = VisionEncoder(cfg, drop_path_rate=rate)
        enc.load_state_dict(weights)
        torch.manual_seed(0)
        with torch.no_grad():
            outputs[rate] = enc.eval()(video), enc.train()(video)
    assert [b.drop_path_rate for b in enc.blocks] == pytest.approx([0.0, 1 / 6, 2 / 6, 0.5])
    (eval_0, train_0), (eval_half, train_half) = outputs[0.0], outputs[0.5]
    assert_close(eval_half, eval_0, **TOL)
    assert_close(train_0, eval_0, **TOL)
    assert (train_half - eval_half).abs().amax() > 1e-2


def test_half_precision_runs_and_stays_close(fixtures_dir):
    io = load_file(fixtures_dir / "vision_lmhra" / "io.safetensors")
    for dtype in (torch.bfloat16, torch.float16):
        enc = _encoder(fixtures_dir, "vision_lmhra").to(dtype)
        with torch.no_grad():
            out = enc(io["input"].to(dtype))
        assert out.dtype == dtype
        assert_close(out.float(), io["output"], rtol=0, atol=0.05 * io["output"].abs().max().item())


def test_meta_device_build_has_the_real_shapes():
    with torch.device("meta"):
        enc = VisionEncoder(LMHRA)
    real = VisionEncoder(LMHRA)
    assert {k: v.shape for k, v in enc.state_dict().items()} == {
        k: v.shape for k, v in real.state_dict().items()
    }


@pytest.mark.parametrize("shape", [(1, 3, 2, 32, 32), (1, 4, 2, 28, 28), (3, 28, 28)])
def test_bad_input_shape_is_a_clear_error(shape):
    with pytest.raises(ValueError, match=r"expects pixels \(B, 3, T, 28, 28\)"):
        VisionEncoder(RELEASED)(torch.zeros(shape))


def test_impossible_config_is_a_clear_error():
    bad = dataclasses.replace(RELEASED, heads=5, gmhra_layers=9, image_size=30)
    with pytest.raises(ValueError, match="not a multiple of patch_size.*heads 5.*gmhra_layers 9"):
        VisionEncoder(bad)


def test_released_vit_g_shapes_and_eva_conversion_on_meta_device():
    """The real ViT-g layout (DESIGN.md §1.2), checked without allocating its 1.2 B parameters."""
    cfg = VisionConfig()  # released: 224 px, width 1408, depth 39, 16 heads, 8 GMHRA
    with torch.device("meta"):
        target = VisionEncoder(cfg).state_dict()
    assert target["blocks.38.mlp.fc1.weight"].shape == (6144, 1408)
    assert target["gmhra.7.mlp.c_fc.weight"].shape == (6144, 1408)
    assert target["pos_embed"].shape == (1, 257, 1408)
    assert "blocks.39.norm1.weight" not in target and "gmhra.8.ln_1.weight" not in target
    assert output_tokens(cfg, 8) == 8 * 257 + 1

    eva = {k: torch.empty_like(v, dtype=torch.float16) for k, v in target.items()}
    eva = {k: v for k, v in eva.items() if not is_temporal_key(k)}
    eva["patch_embed.proj.weight"] = torch.empty(1408, 3, 14, 14, device="meta")
    converted, info = convert_eva_checkpoint(eva, cfg, target)
    assert converted["patch_embed.proj.weight"].shape == (1408, 3, 1, 14, 14)
    assert info.expected_missing == [k for k in target if is_temporal_key(k)]
    assert len(info.expected_missing) == 1 + 8 * 16
