"""Reading an MVBench-format benchmark directory: the task table and its multiple-choice items.

Layout (written by ``videochat synth``, read here; the original MVBench release fits it too)::

    BENCH_DIR/tasks.json
        {"<task name>": {"json": "<file>.json",          # items of this task, relative to BENCH_DIR
                         "prefix": "<media root>",       # relative to BENCH_DIR, or absolute
                         "data_type": "video" | "gif" | "frame",
                         "bound": true | false,          # items carry start/end seconds
                         "fps": 3}}                      # frame folders only (default 3)
        The original MVBench list form is accepted too:
        {"<task name>": ["<file>.json", "<media root>", "<data_type>", <bound>]}
    BENCH_DIR/<file>.json
        [{"video": "<path under prefix>", "question": str, "candidates": [str, ...],
          "answer": str (one of candidates), "start": float?, "end": float?}]

``video`` names a video file (``video``), an animated GIF (``gif``) or a folder of numbered images
played at ``fps`` (``frame``; files sorted naturally, so ``2.jpg`` comes before ``10.jpg``).

A broken table or items file stops the run with a clear error (nothing could be evaluated); a broken
*item* (answer not among the candidates, missing question...) is kept with its ``problem`` set, so the
runner records it as failed and counts it wrong instead of aborting.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videochat.errors import VideoChatError

DATA_TYPES = ("video", "gif", "frame")
DEFAULT_FRAME_FPS = 3.0  # MVBench's frame folders (TVQA) were extracted at 3 fps
LETTERS = string.ascii_uppercase


class BenchmarkError(VideoChatError):
    """The benchmark directory, its task table or an items file cannot be read as documented."""


@dataclass(frozen=True)
class TaskSpec:
    """One row of tasks.json, with paths resolved against the benchmark directory."""

    name: str
    items_path: Path
    media_root: Path
    data_type: str = "video"
    bound: bool = False
    fps: float = DEFAULT_FRAME_FPS


@dataclass(frozen=True)
class BenchItem:
    """One multiple-choice question about one clip."""

    task: str
    index: int  # position in the task's items file (stable key for resume)
    video: str  # as written in the items file
    media_path: Path
    data_type: str
    question: str
    candidates: tuple[str, ...]
    answer: str
    start: float | None = None
    end: float | None = None
    fps: float = DEFAULT_FRAME_FPS
    problem: str | None = None  # why this item cannot be evaluated (then it counts as failed)

    @property
    def answer_letter(self) -> str | None:
        """The letter of the correct candidate: (A) for candidates[0], (B) for the next..."""
        try:
            return LETTERS[self.candidates.index(self.answer)]
        except (ValueError, IndexError):
            return None


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise BenchmarkError(f"{path}: {what} not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BenchmarkError(f"{path}: {what} is not valid JSON ({exc})") from None


def _task_from_row(name: str, row: Any, bench_dir: Path, table: Path) -> TaskSpec:
    where = f"{table}: task {name!r}"
    if isinstance(row, list | tuple):  # original MVBench form: [json, prefix, type, bound]
        if len(row) < 3:
            raise BenchmarkError(f"{where}: expected [json, prefix, data_type, bound], got {row!r}")
        row = {
            "json": row[0],
            "prefix": row[1],
            "data_type": row[2],
            "bound": bool(row[3:4] and row[3]),
        }
    if not isinstance(row, dict) or "json" not in row or "prefix" not in row:
        raise BenchmarkError(f"{where}: needs at least the keys 'json' and 'prefix'")
    data_type = row.get("data_type", "video")
    if data_type not in DATA_TYPES:
        raise BenchmarkError(
            f"{where}: data_type {data_type!r} is not one of {', '.join(DATA_TYPES)}"
        )
    fps = float(row.get("fps", DEFAULT_FRAME_FPS))
    if fps <= 0:
        raise BenchmarkError(f"{where}: fps must be positive, got {fps}")
    return TaskSpec(
        name=name,
        items_path=bench_dir / str(row["json"]),
        media_root=bench_dir / str(row["prefix"]),  # an absolute prefix replaces bench_dir
        data_type=data_type,
        bound=bool(row.get("bound", False)),
        fps=fps,
    )


def load_tasks(bench_dir: str | Path, names: list[str] | None = None) -> list[TaskSpec]:
    """Read ``BENCH_DIR/tasks.json``; keep only ``names`` (in table order) when given."""
    bench_dir = Path(bench_dir)
    if not bench_dir.is_dir():
        raise BenchmarkError(f"{bench_dir}: benchmark directory not found")
    table_path = bench_dir / "tasks.json"
    table = _read_json(table_path, "task table (tasks.json)")
    if not isinstance(table, dict) or not table:
        raise BenchmarkError(
            f"{table_path}: expected a non-empty object mapping task names to specs"
        )
    tasks = [_task_from_row(name, row, bench_dir, table_path) for name, row in table.items()]
    if names:
        unknown = [n for n in names if n not in table]
        if unknown:
            raise BenchmarkError(
                f"unknown task(s) {', '.join(unknown)}; {table_path} has: {', '.join(table)}"
            )
        tasks = [t for t in tasks if t.name in names]
    return tasks


def _item_problem(raw: dict[str, Any]) -> str | None:
    if not isinstance(raw.get("video"), str) or not raw["video"]:
        return "item has no 'video' path"
    if not isinstance(raw.get("question"), str):
        return "item has no 'question' text"
    cands = raw.get("candidates")
    if not isinstance(cands, list) or len(cands) < 2 or not all(isinstance(c, str) for c in cands):
        return "item needs 'candidates': a list of at least two strings"
    if len(cands) > len(LETTERS):
        return f"item has {len(cands)} candidates; at most {len(LETTERS)} can be lettered"
    if raw.get("answer") not in cands:
        return f"answer {raw.get('answer')!r} is not one of the candidates"
    return None


def _bound(raw: dict[str, Any], key: str) -> float | None:
    value = raw.get(key)
    return None if value is None else float(value)


def _make_item(task: TaskSpec, index: int, raw: Any) -> BenchItem:
    raw = raw if isinstance(raw, dict) else {}
    problem = _item_problem(raw) if raw else "item is not a JSON object"
    start = end = None
    if task.bound and problem is None:
        try:
            start, end = _bound(raw, "start"), _bound(raw, "end")
        except (TypeError, ValueError):
            problem = f"start/end must be numbers of seconds, got {raw.get('start')!r}, {raw.get('end')!r}"
        if problem is None and start is not None and end is not None and end < start:
            problem = f"end ({end}) is before start ({start})"
    video = str(raw.get("video") or "")
    return BenchItem(
        task=task.name,
        index=index,
        video=video,
        media_path=task.media_root / video,
        data_type=task.data_type,
        question=str(raw.get("question", "")),
        candidates=tuple(str(c) for c in raw.get("candidates") or ()),
        answer=str(raw.get("answer", "")),
        start=start,
        end=end,
        fps=task.fps,
        problem=problem,
    )


def load_items(task: TaskSpec, limit: int | None = None) -> list[BenchItem]:
    """Read a task's items file; ``limit`` keeps the first N (for quick runs)."""
    data = _read_json(task.items_path, f"items file of task {task.name!r}")
    if not isinstance(data, list):
        raise BenchmarkError(f"{task.items_path}: expected a JSON list of items")
    if limit is not None:
        data = data[:limit]
    return [_make_item(task, i, raw) for i, raw in enumerate(data)]


def load_benchmark(
    bench_dir: str | Path, names: list[str] | None = None, limit: int | None = None
) -> list[BenchItem]:
    """All items of the selected tasks, task after task (``limit`` applies per task)."""
    return [item for task in load_tasks(bench_dir, names) for item in load_items(task, limit)]
