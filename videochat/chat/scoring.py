"""How likely the LLM finds each of several replies to the same prompt (rank classification).

Each reply is scored as the tokens it adds to the prompt: the prompt is tokenised once with the
reply appended after the assistant tag, and the positions from the first one that differs from the
prompt alone onwards are scored, so a reply whose first token merges with the end of the prompt
(``(`` + ``green``) is scored as the tokenizer would write it. All replies go through the LLM in
one right-padded batch; padding comes after every real position, so it changes nothing under the
causal mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch

from videochat.chat.prompt import PromptPlan, common_prefix


class ReplyScore(NamedTuple):
    """How likely the model finds one reply."""

    logprob: float  # total log-probability of the reply's tokens
    greedy: bool  # every token of the reply is the likeliest one at its position


def reply_scores(
    model: Any, prompt: PromptPlan, replies: Sequence[PromptPlan], visual: Sequence[torch.Tensor]
) -> list[ReplyScore]:
    """Score each reply's tokens; `replies` are the plans of the prompt with each reply
    appended, `visual` the media embeddings (1, Q, D) in placeholder order."""
    starts, embeds = [], []
    with torch.inference_mode():
        for plan in replies:
            # the reply's tokens start where its keys leave the prompt's (at least one is scored)
            starts.append(min(common_prefix(prompt.keys, plan.keys), len(plan.keys) - 1))
            segments = [torch.tensor(ids, dtype=torch.long) for ids in plan.segment_ids]
            embeds.append(model.embed_segments(segments, list(visual))[0])  # (L_i, D)
        length = max(e.shape[0] for e in embeds)
        batch = embeds[0].new_zeros(len(embeds), length, embeds[0].shape[1])  # (N, L, D)
        mask = torch.zeros(len(embeds), length, dtype=torch.long, device=batch.device)
        for i, e in enumerate(embeds):
            batch[i, : e.shape[0]] = e
            mask[i, : e.shape[0]] = 1
        logits = model.llm(inputs_embeds=batch, attention_mask=mask).logits  # (N, L, V)
        scores = []
        for i, (plan, start) in enumerate(zip(replies, starts, strict=True)):
            ids = torch.tensor(plan.keys[start:], device=logits.device)  # text ids: (R,)
            logp = logits[i, start - 1 : len(plan.keys) - 1].float().log_softmax(-1)  # (R, V)
            total = float(logp.gather(-1, ids[:, None]).sum())
            scores.append(ReplyScore(total, bool((logp.argmax(-1) == ids).all())))
    return scores
