"""Random scene plans: which objects, how they move, which events happen when.

Answers are drawn first and the scene is built to match them (object count, colours, direction,
collision effect, event times), so every answer is uniformly distributed by construction and no
answer can be guessed from question text. Each object has at most one scripted event, and event
types are assigned to the (well separated) event times at random, so an event's type says nothing
about when it happens.
"""

from __future__ import annotations

import numpy as np

from videochat.synth.vocab import (
    BACKGROUND_NAMES,
    COLOUR_NAMES,
    DIRECTIONS,
    EFFECTS,
    SHAPES,
    SIZES,
    TEXTURES,
)
from videochat.synth.world import Collision, Scene, SceneObject, event_frame, scripted_states, track

VIDEO_SIZES: tuple[tuple[int, int], ...] = ((224, 224), (256, 256), (320, 240), (240, 320))
VIDEO_FPS: tuple[int, ...] = (8, 10, 12, 15, 24, 25, 30)
EVENT_GAP = 1.5  # seconds between any two scripted events
TIME_GRID = 0.5  # scripted event times are multiples of this
MAX_DURATION = 12.0  # seconds of the longest video


def event_margin(duration: float) -> float:
    """Seconds kept free of events at both ends, so 8 sampled frames see before and after."""
    return max(1.0, 1.25 * duration / 8)


def time_grid(lo: float, hi: float) -> np.ndarray:
    """The event times allowed in [lo, hi]: multiples of TIME_GRID."""
    return np.arange(np.ceil(lo / TIME_GRID) * TIME_GRID, hi + 1e-9, TIME_GRID)


def pick_spaced(rng: np.random.Generator, grid: np.ndarray, k: int) -> list[float] | None:
    """k sorted times from `grid`, pairwise >= EVENT_GAP apart (None if 50 draws fail)."""
    for _ in range(50):
        if len(grid) < k:
            return None
        pick = np.sort(rng.choice(grid, size=k, replace=False))
        if k < 2 or np.min(np.diff(pick)) >= EVENT_GAP - 1e-9:
            return [float(t) for t in pick]
    return None


def _grid_times(rng: np.random.Generator, lo: float, hi: float, k: int) -> list[float] | None:
    """k times on the TIME_GRID in [lo, hi], pairwise >= EVENT_GAP apart (None if impossible)."""
    return pick_spaced(rng, time_grid(lo, hi), k)


def random_video_scene(
    rng: np.random.Generator, scene_id: str, size: tuple[int, int] | None = None
) -> Scene:
    """A random video scene with 1-5 objects and up to one event per object."""
    fps = int(rng.choice(VIDEO_FPS))
    duration = float(rng.choice(np.arange(4.0, MAX_DURATION + 0.01, 0.5)))
    scene, spare = _new_scene(rng, scene_id, size, fps, int(round(duration * fps)))
    _assign_events(rng, scene, spare_colour=spare)
    for _ in range(8):
        if _place_objects(rng, scene):
            return scene
    return _fallback_static(scene)


def _new_scene(
    rng: np.random.Generator, scene_id: str, size: tuple[int, int] | None, fps: int, num_frames: int
) -> tuple[Scene, str]:
    """Size, background, 1-5 objects (distinct shapes and colours) and one unused colour."""
    width, height = size or VIDEO_SIZES[rng.integers(len(VIDEO_SIZES))]
    n = int(rng.integers(1, 6))
    scene = Scene(
        id=scene_id,
        width=int(width),
        height=int(height),
        fps=fps,
        num_frames=num_frames,
        background=str(rng.choice(BACKGROUND_NAMES)),
        texture=str(rng.choice(TEXTURES)),
        objects=[],
        seed=[int(v) for v in rng.integers(0, 2**31, size=2)],
    )
    colours = rng.choice(COLOUR_NAMES, size=n + 1, replace=False)  # last one: recolour target
    shapes = rng.choice(SHAPES, size=n, replace=False)
    for i in range(n):
        size_name = str(rng.choice(tuple(SIZES)))
        r = SIZES[size_name] * min(width, height)
        obj = SceneObject(
            i, str(shapes[i]), str(colours[i]), size_name, r, (0, 0), (0, 0), "static"
        )
        scene.objects.append(obj)
    return scene, str(colours[n])


def random_image_scene(
    rng: np.random.Generator, scene_id: str, size: tuple[int, int] | None = None
) -> Scene:
    """A still scene (one frame): 1-5 static objects parked on a jittered 3x3 grid."""
    scene, _ = _new_scene(rng, scene_id, size, fps=1, num_frames=1)
    scene.kind = "image"
    return _fallback_static(scene)


