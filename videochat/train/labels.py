"""Prompt and label construction of the original's two training stages, reproduced exactly.

Each sample becomes a `LabelledText`: the token ids that go before the visual embeddings, the ids
after them and a label per "after" id. `assemble` then lays a batch out as the original did:
``[bos row, embed(before), visual, embed(after), pad rows]`` with labels only on target tokens.
The rules (including the original's quirks, e.g. stage 2 feeding the constant ``bos_token_id`` as
an embedding row) are described in tests/fixtures/parity/README.md §7.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch

IGNORE_INDEX = -100
HUMAN = "###Human: "
ASSISTANT = "###Assistant: "
BosMode = Literal["embed", "constant"]


@dataclass(frozen=True)
class LabelledText:
    """One sample's text: ids before the visual rows, ids after them, a label per after-id."""

    before_ids: list[int]
    after_ids: list[int]
    after_labels: list[int]

    def __post_init__(self) -> None:
        if len(self.after_ids) != len(self.after_labels):
            raise ValueError("after_ids and after_labels must have the same length")


@dataclass
class LLMInputs:
    """What the LLM receives for one batch."""

    inputs_embeds: torch.Tensor  # (B, L, D)
    attention_mask: torch.Tensor  # (B, L) int64
    labels: torch.Tensor  # (B, L) int64, IGNORE_INDEX where no loss


def token_ids(tokenizer, text: str) -> list[int]:
    """Ids of `text` without special tokens (each call gets the tokenizer's dummy prefix)."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


# ----------------------------------------------------------------------------- stage 1


def caption_sample(
    tokenizer,
    caption: str,
    prompt: str | None,
    *,
    image: bool,
    end_sym: str = "###",
    max_txt_len: int = 32,
) -> LabelledText:
    """Stage 1: ``[p_before, visual, p_after, caption+end_sym]``; loss on the caption only.

    `prompt` is an already templated prompt (``###Human: <Video><VideoHere></Video> … ###Assistant:
    ``) or None for no wrapping. The caption is cut to `max_txt_len` tokens (losing `end_sym` when
    long), like the original's batch tokenisation with truncation.
    """
    before: list[int] = []
    p_after: list[int] = []
    if prompt:
        placeholder = "<ImageHere>" if image else "<VideoHere>"
        if prompt.count(placeholder) != 1:
            raise ValueError(f"stage-1 prompt must contain {placeholder} once: {prompt!r}")
        text_before, text_after = prompt.split(placeholder)
        before, p_after = token_ids(tokenizer, text_before), token_ids(tokenizer, text_after)
    caption_ids = token_ids(tokenizer, caption + end_sym)[:max_txt_len]
    pad = tokenizer.pad_token_id
    caption_labels = [IGNORE_INDEX if i == pad else i for i in caption_ids]
    return LabelledText(
        before, p_after + caption_ids, [IGNORE_INDEX] * len(p_after) + caption_labels
    )


# ----------------------------------------------------------------------------- stage 2


def conversation_text(
    qa: Sequence[tuple[str, str]],
    *,
    start_token: str,
    end_token: str,
    msg: str = "",
    system: str = "",
    roles: tuple[str, str] = ("Human", "Assistant"),
) -> str:
    """Stage 2 conversation: system + ``###Human: <Video></Video>{msg} `` + each Q/A + ``###``."""
    return f"{system}###{roles[0]}: {start_token}{end_token}{msg.rstrip()} " + _turns(qa, roles)


def _turns(qa: Sequence[tuple[str, str]], roles: tuple[str, str]) -> str:
    """``###Human: q ###Assistant: a `` per turn, then the closing ``###``."""
    return "".join(f"###{roles[0]}: {q} ###{roles[1]}: {a} " for q, a in qa) + "###"


def conversation_sample(tokenizer, text: str, end_token: str) -> LabelledText:
    """Stage 2: split at `end_token` (visual rows go there) and mark the original's targets."""
    if end_token not in text:
        raise ValueError(f"conversation lacks the end token {end_token!r}: {text[:80]!r}")
    p_before, rest = text.split(end_token, 1)
    p_after = end_token + rest
    after_ids = token_ids(tokenizer, p_after)
    return LabelledText(
        token_ids(tokenizer, p_before), after_ids, instruction_labels(tokenizer, p_after, after_ids)
    )


