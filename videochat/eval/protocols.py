"""Ways to ask a multiple-choice video question and to read the answer (published ones, and a
ranking variant of one).

A protocol fixes everything that changes the number: the system prompt, how the question and its
options are written, how the answer is primed, the generation settings and the answer parser. Every
result file names its protocol; numbers from different protocols are not comparable.

``videochat2``: VideoChat2's MVBench evaluation (OpenGVLab/Ask-Anything, ``video_chat2/mvbench.ipynb``):
the system prompt below is both the conversation's system text and the start of the question,
``Question: …\\nOptions:\\n(A) …\\n(B) …`` + ``\\nOnly give the best option.``, the answer primed
with ``Best option:(``, greedy decoding, at most 100 new tokens, only the first line of the answer kept
(``(`` + answer). Scored with :func:`videochat.eval.parse.parse_option`.

``lmms-eval``: lmms-eval's ``mvbench`` task (``lmms_eval/tasks/mvbench``): no system prompt,
``Question:…\\nOption:\\n(A) …\\n`` + ``Only give the best option.\\n``, no priming, greedy, at most 16
new tokens; scored with lmms-eval's ``mcq_acc`` rule (:func:`videochat.eval.parse.parse_lmms_eval`).

``videochat2-rank`` (alias ``rank``): VideoChat2's prompt, answered without generating: each
option's text is written as the answer after ``Best option:(`` (``<text>)``, the form
:func:`~videochat.eval.parse.parse_option` reads as that option), scored by the LLM's total
log-probability, and the likeliest is the choice (rank classification, as T0 and FLAN evaluate
multiple choice, lm-eval-harness's ``multiple_choice`` tasks and SEED-Bench's likelihood protocol
do). It measures which listed option the model finds likeliest, also for a model that writes an
answer of its own words instead of copying an option; it suits models that answer with the
option's text (the embedded model); ``videochat2-rank-letter`` (alias ``rank-letter``) scores
``<letter>) <text>`` instead, for models trained to answer with the letter.

All see the same frames (``--num-frames``, middle sampling within [start, end] for bounded tasks),
given to the model the way VideoChat's chat does it: the video turn carries the timestamp message
("The video contains N frames sampled at ... seconds."), which VideoChat2's own prompt does not have.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from videochat.errors import VideoChatError
from videochat.eval.bench import LETTERS, BenchItem
from videochat.eval.parse import parse_lmms_eval, parse_option

VIDEOCHAT2_SYSTEM = (
    "Carefully watch the video and pay attention to the cause and sequence of events, "
    "the detail and movement of objects, and the action and pose of persons. "
    "Based on your observations, select the best option that accurately addresses the question.\n"
)


@dataclass(frozen=True)
class Protocol:
    """How one item becomes a prompt and how the reply becomes a letter."""

    name: str
    system: str
    answer_prefix: str
    generation: dict[str, Any]
    build_question: Callable[[BenchItem], str]
    extract: Callable[[str], str]  # raw reply -> the text that is parsed
    parse: Callable[[str, Sequence[str]], str | None]
    notes: str = ""
    aliases: tuple[str, ...] = field(default=())
    # rank classification: the replies to score, one per candidate in order (None: generate)
    replies: Callable[[BenchItem], list[str]] | None = None

    def question(self, item: BenchItem) -> str:
        return self.build_question(item)

    def read_answer(self, raw: str, candidates: Sequence[str]) -> tuple[str, str | None]:
        """(text that was parsed, letter or None)."""
        text = self.extract(raw)
        return text, self.parse(text, candidates)


def _options(candidates: Sequence[str]) -> list[str]:
    return [f"({LETTERS[i]}) {c}" for i, c in enumerate(candidates)]


def _videochat2_question(item: BenchItem) -> str:
    body = f"Question: {item.question}\nOptions:\n" + "\n".join(_options(item.candidates))
    return VIDEOCHAT2_SYSTEM + body.rstrip() + "\nOnly give the best option."


def _videochat2_extract(raw: str) -> str:
    lines = raw.strip().split("\n")
    return "(" + lines[0]  # the primed "(" belongs to the answer


def _lmms_eval_question(item: BenchItem) -> str:
    options = "".join(option + "\n" for option in _options(item.candidates))
    return "Question:" + item.question + "\nOption:\n" + options + "Only give the best option.\n"


VIDEOCHAT2 = Protocol(
    name="videochat2",
    system=VIDEOCHAT2_SYSTEM,
    answer_prefix="Best option:(",
    generation={"do_sample": False, "num_beams": 1, "max_new_tokens": 100},
    build_question=_videochat2_question,
    extract=_videochat2_extract,
    parse=parse_option,
    notes="VideoChat2 MVBench prompt (video turn with VideoChat's timestamp message); letter "
    "parsed from the first line; unparsed answers and failed items count wrong",
)

LMMS_EVAL = Protocol(
    name="lmms-eval",
    system="",
    answer_prefix="",
    generation={"do_sample": False, "num_beams": 1, "max_new_tokens": 16},
    build_question=_lmms_eval_question,
    extract=lambda raw: raw.strip(),
    parse=parse_lmms_eval,
    notes="lmms-eval mvbench prompt and mcq_acc rule; empty answers count wrong here "
    "(lmms-eval drops them from the denominator)",
    aliases=("lmms_eval", "lmms"),
)

VIDEOCHAT2_RANK = replace(
    VIDEOCHAT2,
    name="videochat2-rank",
    generation={},
    replies=lambda item: [f"{candidate})" for candidate in item.candidates],
    notes="VideoChat2 MVBench prompt; instead of generating, each option's text written as the "
    "answer after 'Best option:(' (as '<text>)') is scored by the LLM's log-probability and the "
    "likeliest is the choice (rank classification); not comparable with videochat2's numbers",
    aliases=("rank",),
)

VIDEOCHAT2_RANK_LETTER = replace(
    VIDEOCHAT2_RANK,
    name="videochat2-rank-letter",
    replies=lambda item: [f"{LETTERS[i]}) {c}" for i, c in enumerate(item.candidates)],
    notes="as videochat2-rank, but each option is scored as '<letter>) <text>', the answer form "
    "of models trained to answer with the letter (the released VideoChat2)",
    aliases=("rank-letter",),
)

PROTOCOLS: dict[str, Protocol] = {
    p.name: p for p in (VIDEOCHAT2, LMMS_EVAL, VIDEOCHAT2_RANK, VIDEOCHAT2_RANK_LETTER)
}


def get_protocol(name: str) -> Protocol:
    """Look a protocol up by name (or alias)."""
    for protocol in PROTOCOLS.values():
        if name == protocol.name or name in protocol.aliases:
            return protocol
    raise VideoChatError(f"unknown protocol {name!r}; choose one of: {', '.join(PROTOCOLS)}")
