"""build_model / save_model / load_model and `videochat convert` on original-style files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from _model_helpers import FIXTURES, make_llm_dir, tensors

from videochat.cli import main
from videochat.errors import ModelLoadError
from videochat.model import VideoChatConfig, build_model, load_model, save_model
from videochat.model.load import load_tokenizer

TOL = {"rtol": 1e-5, "atol": 1e-5}


def _probe_ids(tokenizer) -> list[list[int]]:
    texts = [
        p["text"]
        for p in json.loads((FIXTURES / "tokenizer/tokenizer_info.json").read_text())["probes"]
    ]
    return [tokenizer(t).input_ids for t in texts]


def test_tokenizer_reproduces_original_ids() -> None:
    info = json.loads((FIXTURES / "tokenizer/tokenizer_info.json").read_text())
    tok = load_tokenizer(FIXTURES / "tokenizer")
    assert _probe_ids(tok) == [p["ids_with_special"] for p in info["probes"]]
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (2, 1, 2)


def test_build_model_is_seeded_and_encodes() -> None:
    cfg = VideoChatConfig.preset("tiny")
    a, b = build_model(cfg, seed=3), build_model(cfg, seed=3)
    c = build_model(cfg, seed=4)
    pixels = torch.randn(1, 2, 3, 28, 28)
    with torch.no_grad():
        out_a, out_b, out_c = a.encode_video(pixels), b.encode_video(pixels), c.encode_video(pixels)
    assert out_a.shape == (1, cfg.num_queries, 48)
    torch.testing.assert_close(out_a, out_b, rtol=0, atol=0)
    assert not torch.allclose(out_a, out_c)
    assert torch.isfinite(out_a).all()


def test_fresh_init_starts_the_temporal_modules_as_the_identity() -> None:
    cfg = VideoChatConfig.preset("tiny")
    cfg.vision.lmhra = cfg.vision.double_lmhra = True
    encoder = build_model(cfg, seed=0).visual_encoder
    for block in encoder.blocks:
        for lmhra in (block.lmhra1, block.lmhra2):
            assert not lmhra.pos_embed[3].weight.any() and not lmhra.pos_embed[3].bias.any()
            assert lmhra.pos_embed[1].weight.any()  # the convs before it are initialised
    assert all(not g.attn.out_proj.weight.any() for g in encoder.gmhra)


def test_save_load_round_trip(tmp_path: Path) -> None:
    cfg = VideoChatConfig.preset("tiny")
    model = build_model(cfg, load_tokenizer(FIXTURES / "tokenizer"), seed=0)
    save_model(model, tmp_path / "m", max_shard_size=200_000)
    assert len(list((tmp_path / "m").glob("model-*.safetensors"))) > 1
    back = load_model(tmp_path / "m", device="cpu", dtype="fp32")
    pixels = torch.randn(2, 1, 3, 28, 28)
    ids = torch.tensor([[1, 306, 347, 465, 438]])
    with torch.no_grad():
        torch.testing.assert_close(
            back.encode_video(pixels), model.encode_video(pixels), rtol=0, atol=0
        )
        torch.testing.assert_close(back.llm(ids).logits, model.llm(ids).logits, rtol=0, atol=0)
    assert _probe_ids(back.tokenizer) == _probe_ids(model.tokenizer)
    assert back.load_report.expected_missing == [] and back.load_report.ignored == []
    half = load_model(tmp_path / "m", device="cpu", dtype="bf16")
    assert half.dtype == torch.bfloat16 and half.encode_video(pixels).dtype == torch.bfloat16


def test_row_embed_adds_one_vector_per_row_and_survives_save_load(tmp_path: Path) -> None:
    from videochat.train.recipe import FreezeSpec
    from videochat.train.setup import apply_freeze

    plain = build_model(
        VideoChatConfig.preset("tiny"), load_tokenizer(FIXTURES / "tokenizer"), seed=0
    )
    cfg = VideoChatConfig.preset("tiny")
    cfg.row_embed = True
    model = build_model(cfg, load_tokenizer(FIXTURES / "tokenizer"), seed=0)
    assert plain.row_embed is None and model.row_embed.shape == (1, cfg.num_queries, 48)
    pixels = torch.randn(2, 1, 3, 28, 28)
    with torch.no_grad():  # zero-initialised: the same function as without it
        torch.testing.assert_close(model.encode_video(pixels), plain.encode_video(pixels))
        model.row_embed.normal_()
        rows = model.encode_video(pixels) - plain.encode_video(pixels)  # (2, Q, 48)
    torch.testing.assert_close(rows, model.row_embed.expand(2, -1, -1).detach())
    save_model(model, tmp_path / "m")
    back = load_model(tmp_path / "m", device="cpu", dtype="fp32")
    assert back.config.row_embed and back.load_report.expected_missing == []
    torch.testing.assert_close(back.row_embed, model.row_embed, rtol=0, atol=0)
    trainable = apply_freeze(back, FreezeSpec(llama_proj=False))
    assert "row_embed" in trainable  # it trains with llama_proj
    assert "row_embed" not in apply_freeze(back, FreezeSpec(llama_proj=True))


def test_row_tokens_add_each_named_rows_word_embedding_and_survive_save_load(tmp_path) -> None:
    tok = load_tokenizer(FIXTURES / "tokenizer")
    plain = build_model(VideoChatConfig.preset("tiny"), tok, seed=0)
    cfg = VideoChatConfig.preset("tiny")
    cfg.row_tokens = [[5], [], [7, 9]]  # row 0: one word, row 1 unnamed, row 2: two tokens
    model = build_model(cfg, tok, seed=0)
    pixels = torch.randn(2, 1, 3, 28, 28)
    table = model.llm.get_input_embeddings().weight  # the same init: same seed, same shapes
    added = model.encode_video(pixels) - plain.encode_video(pixels)  # (2, Q, 48)
    expected = torch.zeros(cfg.num_queries, 48)
    expected[0], expected[2] = table[5], (table[7] + table[9]) / 2
    torch.testing.assert_close(added.detach(), expected.expand(2, -1, -1))
    added.sum().backward()  # the words' embeddings learn from the rows too
    assert table.grad[[5, 7, 9]].abs().sum() > 0 and table.grad[6].abs().sum() == 0
    save_model(model, tmp_path / "m")
    back = load_model(tmp_path / "m", device="cpu", dtype="fp32")
    assert back.config.row_tokens == [[5], [], [7, 9]]
    torch.testing.assert_close(back.encode_video(pixels), model.encode_video(pixels))
    cfg.row_name_scale = 3.0  # the names' gain: three times the words, the rows' content as it was
    gained = build_model(cfg, tok, seed=0)
    added = gained.encode_video(pixels) - plain.encode_video(pixels)
    torch.testing.assert_close(added.detach(), 3 * expected.expand(2, -1, -1))
    for bad in (0.0, -1.0, float("nan")):
        cfg.row_name_scale = bad
        with pytest.raises(ValueError, match="row_name_scale must be > 0"):
            cfg.validate()
    cfg.row_name_scale = 1.0
    cfg.row_tokens = [[5]] * (cfg.num_queries + 1)
    q = cfg.num_queries
    with pytest.raises(ValueError, match=f"row_tokens names {q + 1} rows; the LLM sees {q}"):
        cfg.validate()
    cfg.row_tokens = [[5], [10**6]]
    with pytest.raises(
        ValueError, match=r"row_tokens\[1\] = \[1000000\]: token ids must be ints in \[0, "
    ):
        cfg.validate()


def _original_files(tmp: Path, with_videochat: bool = True) -> Path:
    """An original-style config + checkpoints made from the fixture weights (encode/)."""
    full = tensors("encode/weights.safetensors")
    prefix = "visual_encoder."
    eva = {
        k[len(prefix) :]: v for k, v in full.items() if k.startswith(prefix) and "gmhra" not in k
    }
    eva["patch_embed.proj.weight"] = eva["patch_embed.proj.weight"][:, :, 0]  # a 2-D EVA kernel
    torch.save(eva, tmp / "eva_vit_g.pth")
    torch.save({"model": tensors("qformer/blip2_ckpt.safetensors")}, tmp / "blip2.pth")
    torch.save({"model": tensors("encode/released_ckpt.safetensors")}, tmp / "videochat.pth")
    make_llm_dir(tmp / "llm")
    model = {
        "preset": "tiny",
        "vit_model": "eva_clip_g",
        "vit_model_path": "eva_vit_g.pth",
        "q_former_model_path": "blip2.pth",
        "llama_model_path": "llm",
        "videochat_model_path": "videochat.pth" if with_videochat else "",
        "img_size": 28,
        "num_query_token": 6,
        "extra_num_query_token": 4,
        "gmhra_layers": 2,
        "no_lmhra": True,
        "temporal_downsample": False,
        "max_txt_len": 320,
        "low_resource": False,
    }
    (tmp / "config.json").write_text(json.dumps({"model": model, "device": "cuda"}))
    return tmp / "config.json"


def test_convert_command_output_loads_and_matches_original(tmp_path: Path, capsys) -> None:
    config = _original_files(tmp_path)
    out = tmp_path / "converted"
    rc = main(
        [
            "convert",
            "--config",
            str(config),
            "--out",
            str(out),
            "--dtype",
            "fp32",
            "--shard-size",
            "1MB",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    assert "wrote" in capsys.readouterr().out
    model = load_model(out, device="cpu", dtype="fp32")
    io = tensors("encode/io.safetensors")
    with torch.no_grad():
        for case in ("video", "image"):
            torch.testing.assert_close(
                model.encode_video(io[f"{case}.input"]), io[f"{case}.inputs_llama"], **TOL
            )
    assert model.tokenizer("###").input_ids == [1, 306]


def test_original_config_without_videochat_checkpoint(tmp_path: Path) -> None:
    model = load_model(_original_files(tmp_path, with_videochat=False), device="cpu", dtype="fp32")
    report = model.load_report
    assert "llama_proj.weight" in report.initialized and "extra_query_tokens" in report.initialized
    assert any(k.startswith("visual_encoder.gmhra") for k in report.initialized)
    assert report.expected_missing == []
    # GMHRA starts as the original's zero-init projection
    assert torch.count_nonzero(model.visual_encoder.gmhra[0].attn.out_proj.weight) == 0


def test_load_errors(tmp_path: Path, capsys) -> None:
    with pytest.raises(ModelLoadError, match="no such model directory"):
        load_model(tmp_path / "nothing")
    (tmp_path / "x.json").write_text('{"foo": 1}')
    with pytest.raises(ModelLoadError, match="neither a videochat model config nor an original"):
        load_model(tmp_path / "x.json")
    with pytest.raises(ModelLoadError, match="unknown dtype 'fp8'"):
        load_model(tmp_path / "x.json", dtype="fp8")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep").write_text("")
    rc = main(["convert", "--config", str(tmp_path / "x.json"), "--out", str(tmp_path / "out")])
    assert rc == 1 and "exists and is not empty" in capsys.readouterr().err


def test_low_resource_without_cuda_says_what_is_needed(tmp_path: Path) -> None:
    config = VideoChatConfig.from_original_json(_original_files(tmp_path))
    config.low_resource = True
    with pytest.raises(ModelLoadError, match="needs a CUDA GPU"):
        load_model(config, device="cpu")


def test_default_model_missing_is_explained(tmp_path: Path, monkeypatch) -> None:
    import videochat.model.load as load_module

    monkeypatch.setattr(load_module, "DEFAULT_DIR", tmp_path / "default")
    with pytest.raises(ModelLoadError, match="no embedded model in this build"):
        load_model()


def test_shape_mismatch_in_model_directory(tmp_path: Path) -> None:
    model = build_model(VideoChatConfig.preset("tiny"), seed=0)
    save_model(model, tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    meta["config"]["qformer"]["num_extra_query_tokens"] = 5
    (tmp_path / "m" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(
        ModelLoadError,
        match=r"extra_query_tokens has shape \(1, 4, 32\) but the model needs \(1, 5, 32\)",
    ):
        load_model(tmp_path / "m", device="cpu")


def test_temporal_variants_round_trip(tmp_path: Path) -> None:
    """LMHRA (BatchNorm buffers) and temporal downsampling survive build → save → load."""
    cfg = VideoChatConfig.preset("tiny")
    cfg.vision.lmhra = cfg.vision.double_lmhra = cfg.vision.temporal_downsample = True
    model = build_model(cfg, seed=1)
    assert torch.equal(
        model.visual_encoder.blocks[0].lmhra1.pos_embed[0].running_var, torch.ones(64)
    )
    save_model(model, tmp_path / "m")
    back = load_model(tmp_path / "m", device="cpu", dtype="fp32")
    pixels = torch.randn(1, 4, 3, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(
            back.encode_video(pixels), model.encode_video(pixels), rtol=0, atol=0
        )


def test_low_resource_without_bitsandbytes_says_what_to_install(monkeypatch) -> None:
    import builtins

    from videochat.model.load import _check_low_resource

    real_import = builtins.__import__

    def no_bnb(name, *args, **kwargs):
        if name == "bitsandbytes":
            raise ImportError("No module named 'bitsandbytes'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(builtins, "__import__", no_bnb)
    with pytest.raises(ModelLoadError, match="pip install bitsandbytes"):
        _check_low_resource(torch.device("cuda"))


def test_save_over_the_directory_it_was_loaded_from(tmp_path: Path) -> None:
    """Loaded weights are memory-mapped: rewriting their own files must stay safe."""
    save_model(build_model(VideoChatConfig.preset("tiny"), seed=5), tmp_path / "m")
    model = load_model(tmp_path / "m", device="cpu", dtype="fp32")
    pixels = torch.randn(1, 1, 3, 28, 28)
    with torch.no_grad():
        model.llama_proj.bias.add_(1.0)  # copy-on-write: the file keeps the old values
        model.qformer.layers[0].fc1.weight.mul_(0.5)
        before = model.encode_video(pixels)
        save_model(model, tmp_path / "m")
        torch.testing.assert_close(model.encode_video(pixels), before, rtol=0, atol=0)
    again = load_model(tmp_path / "m", device="cpu", dtype="fp32")
    torch.testing.assert_close(again.encode_video(pixels), before, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("device", "message"),
    [("bogus", "unknown device 'bogus'"), ("cuda:99", "cuda:99")],
)
def test_bad_device_is_a_clear_error(device: str, message: str) -> None:
    with pytest.raises(ModelLoadError, match=message):
        load_model(FIXTURES / "nothing", device=device)


def test_paths_that_are_not_models_say_what_they_are(tmp_path: Path) -> None:
    (tmp_path / "clip.mp4").write_bytes(b"\0")
    with pytest.raises(ModelLoadError, match="clip.mp4: not a model"):
        load_model(tmp_path / "clip.mp4")
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_model(tmp_path)
    with pytest.raises(ModelLoadError, match="tokenizer folder not found"):
        load_tokenizer(tmp_path / "no_llm")


def test_convert_checks_its_flags_before_reading_checkpoints(tmp_path: Path, capsys) -> None:
    config = _original_files(tmp_path)
    base = ["convert", "--config", str(config), "--out"]
    for size in ("abc", "0"):
        assert main([*base, str(tmp_path / "o"), "--shard-size", size]) == 1
        captured = capsys.readouterr()
        assert f"--shard-size '{size}'" in captured.err and "read " not in captured.out
    assert main([*base, str(config), "--force"]) == 1
    assert "is a file; give a folder path" in capsys.readouterr().err
    assert main(["convert", "--config", str(tmp_path), "--out", str(tmp_path / "o")]) == 1
    assert "is a folder, not the config .json" in capsys.readouterr().err


def test_convert_names_a_garbage_or_missing_input(tmp_path: Path, capsys) -> None:
    config = _original_files(tmp_path)
    (tmp_path / "blip2.pth").write_text("junk\n")  # a legacy-pickle parse error (KeyError)
    assert main(["convert", "--config", str(config), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "blip2.pth: cannot read this PyTorch checkpoint" in err and "internal" not in err
    shutil.rmtree(tmp_path / "llm")
    assert main(["convert", "--config", str(config), "--out", str(tmp_path / "o")]) == 1
    assert "tokenizer folder not found" in capsys.readouterr().err


def test_convert_to_an_unwritable_out_fails_before_reading(tmp_path: Path, capsys) -> None:
    config = _original_files(tmp_path)
    out = tmp_path / "config.json" / "model"  # a folder under a file cannot be made
    assert main(["convert", "--config", str(config), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [f"error: {out}: Not a directory"]
    assert "read " not in captured.out
