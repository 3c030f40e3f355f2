"""Vision pretraining of the embedded model: the facts match the pixels and the scene, the heads
read them, and only the vision side trains."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from videochat.embedded.config import embedded_config, vocab_rows
from videochat.embedded.facts import (
    EVENT_TYPES,
    IGNORE,
    MOTIONS,
    event_frames,
    patch_events,
    patch_labels,
    scene_facts,
    stack_facts,
)
from videochat.embedded.pretrain import (
    FactHeads,
    PretrainPlan,
    encode,
    fact_losses,
    pretrain_vision,
    render_clip,
    single_frames,
)
from videochat.embedded.readout import fact_accuracy
from videochat.media.transform import denormalize
from videochat.synth.vocab import COLOUR_NAMES, COLOURS, SHAPES


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(3)
    rendered = [render_clip(rng, 8, 112) for _ in range(12)]
    batch = stack_facts([facts for _, facts in rendered])
    batch["pixels"] = torch.stack([pixels for pixels, _ in rendered])
    return batch


def test_facts_name_the_colour_drawn_at_each_object(clips):
    frames = denormalize(clips["pixels"].flatten(0, 1)).view(12, 8, 112, 112, 3).float()
    checked = 0
    for i, s, t in zip(*torch.nonzero(clips["visible"] > 0.5, as_tuple=True), strict=True):
        x, y = (clips["position"][i, s, t] * 112).round().long().clamp(0, 111)
        colour = COLOUR_NAMES[int(clips["colour"][i, s, t])]
        drawn = frames[i, t, y, x]  # (3,) the object's centre pixel
        others = [n for n in COLOUR_NAMES if n != colour]
        distance = {n: float((drawn - torch.tensor(COLOURS[n])).norm()) for n in COLOUR_NAMES}
        if SHAPES[s] in ("circle", "square"):  # filled at the centre (stars/crosses can be too)
            assert distance[colour] < min(distance[n] for n in others), (i, s, t)
            checked += 1
    assert checked > 10


def test_event_bins_match_visibility_changes(clips):
    for i in range(12):
        for s in range(len(SHAPES)):
            kind = EVENT_TYPES[int(clips["event"][i, s])]
            seen = clips["visible"][i, s]
            if kind == "appear":
                k = int(clips["event_bin"][i, s])
                assert not seen[:k].any() and seen[k:].all()
            if kind == "none":
                assert int(clips["event_bin"][i, s]) == IGNORE


def test_patch_labels_mark_the_object_patch_only():
    facts = {
        "position": torch.zeros(1, 5, 1, 2),
        "radius": torch.zeros(1, 5),
        "visible": torch.zeros(1, 5, 1),
        "colour": torch.full((1, 5, 1), IGNORE),
    }
    facts["position"][0, 2, 0] = torch.tensor([0.625, 0.375])  # centre of patch (row 1, col 2)
    facts["radius"][0, 2], facts["visible"][0, 2, 0], facts["colour"][0, 2, 0] = 0.1, 1.0, 6
    shape, colour = patch_labels(facts, grid=4)
    expected = torch.zeros(16, dtype=torch.long)
    expected[1 * 4 + 2] = 1
    assert torch.equal(shape[0, 0], expected * 3)  # triangle (index 2) + 1
    assert torch.equal(colour[0, 0], expected * 7)  # colour 6 + 1


def test_patch_events_mark_the_object_where_its_event_shows(clips):
    shape_of_patch, _ = patch_labels(clips, grid=4)
    events = patch_events(clips, shape_of_patch)  # (B, T, P)
    marked = 0
    for i in range(12):
        for s in range(len(SHAPES)):
            kind, first_after = int(clips["event"][i, s]), int(clips["event_bin"][i, s])
            own = shape_of_patch[i] == s + 1  # (T, P) the patches this shape covers
            if kind == 0:
                assert not events[i][own].any()
                continue
            frame = first_after - 1 if EVENT_TYPES[kind] == "disappear" else first_after
            on_frame = torch.zeros_like(own)
            if 0 <= frame < 8:
                on_frame[frame] = True
            assert torch.equal(
                events[i][own & on_frame], torch.full_like(events[i][own & on_frame], kind)
            )
            assert not (events[i][own & ~on_frame] == kind).any()
            marked += int((own & on_frame).sum())
    assert marked > 5
    assert not events[shape_of_patch == 0].any()  # background never shows an event


def test_frame_event_targets_are_the_frame_the_patch_events_show_in(clips):
    shape_of_patch, _ = patch_labels(clips, grid=4)
    per_patch = patch_events(clips, shape_of_patch)  # (B, T, P)
    shown = event_frames(clips, 8)  # (B, S, T)
    assert shown.sum(-1).max() == 1 and shown.any()  # one frame per event at most
    for i, s, t in zip(*torch.nonzero(shown, as_tuple=True), strict=True):
        kind, first_after = int(clips["event"][i, s]), int(clips["event_bin"][i, s])
        assert t == (first_after - 1 if EVENT_TYPES[kind] == "disappear" else first_after)
        own = shape_of_patch[i, t] == s + 1
        assert (per_patch[i, t][own] == kind).all()
    assert not shown[clips["event"] == 0].any()


def test_frame_rows_learn_which_shapes_events_show_in_their_frame(clips):
    heads = FactHeads(128, 128, 8, events=True)
    two = {k: v[:2] for k, v in clips.items()}
    pred = heads(torch.randn(2, 21, 128), torch.randn(2, 8, 16, 128))
    assert pred["frame_event"].shape == (2, len(SHAPES), 8)
    told = dict(pred)
    told["frame_event"] = 40.0 * event_frames(two, 8).float() - 20.0  # the truth, confidently
    assert float(fact_losses(told, two, grid=4)["frame_event"]) < 1e-6
    assert float(fact_losses(pred, two, grid=4)["frame_event"]) > 0.1
    untimed = FactHeads(128, 128, 8)(torch.randn(2, 21, 128), torch.randn(2, 8, 16, 128))
    assert "frame_event" not in untimed


def test_change_targets_mark_the_first_frame_after_every_kind_of_event(clips):
    changed = event_frames(clips, 8, changes=True)  # (B, S, T)
    assert changed.sum(-1).max() == 1 and not changed[..., 0].any()
    marked = set()
    for i, s in zip(*torch.nonzero(clips["event"] > 0, as_tuple=True), strict=True):
        first_after, seen = int(clips["event_bin"][i, s]), clips["visible"][i, s] > 0.5
        kind = EVENT_TYPES[int(clips["event"][i, s])]
        if 1 <= first_after < 8:
            assert changed[i, s, first_after] and changed[i, s].sum() == 1
            marked.add(kind)
            if kind == "disappear":  # shown in the frame before, gone in this one
                assert seen[first_after - 1] and not seen[first_after]
        else:  # before the first frame or after the last: no pair of frames shows it
            assert not changed[i, s].any()
    assert {"appear", "disappear"} <= marked
    assert not changed[clips["event"] == 0].any()


def test_frame_rows_that_read_the_frame_before_learn_what_changed_since(clips):
    from videochat.model import build_model

    model = build_model(embedded_config(vocab_rows(300), frame_rows=True, frame_pairs=True), None)
    assert model.config.qformer.frame_row_lookback == 1
    heads = FactHeads.for_model(model, 8)
    assert heads.changes and not heads.events
    two = {k: v[:2] for k, v in clips.items()}
    pred = heads(*encode(model, two["pixels"], two["times"]))
    assert pred["frame_change"].shape == (2, len(SHAPES), 8) and "frame_event" not in pred
    told = dict(pred)
    told["frame_change"] = 40.0 * event_frames(two, 8, changes=True).float() - 20.0
    assert float(fact_losses(told, two, grid=4)["frame_change"]) < 1e-6
    assert float(fact_losses(pred, two, grid=4)["frame_change"].detach()) > 0.1
    scores = fact_accuracy(model, heads, clips)
    changed = event_frames(clips, 8, changes=True).any(-1)  # (B, S)
    in_view = {EVENT_TYPES[int(k)] for k in clips["event"][changed]}
    by_type = {k.removeprefix("frame_change_") for k in scores if k.startswith("frame_change_")}
    assert "frame_change" in scores and by_type == in_view and "appear" in in_view
    plain = FactHeads.for_model(_tiny_model(), 8)
    assert not plain.changes
    assert "frame_change" not in plain(torch.randn(2, 21, 128), torch.randn(2, 8, 16, 128))


def test_likeliest_frame_scores_only_shapes_whose_event_is_in_view():
    from videochat.embedded.readout import likeliest_frame

    shown = torch.zeros(1, 3, 4, dtype=torch.bool)
    shown[0, 0, 2] = shown[0, 1, 1] = True  # shape 2 has no event in view
    logits = torch.zeros(1, 3, 4)
    logits[0, 0, 2] = logits[0, 1, 3] = logits[0, 2, 0] = 5.0
    assert likeliest_frame(logits, shown) == 0.5
    assert likeliest_frame(logits, torch.zeros_like(shown)) is None  # nothing to score


def test_comes_goes_frames_reads_the_first_and_last_frame_shown():
    from videochat.embedded.readout import comes_goes_frames

    appear, disappear = EVENT_TYPES.index("appear"), EVENT_TYPES.index("disappear")
    facts = {
        "event": torch.tensor([[appear, appear, disappear, disappear, 0]]),
        "visible": torch.tensor(
            [
                [0, 0, 1, 1],  # appears at frame 2
                [0, 1, 1, 1],  # appears at frame 1
                [1, 1, 0, 0],  # gone from frame 2
                [1, 1, 1, 1],  # disappears after the last frame: no change in view
                [1, 1, 1, 1],
            ],
            dtype=torch.float,
        )[None],
    }
    said = torch.tensor(
        [[[-1, -1, 1, 1], [-1, -1, 1, 1], [1, 1, 1, -1], [1, -1, 1, 1], [1, 1, 1, 1]]],
        dtype=torch.float,
    )  # right, a frame late, shown a frame too long, (not counted), (no event)
    scores = comes_goes_frames(said, facts)
    assert scores == {"frame_rows_appear": 0.5, "frame_rows_disappear": 0.0}
    facts["event"] = torch.zeros_like(facts["event"])  # no object comes or goes
    assert comes_goes_frames(said, facts) == {
        "frame_rows_appear": None,
        "frame_rows_disappear": None,
    }


def test_frame_rows_presence_scores_shapes_in_the_clip_and_absent_ones_apart():
    from videochat.embedded.readout import frame_rows_presence

    facts = {
        "present": torch.tensor([[1.0, 1.0, 0.0]]),
        "visible": torch.tensor([[[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]]], dtype=torch.float),
    }
    said = torch.tensor(
        [[[1, 1, 1, -1], [1, 1, 1, 1], [1, -1, -1, -1]]], dtype=torch.float
    )  # one wrong cell of 8 of the shapes there; one of 4 absent cells said shown
    assert frame_rows_presence(said, facts) == {
        "frame_rows_present": 7 / 8,
        "frame_rows_absent": 3 / 4,
    }
    facts["present"] = torch.ones(1, 3)  # no absent shape: nothing to score, not NaN
    assert frame_rows_presence(said, facts)["frame_rows_absent"] is None


def test_first_and_last_event_name_the_objects_of_the_earliest_and_latest_events():
    from videochat.synth.plan import random_video_scene
    from videochat.synth.world import simulate

    rng, checked = np.random.default_rng(5), 0
    for _ in range(20):
        scene = random_video_scene(rng, "pretrain", (112, 112))
        timeline = simulate(scene)
        facts = scene_facts(scene, list(range(0, scene.num_frames, 4))[:8], [0.0] * 8, timeline)
        events = [e for e in timeline.events if e["type"] != "bounce"]
        if len(events) < 2:
            assert facts.first_event == facts.last_event == IGNORE
            continue
        first, last = events[0], events[-1]
        subject = {e["time"]: e["objects"][0] if "objects" in e else e["object"] for e in events}
        assert SHAPES[int(facts.first_event)] == scene.obj(subject[first["time"]]).shape
        assert SHAPES[int(facts.last_event)] == scene.obj(subject[last["time"]]).shape
        assert first["time"] < last["time"]
        checked += 1
    assert checked >= 5


def test_comes_goes_weight_weighs_only_the_visibility_of_appearing_and_vanishing_objects(clips):
    heads = FactHeads(128, 128, 8)
    pred = heads(torch.randn(12, 21, 128), torch.randn(12, 8, 16, 128))
    event = clips["event"]  # (B, S)
    comes_goes = (event == EVENT_TYPES.index("appear")) | (event == EVENT_TYPES.index("disappear"))
    assert comes_goes.any() and (~comes_goes).any()  # the fixture has both kinds of object
    plain = fact_losses(pred, clips, grid=4)
    unweighted = fact_losses(pred, clips, grid=4, comes_goes_weight=1.0)
    assert all(torch.equal(unweighted[k], plain[k]) for k in plain)
    weighted = fact_losses(pred, clips, grid=4, comes_goes_weight=8.0)
    for key, logits in (("visible", pred["visible"][:, :, :8]), ("frame_visible", None)):
        logits = pred[key] if logits is None else logits  # (B, S, T)
        each = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, clips["visible"], reduction="none"
        )
        weight = torch.where(comes_goes, 8.0, 1.0)[:, :, None]  # (B, S, 1)
        assert torch.allclose(weighted[key], (each * weight).mean(), rtol=1e-5)
        assert not torch.allclose(weighted[key], plain[key])
    untouched = {k for k in plain if k not in ("visible", "frame_visible")}
    assert all(torch.equal(weighted[k], plain[k]) for k in untouched)
    one_frame = single_frames(clips, torch.zeros(12, dtype=torch.long))
    single = heads(torch.randn(12, 21, 128), torch.randn(12, 1, 16, 128))
    each = torch.nn.functional.binary_cross_entropy_with_logits(
        single["visible"][:, :, :1], one_frame["visible"], reduction="none"
    )
    expected = (each * torch.where(comes_goes, 8.0, 1.0)[:, :, None]).mean()
    single_weighted = fact_losses(single, one_frame, grid=4, comes_goes_weight=8.0)["visible"]
    assert torch.allclose(single_weighted, expected, rtol=1e-5)


def test_comes_goes_rows_frame_leaves_the_per_shape_rows_unweighted(clips):
    heads = FactHeads(128, 128, 8)
    pred = heads(torch.randn(12, 21, 128), torch.randn(12, 8, 16, 128))
    plain = fact_losses(pred, clips, grid=4)
    both = fact_losses(pred, clips, grid=4, comes_goes_weight=8.0)
    frame = fact_losses(pred, clips, grid=4, comes_goes_weight=8.0, comes_goes_rows="frame")
    assert torch.equal(frame["visible"], plain["visible"])  # the per-shape rows: plain mean
    assert torch.equal(frame["frame_visible"], both["frame_visible"])  # the frame rows: weighted
    assert not torch.allclose(frame["frame_visible"], plain["frame_visible"])
    assert all(torch.equal(frame[k], plain[k]) for k in plain if k != "frame_visible")
    with pytest.raises(ValueError, match="comes_goes_rows must be one of"):
        fact_losses(pred, clips, grid=4, comes_goes_weight=8.0, comes_goes_rows="shape")
    from videochat.embedded.plan import BuildPlan

    with pytest.raises(ValueError, match="comes_goes_rows must be one of"):
        BuildPlan(Path("b"), comes_goes_rows="shape")  # refused when planned


def test_a_batch_without_an_ordered_event_scores_zero_not_nan(clips):
    heads = FactHeads(128, 128, 8, events=True)
    two = {k: v[:2] for k, v in clips.items()}
    two["first_event"] = two["last_event"] = torch.full((2,), IGNORE)
    rows, patches = torch.randn(2, 21, 128), torch.randn(2, 8, 16, 128)
    losses = fact_losses(heads(rows, patches), two, grid=4)
    assert float(losses["first_event"]) == float(losses["last_event"]) == 0.0
    assert all(torch.isfinite(v) for v in losses.values())


def test_patch_event_targets_train_when_the_vit_sees_neighbouring_frames(clips):
    from videochat.model import build_model

    model = build_model(embedded_config(vocab_rows(300), lmhra=True), None, seed=0)
    heads = FactHeads.for_model(model, 8)
    assert heads.events
    two = {k: v[:2] for k, v in clips.items()}
    pred = heads(*encode(model, two["pixels"], two["times"]))
    assert pred["patch_event"].shape == (2, 8, 16, len(EVENT_TYPES))
    assert pred["first_event"].shape == pred["last_event"].shape == (2, len(SHAPES))
    losses = fact_losses(pred, two, grid=4)
    new = {"patch_event", "first_event", "last_event", "frame_event"}
    assert new <= set(losses) and all(torch.isfinite(losses[k]) for k in new)
    assert new <= set(fact_accuracy(model, heads, two))
    assert "patch_event" not in FactHeads.for_model(_tiny_model(), 8)(
        *encode(model, two["pixels"], two["times"])
    )


def _tiny_model():
    from videochat.model import build_model

    return build_model(embedded_config(vocab_rows(300)), None, seed=0)  # vision needs no tokenizer


def test_single_frame_batches_train_only_the_per_frame_facts(clips):
    model = _tiny_model()
    heads = FactHeads(128, 128, 8)
    one = single_frames({k: v[:4] for k, v in clips.items()}, torch.tensor([0, 3, 5, 7]))
    assert one["pixels"].shape == (4, 1, 3, 112, 112)
    losses = fact_losses(heads(*encode(model, one["pixels"], one["times"])), one, grid=4)
    assert set(losses) == {"visible", "colour", "position", "patch_shape", "patch_colour"}
    patch = fact_losses(
        heads(*encode(model, one["pixels"], one["times"])), one, grid=4, patch_only=True
    )
    assert set(patch) == {"patch_shape", "patch_colour"}
    torch.testing.assert_close(patch["patch_shape"], losses["patch_shape"])
    two = {k: v[:2] for k, v in clips.items()}
    full = fact_losses(heads(*encode(model, two["pixels"], two["times"])), two, grid=4)
    assert set(full) > set(losses) and {"event_bin", "motion", "count", "effect"} <= set(full)
    assert all(torch.isfinite(v) for v in full.values())


def test_pretraining_trains_the_vision_side_only(clips):
    model = _tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    plan = PretrainPlan(steps=3, image_steps=1, batch=2, real_fraction=0.5)
    heads = pretrain_vision(model, clips, plan)
    after = model.state_dict()
    moved = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert {"visual_encoder", "qformer", "query_tokens"} <= moved
    assert not moved & {"llm", "llama_proj"}
    assert isinstance(heads, FactHeads) and not model.training


def test_the_vision_stage_gives_the_same_weights_whatever_ran_before_it(clips):
    plan = PretrainPlan(steps=3, image_steps=1, batch=2, real_fraction=0.5)
    weights = []
    for draws in (0, 5):  # another use of the global generator first, as a resumed build does
        torch.rand(draws)
        model = _tiny_model()
        pretrain_vision(model, clips, plan)
        weights.append(model.state_dict())
    moved = [k for k in weights[0] if k.startswith("qformer.")]
    assert moved and all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_shape_steps_train_the_vit_on_patch_facts_before_the_qformer_moves(clips):
    from videochat.model import build_model

    model = build_model(embedded_config(vocab_rows(300), conv_stem=(32, 64)), None, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pretrain_vision(model, clips, PretrainPlan(steps=2, image_steps=2, shape_steps=2, batch=2))
    after = model.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert "visual_encoder.patch_embed.stem.0.weight" in moved
    assert not {k for k in moved if k.startswith(("qformer.", "query_tokens", "llm.", "llama_"))}


def test_fact_accuracy_scores_the_patch_facts_on_object_patches_only(clips):
    from videochat.embedded.readout import fact_accuracy

    model = _tiny_model()
    shape, colour = patch_labels(clips, grid=4)  # (B, T, 16) each, 0 = no object

    class Told(FactHeads):  # patch heads that answer `shape`/`colour`
        def __init__(self, shape, colour):
            super().__init__(128, 128, 8)
            self.answers = shape, colour

        def forward(self, rows, patches):
            out = super().forward(rows, patches)
            out["patch_shape"] = torch.nn.functional.one_hot(self.answers[0], 1 + len(SHAPES))
            out["patch_colour"] = torch.nn.functional.one_hot(self.answers[1], 1 + len(COLOURS))
            return out

    whole = len(clips["pixels"])
    right = fact_accuracy(model, Told(shape, colour), clips, batch=whole)
    assert right["patch_shape"] == right["patch_colour"] == 1.0
    # "no object" everywhere is right on most patches, but the score counts object patches only
    blind = fact_accuracy(model, Told(0 * shape, 0 * colour), clips, batch=whole)
    assert blind["patch_shape"] == blind["patch_colour"] == 0.0


def test_reversal_change_is_zero_for_rows_blind_to_frame_order_and_positive_otherwise(clips):
    from videochat.embedded.readout import reversal_change
    from videochat.model import build_model

    config = embedded_config(vocab_rows(300))
    config.vision.gmhra_layers, config.vision.temporal_pos_embed = 0, False  # a bag of frames
    blind = build_model(config, None, seed=0)
    assert reversal_change(blind, clips) == pytest.approx(0.0, abs=1e-5)
    timed = _tiny_model()
    with torch.no_grad():
        timed.visual_encoder.temporal_embed.normal_(std=1.0)
    assert reversal_change(timed, clips) > 0.05


def test_displacement_correlation_follows_the_movers_only(clips):
    from videochat.embedded.readout import displacement_correlation

    truth = clips["position"]  # (B, S, T, 2)
    assert displacement_correlation(truth, clips) == pytest.approx(1.0)
    assert displacement_correlation(-truth, clips) == pytest.approx(-1.0)
    still = truth.mean(2, keepdim=True).expand_as(truth)  # each object's mean place in every frame
    assert displacement_correlation(still, clips) == 0.0
    # positions of objects that are not straight movers do not enter the score
    motion = clips["motion"]
    others = (motion == IGNORE) | (motion == MOTIONS.index("none"))
    noisy = truth + others[:, :, None, None] * torch.randn_like(truth)
    assert displacement_correlation(noisy, clips) == pytest.approx(1.0)


def test_fact_heads_read_each_shape_from_its_own_rows_of_every_stretch():
    heads = FactHeads(128, 128, 8, stretches=2)  # rows 0-4 first half, 5-9 second half
    rows, patches = torch.randn(1, 21, 128), torch.randn(1, 8, 16, 128)
    base = heads(rows, patches)
    for row, shape in ((2, 2), (7, 2), (9, 4)):  # shape 2's first-half row, second-half row, ...
        moved = rows.clone()
        moved[0, row] += 1.0
        changed = (heads(moved, patches)["motion"] - base["motion"]).abs().sum(-1)[0]  # (S,)
        assert (changed > 0).tolist() == [s == shape for s in range(len(SHAPES))], row
    with pytest.raises(ValueError, match="fact heads need 19 Q-Former rows, got 16"):
        heads(rows[:, :16], patches)


def test_the_vision_stage_trains_with_stretched_shape_rows(clips):
    from videochat.model import build_model

    config = embedded_config(vocab_rows(300), frame_rows=True, shape_stretches=2)
    model = build_model(config, None, seed=0)
    heads = pretrain_vision(model, clips, PretrainPlan(steps=2, image_steps=1, batch=2))
    assert heads.stretches == 2 and heads.slot.in_features == 2 * 128
    facts = fact_accuracy(model, heads, {k: v[:2] for k, v in clips.items()})
    assert {"motion", "event_bin", "colour"} <= set(facts)
    assert all(0.0 <= value <= 1.0 for value in facts.values())


def test_event_times_are_the_scripted_seconds_between_the_frames_around_them(clips):
    from videochat.embedded.facts import EVENT_TIME_CLASSES
    from videochat.synth.plan import TIME_GRID

    timed = clips["event_time"] != IGNORE
    assert timed.sum() > 5 and torch.equal(timed, clips["event_bin"] != IGNORE)
    assert torch.equal(timed, clips["event_seconds"] >= 0)
    seconds = clips["event_seconds"][timed]
    assert torch.equal(clips["event_time"][timed], (seconds / TIME_GRID).round().long())
    assert int(clips["event_time"].max()) < EVENT_TIME_CLASSES
    for i, s in zip(*torch.nonzero(timed, as_tuple=True), strict=True):
        k, t = int(clips["event_bin"][i, s]), float(clips["event_seconds"][i, s])
        times = clips["times"][i]  # (T,) the sampled frames' seconds, rising
        assert (times.diff() > 0).all()
        assert (k == 0 or times[k - 1] < t) and (k == len(times) or t <= times[k])


def test_fact_heads_of_a_timed_model_train_the_event_time(clips):
    config = embedded_config(vocab_rows(300), frame_times=True)
    assert config.qformer.input_times and config.qformer.input_positions
    from videochat.model import build_model

    model = build_model(config, None, seed=0)
    heads = FactHeads.for_model(model, 8)
    two = {k: v[:2] for k, v in clips.items()}
    pred = heads(*encode(model, two["pixels"], two["times"]))
    assert pred["event_time"].shape == (2, len(SHAPES), 25)
    assert pred["event_seconds"].shape == (2, len(SHAPES))
    losses = fact_losses(pred, two, grid=4)
    assert {"event_time", "event_seconds"} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    # told the truth, the seconds loss is zero and the class loss small
    from videochat.model.visual_positions import TIME_HORIZON

    told = dict(pred)
    told["event_seconds"] = two["event_seconds"] / TIME_HORIZON
    told["event_time"] = 50.0 * torch.nn.functional.one_hot(two["event_time"].clamp(min=0), 25)
    exact = fact_losses(told, two, grid=4)
    assert float(exact["event_seconds"]) == 0.0 and float(exact["event_time"]) < 1e-6
    accuracy = fact_accuracy(model, heads, clips, batch=6)
    assert 0.0 <= accuracy["event_time"] <= accuracy["event_time_within_1"] <= 1.0
    untimed = FactHeads.for_model(_tiny_model(), 8)
    assert "event_time" not in untimed(*encode(_tiny_model(), two["pixels"], two["times"]))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pretrain_vision(model, clips, PretrainPlan(steps=2, image_steps=1, batch=2, real_fraction=0.5))
    assert not torch.equal(before["query_tokens"], model.state_dict()["query_tokens"])


def test_the_training_videos_decode_the_same_in_worker_processes(tmp_path):
    # the build decodes the vision stage's real clips in 2 processes (about half the time):
    # the same clips, facts and order as in this process
    from videochat.embedded.pretrain import cache_clips
    from videochat.synth.dataset import write_dataset

    write_dataset(tmp_path, videos=4, images=1, seed=5, size=(112, 112))
    here, there = (cache_clips(tmp_path, 8, 112, workers=n) for n in (0, 2))
    assert here["pixels"].shape == (4, 8, 3, 112, 112) and here["pixels"].dtype == torch.float16
    assert here.keys() == there.keys()
    assert all(torch.equal(here[key], there[key]) for key in here)
