"""Where the LLM looks when it answers a colour question ("What colour is the circle?"): the
circuit that answers it from the rows the shape words name (`VideoChatConfig.row_tokens`).

Two hops find the colour (session 22, 49; docs/embedded-experiments.md): the question's shape
word fetches its named row, then the answer's position reads the shape word. A model can form
the fetch in a layer where nothing after it can read it: the committed 4-layer model fetches in
its first layer, the 2-layer draws that missed colour in their last, and a 2-layer draw given the
colour questions alone and without options first (`--lookup-steps 1200 --bare-lookup`) in its
first (session 50). Per layer, mean over heads:
`fetch_share`, of the shape word's attention on the named rows the part on the asked shape's
row (chance 1 / the number of named rows); `fetch_mass`, its attention on the named rows
together; `answer_on_word`, the answer position's attention on the question's shape word.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from videochat.embedded.config import NUM_FRAMES

TASK = "object_colour"


def named_rows(model: Any) -> dict[str, int]:
    """Shape word → the LLM row (index in the video's rows) that carries it."""
    decode = model.tokenizer.decode
    rows = model.config.row_tokens or []
    return {decode(ids).strip(): row for row, ids in enumerate(rows) if ids}


@contextmanager
def eager_attention(model: Any) -> Iterator[None]:
    """The LLM on the eager attention kernel (the only one that returns its weights), then on
    its own kernel again."""
    before = model.llm.config._attn_implementation
    model.llm.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.llm.set_attn_implementation(before)


def item_attention(model: Any, keys: list, embeds: torch.Tensor, rows: dict[str, int]) -> dict:
    """The three figures per layer for one prompt (`keys`, `embeds` (1, L, D) from
    `ChatSession.prompt_inputs`; the LLM under `eager_attention`); {} when the prompt names no
    shape after the video."""
    media = [i for i, key in enumerate(keys) if isinstance(key, tuple)]
    if not media:
        return {}
    words = {
        i: model.tokenizer.decode([key]).strip()
        for i, key in enumerate(keys)
        if i > media[-1] and not isinstance(key, tuple)
    }
    asked = [i for i, word in words.items() if word in rows]
    if not asked:
        return {}
    word = asked[0]
    named = [media[row] for row in rows.values()]  # positions of the named rows
    target = media[rows[words[word]]]
    with torch.inference_mode():
        out = model.llm(inputs_embeds=embeds, output_attentions=True)
    figures: dict[str, list[float]] = {"fetch_share": [], "fetch_mass": [], "answer_on_word": []}
    for layer in out.attentions:  # (1, H, L, L) each
        weights = layer[0].float().mean(0)  # (L, L)
        mass = weights[word, named].sum()
        figures["fetch_share"].append(float(weights[word, target] / mass))
        figures["fetch_mass"].append(float(mass))
        figures["answer_on_word"].append(float(weights[-1, word]))
    return figures


def named_row_attention(model: Any, bench_dir: Path, limit: int = 40) -> dict | None:
    """The figures per layer, averaged over the first `limit` colour items of the benchmark, as
    the videochat2 protocol asks them (None for a model without named rows)."""
    from videochat.chat import ChatSession
    from videochat.eval import load_benchmark
    from videochat.eval.protocols import VIDEOCHAT2
    from videochat.eval.runner import add_clip

    rows = named_rows(model)
    if not rows:
        return None
    session = ChatSession(model, system=VIDEOCHAT2.system)
    per_item = []
    with eager_attention(model):
        for item in load_benchmark(bench_dir, [TASK], limit):
            session.reset()
            add_clip(session, item, NUM_FRAMES)
            plan, embeds = session.prompt_inputs(
                VIDEOCHAT2.question(item), answer_prefix=VIDEOCHAT2.answer_prefix
            )
            figures = item_attention(model, plan.keys, embeds, rows)
            if figures:
                per_item.append(figures)
    if not per_item:
        return None
    return {
        name: [
            round(sum(f[name][layer] for f in per_item) / len(per_item), 3)
            for layer in range(len(per_item[0][name]))
        ]
        for name in per_item[0]
    } | {"items": len(per_item), "chance_share": round(1 / len(rows), 3)}