def _assign_events(rng: np.random.Generator, scene: Scene, spare_colour: str) -> None:
    """Pick event times, then give each time a random event type and fresh object(s)."""
    n, dur = len(scene.objects), scene.duration
    margin = event_margin(dur)
    max_k = int((dur - 2 * margin) // EVENT_GAP) + 1
    k = int(rng.integers(0, min(max_k, n, 4) + 1)) if rng.random() < 0.15 else min(max_k, n, 4)
    times = _grid_times(rng, margin, dur - margin, k) or []
    free = list(rng.permutation(n))
    recoloured = False
    for t in rng.permutation(times):
        kinds = ["appear", "disappear"]
        kinds += [] if recoloured else ["colour_change"]
        kinds += ["collision"] if scene.collision is None and len(free) >= 2 else []
        weights = np.array([1.5 if k == "collision" else 1.0 for k in kinds])
        kind = str(rng.choice(kinds, p=weights / weights.sum()))
        if not free:
            break
        obj = scene.objects[int(free.pop())]
        if kind == "appear":
            obj.appear = float(t)
        elif kind == "disappear":
            obj.disappear = float(t)
        elif kind == "colour_change":
            obj.recolour, recoloured = (float(t), spare_colour), True
        else:
            other = scene.objects[int(free.pop())]
            effect = str(rng.choice(EFFECTS))
            scene.collision = Collision(float(t), obj.id, other.id, effect)
            obj.motion = other.motion = "collide"


MOTIONS = ("static", "straight", "bounce")
MOTION_P = (0.25, 0.45, 0.30)


def _place_objects(rng: np.random.Generator, scene: Scene) -> bool:
    """Give every object a start and velocity, one at a time, so no two ever overlap.

    The collision pair is aimed first; each other object gets up to 40 draws (the last ones
    static) against the tracks already placed. False if some object found no free course.
    """
    visible, _ = scripted_states(scene)  # (F, N)
    placed: list[tuple[int, np.ndarray]] = []  # (object id, track (F, 2))
    c = scene.collision
    if c is not None:
        for _ in range(20):
            _aim_collision(rng, scene)
            pa, pb = track(scene, scene.obj(c.a))[0], track(scene, scene.obj(c.b))[0]
            if _pair_course_ok(scene, pa, pb, visible):
                placed += [(c.a, pa), (c.b, pb)]
                break
        else:
            return False
    for o in (scene.obj(int(i)) for i in rng.permutation(len(scene.objects))):
        if o.motion == "collide":
            continue
        for attempt in range(40):
            _draw_motion(rng, scene, o, static=attempt >= 30)
            pos = track(scene, o)[0]  # (F, 2)
            if all(_apart(scene, o.id, pos, j, pj, visible).all() for j, pj in placed):
                placed.append((o.id, pos))
                break
        else:
            return False
    return True


def _apart(scene: Scene, i: int, pi: np.ndarray, j: int, pj: np.ndarray, visible) -> np.ndarray:
    """Per frame: objects i and j do not touch (2 px gap) or are not both visible."""
    gap = scene.obj(i).radius + scene.obj(j).radius + 2.0
    both = visible[:, i] & visible[:, j]  # (F,)
    return (np.linalg.norm(pi - pj, axis=-1) >= gap) | ~both  # (F,)


def _pair_course_ok(scene: Scene, pa: np.ndarray, pb: np.ndarray, visible) -> bool:
    """The pair stays inside without touching a wall before impact and touches only on cue."""
    c = scene.collision
    fc = event_frame(c.time, scene.fps)
    for o in (scene.obj(c.a), scene.obj(c.b)):
        if not all(_inside(scene, o, p) for p in _course(scene, o, c.time)):
            return False
    ok = _apart(scene, c.a, pa, c.b, pb, visible)
    window = np.zeros_like(ok)  # (F,) frames where touching is the scripted contact
    end = scene.num_frames if c.effect == "stop" else fc + max(2, scene.fps // 2)
    window[max(0, fc - 2) : end] = True
    return bool(np.all(ok | window))


def _draw_motion(rng: np.random.Generator, scene: Scene, o: SceneObject, static: bool) -> None:
    """Random start and velocity for a free object: static, straight (never hits a wall) or bouncing."""
    x0, y0, x1, y1 = scene.arena
    side, dur, r = x1 - x0, scene.duration, o.radius
    o.motion = "static" if static else str(rng.choice(MOTIONS, p=MOTION_P))
    o.direction, o.velocity = None, (0.0, 0.0)
    if o.motion == "straight":
        o.direction = str(rng.choice(tuple(DIRECTIONS)))
        ux, uy = DIRECTIONS[o.direction]
        travel = rng.uniform(0.4, 0.8) * (side - 2 * r)
        along = rng.uniform(r, side - r - travel)  # start offset along the axis of motion
        across = rng.uniform(r, side - r)
        if ux:  # moving left/right
            o.start = (float(x0 + (along if ux > 0 else side - along)), float(y0 + across))
        else:
            o.start = (float(x0 + across), float(y0 + (along if uy > 0 else side - along)))
        o.velocity = (float(ux * travel / dur), float(uy * travel / dur))
        return
    o.start = (float(rng.uniform(x0 + r, x1 - r)), float(rng.uniform(y0 + r, y1 - r)))
    if o.motion == "bounce":
        angle = rng.uniform(0.1, 0.4) * np.pi + rng.integers(0, 4) * np.pi / 2
        speed = rng.uniform(0.25, 0.6) * side
        o.velocity = (float(speed * np.cos(angle)), float(speed * np.sin(angle)))


def _aim_collision(rng: np.random.Generator, scene: Scene) -> None:
    """Put the pair on straight courses that touch exactly at the contact frame.

    Both rest until `depart`, then approach for 1.5-3.5 s (at least 0.1 arena side per second,
    so the motion is visible in 8 frames); speeds are capped by the room behind each object.
    """
    c = scene.collision
    a, b = scene.obj(c.a), scene.obj(c.b)
    x0, y0, x1, y1 = scene.arena
    side = x1 - x0
    angle = rng.integers(0, 8) * np.pi / 4  # axis-aligned or diagonal approach
    u = np.array([np.cos(angle), np.sin(angle)])  # a moves along +u, b along -u
    mid = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    contact = mid + rng.uniform(-0.25, 0.25, size=2) * side
    t = event_frame(c.time, scene.fps) / scene.fps  # the contact frame's own time
    run = min(t, float(rng.uniform(1.5, 3.5)))  # seconds of approach, so it is seen moving
    for o, sign, centre in ((a, 1.0, contact - u * a.radius), (b, -1.0, contact + u * b.radius)):
        room = _room(scene, o.radius, centre, -sign * u)  # free run behind the contact centre
        speed = max(0.1 * side, min(rng.uniform(0.15, 0.35) * side, 0.95 * room / run))
        o.start = tuple(float(v) for v in centre - sign * u * speed * run)
        o.velocity = tuple(float(v) for v in sign * u * speed)
        o.depart = t - run


def _room(scene: Scene, r: float, p: np.ndarray, d: np.ndarray) -> float:
    """How far a centre at p can go along unit direction d before the object touches a wall."""
    x0, y0, x1, y1 = scene.arena
    runs = []
    for axis, (lo, hi) in enumerate(((x0 + r, x1 - r), (y0 + r, y1 - r))):
        if abs(d[axis]) > 1e-9:
            runs.append(((hi if d[axis] > 0 else lo) - p[axis]) / d[axis])
    return max(0.0, min(runs))


def _inside(scene: Scene, o: SceneObject, p) -> bool:
    x0, y0, x1, y1 = scene.arena
    return x0 + o.radius <= p[0] <= x1 - o.radius and y0 + o.radius <= p[1] <= y1 - o.radius


def _course(scene: Scene, o: SceneObject, t: float) -> list[tuple[float, float]]:
    """Start and contact-time centres of a collision object (its straight pre-impact course)."""
    tc = event_frame(t, scene.fps) / scene.fps
    run = tc - o.depart
    end = (o.start[0] + o.velocity[0] * run, o.start[1] + o.velocity[1] * run)
    return [o.start, end]


def _fallback_static(scene: Scene) -> Scene:
    """Last resort when random motion keeps overlapping: drop the collision, park on a grid."""
    scene.collision = None
    for o in scene.objects:
        o.motion, o.velocity, o.direction, o.depart = "static", (0.0, 0.0), None, 0.0
    x0, y0, x1, y1 = scene.arena
    cell = (x1 - x0) / 3
    rng = np.random.default_rng([*scene.seed, 11])
    for o, k in zip(scene.objects, rng.permutation(9), strict=False):
        jitter = rng.uniform(-1, 1, size=2) * max(0.0, cell / 2 - o.radius - 2)
        cx, cy = x0 + (k % 3 + 0.5) * cell + jitter[0], y0 + (k // 3 + 0.5) * cell + jitter[1]
        o.start = (float(cx), float(cy))
    return scene
