"""Small hand-picked scenes for the example media shipped in `examples/`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from videochat.synth.encode import write_mp4
from videochat.synth.render import render_frames
from videochat.synth.vocab import SIZES
from videochat.synth.world import Scene, SceneObject, simulate


def bouncing_scene(
    seed: int = 0,
    width: int = 320,
    height: int = 240,
    fps: int = 24,
    seconds: float = 4.0,
    shape: str = "circle",
    colour: str = "red",
) -> Scene:
    """One large shape bouncing around the arena (the README's example video)."""
    rng = np.random.default_rng(seed)
    scene = Scene(
        id=f"bouncing_{seed}",
        width=width,
        height=height,
        fps=fps,
        num_frames=int(round(seconds * fps)),
        background="dark blue",
        texture="gradient",
        objects=[],
        seed=[seed],
    )
    side = min(width, height)
    r = SIZES["large"] * side
    angle = rng.uniform(0.15, 0.35) * np.pi + rng.integers(0, 4) * np.pi / 2
    speed = 0.9 * side  # about one arena side per second: several bounces in 4 s
    x0, y0, x1, y1 = scene.arena
    start = (float(rng.uniform(x0 + r, x1 - r)), float(rng.uniform(y0 + r, y1 - r)))
    vel = (float(speed * np.cos(angle)), float(speed * np.sin(angle)))
    scene.objects.append(SceneObject(0, shape, colour, "large", r, start, vel, "bounce"))
    return scene


def write_bouncing(path: str | Path, seed: int = 0, **kwargs) -> Scene:
    """Render and encode `bouncing_scene(seed, **kwargs)` to an MP4 at `path`; returns the scene."""
    scene = bouncing_scene(seed, **kwargs)
    write_mp4(path, render_frames(scene, simulate(scene)), scene.fps, scene.width, scene.height)
    return scene
