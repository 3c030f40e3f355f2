"""Question generators, one per benchmark task, each answered from the scene's ground truth.

Every generator returns a `Question` (multiple choice, with a natural-sentence answer for the
instruction data) or None when the scene cannot support that task. Candidates are shuffled with
the caller's generator; distractors are drawn so that the candidate set alone does not reveal the
answer (e.g. a colour change X->Y comes with Y->X and a mirrored pair of unrelated colours).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from videochat.synth.plan import EVENT_GAP, event_margin, pick_spaced, time_grid
from videochat.synth.vocab import COLOUR_NAMES, DIRECTIONS, SHAPES
from videochat.synth.world import Scene, SceneObject, Timeline


@dataclass
class Question:
    """One multiple-choice question with its ground-truth answer."""

    task: str
    question: str
    candidates: list[str]
    answer: str
    sentence: str  # the answer as a full sentence (instruction data)


def name(scene: Scene, o: SceneObject) -> str:
    """How questions refer to an object: shapes are unique; colour only if it never changes."""
    return f"the {o.shape}" if o.recolour is not None else f"the {o.colour} {o.shape}"


def _pick(rng: np.random.Generator, items: list):
    return items[int(rng.integers(len(items)))] if items else None


def _mc(rng, task, question, answer, distractors, sentence) -> Question:
    cands = [answer, *distractors]
    order = rng.permutation(len(cands))
    return Question(task, question, [cands[i] for i in order], answer, sentence)


def _others(rng: np.random.Generator, pool, exclude, k: int) -> list[str]:
    rest = [p for p in pool if p not in exclude]
    return [str(x) for x in rng.choice(rest, size=k, replace=False)]


def fixed_colour(scene: Scene) -> list[SceneObject]:
    """The objects whose colour never changes (colour and shape questions are about them)."""
    return [o for o in scene.objects if o.recolour is None]


def q_colour(rng, scene: Scene, tl: Timeline) -> Question | None:
    o = _pick(rng, fixed_colour(scene))
    return None if o is None else colour_question(rng, scene, o)


def colour_question(rng, scene: Scene, o: SceneObject) -> Question:
    q = f"What colour is the {o.shape}?"
    dis = _others(rng, COLOUR_NAMES, {o.colour}, 3)
    return _mc(rng, "object_colour", q, o.colour, dis, f"The {o.shape} is {o.colour}.")


def q_shape(rng, scene: Scene, tl: Timeline) -> Question | None:
    o = _pick(rng, fixed_colour(scene))
    return None if o is None else shape_question(rng, scene, o)


def shape_question(rng, scene: Scene, o: SceneObject) -> Question:
    q = f"What shape is the {o.colour} object?"
    art = "an" if o.shape[0] in "aeiou" else "a"
    sent = f"The {o.colour} object is {art} {o.shape}."
    return _mc(rng, "object_shape", q, o.shape, _others(rng, SHAPES, {o.shape}, 3), sent)


def q_count(rng, scene: Scene, tl: Timeline) -> Question | None:
    n = len(scene.objects)
    q = f"How many different objects are shown in the {scene.kind} in total?"
    dis = _others(rng, [str(k) for k in range(1, 6)], {str(n)}, 3)
    sent = "There is 1 object." if n == 1 else f"There are {n} objects in total."
    return _mc(rng, "object_count", q, str(n), dis, sent)


DIR_PHRASES: dict[str, str] = {
    "left": "to the left",
    "right": "to the right",
    "up": "up",
    "down": "down",
}


def steady_movers(scene: Scene) -> list[SceneObject]:
    """Objects moving in a straight line for the whole clip (direction questions)."""
    movers = [o for o in scene.objects if o.motion == "straight"]
    return [o for o in movers if o.appear is None and o.disappear is None]


def q_direction(rng, scene: Scene, tl: Timeline) -> Question | None:
    o = _pick(rng, steady_movers(scene))
    return None if o is None else direction_question(rng, scene, o)


def direction_question(rng, scene: Scene, o: SceneObject) -> Question:
    q = f"In which direction does {name(scene, o)} move?"
    dis = [d for d in DIRECTIONS if d != o.direction]
    sent = f"{name(scene, o).capitalize()} moves {DIR_PHRASES[o.direction]}."
    return _mc(rng, "motion_direction", q, o.direction, dis, sent)


def event_phrase(scene: Scene, e: dict, tense: str = "past") -> str:
    """Short description of a scripted event: tense "past" ('the red circle appeared'),
    "present" ('... appears') or "base" ('... appear', for 'When does ...?')."""
    form = ("past", "present", "base").index(tense)
    if e["type"] == "collision":
        a, b = (name(scene, scene.obj(i)) for i in e["objects"])
        return f"{a} {('hit', 'hits', 'hit')[form]} {b}"
    verb = {
        "appear": ("appeared", "appears", "appear"),
        "disappear": ("disappeared", "disappears", "disappear"),
        "colour_change": ("changed colour", "changes colour", "change colour"),
    }[e["type"]]
    return f"{name(scene, scene.obj(e['object']))} {verb[form]}"


POSITIONS: tuple[tuple[str, ...], ...] = (
    ("top left", "top", "top right"),
    ("left", "centre", "right"),
    ("bottom left", "bottom", "bottom right"),
)
POSITION_PHRASES: dict[str, str] = {
    "top": "at the top",
    "bottom": "at the bottom",
    "left": "on the left",
    "right": "on the right",
    "centre": "in the centre",
}


def position_name(scene: Scene, o: SceneObject) -> str:
    """Where an object starts in a 3x3 split of the arena (asked about still images)."""
    x0, y0, x1, y1 = scene.arena
    col = min(2, max(0, int(3 * (o.start[0] - x0) / (x1 - x0))))
    row = min(2, max(0, int(3 * (o.start[1] - y0) / (y1 - y0))))
    return POSITIONS[row][col]


def position_phrase(pos: str) -> str:
    return POSITION_PHRASES.get(pos, f"in the {pos}")


def q_position(rng, scene: Scene, tl: Timeline) -> Question | None:
    o = _pick(rng, list(scene.objects))
    pos = position_name(scene, o)
    q = f"Where is {name(scene, o)} in the image?"
    dis = _others(rng, [p for row in POSITIONS for p in row], {pos}, 3)
    sent = f"{name(scene, o).capitalize()} is {position_phrase(pos)}."
    return _mc(rng, "object_position", q, pos, dis, sent)


def timed_events(tl: Timeline) -> list[dict]:
    """The scripted, well-separated events (not wall bounces)."""
    return scripted(tl.events)


def scripted(events: list[dict]) -> list[dict]:
    """`events` without the wall bounces (a timeline's, or a scene record's "events")."""
    return [e for e in events if e["type"] != "bounce"]


def q_order(rng, scene: Scene, tl: Timeline) -> Question | None:
    events = timed_events(tl)
    if len(events) < 3:
        return None
    which = str(rng.choice(["first", "last"]))
    return order_question(rng, scene, events, which)


def order_question(rng, scene: Scene, events: list[dict], which: str) -> Question:
    """Which of the scripted `events` (in time order, at least 3) happened `which` ("first" or
    "last"); the options are all of them."""
    target = events[0] if which == "first" else events[-1]
    phrases = [event_phrase(scene, e) for e in events]
    answer = event_phrase(scene, target)
    q = f"Which of these happened {which}?"
    dis = [p for p in phrases if p != answer]
    sent = f"{answer[0].upper()}{answer[1:]} {which}."
    return _mc(rng, "temporal_order", q, answer, dis, sent)


def time_text(t: float) -> str:
    return f"at {t:.1f} seconds"


def time_value(text: str) -> float:
    """The seconds of an option `time_text` wrote ("at 3.5 seconds" → 3.5)."""
    try:
        seconds = float(text.removeprefix("at ").removesuffix(" seconds"))
    except ValueError:
        seconds = None
    if seconds is None or time_text(seconds) != text:
        raise ValueError(f"not an event-time option: {text!r}")
    return seconds


def _time_distractors(rng: np.random.Generator, scene: Scene, answer: float) -> list[float] | None:
    """2-3 times on the event grid and range, >= EVENT_GAP from the answer and from each other."""
    margin = event_margin(scene.duration)
    lo, hi = margin, scene.duration - margin
    grid = time_grid(lo, hi)
    grid = grid[np.abs(grid - answer) >= EVENT_GAP - 1e-9]
    return pick_spaced(rng, grid, 3 if hi - lo >= 3 * EVENT_GAP else 2)


def q_when(rng, scene: Scene, tl: Timeline) -> Question | None:
    e = _pick(rng, timed_events(tl))
    return None if e is None else when_question(rng, scene, e)


def when_question(rng, scene: Scene, e: dict) -> Question | None:
    """When one scripted event happens (None when the clip leaves no room for distractors)."""
    times = _time_distractors(rng, scene, e["time"])
    if times is None:
        return None
    phrase = event_phrase(scene, e, tense="present")
    q = f"When does {event_phrase(scene, e, tense='base')}?"
    dis = [time_text(t) for t in times]
    sent = f"{phrase[0].upper()}{phrase[1:]} at about {e['time']:.1f} seconds."
    return _mc(rng, "event_localisation", q, time_text(e["time"]), dis, sent)


def q_state(rng, scene: Scene, tl: Timeline) -> Question | None:
    e = _pick(rng, [e for e in tl.events if e["type"] == "colour_change"])
    if e is None:
        return None
    o = scene.obj(e["object"])
    x, y = e["from"], e["to"]
    z, w = _others(rng, COLOUR_NAMES, {x, y}, 2)
    answer = f"from {x} to {y}"
    dis = [f"from {y} to {x}", f"from {z} to {w}", f"from {w} to {z}"]
    q = f"How does the colour of the {o.shape} change?"
    sent = f"The {o.shape} changes colour from {x} to {y}."
    return _mc(rng, "state_change", q, answer, dis, sent)


def effect_phrases(scene: Scene) -> dict[str, str]:
    """Candidate outcomes of the scene's collision, keyed by effect."""
    c = scene.collision
    a, b = name(scene, scene.obj(c.a)), name(scene, scene.obj(c.b))
    return {
        "bounce": "they bounce apart",
        "stop": "they both stop moving",
        "vanish_a": f"{a} disappears",
        "vanish_b": f"{b} disappears",
    }


