"""Questions: answers re-derived from the simulated tracks, balance, and blind baselines at chance."""

import re
from collections import Counter, defaultdict

import numpy as np
import pytest

from videochat.synth.baseline import text_only_accuracy
from videochat.synth.plan import random_video_scene
from videochat.synth.questions import TASKS, time_text, time_value, timed_events, video_questions
from videochat.synth.vocab import COLOUR_NAMES, SHAPES
from videochat.synth.world import event_frame, simulate


def _items(n, seed):
    out = []
    for i in range(n):
        scene = random_video_scene(np.random.default_rng([seed, i]), f"v{i}")
        tl = simulate(scene)
        out += [
            (scene, tl, q) for q in video_questions(np.random.default_rng([seed, i, 1]), scene, tl)
        ]
    return out


ITEMS = _items(120, seed=21)


def _shapes_in(text):
    found = [(m.start(), m.group(1)) for m in re.finditer(r"\b(" + "|".join(SHAPES) + r")\b", text)]
    return [s for _, s in sorted(found)]


def _obj(scene, shape):
    return next(o for o in scene.objects if o.shape == shape)


def _first_frame(mask):
    return int(np.flatnonzero(mask)[0])


def _event_frame_from_tracks(scene, tl, question):
    """Re-derive from the pixels' ground truth (tracks) the frame a 'When does ...' event shows."""
    shapes = _shapes_in(question)
    o = _obj(scene, shapes[0])
    if " appear?" in question:
        return _first_frame(tl.visible[:, o.id])
    if "disappear?" in question:
        return _first_frame(~tl.visible[:, o.id] & (np.arange(len(tl.visible)) > 0))
    if "change colour?" in question:
        return _first_frame(tl.colours[:, o.id] != tl.colours[0, o.id])
    b = _obj(scene, shapes[1])
    d = np.linalg.norm(tl.positions[:, o.id] - tl.positions[:, b.id], axis=-1)  # (F,)
    return _first_frame(d <= o.radius + b.radius + 1e-3)


def _check(scene, tl, q):
    """Assert the answer is what the tracks show (independent of the planner's fields)."""
    ans, text = q.answer, q.question
    if q.task == "object_colour":
        o = _obj(scene, _shapes_in(text)[0])
        assert {COLOUR_NAMES[c] for c in tl.colours[:, o.id]} == {ans}
    elif q.task == "object_shape":
        colour = re.search(r"the (\w+) object", text).group(1)
        ids = [i for i in range(len(scene.objects)) if COLOUR_NAMES[tl.colours[0, i]] == colour]
        assert [scene.objects[i].shape for i in ids] == [ans]
    elif q.task == "object_count":
        assert int(ans) == int(tl.visible.any(axis=0).sum())
    elif q.task == "motion_direction":
        o = _obj(scene, _shapes_in(text)[0])
        step = np.diff(tl.positions[:, o.id], axis=0)  # (F-1, 2)
        axis = 0 if ans in ("left", "right") else 1
        sign = 1 if ans in ("right", "down") else -1
        assert np.all(step[:, axis] * sign > 0) and np.allclose(step[:, 1 - axis], 0, atol=1e-3)
    elif q.task == "temporal_order":
        frames = {c: _event_frame_from_tracks(scene, tl, _as_when(c)) for c in q.candidates}
        pick = min if "first" in text else max
        assert pick(frames, key=frames.get) == ans
    elif q.task == "event_localisation":
        t = time_value(ans)
        assert _event_frame_from_tracks(scene, tl, text) == event_frame(t, scene.fps)
    elif q.task == "state_change":
        o = _obj(scene, _shapes_in(text)[0])
        x, y = COLOUR_NAMES[tl.colours[0, o.id]], COLOUR_NAMES[tl.colours[-1, o.id]]
        assert ans == f"from {x} to {y}"
    elif q.task == "cause_effect":
        _check_effect(scene, tl, q)


def _as_when(phrase):
    """'the red circle appeared' -> 'When does the red circle appear?' (for the same re-derivation)."""
    for past, base in (
        ("disappeared", "disappear"),
        ("appeared", "appear"),
        ("changed colour", "change colour"),
    ):
        if phrase.endswith(past):
            return f"When does {phrase[: -len(past)]}{base}?"
    return f"When does {phrase}?"


