"""Draw a simulated scene into RGB frames (numpy + Pillow), one uint8 array per frame.

The background (with its texture) is drawn once per scene; each frame copies it and draws the
visible objects in id order. Shapes fill their bounding circle enough to be seen at 112 px.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from PIL import Image, ImageDraw

from videochat.synth.vocab import BACKGROUNDS, COLOUR_NAMES, COLOURS
from videochat.synth.world import Scene, Timeline

_ARENA_EDGE = (90, 90, 96)  # wall line drawn around the arena when the frame is not square


def background(scene: Scene) -> np.ndarray:
    """The scene's textured background, (H, W, 3) uint8; deterministic from the scene seed."""
    h, w = scene.height, scene.width
    base, second = (np.array(c, dtype=np.float32) for c in BACKGROUNDS[scene.background])
    img = np.broadcast_to(base, (h, w, 3)).copy()  # (H, W, 3)
    if scene.texture == "gradient":
        ramp = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]  # (H, 1, 1)
        img = base + (second - base) * np.broadcast_to(ramp, (h, w, 1))  # (H, W, 3)
    elif scene.texture == "grid":
        step = max(8, min(h, w) // 8)
        img[::step, :, :] = second
        img[:, ::step, :] = second
    elif scene.texture == "noise":
        rng = np.random.default_rng([*scene.seed, 7])
        img += rng.normal(0.0, 5.0, size=(h, w, 1)).astype(np.float32)
    out = np.clip(img, 0, 255).astype(np.uint8)
    if scene.width != scene.height:
        x0, y0, x1, y1 = (int(round(v)) for v in scene.arena)
        pil = Image.fromarray(out)
        ImageDraw.Draw(pil).rectangle([x0, y0, x1 - 1, y1 - 1], outline=_ARENA_EDGE, width=2)
        out = np.asarray(pil)
    return out


def shape_polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    """Polygon vertices of a non-circle shape centred at (cx, cy) inside bounding radius r."""
    if shape == "square":
        h = 0.78 * r
        return [(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
    if shape == "triangle":  # equilateral, pointing up, centroid at the centre
        return [_polar(cx, cy, r, -90 + 120 * k) for k in range(3)]
    if shape == "star":  # five points
        return [_polar(cx, cy, r if k % 2 == 0 else 0.45 * r, -90 + 36 * k) for k in range(10)]
    if shape == "cross":
        a, t = 0.95 * r, 0.34 * r
        pts = [(t, a), (t, t), (a, t), (a, -t), (t, -t), (t, -a)]
        pts += [(-t, -a), (-t, -t), (-a, -t), (-a, t), (-t, t), (-t, a)]
        return [(cx + x, cy + y) for x, y in pts]
    raise ValueError(f"unknown shape {shape!r}")


def _polar(cx: float, cy: float, r: float, deg: float) -> tuple[float, float]:
    rad = math.radians(deg)
    return cx + r * math.cos(rad), cy + r * math.sin(rad)


def draw_object(draw: ImageDraw.ImageDraw, shape: str, colour: str, cx: float, cy: float, r: float):
    fill = COLOURS[colour]
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    else:
        draw.polygon(shape_polygon(shape, cx, cy, r), fill=fill)


def render_frame(scene: Scene, timeline: Timeline, frame: int, bg: np.ndarray) -> np.ndarray:
    """One frame, (H, W, 3) uint8."""
    img = Image.fromarray(bg)
    draw = ImageDraw.Draw(img)
    for i, o in enumerate(scene.objects):
        if timeline.visible[frame, i]:
            cx, cy = (float(v) for v in timeline.positions[frame, i])
            draw_object(draw, o.shape, COLOUR_NAMES[timeline.colours[frame, i]], cx, cy, o.radius)
    return np.asarray(img)


def render_frames(scene: Scene, timeline: Timeline) -> Iterator[np.ndarray]:
    """All frames in order, each (H, W, 3) uint8."""
    bg = background(scene)
    for f in range(scene.num_frames):
        yield render_frame(scene, timeline, f, bg)
