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


def write_examples(folder: str | Path) -> list[Path]:
    """The files of `examples/`: bouncing.mp4, events.mp4 + events.json, shapes.png + shapes.json."""
    import json

    from videochat.synth.dataset import scene_record
    from videochat.synth.encode import write_image
    from videochat.synth.plan import random_image_scene, random_video_scene
    from videochat.synth.render import background, render_frame

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_bouncing(folder / "bouncing.mp4")
    video = random_video_scene(np.random.default_rng([0, 0, 12]), "events", size=(320, 240))
    tl = simulate(video)
    write_mp4(folder / "events.mp4", render_frames(video, tl), video.fps, 320, 240)
    image = random_image_scene(np.random.default_rng([0, 1, 3]), "shapes", size=(224, 224))
    write_image(folder / "shapes.png", render_frame(image, simulate(image), 0, background(image)))
    for scene, stem in ((video, "events"), (image, "shapes")):
        rec = scene_record(
            scene, simulate(scene), f"{stem}{'.mp4' if stem == 'events' else '.png'}"
        )
        rec.pop("trajectories")
        (folder / f"{stem}.json").write_text(json.dumps(rec, indent=1) + "\n")
    return [folder / n for n in ("bouncing.mp4", "events.mp4", "shapes.png")]
