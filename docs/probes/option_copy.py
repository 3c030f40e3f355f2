"""Does a model's event-time answer follow the listed options? (session 35's probe)

For each event-time item of a benchmark: the log-probability of the true time minus that of its
grid neighbour on the other decimal ("at 3.0 seconds" for 3.5), first with the item's options,
then with the true option replaced by the neighbour. A model that copies the listed time swings
the gap from positive to negative; one that writes its own estimate barely moves it.

    python docs/probes/option_copy.py MODEL_DIR BENCH_DIR/benchmark
"""

from __future__ import annotations

import dataclasses
import statistics
import sys

from videochat.eval.bench import load_benchmark
from videochat.eval.protocols import VIDEOCHAT2
from videochat.eval.runner import add_clip, open_session
from videochat.model import load_model
from videochat.synth.questions import time_text, time_value


def main(model_dir: str, bench_dir: str) -> None:
    session = open_session(load_model(model_dir, device="cpu", dtype="fp32"), VIDEOCHAT2)
    gaps: dict[str, list[tuple[float, float]]] = {".5": [], ".0": []}
    for item in load_benchmark(bench_dir, ["event_localisation"]):
        truth = time_value(item.answer)
        neighbour = time_text(truth - 0.5 if truth % 1 else truth + 0.5)
        if neighbour in item.candidates:
            continue
        session.reset()
        add_clip(session, item, 8)
        pair = []
        swapped = tuple(neighbour if c == item.answer else c for c in item.candidates)
        for candidates in (item.candidates, swapped):
            question = VIDEOCHAT2.question(dataclasses.replace(item, candidates=candidates))
            replies = [item.answer + ")", neighbour + ")"]
            scores = session.score_replies(
                question, replies, answer_prefix=VIDEOCHAT2.answer_prefix
            )
            pair.append(scores[0].logprob - scores[1].logprob)
        gaps[".5" if truth % 1 else ".0"].append((pair[0], pair[1]))
    for decimal, rows in gaps.items():
        listed, swapped_gaps = zip(*rows, strict=True)
        print(
            f"truth {decimal}: {len(rows)} items; gap {statistics.mean(listed):+.2f} listed, "
            f"{statistics.mean(swapped_gaps):+.2f} neighbour listed; truth wins "
            f"{sum(g > 0 for g in listed)} / {sum(g > 0 for g in swapped_gaps)}"
        )


if __name__ == "__main__":
    main(*sys.argv[1:3])