def q_cause(rng, scene: Scene, tl: Timeline) -> Question | None:
    c = scene.collision
    if c is None:
        return None
    a, b = name(scene, scene.obj(c.a)), name(scene, scene.obj(c.b))
    phrases = effect_phrases(scene)
    answer = phrases[c.effect]
    q = f"What happens right after {a} hits {b}?"
    dis = [p for k, p in phrases.items() if k != c.effect]
    sent = f"After {a} hits {b}, {answer}."
    return _mc(rng, "cause_effect", q, answer, dis, sent)


GENERATORS: dict[str, Callable[..., Question | None]] = {
    "object_colour": q_colour,
    "object_shape": q_shape,
    "object_count": q_count,
    "motion_direction": q_direction,
    "temporal_order": q_order,
    "event_localisation": q_when,
    "state_change": q_state,
    "cause_effect": q_cause,
}
TASKS: tuple[str, ...] = tuple(GENERATORS)


IMAGE_GENERATORS: dict[str, Callable[..., Question | None]] = {
    "object_colour": q_colour,
    "object_shape": q_shape,
    "object_count": q_count,
    "object_position": q_position,
}


# task → (the objects it can ask about, the question about one of them); every builder takes
# (rng, scene, object), whether or not it needs the scene
PER_OBJECT: dict[str, tuple[Callable[[Scene], list[SceneObject]], Callable[..., Question]]] = {
    "object_colour": (fixed_colour, colour_question),
    "object_shape": (fixed_colour, shape_question),
    "motion_direction": (steady_movers, direction_question),
}


