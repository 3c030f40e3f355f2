"""`visual_cache`: a frozen vision side encoded once, and frozen vision modules held in eval mode."""

from __future__ import annotations

import random
from contextlib import nullcontext

import pytest
import torch

from tests._train_helpers import make_data
from videochat.model import save_model
from videochat.train.data import TrainDataset, read_all
from videochat.train.loop import train
from videochat.train.recipe import RecipeError, load_recipe
from videochat.train.setup import apply_freeze, hold_frozen_in_eval
from videochat.train.setup import build_model as build_for_recipe
from videochat.train.visual_cache import (
    CachedMediaError,
    build_visual_cache,
    kept_visual_cache,
)

# the tiny recipe with everything before llama_proj frozen (the embedded build's stage 0)
VISION_FROZEN = ["freeze.mhra=true", "freeze.ln_vision=true", "freeze.extra_query_tokens=true"]


def _recipe(tmp_path, data, name, *extra):
    return load_recipe(
        "tiny", [*data, f"output_dir={tmp_path / name}", *VISION_FROZEN, "max_steps=3", *extra]
    )


def _with_live_gmhra(tmp_path, data) -> list[str]:
    """Overrides for a tiny model whose GMHRA MLPs are not zero (as initialised, its dropout
    would have nothing to drop)."""
    model = build_for_recipe(_recipe(tmp_path, data, "init"))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.visual_encoder.named_parameters():
            if "mhra" in name and "c_proj" in name:
                param.copy_(torch.randn(param.shape, generator=gen))
    save_model(model, tmp_path / "live")
    return [f"model.path={tmp_path / 'live'}", "model.preset=null"]


def test_cached_rows_train_exactly_like_encoding_every_step(tmp_path):
    # `middle` sampling: every sampling of a video is the same frames, so the two runs see the
    # same inputs; the tiny preset's GMHRA dropout (0.5) would make them differ if the frozen
    # encoder still ran in training mode
    data = make_data(tmp_path / "data", videos=3, images=2)
    live = _with_live_gmhra(tmp_path, data)
    plain = train(_recipe(tmp_path, data, "plain", "sampling=middle", *live))
    cached = train(_recipe(tmp_path, data, "cached", "sampling=middle", "visual_cache=2", *live))
    assert set(plain.trainable) == set(cached.trainable) == {"llama_proj.weight", "llama_proj.bias"}
    initial = build_for_recipe(_recipe(tmp_path, data, "init", *live)).llama_proj.weight
    assert not torch.allclose(plain.trainable["llama_proj.weight"], initial)
    for name, weight in plain.trainable.items():
        torch.testing.assert_close(cached.trainable[name], weight, rtol=1e-5, atol=1e-6)
    assert cached.last_loss == pytest.approx(plain.last_loss, rel=1e-5)


def test_cache_holds_distinct_samplings_that_a_rebuild_repeats(tmp_path):
    data = make_data(tmp_path / "data", videos=1, images=1)
    recipe = _recipe(tmp_path, data, "run", "visual_cache=4")
    model = build_for_recipe(recipe)
    entries = read_all(recipe)
    dataset = TrainDataset(entries, recipe, model.tokenizer, model.config.vision.image_size)
    media = {e.path: e.media for e in entries}
    cache = build_visual_cache(model, media, dataset.load_media, 4, seed=0)
    video, image = (next(p for p, m in media.items() if m == kind) for kind in ("video", "image"))
    assert len(cache.clips[video]) == 4 and len(cache.clips[image]) == 1
    assert len({clip.msg for clip in cache.clips[video]}) > 1  # different frames, own timestamps
    assert all(clip.msg.startswith(" The video contains 2 frames") for clip in cache.clips[video])
    assert cache.row_shape == (model.config.num_queries, model.config.qformer.width)
    # each entry is what the vision side gives for that sampling's frames
    first = cache.clips[video][0]
    pixels, times, msg = dataset.load_media("video", video, random.Random(f"cache-0-{video}-0"))
    with torch.no_grad():
        model.eval()
        rows = model.encode_video_steps(pixels[None])["qformer_last_hidden_state"][0]
    assert msg == first.msg and times.shape == (2,) and str(round(float(times[1]), 1)) in msg
    torch.testing.assert_close(first.rows, rows)
    again = build_visual_cache(model, media, dataset.load_media, 4, seed=0)
    for a, b in zip(again.clips[video], cache.clips[video], strict=True):
        assert a.msg == b.msg and torch.equal(a.rows, b.rows)


