"""Simulation ground truth: tracks stay in the arena, events match the motion, plans are clean."""

import numpy as np
import pytest

from videochat.synth.examples import bouncing_scene
from videochat.synth.plan import event_margin, random_image_scene, random_video_scene
from videochat.synth.questions import timed_events
from videochat.synth.world import Scene, event_frame, simulate


def _scenes(n=40, seed=5):
    return [random_video_scene(np.random.default_rng([seed, i]), f"v{i}") for i in range(n)]


SCENES = _scenes()


def test_same_seed_same_scene_and_timeline():
    a = random_video_scene(np.random.default_rng(3), "x")
    b = random_video_scene(np.random.default_rng(3), "x")
    assert a == b
    ta, tb = simulate(a), simulate(b)
    np.testing.assert_array_equal(ta.positions, tb.positions)
    assert ta.events == tb.events


def test_scene_round_trips_through_json_dict():
    for s in SCENES[:10]:
        back = Scene.from_dict(s.to_dict())
        assert back == s
        np.testing.assert_array_equal(simulate(back).positions, simulate(s).positions)


@pytest.mark.parametrize("scene", SCENES[:20], ids=lambda s: s.id)
def test_objects_stay_inside_the_arena(scene):
    tl = simulate(scene)
    x0, y0, x1, y1 = scene.arena
    r = np.array([o.radius for o in scene.objects])  # (N,)
    pos = tl.positions  # (F, N, 2)
    tol = 1e-3
    assert np.all(pos[..., 0] - r >= x0 - tol) and np.all(pos[..., 0] + r <= x1 + tol)
    assert np.all(pos[..., 1] - r >= y0 - tol) and np.all(pos[..., 1] + r <= y1 + tol)


def test_bouncing_example_bounces_off_walls_and_reverses():
    scene = bouncing_scene(0)
    tl = simulate(scene)
    bounces = [e for e in tl.events if e["type"] == "bounce"]
    assert len(bounces) >= 4
    vel = np.diff(tl.positions[:, 0], axis=0)  # (F-1, 2) per-frame displacement
    for e in bounces:
        f = round(e["time"] * scene.fps)
        axis = 0 if e["wall"] in ("left", "right") else 1
        before, after = vel[f - 2, axis], vel[f, axis]
        assert np.sign(before) == -np.sign(after), e


def test_no_unscripted_overlaps_and_straight_movers_never_bounce():
    for scene in SCENES:
        tl = simulate(scene)
        c = scene.collision
        fc = event_frame(c.time, scene.fps) if c else None
        for i in range(len(scene.objects)):
            for j in range(i + 1, len(scene.objects)):
                if c and {i, j} == {c.a, c.b}:
                    continue
                d = np.linalg.norm(tl.positions[:, i] - tl.positions[:, j], axis=-1)  # (F,)
                both = tl.visible[:, i] & tl.visible[:, j]
                gap = scene.objects[i].radius + scene.objects[j].radius
                assert np.all((d >= gap) | ~both), (scene.id, i, j)
        for e in tl.events:
            if e["type"] == "bounce":
                assert scene.obj(e["object"]).motion != "straight"
        if c:
            a, b = tl.positions[fc, c.a], tl.positions[fc, c.b]
            touch = scene.obj(c.a).radius + scene.obj(c.b).radius
            assert np.linalg.norm(a - b) == pytest.approx(touch, abs=0.05)


def test_collision_effects_show_in_the_tracks():
    seen = set()
    for scene in _scenes(120, seed=9):
        c = scene.collision
        if c is None:
            continue
        tl = simulate(scene)
        fc = event_frame(c.time, scene.fps)
        later = min(scene.num_frames - 1, fc + scene.fps // 2)
        d0 = np.linalg.norm(tl.positions[fc, c.a] - tl.positions[fc, c.b])
        d1 = np.linalg.norm(tl.positions[later, c.a] - tl.positions[later, c.b])
        if c.effect == "stop":
            pair = tl.positions[fc:, [c.a, c.b]]  # (F - fc, 2, 2)
            np.testing.assert_allclose(pair, np.broadcast_to(pair[:1], pair.shape))
        elif c.effect == "bounce":
            assert d1 > d0 + 1.0
        else:
            gone = c.a if c.effect == "vanish_a" else c.b
            assert tl.visible[fc, gone] and not tl.visible[fc + 1 :, gone].any()
        seen.add(c.effect)
        # approach: at rest until departure, then closer every frame for >= 1.5 s (or from 0 s)
        d = np.linalg.norm(tl.positions[: fc + 1, c.a] - tl.positions[: fc + 1, c.b], axis=-1)
        moving = np.flatnonzero(np.diff(d) < -1e-6)  # frames where the gap shrinks
        assert np.all(np.abs(np.diff(d)[: moving[0]]) < 1e-6)
        assert moving[-1] == fc - 1 and len(moving) == fc - moving[0]
        assert fc - moving[0] >= min(fc, 1.5 * scene.fps) - 1
        assert (
            np.linalg.norm(scene.obj(c.a).velocity) >= 0.1 * min(scene.width, scene.height) - 1e-6
        )
    assert seen == {"bounce", "stop", "vanish_a", "vanish_b"}


def test_scripted_events_are_separated_and_away_from_the_ends():
    for scene in SCENES:
        times = [e["time"] for e in timed_events(simulate(scene))]
        m = event_margin(scene.duration)
        assert all(m - 1e-9 <= t <= scene.duration - m + 1e-9 for t in times)
        assert all(b - a >= 1.5 - 1e-9 for a, b in zip(times, times[1:], strict=False))


def test_visibility_and_colour_follow_the_events():
    for scene in SCENES:
        tl = simulate(scene)
        for o in scene.objects:
            if o.appear is not None:
                f = event_frame(o.appear, scene.fps)
                assert not tl.visible[:f, o.id].any() and tl.visible[f, o.id]
            if o.recolour is not None:
                f = event_frame(o.recolour[0], scene.fps)
                assert tl.visible_colours(f - 1) >= {o.colour} or not tl.visible[f - 1, o.id]
                assert o.recolour[1] in tl.visible_colours(f)


def test_image_scenes_are_single_static_frames_without_overlap():
    for i in range(20):
        s = random_image_scene(np.random.default_rng([1, i]), f"i{i}")
        assert s.kind == "image" and s.num_frames == 1 and s.collision is None
        tl = simulate(s)
        p = tl.positions[0]
        for a in range(len(s.objects)):
            for b in range(a + 1, len(s.objects)):
                gap = s.objects[a].radius + s.objects[b].radius
                assert np.linalg.norm(p[a] - p[b]) >= gap
