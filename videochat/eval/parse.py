"""Turning a model's free-text answer into an option letter, one rule set per protocol.

``parse_option`` (VideoChat2 protocol) reads the letter the primed answer starts with:
``"(B) a cat"``, ``"B) a cat"``, ``"b."``, ``"B"``; then an explicit ``(C)`` anywhere in the line; then,
when the answer repeats one candidate's text instead of a letter, that candidate's letter. Anything
else gives ``None``, which is counted wrong.

Differences from VideoChat2's own ``check_ans`` (a substring test on the first word), on purpose: an
empty answer was counted correct there (``"(" in "(a)"``) and is wrong here; an answer that is the
option text without its letter was wrong there and is matched to its letter here.

``parse_lmms_eval`` reproduces lmms-eval's MVBench scoring (``mcq_acc``): ``"B. text"`` gives B;
otherwise punctuation is cleaned and the first standalone letter A-E is taken, whatever the words
around it (so ``"a cat"`` reads as A, as it does there).
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

LETTERS = string.ascii_uppercase

# "(B) text", "B) text", "B. text", "B: text", "B", "(b" -- a letter that stands alone at the start.
_LEADING = re.compile(r"^\s*[\(\[]?\s*([A-Za-z])\s*(?:[\)\]\.:,]|\s|$)")
# "... the answer is (C) ..." anywhere: a single letter in parentheses/brackets.
_BRACKETED = re.compile(r"[\(\[]\s*([A-Za-z])\s*[\)\]]")


def _letter_in_range(letter: str, num_candidates: int) -> str | None:
    letter = letter.upper()
    return letter if letter in LETTERS[:num_candidates] else None


def _normalise(text: str) -> str:
    """Lower case, punctuation to spaces, single spaces: compares option texts loosely."""
    table = str.maketrans({p: " " for p in string.punctuation})
    return " ".join(text.lower().translate(table).split())


def match_candidate_text(text: str, candidates: Sequence[str]) -> str | None:
    """Letter of the one candidate whose text the answer is or contains; None if none or several."""
    answer = _normalise(text)
    if not answer:
        return None
    exact = [i for i, c in enumerate(candidates) if _normalise(c) == answer]
    if len(exact) == 1:
        return LETTERS[exact[0]]
    contained = [
        i
        for i, c in enumerate(candidates)
        if _normalise(c) and f" {_normalise(c)} " in f" {answer} "
    ]
    # Prefer the longest contained option ("red ball" over "ball"), but only if it is unique.
    if contained:
        longest = max(len(_normalise(candidates[i])) for i in contained)
        best = [i for i in contained if len(_normalise(candidates[i])) == longest]
        if len(best) == 1:
            return LETTERS[best[0]]
    return None


def parse_option(text: str, candidates: Sequence[str]) -> str | None:
    """The option letter a (first-line) answer names, or None when it names none clearly."""
    n = len(candidates)
    match = _LEADING.match(text)
    if match and (letter := _letter_in_range(match.group(1), n)):
        return letter
    for match in _BRACKETED.finditer(text):
        if letter := _letter_in_range(match.group(1), n):
            return letter
    # Option text instead of a letter: drop a dangling "(" left by the primed prefix first.
    return match_candidate_text(text.lstrip("([ "), candidates)


# --- lmms-eval's MVBench rule (lmms_eval/tasks/mvbench/utils.py, mcq_acc), rewritten -------------

_LMMS_DOTTED = re.compile(r"^([A-E])\.\s*(.+)$", re.IGNORECASE | re.DOTALL)
_LMMS_PUNCT = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<")
_LMMS_PUNCT += ("@", "`", ",", "?", "!")
_LMMS_DIGIT_COMMA = re.compile(r"(\d)(,)(\d)")
_LMMS_PERIOD = re.compile(r"\.(?!\d)")  # a period not followed by a digit
_LMMS_LETTER = re.compile(r"\b([a-e])\b")


def _lmms_clean_punctuation(text: str) -> str:
    """A mark next to a space (or any mark in a text with a digit-comma-digit) is deleted; else spaced."""
    out = text
    digit_comma = _LMMS_DIGIT_COMMA.search(text) is not None
    for mark in _LMMS_PUNCT:
        spaced = f"{mark} " in text or f" {mark}" in text
        out = out.replace(mark, "" if spaced or digit_comma else " ")
    # lmms-eval passes re.UNICODE (=32) as the `count` of re.sub: at most 32 periods are removed.
    return _LMMS_PERIOD.sub("", out, count=32)


def lmms_eval_normalise(text: str) -> str:
    """lmms-eval's answer normal form: an upper-case letter A-E when one is found, else cleaned text."""
    dotted = _LMMS_DOTTED.match(text.strip())
    if dotted:
        return dotted.group(1).upper()
    cleaned = text.replace("\n", " ").replace("\t", " ").strip()
    cleaned = _lmms_clean_punctuation(cleaned)
    cleaned = cleaned.strip("'").strip('"').strip(")").strip("(").strip().lower()
    letter = _LMMS_LETTER.search(cleaned)
    return letter.group(1).upper() if letter else cleaned


def parse_lmms_eval(text: str, candidates: Sequence[str]) -> str | None:
    """The letter lmms-eval would read from ``text`` (None when it reads no letter of this item)."""
    normal = lmms_eval_normalise(text)
    if len(normal) == 1 and normal.isalpha():
        return _letter_in_range(normal, len(candidates))
    return None