def _check_effect(scene, tl, q):
    a, b = (_obj(scene, s) for s in _shapes_in(q.question))
    fc = _event_frame_from_tracks(scene, tl, f"When does the {a.shape} hit the {b.shape}?")
    later = min(len(tl.visible) - 1, fc + scene.fps // 2)
    gone = [o for o in (a, b) if not tl.visible[later, o.id]]
    if gone:
        assert q.answer == f"{'the ' + gone[0].colour + ' ' + gone[0].shape} disappears"
    elif np.allclose(tl.positions[later, [a.id, b.id]], tl.positions[fc, [a.id, b.id]]):
        assert q.answer == "they both stop moving"
    else:
        d0 = np.linalg.norm(tl.positions[fc, a.id] - tl.positions[fc, b.id])
        d1 = np.linalg.norm(tl.positions[later, a.id] - tl.positions[later, b.id])
        assert d1 > d0 and q.answer == "they bounce apart"


def test_every_task_is_generated():
    assert set(TASKS) == {q.task for _, _, q in ITEMS}
    assert len(TASKS) >= 8


@pytest.mark.parametrize("task", TASKS)
def test_answers_match_the_tracks(task):
    items = [(s, tl, q) for s, tl, q in ITEMS if q.task == task]
    assert len(items) >= 10
    for scene, tl, q in items:
        assert q.answer in q.candidates and 3 <= len(q.candidates) <= 4
        assert len(set(q.candidates)) == len(q.candidates)
        _check(scene, tl, q)


def test_localisation_candidates_are_far_apart_and_events_visible_in_8_frames():
    for scene, tl, q in ITEMS:
        if q.task != "event_localisation":
            continue
        times = sorted(float(c.split()[1]) for c in q.candidates)
        assert min(np.diff(times)) >= 1.5
        # middle sampling of 8 frames sees the state before and after every scripted event
        stamps = (np.arange(8) + 0.5) * scene.duration / 8
        for e in timed_events(tl):
            assert (stamps < e["time"]).any() and (stamps >= e["time"]).any()


def test_answers_are_balanced_over_positions_and_values():
    items = _items(200, seed=4)
    by_task = defaultdict(list)
    for _, _, q in items:
        by_task[q.task].append(q)
    for task, qs in by_task.items():
        pos = Counter(q.candidates.index(q.answer) for q in qs if len(q.candidates) == 4)
        if sum(pos.values()) >= 40:
            freq = np.array([pos[k] for k in range(4)]) / sum(pos.values())
            assert np.all(np.abs(freq - 0.25) < 0.12), (task, freq)
    for task in ("object_colour", "object_count", "motion_direction", "cause_effect"):
        values = Counter(_answer_kind(q) for q in by_task[task])
        top = max(values.values()) / sum(values.values())
        assert top < 2.2 / len(values), (task, values)


def _answer_kind(q):
    """The answer's value; for cause and effect which outcome (which object vanished)."""
    if q.task != "cause_effect" or not q.answer.endswith("disappears"):
        return q.answer
    gone = q.answer.removesuffix(" disappears")
    return (
        "first vanishes" if q.question.startswith(f"What happens right after {gone} ") else "second"
    )


def test_text_only_baselines_stay_near_chance():
    by_task = defaultdict(list)
    for _, _, q in _items(400, seed=77):
        by_task[q.task].append(
            {"question": q.question, "candidates": q.candidates, "answer": q.answer}
        )
    for task in TASKS:
        items = by_task[task]
        half = len(items) // 2
        acc = text_only_accuracy(items[:half], items[half:])
        for name, value in acc.items():
            assert value <= acc["chance"] + 0.1, (task, name, acc)


def test_time_value_reads_back_what_time_text_wrote() -> None:
    for seconds in (0.0, 3.5, 12.0):
        assert time_value(time_text(seconds)) == seconds
    for text in ("at about 3.5 seconds", "at 3.50 seconds", "3.5"):
        with pytest.raises(ValueError, match="not an event-time option"):
            time_value(text)
