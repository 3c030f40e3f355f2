"""Whole tokens for the times the prompts write, added to a trained model: one per event-time
option ("at 3.5 seconds"), or one per decimal (".5").

Why: the BPE tokenizer spells a time "at", " 3", ".", "5", " seconds", so greedy decoding takes
the decimal on its own, after the integer; b39 got 13 of its 32 event items whose answer ends
in ".5" right (15 of the 19 wrong ones the same integer with ".0": "at 3.0 seconds" where only
3.5 was listed) against 26 of 35 ending in ".0", while scoring each option whole it chose the
right one for 26 of the 32 (session 35, docs/embedded-experiments.md). One token per listed
time makes the answer one choice among the times, which the LLM can copy from the options it
reads. Measured (session 35): added before the late stages (b43) the copy stays weak and event
time falls to 47.8%; added before the first LLM stage (b44) the LLM takes the time from the
options (event time 64.2%, 65.8% on the seed-3000 benchmark) but that draw lost the shape
lookup (58.9%). Added before the first LLM stage of J's recipe, whose late shape stage forms
the shape lookup after stage 0 (b51, session 42, committed): event time 76.1% (80.1% on the
seed-3000 benchmark), 5 of its 16 wrong event-time answers naming no option; `late_time_tokens`
stays off.

The decimal tokens (`late_decimal_tokens`) keep the integer as it was (" 3") and join the point
to its digit (".5"), so the copy the late stages teach is one token after one: a writer of
" 3" can find " 3" among the options and take the token after it (an induction head's match),
where with ".", "5" it has to match two tokens back (the "." follows every integer alike).
Measured (session 39, one draw on b46's recipe with the shared visual cache): event time 41.8%
against 58.2% without them, more answers naming no option. Off in the committed recipe.

The new rows: input embedding = the mean of the old pieces' rows (the LLM reads the token as
roughly what it read before), output row = the row of the piece it starts with, "at" or "." (a
new token starts as likely as the piece that began it): greedy decoding keeps that piece (the
lower id) until a stage trains them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from videochat.embedded.config import vocab_rows
from videochat.synth.plan import MAX_DURATION, TIME_GRID
from videochat.synth.questions import time_text

if TYPE_CHECKING:
    from videochat.model.videochat import VideoChat

# every time an option can name: the event grid across the longest video
TIME_TOKENS: tuple[str, ...] = tuple(
    time_text(t) for t in np.arange(0.0, MAX_DURATION + TIME_GRID / 2, TIME_GRID)
)
# a decimal point with its digit, the second half of every time the prompts write
DECIMAL_TOKENS: tuple[str, ...] = tuple(f".{digit}" for digit in range(10))


def add_time_tokens(model: VideoChat) -> int:
    """Add `TIME_TOKENS` to `model`'s tokenizer and LLM (see the module note); returns how
    many were new (0 when the model has them already)."""
    return _add_whole_tokens(model, TIME_TOKENS, "at")


def add_decimal_tokens(model: VideoChat) -> int:
    """Add `DECIMAL_TOKENS` to `model`'s tokenizer and LLM (see the module note); returns how
    many were new. Their output rows start as "."'s, the piece each one begins with."""
    return _add_whole_tokens(model, DECIMAL_TOKENS, ".")


def _add_whole_tokens(model: VideoChat, texts: tuple[str, ...], output_from: str) -> int:
    """`texts` as whole tokens: input rows the mean of their old pieces' rows, output rows the
    row of `output_from` (new rows start as likely as the piece they replace)."""
    tok = model.tokenizer
    pieces = {text: tok(text, add_special_tokens=False)["input_ids"] for text in texts}
    pieces = {text: ids for text, ids in pieces.items() if len(ids) > 1}  # not yet whole
    if not tok.add_tokens(list(pieces)):
        return 0
    llm = model.llm
    llm.resize_token_embeddings(vocab_rows(len(tok)), mean_resizing=False)
    start = tok(output_from, add_special_tokens=False)["input_ids"]
    embed, head = llm.get_input_embeddings().weight, llm.get_output_embeddings().weight
    with torch.no_grad():
        for text, ids in pieces.items():
            (new,) = tok(text, add_special_tokens=False)["input_ids"]
            embed[new] = embed[ids].mean(dim=0)  # (D,)
            head[new] = head[start].mean(dim=0)  # (D,)
    return len(pieces)
