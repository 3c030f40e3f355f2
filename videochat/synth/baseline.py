"""Text-only baselines: how well can a benchmark be answered without looking at the video?

A "blind" model that learned answer statistics from training items picks, for each test item,
the candidate whose text (alone, or paired with the question) was most often correct. If such a
baseline beats chance, the questions leak their answers; our generators should keep it at chance.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable


def chance(items: Iterable[dict]) -> float:
    """Expected accuracy of uniform guessing."""
    items = list(items)
    return sum(1 / len(it["candidates"]) for it in items) / max(1, len(items))


def _fit(items: list[dict], key) -> tuple[Counter, Counter]:
    right, seen = Counter(), Counter()
    for it in items:
        for c in it["candidates"]:
            seen[key(it, c)] += 1
            right[key(it, c)] += c == it["answer"]
    return right, seen


def _score(items: list[dict], right: Counter, seen: Counter, key) -> float:
    """Accuracy of picking the candidate with the best smoothed training hit rate (ties: first)."""
    hits = 0
    for it in items:
        rates = [(right[key(it, c)] + 1) / (seen[key(it, c)] + 2) for c in it["candidates"]]
        hits += it["candidates"][rates.index(max(rates))] == it["answer"]
    return hits / max(1, len(items))


def _by_answer(it: dict, c: str) -> str:
    return c


def _by_question(it: dict, c: str) -> tuple[str, str]:
    return it["question"], c


def _by_position(it: dict, c: str) -> int:
    return it["candidates"].index(c)


BASELINES = {"answer text": _by_answer, "question + answer": _by_question, "position": _by_position}


def text_only_accuracy(train: list[dict], test: list[dict]) -> dict[str, float]:
    """Accuracy on `test` of each blind baseline fitted on `train` (plus 'chance')."""
    out = {"chance": chance(test)}
    for name, key in BASELINES.items():
        right, seen = _fit(train, key)
        out[name] = _score(test, right, seen, key)
    return out
