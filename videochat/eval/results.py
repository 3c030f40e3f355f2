"""Per-item prediction records (JSONL, for resume and inspection) and the accuracy summary.

One line per item: task, index, video, question, candidates, answer, answer_letter, prediction (the
model's raw reply), parsed_text, letter (parsed option or null), correct, error (null, or why the
item failed), protocol, num_frames; for a ranking protocol also scores (each candidate's
log-probability). Accuracy counts every item of a task in the denominator: an item
that failed (bad media, generation error, malformed item) or whose answer names no option is wrong.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from videochat.eval.bench import BenchItem, BenchmarkError

Record = dict[str, Any]


def make_record(
    item: BenchItem,
    *,
    protocol: str,
    num_frames: int,
    prediction: str | None = None,
    parsed_text: str | None = None,
    letter: str | None = None,
    error: str | None = None,
    scores: list[float] | None = None,
) -> Record:
    """The JSONL line for one item; ``correct`` is the parsed letter equal to the answer's letter.
    A ranking protocol's line also holds each candidate's ``scores`` (log-probabilities)."""
    truth = item.answer_letter
    record = {
        "task": item.task,
        "index": item.index,
        "video": item.video,
        "question": item.question,
        "candidates": list(item.candidates),
        "answer": item.answer,
        "answer_letter": truth,
        "prediction": prediction,
        "parsed_text": parsed_text,
        "letter": letter,
        "correct": error is None and letter is not None and letter == truth,
        "error": error,
        "protocol": protocol,
        "num_frames": num_frames,
    }
    if scores is not None:
        record["scores"] = scores
    return record


def record_key(record: Record) -> tuple[str, int]:
    return record["task"], int(record["index"])


def read_records(path: Path) -> list[Record]:
    """Records already written (a torn last line from an interrupted run is ignored)."""
    if not path.is_file():
        return []
    records = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            record_key(record)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            if number == len(lines):  # interrupted while writing: redo that item
                continue
            raise BenchmarkError(
                f"{path}: line {number} is not a prediction record; "
                "pass another --predictions file or delete this one"
            ) from None
        records.append(record)
    return records


def write_records(path: Path, records: Iterable[Record]) -> None:
    """Rewrite ``path`` with exactly ``records`` (atomic replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def summarize(
    records: list[Record], *, protocol: str, num_frames: int, model: str, notes: str = ""
) -> dict[str, Any]:
    """results.json content: accuracies in percent (every item counts, failed ones as wrong)."""
    counts: dict[str, dict[str, int]] = {}
    for record in records:
        task = counts.setdefault(record["task"], {"correct": 0, "total": 0, "failed": 0})
        task["total"] += 1
        task["correct"] += bool(record["correct"])
        task["failed"] += record["error"] is not None
    total = sum(c["total"] for c in counts.values())
    correct = sum(c["correct"] for c in counts.values())
    return {
        "protocol": protocol,
        "average": 100.0 * correct / total if total else 0.0,
        "tasks": {name: 100.0 * c["correct"] / c["total"] for name, c in counts.items()},
        "failed": sum(c["failed"] for c in counts.values()),
        "num_frames": num_frames,
        "model": model,
        "num_items": total,
        "counts": counts,
        "average_kind": "all items pooled (correct / total)",
        "notes": notes,
    }


def format_table(results: dict[str, Any]) -> str:
    """Aligned plain-text table: one row per task, then the average; says which protocol."""
    rows = [("task", "acc %", "correct/total", "failed")]
    for name, c in results["counts"].items():
        acc = f"{results['tasks'][name]:.2f}"
        rows.append((name, acc, f"{c['correct']}/{c['total']}", str(c["failed"])))
    correct = sum(c["correct"] for c in results["counts"].values())
    rows.append(
        (
            "average",
            f"{results['average']:.2f}",
            f"{correct}/{results['num_items']}",
            str(results["failed"]),
        )
    )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]

    def line(row: tuple[str, ...]) -> str:
        first = row[0].ljust(widths[0])
        return "  ".join(
            [first] + [cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)]
        )

    rule = "-" * len(line(rows[0]))
    head = f"protocol: {results['protocol']}   frames: {results['num_frames']}   model: {results['model']}"
    body = [line(rows[0]), rule, *(line(r) for r in rows[1:-1]), rule, line(rows[-1])]
    tail = []
    if results["failed"]:
        tail = [
            f"{results['failed']} item(s) failed and are counted wrong; see the predictions file"
        ]
    return "\n".join([head, *body, *tail])


def write_results(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
