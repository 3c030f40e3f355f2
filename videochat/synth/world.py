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
    depart: float = 0.0  # seconds; the object rests at `start` until then (collision approach)


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
    """Ground truth of the whole scene: per-object tracks, visibility, colours and events."""
    n, frames = len(scene.objects), scene.num_frames
    positions = np.zeros((frames, n, 2), dtype=np.float32)
    visible, colours = scripted_states(scene)
    events = _scripted_events(scene)
    for i, o in enumerate(scene.objects):
        pos, heading = track(scene, o)  # (F, 2), (F, 2)
        positions[:, i] = pos
        events += _bounce_events(scene, i, heading, visible[:, i])
    events.sort(key=lambda e: (e["time"], e["type"]))
    return Timeline(positions=positions, visible=visible, colours=colours, events=events)


def track(scene: Scene, o: SceneObject) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form centre of one object at every frame, reflected off the arena walls.

    Returns positions (F, 2) and the sign of the velocity per axis (F, 2); a sign flip between
    two frames is a wall bounce. The collision pair changes velocity after the contact frame.
    """
    t = np.arange(scene.num_frames, dtype=np.float64) / scene.fps  # (F,)
    start, vel = np.array(o.start, dtype=np.float64), np.array(o.velocity, dtype=np.float64)
    pos, heading = _fold_path(scene, o.radius, start, vel, np.maximum(t - o.depart, 0.0))
    c = scene.collision
    if c is not None and o.id in (c.a, c.b):
        fc = event_frame(c.time, scene.fps)
        after = t[fc:] - t[fc]
        new_vel = {"bounce": -vel, "stop": 0.0 * vel}.get(c.effect, vel)
        pos[fc:], heading[fc:] = _fold_path(scene, o.radius, pos[fc].copy(), new_vel, after)
    return pos, heading


def _fold_path(scene: Scene, r: float, start, vel, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Straight motion folded into [wall + r, wall - r] per axis: mirror images = elastic bounces."""
    x0, y0, x1, y1 = scene.arena
    pos, heading = np.zeros((len(t), 2)), np.zeros((len(t), 2))
    for axis, (lo, hi) in enumerate(((x0 + r, x1 - r), (y0 + r, y1 - r))):
        span = max(hi - lo, 1e-9)
        m = np.mod(start[axis] - lo + vel[axis] * t, 2 * span)  # (F,) unfolded, mod a round trip
        forward = m <= span
        pos[:, axis] = lo + np.where(forward, m, 2 * span - m)
        heading[:, axis] = np.sign(vel[axis]) * np.where(forward, 1.0, -1.0)
    return pos, heading


def _bounce_events(scene: Scene, i: int, heading: np.ndarray, visible: np.ndarray) -> list[dict]:
    """Wall bounces of object i while it is visible (velocity sign flips between frames)."""
    walls = (("left", "right"), ("top", "bottom"))
    events = []
    flips = (heading[1:] != heading[:-1]) & (heading[1:] != 0) & (heading[:-1] != 0)  # (F-1, 2)
    for f, axis in zip(*np.nonzero(flips), strict=True):
        if visible[f + 1]:
            wall = walls[axis][1] if heading[f, axis] > 0 else walls[axis][0]
            time = round(float(f + 1) / scene.fps, 3)
            events.append({"type": "bounce", "time": time, "object": i, "wall": wall})
    return events


def scripted_states(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """Visibility and colour per frame from the scripted events (appear, disappear, recolour, vanish)."""
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
    coll = scene.collision
    if coll is not None and coll.effect.startswith("vanish"):  # gone right after the contact frame
        gone = coll.a if coll.effect == "vanish_a" else coll.b
        visible[event_frame(coll.time, scene.fps) + 1 :, gone] = False
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
