"""Write a whole synthetic dataset directory: media, ground truth, training data and benchmark.

Layout of DIR (the media root: every media path in the annotation files is relative to DIR):
  videos/video_NNNNN.mp4, images/image_NNNNN.png, scenes.jsonl (one ground-truth scene per line),
  captions_video.json / captions_image.json     [{"video"|"image": path, "caption": str}]
  instructions_video.json / instructions_image.json  [{"video"|"image": path, "QA": [{"q", "a"}]}]
  benchmark/tasks.json + benchmark/<task>.json  (MVBench layout, prefix "../videos")
Scene i is drawn from numpy Generator([seed, kind, i]) alone, so the output does not depend on
the number of workers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from videochat.synth.describe import caption, description, description_prompts
from videochat.synth.encode import SynthError, write_image, write_mp4
from videochat.synth.plan import random_image_scene, random_video_scene
from videochat.synth.questions import TASKS, Question, image_questions, video_questions
from videochat.synth.render import background, render_frame, render_frames
from videochat.synth.world import Scene, Timeline, simulate

_VIDEO, _IMAGE = 0, 1
MCQ_PER_VIDEO = 2  # questions also asked in the benchmark's multiple-choice form


@dataclass
class Job:
    out: str
    seed: int
    index: int
    size: tuple[int, int] | None


def scene_record(scene: Scene, tl: Timeline, media: str) -> dict:
    """The scenes.jsonl line: the plan, the events and every object's track (1/10 px)."""
    rec = scene.to_dict()
    rec["media"], rec["duration"], rec["events"] = media, scene.duration, tl.events
    rec["trajectories"] = [
        {
            "object": i,
            "positions": np.round(tl.positions[:, i], 1).tolist(),  # (F, 2) centre per frame
            "visible": tl.visible[:, i].astype(int).tolist(),  # (F,) 1 = drawn in that frame
        }
        for i in range(len(scene.objects))
    ]
    return rec


def mcq_turn(q: Question) -> dict[str, str]:
    """The question in the evaluation's multiple-choice form, answered with 'Best option:(X) ...'."""
    letters = "ABCDEFGH"
    options = "\n".join(f"({letters[i]}) {c}" for i, c in enumerate(q.candidates))
    letter = letters[q.candidates.index(q.answer)]
    text = f"Question: {q.question}\nOptions:\n{options}\nOnly give the best option."
    return {"q": text, "a": f"Best option:({letter}) {q.answer}"}


def qa_turns(rng: np.random.Generator, scene: Scene, tl: Timeline, qs: list[Question]) -> list:
    """Instruction turns: each question in free form, a few in MCQ form, one description."""
    turns = [{"q": q.question, "a": q.sentence} for q in qs]
    picks = rng.permutation(len(qs))[:MCQ_PER_VIDEO] if scene.kind == "video" else []
    turns += [mcq_turn(qs[int(i)]) for i in picks]
    prompts = description_prompts(scene.kind)
    turns.append({"q": prompts[int(rng.integers(len(prompts)))], "a": description(scene, tl)})
    return [turns[int(i)] for i in rng.permutation(len(turns))]


def build_video(job: Job) -> dict:
    """Plan, simulate, render and encode video `job.index`; return its annotation records."""
    scene = random_video_scene(
        np.random.default_rng([job.seed, _VIDEO, job.index]), f"video_{job.index:05d}", job.size
    )
    tl = simulate(scene)
    media = f"videos/{scene.id}.mp4"
    write_mp4(Path(job.out) / media, render_frames(scene, tl), scene.fps, scene.width, scene.height)
    rng = np.random.default_rng([job.seed, _VIDEO, job.index, 1])
    qs = video_questions(rng, scene, tl)
    return {
        "scene": scene_record(scene, tl, media),
        "caption": {"video": media, "caption": caption(scene, tl)},
        "instruction": {"video": media, "QA": qa_turns(rng, scene, tl, qs)},
        "bench": {q.task: _bench_item(scene, q) for q in qs},
    }


def build_image(job: Job) -> dict:
    """Plan and render still image `job.index`; return its annotation records."""
    scene = random_image_scene(
        np.random.default_rng([job.seed, _IMAGE, job.index]), f"image_{job.index:05d}", job.size
    )
    tl = simulate(scene)
    media = f"images/{scene.id}.png"
    write_image(Path(job.out) / media, render_frame(scene, tl, 0, background(scene)))
    rng = np.random.default_rng([job.seed, _IMAGE, job.index, 1])
    qs = image_questions(rng, scene, tl)
    return {
        "scene": scene_record(scene, tl, media),
        "caption": {"image": media, "caption": caption(scene, tl)},
        "instruction": {"image": media, "QA": qa_turns(rng, scene, tl, qs)},
    }


def _bench_item(scene: Scene, q: Question) -> dict:
    return {
        "video": f"{scene.id}.mp4",
        "question": q.question,
        "candidates": q.candidates,
        "answer": q.answer,
    }


def _run(fn: Callable[[Job], dict], jobs: list[Job], workers: int) -> Iterator[dict]:
    """Results in job order, computed in `workers` processes (or in this one)."""
    if workers <= 1 or len(jobs) <= 1:
        yield from map(fn, jobs)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(fn, jobs, chunksize=max(1, len(jobs) // (4 * workers)))


def write_dataset(
    out: str | Path,
    videos: int,
    images: int = 0,
    seed: int = 0,
    size: tuple[int, int] | None = None,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Generate the dataset into `out`; returns counts (videos, images, items per task)."""
    out = Path(out)
    try:
        for sub in ("videos", "images", "benchmark"):
            (out / sub).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SynthError(f"cannot create the output folder {out}: {exc.strerror}") from exc
    tick = progress or (lambda n: None)
    vids, imgs = [], []
    with open(out / "scenes.jsonl", "w", encoding="utf-8") as scenes:
        for fn, count, keep in ((build_video, videos, vids), (build_image, images, imgs)):
            jobs = [Job(str(out), seed, i, size) for i in range(count)]
            for rec in _run(fn, jobs, workers):  # stream the big per-frame tracks to disk
                scenes.write(json.dumps(rec.pop("scene"), separators=(",", ":")) + "\n")
                keep.append(rec)
                tick(1)
    _dump(out / "captions_video.json", [r["caption"] for r in vids])
    _dump(out / "captions_image.json", [r["caption"] for r in imgs])
    _dump(out / "instructions_video.json", [r["instruction"] for r in vids])
    _dump(out / "instructions_image.json", [r["instruction"] for r in imgs])
    counts = write_benchmark(out / "benchmark", [r["bench"] for r in vids])
    return {"videos": len(vids), "images": len(imgs), **counts}


def write_benchmark(bench_dir: Path, per_video: list[dict[str, dict]]) -> dict[str, int]:
    """tasks.json and one <task>.json per task, in the MVBench layout the eval reads."""
    tasks, counts = {}, {}
    for task in TASKS:
        items = [b[task] for b in per_video if task in b]
        _dump(bench_dir / f"{task}.json", items)
        tasks[task] = {"json": f"{task}.json", "prefix": "../videos", "data_type": "video"}
        tasks[task]["bound"] = False
        counts[task] = len(items)
    _dump(bench_dir / "tasks.json", tasks)
    return counts


def _dump(path: Path, obj) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, ensure_ascii=False)
        f.write("\n")
