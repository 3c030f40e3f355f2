"""How fast `videochat.synth` makes videos: CPU seconds per video vs the video's own length.

Prints, for a few sizes/frame rates, the CPU time to plan+simulate, render and encode one 5-second
video, and the ratio video-seconds / CPU-seconds (how many times faster than real time), measured
in this one run. Usage: python benchmarks/synth_speed.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from videochat.synth.encode import write_mp4
from videochat.synth.plan import random_video_scene
from videochat.synth.render import render_frames
from videochat.synth.world import simulate

CASES = ((224, 224, 8), (320, 240, 24), (320, 240, 30))
SECONDS = 5.0


def one_video(
    out: Path, width: int, height: int, fps: int, seed: int
) -> tuple[float, float, float]:
    """CPU seconds (plan+simulate, render, encode) for one 5 s video."""
    t0 = time.process_time()
    scene = random_video_scene(np.random.default_rng(seed), "bench", (width, height))
    scene.fps, scene.num_frames = fps, int(SECONDS * fps)  # fixed length for the comparison
    for o in scene.objects:  # drop events planned for another length
        o.appear = o.disappear = o.recolour = None
    scene.collision = None
    tl = simulate(scene)
    t1 = time.process_time()
    frames = list(render_frames(scene, tl))
    t2 = time.process_time()
    write_mp4(out, frames, fps, width, height)
    t3 = time.process_time()
    return t1 - t0, t2 - t1, t3 - t2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{'video':>18} | {'plan':>6} {'render':>7} {'encode':>7} {'total':>7} | x real time")
    with tempfile.TemporaryDirectory() as tmp:
        for width, height, fps in CASES:
            runs = [
                one_video(Path(tmp) / "v.mp4", width, height, fps, s) for s in range(args.repeats)
            ]
            plan, render, encode = (float(np.median(v)) for v in zip(*runs, strict=True))
            total = plan + render + encode
            label = f"{width}x{height}@{fps} 5s"
            print(
                f"{label:>18} | {plan:6.3f} {render:7.3f} {encode:7.3f} {total:7.3f} | "
                f"{SECONDS / total:6.1f}x"
            )


if __name__ == "__main__":
    main()
