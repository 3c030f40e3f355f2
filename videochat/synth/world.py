"""Scene model and event simulation: where every object is, in what colour, at every frame.

A scene is a plan (objects with start state and at most one scripted event each, plus at most
one scripted collision); `simulate` steps it frame by frame (walls reflect moving objects) and
returns the per-frame state and the event list with times in seconds. Everything a question asks
is read from this ground truth, never from the renderer.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from videochat.synth.vocab import COLOUR_NAMES


@dataclass
class SceneObject:
    """One object: its look, its start state and its (optional) scripted event."""

    id: int
    shape: str
    colour: str
    size: str
    radius: float  # bounding-circle radius in pixels
    start: tuple[float, float]  # centre at t=0, frame pixels
    velocity: tuple[float, float]  # pixels per second
    motion: str  # "static" | "straight" | "bounce" | "collide"
    direction: str | None = None  # for "straight": left/right/up/down
    appear: float | None = None  # seconds; hidden before
    disappear: float | None = None  # seconds; hidden from then on
    recolour: tuple[float, str] | None = None  # (seconds, new colour)


@dataclass
class Collision:
    """Objects `a` and `b` touch at `time` seconds; `effect` is what happens next (vocab.EFFECTS)."""

    time: float
    a: int
    b: int
    effect: str


@dataclass
class Scene:
    """A planned scene; `simulate(scene)` gives its ground-truth timeline."""

    id: str
    width: int
    height: int
    fps: int
    num_frames: int
    background: str
    texture: str
    objects: list[SceneObject]
    collision: Collision | None = None
    kind: str = "video"  # "video" | "image"
    seed: list[int] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    @property
    def arena(self) -> tuple[float, float, float, float]:
        """Centred square (x0, y0, x1, y1) the objects live in, so a centre crop keeps them all."""
        side = min(self.width, self.height)
        x0, y0 = (self.width - side) / 2, (self.height - side) / 2
        return x0, y0, x0 + side, y0 + side

    def obj(self, obj_id: int) -> SceneObject:
        return self.objects[obj_id]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Scene:
        data = dict(data)
        objects = [_object_from_dict(o) for o in data.pop("objects")]
        coll = data.pop("collision", None)
        data.pop("duration", None)
        data.pop("events", None)
        data.pop("media", None)
        data.pop("trajectories", None)
        return cls(objects=objects, collision=Collision(**coll) if coll else None, **data)


def _object_from_dict(data: dict) -> SceneObject:
    data = dict(data)
    data["start"] = tuple(data["start"])
    data["velocity"] = tuple(data["velocity"])
    if data.get("recolour") is not None:
        data["recolour"] = (float(data["recolour"][0]), str(data["recolour"][1]))
    return SceneObject(**data)


@dataclass
class Timeline:
    """Per-frame ground truth of a simulated scene."""

    positions: np.ndarray  # (F, N, 2) float32 centres in frame pixels
    visible: np.ndarray  # (F, N) bool
    colours: np.ndarray  # (F, N) int index into COLOUR_NAMES
    events: list[dict]  # sorted by time; times in seconds

    def visible_colours(self, frame: int) -> set[str]:
        pairs = zip(self.colours[frame], self.visible[frame], strict=True)
        return {COLOUR_NAMES[c] for c, v in pairs if v}


def event_frame(time: float, fps: int) -> int:
    """First frame whose timestamp is at or after `time` (the frame that shows the new state)."""
    return int(math.ceil(time * fps - 1e-6))


def simulate(scene: Scene) -> Timeline:
    """Step the scene frame by frame: move, reflect off the arena walls, apply scripted events."""
    n, frames, dt = len(scene.objects), scene.num_frames, 1.0 / scene.fps
    pos = np.array([o.start for o in scene.objects], dtype=np.float64).reshape(n, 2)  # (N, 2)
    vel = np.array([o.velocity for o in scene.objects], dtype=np.float64).reshape(n, 2)
    radius = np.array([o.radius for o in scene.objects], dtype=np.float64)
    positions = np.zeros((frames, n, 2), dtype=np.float32)
    visible, colours = _static_states(scene)
    events = _scripted_events(scene)
    coll = scene.collision
    coll_frame = event_frame(coll.time, scene.fps) if coll else -1
    x0, y0, x1, y1 = scene.arena
    for f in range(frames):
        if f > 0:
            pos += vel * dt
            for wall, hit in _reflect(pos, vel, radius, (x0, y0, x1, y1)):
                if visible[f, hit]:
                    events.append({"type": "bounce", "time": round(f * dt, 3), "object": hit})
                    events[-1]["wall"] = wall
        positions[f] = pos
        if f == coll_frame:
            _apply_effect(coll, vel, visible, f)
    events.sort(key=lambda e: (e["time"], e["type"]))
    return Timeline(positions=positions, visible=visible, colours=colours, events=events)


def _static_states(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """Visibility and colour per frame from the scripted appear/disappear/recolour times."""
    frames, n = scene.num_frames, len(scene.objects)
    visible = np.ones((frames, n), dtype=bool)
    colours = np.zeros((frames, n), dtype=np.int64)
    for i, o in enumerate(scene.objects):
        colours[:, i] = COLOUR_NAMES.index(o.colour)
        if o.appear is not None:
            visible[: event_frame(o.appear, scene.fps), i] = False
        if o.disappear is not None:
            visible[event_frame(o.disappear, scene.fps) :, i] = False
        if o.recolour is not None:
            t, new = o.recolour
            colours[event_frame(t, scene.fps) :, i] = COLOUR_NAMES.index(new)
    return visible, colours


def _scripted_events(scene: Scene) -> list[dict]:
    events: list[dict] = []
    for o in scene.objects:
        if o.appear is not None:
            events.append({"type": "appear", "time": o.appear, "object": o.id})
        if o.disappear is not None:
            events.append({"type": "disappear", "time": o.disappear, "object": o.id})
        if o.recolour is not None:
            t, new = o.recolour
            events.append(
                {"type": "colour_change", "time": t, "object": o.id, "from": o.colour, "to": new}
            )
    c = scene.collision
    if c is not None:
        events.append(
            {"type": "collision", "time": c.time, "objects": [c.a, c.b], "effect": c.effect}
        )
    return events


def _reflect(pos: np.ndarray, vel: np.ndarray, radius: np.ndarray, box) -> list[tuple[str, int]]:
    """Mirror objects that crossed a wall back inside (in place); return (wall, object) hits."""
    x0, y0, x1, y1 = box
    hits: list[tuple[str, int]] = []
    for axis, lo, hi, names in ((0, x0, x1, ("left", "right")), (1, y0, y1, ("top", "bottom"))):
        low = pos[:, axis] - radius < lo
        high = pos[:, axis] + radius > hi
        pos[low, axis] = 2 * (lo + radius[low]) - pos[low, axis]
        pos[high, axis] = 2 * (hi - radius[high]) - pos[high, axis]
        vel[low | high, axis] *= -1
        hits += [(names[0], int(i)) for i in np.flatnonzero(low)]
        hits += [(names[1], int(i)) for i in np.flatnonzero(high)]
    return hits


def _apply_effect(coll: Collision, vel: np.ndarray, visible: np.ndarray, frame: int) -> None:
    """What happens right after the contact frame."""
    if coll.effect == "bounce":
        vel[[coll.a, coll.b]] *= -1
    elif coll.effect == "stop":
        vel[[coll.a, coll.b]] = 0.0
    else:
        gone = coll.a if coll.effect == "vanish_a" else coll.b
        visible[frame + 1 :, gone] = False
