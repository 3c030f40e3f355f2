"""Annotation formats, recipes and the sharded batch plan (no model needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests._train_helpers import fixture_tokenizer, make_data, write_image, write_video
from videochat.train.data import (
    AnnotationError,
    BadSample,
    Sample,
    TrainDataset,
    collate,
    read_all,
    read_annotations,
)
from videochat.train.labels import IGNORE_INDEX
from videochat.train.recipe import DataSource, RecipeError, load_recipe
from videochat.train.sampler import plan_epoch


def _recipe(tmp_path, *extra):
    return load_recipe("tiny", [*make_data(tmp_path, videos=2, images=1), *extra])


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            [{"video": "a.mp4", "QA": [{"q": "x", "a": "y"}]}, {"video": "b.mp4"}],
            'entry 1: needs a non-empty "QA"',
        ),
        ([{"video": "a.mp4", "QA": [{"q": "x"}]}], "entry 0: QA[0] needs"),
        ([{"QA": [{"q": "x", "a": "y"}]}], 'entry 0: needs a "image" file name'),
        ({"video": "a.mp4"}, "must hold a JSON list"),
    ],
)
def test_malformed_annotation_names_file_and_entry(tmp_path, entries, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(entries))
    with pytest.raises(AnnotationError, match="bad.json") as info:
        read_annotations(DataSource(str(path), str(tmp_path)), stage=2)
    assert message in str(info.value)


def test_caption_format_and_media_override(tmp_path):
    path = tmp_path / "caps.json"
    path.write_text(
        json.dumps(
            [{"video": "a.mp4", "caption": "A cat."}, {"image": "b.jpg", "caption": "A dog."}]
        )
    )
    entries = read_annotations(DataSource(str(path), "/media"), stage=1)
    assert [(e.media, e.path, e.caption) for e in entries] == [
        ("video", "/media/a.mp4", "A cat."),
        ("image", "/media/b.jpg", "A dog."),
    ]
    with pytest.raises(AnnotationError, match='entry 0: needs a non-empty "caption"'):
        path.write_text(json.dumps([{"video": "a.mp4", "caption": ""}]))
        read_annotations(DataSource(str(path), ""), stage=1)
    with pytest.raises(AnnotationError, match="not found"):
        read_annotations(DataSource(str(tmp_path / "nope.json"), ""), stage=1)


def test_recipe_overrides_and_errors(tmp_path):
    recipe = _recipe(tmp_path, "optim.lr=5e-3", "freeze.llm=false", "data.0.media=video")
    assert recipe.optim.lr == 5e-3 and recipe.freeze.llm is False
    assert recipe.data[0].media == "video" and len(recipe.data) == 2
    stage2 = load_recipe("stage2")
    assert (stage2.num_frames, stage2.batch_size, stage2.max_txt_len, stage2.epochs) == (
        8,
        1,
        512,
        3,
    )
    assert (stage2.optim.lr, stage2.optim.weight_decay) == (2e-5, 0.02)
    stage1 = load_recipe("stage1", ["data_dir=/data"])
    assert stage1.data[0].file == "/data/anno_pretrain/webvid_10m_train.json"
    with pytest.raises(RecipeError, match="unknown key optim.'lrr'"):
        _recipe(tmp_path, "optim.lrr=1")
    with pytest.raises(RecipeError, match="batch_size must be int"):
        _recipe(tmp_path, "batch_size=two")
    with pytest.raises(RecipeError, match="key=value"):
        _recipe(tmp_path, "resume")
    with pytest.raises(RecipeError, match="not found"):
        load_recipe(str(tmp_path / "missing.yaml"))


def test_plan_shards_all_data_once_per_epoch_one_media_per_batch():
    media = ["video"] * 7 + ["image"] * 4
    plans = [plan_epoch(media, 2, world=2, rank=r, seed=3, epoch=0) for r in range(2)]
    assert len(plans[0]) == len(plans[1])
    seen = [i for plan in plans for batch in plan for _, i in batch]
    assert sorted(set(seen)) == list(range(11))
    assert len(seen) == 12  # 7 videos padded to 8 by wrapping, 4 images
    for plan in plans:
        for batch in plan:
            assert len({media[i] for _, i in batch}) == 1
    assert plans[0] == plan_epoch(media, 2, world=2, rank=0, seed=3, epoch=0)
    assert plans[0] != plan_epoch(media, 2, world=2, rank=0, seed=3, epoch=1)


def test_length_grouped_plan_keeps_every_entry_and_batches_alike_lengths():
    media = ["video"] * 203
    lengths = [(i * 37) % 101 for i in range(203)]  # scattered lengths 0..100
    world, batch = 2, 4
    plans = [
        plan_epoch(media, batch, world=world, rank=r, seed=5, epoch=0, lengths=lengths)
        for r in range(world)
    ]
    seen = [i for plan in plans for b in plan for _, i in b]
    assert sorted(set(seen)) == list(range(203)) and len(seen) == 204  # one wrapped for rank 2
    assert len(plans[0]) == len(plans[1])

    def spread(plan):  # mean (longest - shortest) within a batch
        return sum(max(lengths[i] for _, i in b) - min(lengths[i] for _, i in b) for b in plan)

    plain = plan_epoch(media, batch, world=world, rank=0, seed=5, epoch=0)
    assert spread(plans[0]) * 5 < spread(plain)
    # the ranks' k-th batches come from one global batch: alike lengths on every rank
    assert all(abs(lengths[a[0][1]] - lengths[b[0][1]]) <= 10 for a, b in zip(*plans, strict=True))
    again = plan_epoch(media, batch, world=world, rank=0, seed=5, epoch=0, lengths=lengths)
    assert again == plans[0]


def test_dataset_items_mixed_media_and_bad_file(tmp_path):
    recipe = load_recipe("tiny", make_data(tmp_path, videos=1, images=1, missing=1))
    entries = read_all(recipe)
    dataset = TrainDataset(entries, recipe, fixture_tokenizer(), image_size=28)
    video, gone, image = dataset[(0, 0)], dataset[(0, 1)], dataset[(0, 2)]
    assert isinstance(video, Sample) and video.pixels.shape == (2, 3, 28, 28)
    assert isinstance(image, Sample) and image.pixels.shape == (1, 3, 28, 28)
    assert isinstance(gone, BadSample) and gone.path.endswith("gone0.mp4")
    text = fixture_tokenizer().decode(video.text.before_ids + video.text.after_ids)
    assert "The video contains 2 frames sampled at" in text
    learned = fixture_tokenizer().decode([t for t in video.text.after_labels if t != IGNORE_INDEX])
    assert "A white block." in learned and "What moves" not in learned
    again = dataset[(0, 0)]
    assert torch.equal(again.pixels, video.pixels)  # rand sampling replays per (epoch, index)
    batch = collate([video, gone])
    assert batch.pixels.shape == (1, 2, 3, 28, 28) and len(batch.bad) == 1


def test_stage1_dataset_uses_prompt_and_caption(tmp_path):
    write_video(tmp_path / "a.mp4")
    write_image(tmp_path / "b.png")
    (tmp_path / "c.json").write_text(
        json.dumps(
            [
                {"video": "a.mp4", "caption": "A block moves."},
                {"image": "b.png", "caption": "Noise."},
            ]
        )
    )
    recipe = load_recipe(
        "tiny", [f"data=[{{file: {tmp_path / 'c.json'}, root: {tmp_path}}}]", "stage=1"]
    )
    dataset = TrainDataset(read_all(recipe), recipe, fixture_tokenizer(), image_size=28)
    tok = fixture_tokenizer()
    for key, placeholder, caption in (
        ((0, 0), "<Video>", "A block moves."),
        ((0, 1), "<Image>", "Noise."),
    ):
        sample = dataset[key]
        assert tok.decode(sample.text.before_ids).endswith(placeholder)
        learned = tok.decode([t for t in sample.text.after_labels if t != IGNORE_INDEX])
        assert learned == caption + "###"


def test_instruction_field_replaces_the_system_text(tmp_path):
    write_image(tmp_path / "a.png")
    entry = {"image": "a.png", "i": "Answer briefly.", "QA": [{"q": "What is it?", "a": "Noise."}]}
    (tmp_path / "i.json").write_text(json.dumps([entry]))
    recipe = load_recipe(
        "tiny",
        [f"data=[{{file: {tmp_path / 'i.json'}, root: {tmp_path}}}]", "prompt.system=Ignored. "],
    )
    tok = fixture_tokenizer()
    sample = TrainDataset(read_all(recipe), recipe, tok, image_size=28)[(0, 0)]
    assert tok.decode(sample.text.before_ids) == "Answer briefly. ###Human: <Image>"
    assert tok.decode(sample.text.after_ids).startswith("</Image> ###Human: What is it?")


def test_builtin_tiny_recipe_finds_its_tokenizer_from_any_directory(tmp_path, monkeypatch) -> None:
    import videochat.train

    monkeypatch.chdir(tmp_path)
    recipe = videochat.train.load_recipe("tiny", ["data=[{file: a.json, root: b}]"])
    assert Path(recipe.model.tokenizer).is_absolute()
    assert (Path(recipe.model.tokenizer) / "tokenizer.model").is_file()
    assert videochat.train.train.__module__ == "videochat.train.loop"  # README's API