def per_object_questions(rng: np.random.Generator, scene: Scene) -> list[Question]:
    """The `PER_OBJECT` tasks asked about every object they apply to, not one drawn at random."""
    return [ask(rng, scene, o) for objects, ask in PER_OBJECT.values() for o in objects(scene)]


def event_time_questions(
    rng: np.random.Generator, scene: Scene, events: list[dict]
) -> list[Question]:
    """The event-time question about every scripted event of `events` (the scene's), not one
    drawn at random as the benchmark asks."""
    asked = [when_question(rng, scene, e) for e in scripted(events)]
    return [q for q in asked if q is not None]


def order_questions(rng: np.random.Generator, scene: Scene, events: list[dict]) -> list[Question]:
    """Temporal order asked both ways, "first" and "last", about the scripted `events` (the
    scene's; none with fewer than 3), not one way drawn at random as the benchmark asks."""
    timed = scripted(events)
    return (
        [order_question(rng, scene, timed, w) for w in ("first", "last")] if len(timed) >= 3 else []
    )


def image_questions(rng: np.random.Generator, scene: Scene, tl: Timeline) -> list[Question]:
    """Questions about a still image (colour, shape, count, position)."""
    out = [gen(rng, scene, tl) for gen in IMAGE_GENERATORS.values()]
    return [q for q in out if q is not None]


def video_questions(rng: np.random.Generator, scene: Scene, tl: Timeline) -> list[Question]:
    """One question per task the scene supports, in TASKS order."""
    out = [gen(rng, scene, tl) for gen in GENERATORS.values()]
    return [q for q in out if q is not None]
