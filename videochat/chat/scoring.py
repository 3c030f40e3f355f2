"""How likely the LLM finds each of several replies to the same prompt (rank classification).

Each reply is scored as the tokens it adds to the prompt: the prompt is tokenised once with the
reply appended after the assistant tag, and the positions from the first one that differs from the
prompt alone onwards are scored, so a reply whose first token merges with the end of the prompt
(``(`` + ``green``) is scored as the tokenizer would write it. The part every reply's input shares
(the conversation, the media, the question) runs through the LLM once; its KV cache is repeated
for the replies, whose own tokens then run in one right-padded batch (padding comes after every
real position, so it changes nothing under the causal mask).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch

from videochat.chat.generate import cache_keyword, output_cache
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
    count = len(replies)
    with torch.inference_mode():
        # each reply's tokens start where its keys leave the prompt's (at least one is scored)
        starts = [min(common_prefix(prompt.keys, p.keys), len(p.keys) - 1) for p in replies]
        embeds = [
            model.embed_segments([torch.tensor(ids) for ids in plan.segment_ids], list(visual))[0]
            for plan in replies
        ]  # (L_i, D) each
        shared = min(starts)  # input positions [0, shared) are the same for every reply
        head = model.llm(inputs_embeds=embeds[0][None, :shared], use_cache=True)
        cache = output_cache(head)
        cache.batch_repeat_interleave(count)  # (1, …) → (N, …)
        tails = [e[shared:] for e in embeds]
        length = max(t.shape[0] for t in tails)
        batch = tails[0].new_zeros(count, length, tails[0].shape[1])  # (N, T, D)
        mask = torch.ones(count, shared + length, dtype=torch.long, device=batch.device)
        for i, tail in enumerate(tails):
            batch[i, : tail.shape[0]] = tail
            mask[i, shared + tail.shape[0] :] = 0
        out = model.llm(
            inputs_embeds=batch, attention_mask=mask, **{cache_keyword(model.llm): cache}
        )
        # index k: the prediction made at input position shared - 1 + k
        last = head.logits[:, -1:].expand(count, -1, -1)  # (N, 1, V)
        logits = torch.cat([last, out.logits], 1)  # (N, 1 + T, V)
        scores = []
        for i, (plan, start) in enumerate(zip(replies, starts, strict=True)):
            ids = torch.tensor(plan.keys[start:], device=logits.device)  # text ids: (R,)
            rows = logits[i, start - shared : len(plan.keys) - shared]  # (R, V)
            logp = rows.float().log_softmax(-1)
            total = float(logp.gather(-1, ids[:, None]).sum())
            scores.append(ReplyScore(total, bool((logp.argmax(-1) == ids).all())))
    return scores