def rows_first_sample(
    tokenizer, qa: Sequence[tuple[str, str]], roles: tuple[str, str] = ("Human", "Assistant")
) -> LabelledText:
    """Ours (the embedded build's drill): ``[visual] ###Human: q ###Assistant: a ###`` per turn,
    nothing before the rows, with the original's targets. Why: in toy runs a from-scratch LLM
    learnt to find the row a question names in a few hundred steps in a layout like this, and
    far more slowly behind the system text, the video markers and the timestamps (docs/embedded-experiments.md)."""
    text = _turns(qa, roles)
    after_ids = token_ids(tokenizer, text)
    return LabelledText([], after_ids, instruction_labels(tokenizer, text, after_ids))


def instruction_labels(tokenizer, p_after: str, after_ids: list[int]) -> list[int]:
    """The original's target mask, with lengths from separately tokenised pieces.

    Targets: the first ``###Human:`` after the message, every ``###Assistant: answer ###`` and the
    ``###Human:`` following each answer. Masked: the message, every question.
    """

    def n(text: str) -> int:
        return len(token_ids(tokenizer, text))

    labels = list(after_ids)
    pieces = p_after.split(ASSISTANT)
    pieces = pieces[:1] + [ASSISTANT + p for p in pieces[1:]]
    head = pieces[0]
    a = n(head.split(HUMAN)[0].rstrip())
    s = n(HUMAN.rstrip())
    cur = n(head.rstrip())
    _mask(labels, 0, a)
    _mask(labels, a + s, cur)
    for piece in pieces[1:-1]:
        t = n(piece.rstrip())
        h = n((piece.split(HUMAN)[0] + HUMAN).rstrip())
        _mask(labels, cur + h, cur + t)
        cur += t
    return labels


def _mask(labels: list[int], start: int, stop: int) -> None:
    for i in range(max(start, 0), min(stop, len(labels))):
        labels[i] = IGNORE_INDEX


# ----------------------------------------------------------------------------- batching


def assemble(
    visual: torch.Tensor,
    samples: Sequence[LabelledText],
    embed: Callable[[torch.Tensor], torch.Tensor],
    *,
    bos_id: int,
    pad_id: int,
    bos_mode: BosMode,
    max_len: int | None = None,
) -> LLMInputs:
    """Lay out a batch as the original: bos row, before, visual (B,Q,D), after, right padding.

    `bos_mode="embed"` (stage 1) uses embed(bos); `"constant"` (stage 2) fills the row with the
    number `bos_id` on every channel, as the original does. `max_len` caps the total length
    (bos included); stage 2 uses max_txt_len + number of visual rows.
    """
    batch, n_visual, dim = visual.shape  # (B, Q, D)
    if len(samples) != batch:
        raise ValueError(f"{len(samples)} texts for {batch} visual inputs")
    lengths = [len(s.before_ids) + n_visual + len(s.after_ids) for s in samples]
    total = max(lengths) + 1
    if max_len is not None:
        total = min(total, max_len)
    device = visual.device
    pad_row = embed(torch.tensor([pad_id], device=device))  # (1, D)
    bos_row = _bos_row(embed, bos_id, bos_mode, pad_row)
    rows, masks, labels = [], [], []
    for i, sample in enumerate(samples):
        kept = min(lengths[i], total - 1)
        seq = torch.cat(
            [
                bos_row,
                embed(torch.tensor(sample.before_ids, dtype=torch.long, device=device)),
                visual[i].to(pad_row.dtype),
                embed(torch.tensor(sample.after_ids, dtype=torch.long, device=device)),
            ]
        )[: kept + 1]  # (1 + kept, D)
        pad = pad_row.expand(total - 1 - kept, dim)
        rows.append(torch.cat([seq, pad]))
        masks.append([1] * (kept + 1) + [0] * (total - 1 - kept))
        prefix = [IGNORE_INDEX] * (1 + len(sample.before_ids) + n_visual)
        label = (prefix + sample.after_labels)[: kept + 1]
        labels.append(label + [IGNORE_INDEX] * (total - len(label)))
    return LLMInputs(
        inputs_embeds=torch.stack(rows),  # (B, L, D)
        attention_mask=torch.tensor(masks, dtype=torch.long, device=device),
        labels=torch.tensor(labels, dtype=torch.long, device=device),
    )


def _bos_row(embed, bos_id: int, bos_mode: BosMode, like: torch.Tensor) -> torch.Tensor:
    if bos_mode == "embed":
        return embed(torch.tensor([bos_id], device=like.device))  # (1, D)
    if bos_mode == "constant":
        return torch.full_like(like, float(bos_id))  # (1, D)
    raise ValueError(f"bos_mode must be 'embed' or 'constant', not {bos_mode!r}")