def test_a_cache_keeps_the_timestamp_message_for_a_later_recipe_that_says_it(tmp_path):
    # the embedded build's drill (no timestamp message) encodes the kept cache that its stage 0
    # (with the message, as the chat and the evaluation say it) loads: stage 0 must still see
    # each video's message, and the drill none
    data = make_data(tmp_path / "data", videos=2, images=1)
    kept = tmp_path / "kept.pt"
    silent, saying = (
        _recipe(tmp_path, data, name, "visual_cache=2", f"prompt.add_second_msg={flag}")
        for name, flag in (("drill", "false"), ("stage0", "true"))
    )
    model = build_for_recipe(silent)
    entries, size = read_all(silent), model.config.vision.image_size
    names = {e.path: e.name for e in entries}
    media = {e.path: e.media for e in entries}
    drill, stage0 = (
        TrainDataset(entries, recipe, model.tokenizer, size) for recipe in (silent, saying)
    )
    args = {"seed": 0, "names": names, "batch": 4, "workers": 0, "autocast": nullcontext}
    _, encoded = kept_visual_cache(kept, model, media, drill.load_media, 2, **args)
    assert encoded == 3 and kept.is_file()
    loaded, encoded = kept_visual_cache(kept, model, media, stage0.load_media, 2, **args)
    assert encoded == 0  # the stage-0 recipe's run loads what the drill's wrote
    for dataset in (drill, stage0):
        dataset.cache = loaded
    videos = [i for i, e in enumerate(entries) if e.media == "video"]
    for i in videos:
        said = _spelt(model.tokenizer, stage0[(0, i)])
        assert " The video contains 2 frames sampled at " in said
        assert "The video contains" not in _spelt(model.tokenizer, drill[(0, i)])
    assert len({_spelt(model.tokenizer, stage0[(0, i)]) for i in videos}) == len(videos)


def _spelt(tokenizer, sample) -> str:
    """The text a sample's token ids spell (before and after the visual rows)."""
    return tokenizer.decode(sample.text.before_ids + sample.text.after_ids)


def test_undecodable_media_become_counted_bad_samples(tmp_path, caplog):
    data = make_data(tmp_path / "data", videos=3, images=0, missing=1)
    recipe = _recipe(
        tmp_path, data, "run", "visual_cache=2", "batch_size=1", "max_bad_fraction=0.5"
    )
    with caplog.at_level("WARNING", logger="videochat.train"):
        result = train(recipe)
    assert result.bad_samples == 1 and result.steps == 3
    assert "gone0.mp4" in caplog.text


def test_a_cache_of_nothing_decodable_fails_before_training(tmp_path):
    data = make_data(tmp_path / "data", videos=0, images=0, missing=2)
    with pytest.raises(CachedMediaError, match="none of the 2 media files could be decoded"):
        train(_recipe(tmp_path, data, "run", "visual_cache=2"))


def test_a_cache_needs_the_whole_vision_side_frozen(tmp_path):
    data = make_data(tmp_path / "data", videos=1, images=0)
    with pytest.raises(RecipeError, match="visual_cache needs the whole vision side frozen"):
        load_recipe("tiny", [*data, "visual_cache=2"])  # the tiny recipe trains GMHRA
    with pytest.raises(RecipeError, match="visual_cache must be >= 0"):
        _recipe(tmp_path, data, "run", "visual_cache=-1")


def test_frozen_vision_modules_stay_in_eval_mode_as_in_the_original(tmp_path):
    data = make_data(tmp_path / "data", videos=1, images=0)
    for extra, encoder_trains in (([], True), (VISION_FROZEN, False)):
        recipe = load_recipe("tiny", [*data, *extra])
        model = build_for_recipe(recipe)
        apply_freeze(model, recipe.freeze)
        model.train()
        hold_frozen_in_eval(model, recipe.freeze)
        assert model.visual_encoder.training is encoder_trains  # GMHRA trains: dropout on
        assert not model.qformer.training and model.llm.training and model.llama_proj.training


