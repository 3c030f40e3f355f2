"""The training loop in one process: freezing, checkpoints, export, bad media, CLI errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from tests._train_helpers import loss_and_grads, make_data
from videochat.model import load_model
from videochat.train import checkpoint as ckpt
from videochat.train.loop import TooManyBadSamplesError, train
from videochat.train.recipe import RecipeError, load_recipe
from videochat.train.setup import apply_freeze
from videochat.train.setup import build_model as build_for_recipe


def test_freeze_matches_original_groups(tmp_path):
    recipe = load_recipe("tiny", make_data(tmp_path, videos=1, images=0))
    model = build_for_recipe(recipe)
    trainable = apply_freeze(model, recipe.freeze)
    heads = {name.split(".", 1)[0] for name in trainable}
    assert heads == {"visual_encoder", "ln_vision", "extra_query_tokens", "llama_proj"}
    assert all("mhra" in name for name in trainable if name.startswith("visual_encoder"))
    assert not model.query_tokens.requires_grad
    assert not any(p.requires_grad for p in model.llm.parameters())
    assert not any(p.requires_grad for p in model.qformer.parameters())


def test_train_saves_trainable_only_and_exports_a_loadable_model(tmp_path):
    out, export = tmp_path / "run", tmp_path / "model"
    recipe = load_recipe(
        "tiny",
        [
            *make_data(tmp_path / "data", videos=2, images=2),
            f"output_dir={out}",
            f"export={export}",
            "max_steps=3",
            "save_every=2",
            "optim.lr=1e-2",
        ],
    )
    initial = build_for_recipe(recipe).state_dict()
    result = train(recipe)
    assert result.steps == 3 and result.bad_samples == 0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]
    assert all(
        r["loss"] > 0 and r["samples_per_s"] > 0 and len(r["indices"][0]) == 2 for r in records
    )
    saved = ckpt.load_checkpoint(ckpt.latest_checkpoint(out))
    assert saved.state["run"]["step"] == 3
    assert set(saved.weights) == set(result.trainable)
    assert all(
        n.startswith(("visual_encoder", "ln_vision", "extra_query", "llama_proj"))
        for n in saved.weights
    )
    exported = load_model(export)
    state = exported.state_dict()
    torch.testing.assert_close(state["llama_proj.weight"], saved.weights["llama_proj.weight"])
    assert not torch.equal(state["llama_proj.weight"], initial["llama_proj.weight"])
    torch.testing.assert_close(state["query_tokens"], initial["query_tokens"])  # frozen
    torch.testing.assert_close(
        state["llm.model.embed_tokens.weight"], initial["llm.model.embed_tokens.weight"]
    )


def test_bad_media_is_skipped_and_counted_until_the_limit(tmp_path, caplog):
    data = make_data(tmp_path / "data", videos=3, images=0, missing=1)
    ok = load_recipe(
        "tiny", [*data, f"output_dir={tmp_path / 'a'}", "max_bad_fraction=0.5", "batch_size=1"]
    )
    with caplog.at_level("WARNING", logger="videochat.train"):
        result = train(ok)
    assert result.bad_samples == 1 and result.steps == 4
    assert "gone0.mp4" in caplog.text
    strict = load_recipe(
        "tiny", [*data, f"output_dir={tmp_path / 'b'}", "max_bad_fraction=0.1", "batch_size=1"]
    )
    with pytest.raises(TooManyBadSamplesError, match="max_bad_fraction=0.1"):
        train(strict)


def test_cli_reports_malformed_annotation_with_file_and_index(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"video": "a.mp4", "QA": [{"q": "x", "a": "y"}]}, {"video": 3}]))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "videochat",
            "train",
            "tiny",
            f"data=[{{file: {bad}}}]",
            f"output_dir={tmp_path / 'out'}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "error:" in proc.stderr and "bad.json: entry 1" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_gradient_checkpointing_gives_the_same_loss_and_gradients(tmp_path):
    recipe = load_recipe("tiny", make_data(tmp_path, videos=2, images=0))
    plain = loss_and_grads(recipe)
    recomputed = loss_and_grads(recipe, checkpointing=True)
    for a, b in zip(plain, recomputed, strict=True):
        torch.testing.assert_close(a, b)
    assert plain[1].abs().sum() > 0 and plain[2].abs().sum() > 0


def test_an_unknown_loss_average_is_refused():
    with pytest.raises(RecipeError, match="loss_average must be token or sample"):
        load_recipe("tiny", ["data=[{file: x.json}]", "loss_average=batch"])


def test_an_unknown_prompt_layout_is_refused():
    with pytest.raises(RecipeError, match="prompt.layout must be conversation or rows_first"):
        load_recipe("tiny", ["data=[{file: x.json}]", "prompt.layout=question"])


def test_init_weights_come_from_a_previous_run(tmp_path):
    out = tmp_path / "stage1"
    weights = {"llama_proj.bias": torch.full((48,), 0.5)}
    ckpt.save_checkpoint(out, 5, weights, {"run": {"step": 5}})
    recipe = load_recipe(
        "tiny", [*make_data(tmp_path / "d", videos=1, images=0), f"model.init={out}"]
    )
    torch.testing.assert_close(
        build_for_recipe(recipe).llama_proj.bias.detach(), weights["llama_proj.bias"]
    )
    ckpt.save_checkpoint(out, 6, {"llama_proj.bias": torch.zeros(3)}, {"run": {"step": 6}})
    from videochat.train.setup import TrainSetupError

    with pytest.raises(TrainSetupError, match="llama_proj.bias has shape"):
        build_for_recipe(recipe)


def test_bf16_on_a_cpu_without_bf16_kernels_warns_and_names_fp32(monkeypatch, caplog):
    from videochat.train import setup

    for has_bf16 in (False, True):
        monkeypatch.setattr(setup, "cpu_has_bf16", lambda has=has_bf16: has)
        caplog.clear()
        with caplog.at_level("WARNING", logger="videochat.train"):
            assert setup.pick_precision("bf16", torch.device("cpu")).dtype == torch.bfloat16
            setup.pick_precision("fp32", torch.device("cpu"))  # fp32 is never warned about
        warned = [r.getMessage() for r in caplog.records]
        if has_bf16:
            assert warned == []
        else:
            assert len(warned) == 1 and "use precision fp32 here" in warned[0]
            assert "several times slower" in warned[0]


def test_precision_schedule_and_optimizer_groups(tmp_path):
    from videochat.train.setup import make_optimizer, make_scheduler, pick_precision

    for asked in ("auto", "fp32", "fp16"):  # fp32 on CPU unless bf16 is named
        cpu = pick_precision(asked, torch.device("cpu"))
        assert cpu.dtype is None and not cpu.needs_scaler
    cpu = pick_precision("bf16", torch.device("cpu"))
    assert cpu.dtype == torch.bfloat16 and not cpu.needs_scaler
    with cpu.autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    recipe = load_recipe(
        "tiny",
        [
            *make_data(tmp_path, videos=1, images=0),
            "optim.warmup_ratio=0.2",
            "optim.min_lr_ratio=0.1",
        ],
    )
    model = build_for_recipe(recipe)
    apply_freeze(model, recipe.freeze)
    optimizer = make_optimizer(model, recipe.optim)
    decays = sorted(g["weight_decay"] for g in optimizer.param_groups)
    assert decays == [0.0, 0.02]
    no_decay = {
        id(p) for g in optimizer.param_groups if g["weight_decay"] == 0 for p in g["params"]
    }
    assert id(model.llama_proj.bias) in no_decay and id(model.llama_proj.weight) not in no_decay
    scheduler = make_scheduler(optimizer, recipe.optim, total_steps=10)
    lrs = []
    for _ in range(10):
        lrs.append(scheduler.get_last_lr()[0] / recipe.optim.lr)
        optimizer.step()
        scheduler.step()
    assert lrs[:3] == [0.0, 0.5, 1.0]  # 2 warm-up steps
    assert all(a >= b for a, b in zip(lrs[2:], lrs[3:], strict=False))  # cosine decay
    assert min(lrs[2:]) == pytest.approx(0.1)  # floor


def test_stage1_captions_train_end_to_end(tmp_path):
    from tests._train_helpers import write_image, write_video

    write_video(tmp_path / "a.mp4")
    write_image(tmp_path / "b.png")
    captions = [
        {"video": "a.mp4", "caption": "A block moves."},
        {"image": "b.png", "caption": "Noise."},
    ]
    (tmp_path / "c.json").write_text(json.dumps(captions))
    recipe = load_recipe(
        "tiny",
        [
            f"data=[{{file: {tmp_path / 'c.json'}, root: {tmp_path}}}]",
            "stage=1",
            "batch_size=1",
            f"output_dir={tmp_path / 'out'}",
            "max_txt_len=16",
        ],
    )
    result = train(recipe)
    assert result.steps == 2 and result.last_loss is not None and 0 < result.last_loss < 20
