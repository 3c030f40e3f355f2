"""Honest numbers for a built model on a benchmark seed never used in training.

Multiple choice: the project's own `videochat eval` runner, with the videochat2 protocol (the
generated answer) and the videochat2-rank protocol (the option the model finds likeliest: what it
knows, also where it writes an answer of its own words). Free form: the
same benchmark questions asked without options; an answer is right when it is the ground-truth
sentence (`free_form`). Open-ended: the model describes each video and synth's
`score_description` counts the ground-truth colours, shapes and events it names; the same answers
scored against another video's ground truth give the floor that generic text reaches. Inside:
where the LLM looks on the colour questions (`lookup_attention`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from videochat.embedded.config import NUM_FRAMES

DESCRIBE = "Describe the video in detail."


def multiple_choice(
    model,
    bench_dir: Path,
    out: Path,
    num_frames: int = NUM_FRAMES,
    limit: int | None = None,
    protocol_name: str = "videochat2",
) -> dict:
    """Per-task accuracy with a protocol (what `videochat eval --protocol` prints); `limit`
    keeps the first N items of each task, like `videochat eval --limit`."""
    from videochat.eval import (
        evaluate,
        format_table,
        get_protocol,
        load_benchmark,
        open_session,
        summarize,
        write_results,
    )

    protocol = get_protocol(protocol_name)
    items = load_benchmark(bench_dir, None, limit)
    session = open_session(model, protocol)
    preds = out.with_name(out.stem + ".predictions.jsonl")
    records = evaluate(session, items, protocol, num_frames=num_frames, predictions=preds)
    results = summarize(
        records, protocol=protocol.name, num_frames=num_frames, model="embedded", notes=""
    )
    write_results(out, results)
    print(format_table(results))
    return results


def _normalised(sentence: str) -> str:
    return " ".join(sentence.lower().replace(".", " ").split())


def reference_sentences(data_dir: Path) -> dict[tuple[str, str], str]:
    """(video file name, free-form question) -> the ground-truth sentence of the instruction data."""
    entries = json.loads((data_dir / "instructions_video.json").read_text())
    return {(Path(e["video"]).name, t["q"]): t["a"] for e in entries for t in e["QA"]}


def free_form(model, bench_dir: Path, limit: int | None = 40, num_frames: int = NUM_FRAMES) -> dict:
    """Per-task share of benchmark questions, asked without options, answered with exactly the
    instruction data's ground-truth sentence ("The square is red.") up to case and full stops
    (first `limit` items of each task; same frames as the multiple-choice run). Strict: a right
    fact in other words counts wrong."""
    from videochat.chat import ChatSession
    from videochat.eval import load_benchmark
    from videochat.eval.runner import add_clip

    session = ChatSession(model)
    right: dict[str, list[bool]] = defaultdict(list)
    examples = []
    truth = reference_sentences(bench_dir.parent)
    for item in load_benchmark(bench_dir, None, limit):
        sentence = truth.get((Path(item.video).name, item.question))
        if sentence is None:
            continue
        session.reset()
        add_clip(session, item, num_frames)
        answer = session.ask(item.question, do_sample=False, max_new_tokens=40)
        right[item.task].append(_normalised(answer) == _normalised(sentence))
        if len(right[item.task]) == 1:
            examples.append({"question": item.question, "answer": answer, "truth": sentence})
    tasks = {task: 100 * sum(v) / len(v) for task, v in right.items()}
    return {
        "average": sum(tasks.values()) / max(1, len(tasks)),
        "tasks": tasks,
        "items_per_task": {task: len(v) for task, v in right.items()},
        "examples": examples,
    }


def descriptions(model, data_dir: Path, limit: int = 40, num_frames: int = NUM_FRAMES) -> dict:
    """Mean description score on the first `limit` videos, the mismatched-scene floor and the
    mean precision (`description_precision`)."""
    from videochat.chat import ChatSession
    from videochat.synth.describe import description_precision, score_description
    from videochat.synth.world import Scene

    lines = (data_dir / "scenes.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    records = [r for r in records if r["media"].startswith("videos/")][:limit]
    scenes = [Scene.from_dict(r) for r in records]
    session = ChatSession(model)
    answers = []
    for rec in records:
        session.reset()
        session.add_video(str(data_dir / rec["media"]), num_frames=num_frames, sampling="middle")
        answers.append(session.ask(DESCRIBE, do_sample=False, max_new_tokens=160))
    own = [score_description(a, s) for a, s in zip(answers, scenes, strict=True)]
    other = [score_description(a, scenes[(i + 1) % len(scenes)]) for i, a in enumerate(answers)]
    return {
        "videos": len(answers),
        "score": sum(own) / max(1, len(own)),
        "mismatched_floor": sum(other) / max(1, len(other)),
        "precision": sum(map(description_precision, answers, scenes)) / max(1, len(answers)),
        "examples": [
            {"video": r["media"], "answer": a}
            for r, a in zip(records[:3], answers[:3], strict=True)
        ],
    }


def vision_facts(model, work: Path, bench: Path) -> dict | None:
    """The vision stage's read-out heads on the benchmark videos (None if they were not kept)."""
    import torch

    from videochat.embedded.build import FACT_HEADS
    from videochat.embedded.config import IMAGE_SIZE
    from videochat.embedded.pretrain import FactHeads, cache_clips
    from videochat.embedded.readout import fact_accuracy, time_readout

    path = work / "runs" / "vision" / FACT_HEADS
    if not path.is_file():
        return None
    heads = FactHeads.for_model(model, NUM_FRAMES)
    heads.load_state_dict(torch.load(path, weights_only=True))
    clips = cache_clips(bench, NUM_FRAMES, IMAGE_SIZE)
    facts = fact_accuracy(model, heads, clips) | time_readout(model, heads, clips)
    return {k: round(v, 4) for k, v in facts.items()}


def measure(
    model_dir: Path,
    work: Path,
    seed: int,
    videos: int,
    workers: int = 1,
    limit: int | None = None,
    described: int = 40,
) -> dict:
    """Generate the held-out benchmark (seed + 1000), then both measurements; writes JSON."""
    from videochat.embedded.config import IMAGE_SIZE
    from videochat.embedded.lookup_attention import named_row_attention
    from videochat.embedded.plan import BENCH_SEED_OFFSET
    from videochat.model import load_model
    from videochat.synth.dataset import write_dataset

    bench = work / "bench"
    if not (bench / "scenes.jsonl").is_file():
        size = (IMAGE_SIZE, IMAGE_SIZE)
        write_dataset(bench, videos, 0, seed + BENCH_SEED_OFFSET, size, workers=workers)
    model = load_model(model_dir, device="cpu")
    mc = multiple_choice(model, bench / "benchmark", work / "measure" / "mcq.json", limit=limit)
    ranked = multiple_choice(
        model,
        bench / "benchmark",
        work / "measure" / "mcq_rank.json",
        limit=limit,
        protocol_name="videochat2-rank",
    )
    summary = {
        "bench_seed": seed + BENCH_SEED_OFFSET,
        "multiple_choice": {k: mc[k] for k in mc if k != "items"},
        "multiple_choice_rank": {k: ranked[k] for k in ranked if k != "items"},
        "item_limit_per_task": limit,
        "free_form": free_form(model, bench / "benchmark", limit=described),
        "descriptions": descriptions(model, bench, limit=described),
        "vision_facts": vision_facts(model, work, bench),
        "named_row_attention": named_row_attention(model, bench / "benchmark", limit=described),
    }
    (work / "measure" / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary
