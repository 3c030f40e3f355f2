"""Captions, open-ended descriptions and their scoring, all derived from the ground truth.

`ground_truth_attributes` lists the words a good description must contain (colours, shapes,
events, motions); `score_description` is the fraction of them an answer mentions, so an
open-ended answer can be graded without a judge model. `description_precision` is its other
half: the fraction of the colours and shapes an answer names that the scene has.
"""

from __future__ import annotations

import re

from videochat.synth.questions import (
    DIR_PHRASES,
    effect_phrases,
    event_phrase,
    name,
    position_name,
    position_phrase,
    timed_events,
)
from videochat.synth.vocab import BACKGROUND_NAMES, COLOUR_NAMES, SHAPES
from videochat.synth.world import Scene, SceneObject, Timeline

# attribute -> regular expression accepted in an answer (besides the attribute word itself)
_EVENT_PATTERNS: dict[str, str] = {
    "appears": r"\bappear\w*|\bshows? up\b",
    "disappears": r"\bdisappear\w*|\bvanish\w*",
    "changes colour": r"\bchang\w* (its )?colou?r|\bturns?\b|\bbecomes?\b",
    "collides": r"\bhits?\b|\bcollid\w*|\bcollision|\bcrash\w*|\bbump\w*",
    "bounces": r"\bbounc\w*",
    "stops": r"\bstop\w*",
}


def _motion(scene: Scene, o: SceneObject) -> str:
    if o.motion == "straight":
        return f"moves {DIR_PHRASES[o.direction]}"
    if o.motion == "collide":
        c = scene.collision
        other = name(scene, scene.obj(c.b if o.id == c.a else c.a))
        return f"{'waits, then ' if o.depart > 0 else ''}moves towards {other}"
    return {"bounce": "bounces around", "static": "stays still"}[o.motion]


def _listing(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def caption(scene: Scene, tl: Timeline) -> str:
    """Short stage-1 caption: the objects, the background and the first scripted event."""
    objs = [f"{_article(o.colour)} {o.colour} {o.shape}" for o in scene.objects]
    text = f"{_listing(objs).capitalize()} on {_article(scene.background)} {scene.background} "
    text += "background"
    events = timed_events(tl)
    if scene.kind == "video" and events:
        text += f"; {event_phrase(scene, events[0], tense='present')}"
    return text + "."


def description(scene: Scene, tl: Timeline) -> str:
    """Open-ended description: every object with its size and motion, then events in order."""
    n = len(scene.objects)
    if scene.kind == "image":
        parts = [
            f"{_article(o.size)} {o.size} {o.colour} {o.shape} "
            f"{position_phrase(position_name(scene, o))}"
            for o in scene.objects
        ]
        noun = "object" if n == 1 else "objects"
        return f"The image shows {n} {noun} on a {scene.background} background: {_listing(parts)}."
    noun = "object" if n == 1 else "different objects"
    out = [
        f"The video lasts {scene.duration:.1f} seconds and shows {n} {noun} on "
        f"{_article(scene.background)} {scene.background} background."
    ]
    for o in scene.objects:
        out.append(
            f"{_article(o.size).capitalize()} {o.size} {o.colour} {o.shape} {_motion(scene, o)}."
        )
    for e in timed_events(tl):
        text = f"At {e['time']:.1f} seconds {event_phrase(scene, e, tense='present')}"
        if e["type"] == "colour_change":
            text += f" from {e['from']} to {e['to']}"
        if e["type"] == "collision":
            text += f" and {effect_phrases(scene)[e['effect']]}"
        out.append(text + ".")
    return " ".join(out)


def ground_truth_attributes(scene: Scene) -> set[str]:
    """Colours, shapes, motion and event words a complete description must mention."""
    attrs = {o.colour for o in scene.objects} | {o.shape for o in scene.objects}
    for o in scene.objects:
        if o.recolour is not None:
            attrs |= {o.recolour[1], "changes colour"}
        if o.appear is not None:
            attrs.add("appears")
        if o.disappear is not None:
            attrs.add("disappears")
        if o.motion == "bounce":
            attrs.add("bounces")
    c = scene.collision
    if c is not None:
        attrs.add("collides")
        attrs.add({"bounce": "bounces", "stop": "stops"}.get(c.effect, "disappears"))
    return attrs


_PLURAL = r"(?:e?s)?"  # "circles", "crosses"


def _pattern(attr: str) -> str:
    if attr in _EVENT_PATTERNS:
        return _EVENT_PATTERNS[attr]
    return rf"\b{attr}{_PLURAL}\b"  # colour or shape word


def _normalised(text: str) -> str:
    return text.lower().replace("color", "colour").replace("gray", "grey")


def score_description(text: str, scene: Scene) -> float:
    """Fraction of `ground_truth_attributes(scene)` the text mentions (0..1, case-insensitive)."""
    attrs = ground_truth_attributes(scene)
    low = _normalised(text)
    hits = [a for a in attrs if re.search(_pattern(a), low)]
    return len(hits) / len(attrs) if attrs else 1.0


# a colour or shape word (plural shapes too); a background's name is a phrase of its own
_NAMED = re.compile(rf"\b({'|'.join(COLOUR_NAMES)}|({'|'.join(SHAPES)}){_PLURAL})\b")
_BACKGROUND = re.compile(rf"\b({'|'.join(BACKGROUND_NAMES)}) background\b")


def description_precision(text: str, scene: Scene) -> float:
    """Fraction of the colour and shape words the text names (each mention; the background's
    name left out) that belong to the scene's objects, colours they change to included; 1.0 for
    a text naming none. Why: `score_description` alone rewards naming every colour and shape
    whatever the video shows; this falls with each one named that is not there."""
    truth = ground_truth_attributes(scene)  # its event words never match a colour or shape
    named = [
        m.group(2) or m.group(1) for m in _NAMED.finditer(_BACKGROUND.sub("", _normalised(text)))
    ]
    return sum(word in truth for word in named) / len(named) if named else 1.0


def description_prompts(kind: str = "video") -> tuple[str, ...]:
    """Varied open-ended prompts for the instruction data ("video" or "image")."""
    return (
        f"Describe the {kind} in detail.",
        f"What is in this {kind}?" if kind == "image" else "What happens in this video?",
        f"Give a detailed description of the objects in the {kind}.",
        "Tell me everything you see, in order.",
    )