def test_the_same_data_in_another_folder_trains_the_same_weights(tmp_path):
    # each file's cached samplings are drawn by its name in the annotation, not by where the
    # data lies (a rebuild elsewhere gave another model when they were drawn by the path)
    import shutil

    here = make_data(tmp_path / "here", videos=3, images=1)
    shutil.copytree(tmp_path / "here", tmp_path / "moved" / "elsewhere")
    moved = [o.replace(str(tmp_path / "here"), str(tmp_path / "moved" / "elsewhere")) for o in here]
    assert moved != here
    runs = [
        train(_recipe(tmp_path, data, name, "visual_cache=4", "sampling=rand"))
        for data, name in ((here, "a"), (moved, "b"))
    ]
    a, b = (run.trainable for run in runs)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_batches_and_the_cache_made_in_process_or_by_workers_train_the_same_weights(tmp_path):
    # the embedded recipes make their batches in the training process (`num_workers: 0`, a
    # worker only took CPU from the step) and decode the cache's files in 2 processes
    # (`visual_cache_workers: 2`): every sample's random choices are keyed by its epoch and
    # index, every sampling's by its file and number, so no worker count may change a weight;
    # 6 steps of 2 cross epochs
    data = make_data(tmp_path / "data", videos=3, images=1)
    runs = [
        train(
            _recipe(
                tmp_path,
                data,
                f"w{workers}c{cache_workers}",
                "visual_cache=2",
                "sampling=rand",
                "max_steps=6",
                f"num_workers={workers}",
                f"visual_cache_workers={cache_workers}",
            )
        )
        for workers, cache_workers in ((0, 0), (1, "null"), (0, 2))
    ]
    first = runs[0].trainable
    for run in runs[1:]:
        assert run.trainable.keys() == first.keys()
        assert all(torch.equal(run.trainable[k], first[k]) for k in first)
        assert run.last_loss == runs[0].last_loss


def test_a_negative_visual_cache_worker_count_is_refused(tmp_path):
    data = make_data(tmp_path / "data", videos=1, images=0)
    with pytest.raises(RecipeError, match="visual_cache_workers must be >= 0"):
        _recipe(tmp_path, data, "bad", "visual_cache=1", "visual_cache_workers=-1")


def test_a_kept_cache_serves_the_next_run_with_the_same_draws(tmp_path, monkeypatch):
    from videochat.train import visual_cache

    data = make_data(tmp_path / "data", videos=3, images=1)
    # one saved vision side (the tiny preset draws its weights from the training seed)
    shared = ["visual_cache=2", "sampling=rand", "visual_cache_seed=5"]
    shared += _with_live_gmhra(tmp_path, data)
    kept = [*shared, f"visual_cache_dir={tmp_path / 'kept'}"]
    train(_recipe(tmp_path, data, "first", *kept, "seed=1"))
    (written,) = (tmp_path / "kept").glob("*.pt")
    encoded: list[list[str]] = []
    real = visual_cache._encode

    def counted(model, media, *args, **kwargs):
        encoded.append(sorted(media))
        return real(model, media, *args, **kwargs)

    monkeypatch.setattr(visual_cache, "_encode", counted)
    # another training seed, the same cache seed: loaded, nothing encoded
    second = train(_recipe(tmp_path, data, "second", *kept, "seed=2")).trainable
    assert encoded == []
    fresh = train(_recipe(tmp_path, data, "fresh", *shared, "seed=2")).trainable
    assert len(encoded) == 1 and len(encoded[0]) == 4  # 3 videos + 1 image, without the folder
    assert second.keys() == fresh.keys() and all(torch.equal(second[k], fresh[k]) for k in fresh)
    # a file the kept cache lacks is encoded alone and added; the rest is loaded
    record = torch.load(written, weights_only=True)
    dropped = sorted(record["clips"])[0]
    del record["clips"][dropped]
    torch.save(record, written)
    third = train(_recipe(tmp_path, data, "third", *kept, "seed=2")).trainable
    assert len(encoded[-1]) == 1 and encoded[-1][0].endswith(dropped)
    assert all(torch.equal(third[k], fresh[k]) for k in fresh)
    assert dropped in torch.load(written, weights_only=True)["clips"]
    # another cache seed or another vision side: another cache
    train(_recipe(tmp_path, data, "seed6", *kept, "visual_cache_seed=6"))
    other = build_for_recipe(_recipe(tmp_path, data, "init", "seed=9"))
    save_model(other, tmp_path / "other")
    train(_recipe(tmp_path, data, "other", *kept, f"model.path={tmp_path / 'other'}"))
    assert len(list((tmp_path / "kept").glob("*.pt"))) == 3 and len(encoded[-1]) == 4


def test_a_file_missing_from_a_kept_cache_that_fails_to_decode_is_a_bad_sample(tmp_path):
    # encoded alone it gives no rows, but the kept files still train (not "none decodable")
    data = make_data(tmp_path / "data", videos=3, images=0, missing=1)
    kept = [f"visual_cache_dir={tmp_path / 'kept'}", "visual_cache=2", "batch_size=1"]
    kept.append("max_bad_fraction=0.5")
    assert train(_recipe(tmp_path, data, "first", *kept)).bad_samples == 1
    (written,) = (tmp_path / "kept").glob("*.pt")
    record = torch.load(written, weights_only=True)
    assert list(record["failed"]) == ["gone0.mp4"] and len(record["clips"]) == 3
    record["failed"].clear()  # as if the kept cache had never seen it
    torch.save(record, written)
    result = train(_recipe(tmp_path, data, "again", *kept))
    assert result.bad_samples == 1 and result.steps == 3
