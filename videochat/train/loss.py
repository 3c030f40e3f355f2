"""The LLM's next-token loss, with the vocabulary projection only where a token is predicted.

A training row is mostly prompt: visual rows, the timestamp message, the question. Only the
answer's tokens carry a label, yet a causal LM computes logits (and casts them to fp32 for the
cross-entropy) at every position. Here the decoder's hidden states are gathered at the labelled
positions first and only those go through `lm_head`: the same loss and gradients (up to
rounding), an embedded drill step in 0.87-0.89x the time (stage 0, whose rows hold longer
answers, no clear gain: 0.96-1.04x; `benchmarks/target_logits.py`), and no (B, L, V) fp32 logits in
memory, which for a 32,000-token vocabulary are the largest tensor of a step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from videochat.train.labels import IGNORE_INDEX
from videochat.train.shared_prefix import (
    MIN_SHARED,
    can_share,
    decode_with_shared_prefix,
    shared_prefix_length,
)


def llm_loss(
    llm: nn.Module,
    feed: dict[str, torch.Tensor],
    labels: torch.Tensor,
    segments: torch.Tensor | None = None,
    per_sample: bool = False,
    share_prefix: bool = False,
) -> torch.Tensor:
    """Run a Hugging Face causal LM's decoder on `feed` (its forward's keyword arguments) and
    return `next_token_loss` through its output embedding. `share_prefix`: a padded batch's
    common start (`shared_prefix`) runs once, not once per row."""
    decoder = llm.get_decoder()
    shared = 0
    padded = feed.keys() == {"inputs_embeds", "attention_mask"}  # not packed rows
    if share_prefix and padded and can_share(decoder):
        shared = shared_prefix_length(feed["inputs_embeds"], feed["attention_mask"])
    if shared >= MIN_SHARED:
        hidden = decode_with_shared_prefix(decoder, **feed, shared=shared)  # (B, L, D)
    else:
        hidden = decoder(**feed).last_hidden_state  # (B, L, D)
    return next_token_loss(hidden, llm.get_output_embeddings(), labels, segments, per_sample)


def next_token_loss(
    hidden: torch.Tensor,
    head: nn.Module,
    labels: torch.Tensor,
    segments: torch.Tensor | None = None,
    per_sample: bool = False,
) -> torch.Tensor:
    """Next-token cross-entropy of `head(hidden)`, computed at the labelled positions only.

    hidden: (B, L, D) the decoder's last hidden states; labels: (B, L), IGNORE_INDEX where no
    loss. Averaged over the target tokens (transformers' causal-LM loss) or, with `per_sample`,
    within each sample and then over the samples that have targets; segments: (B, L) the sample
    of each position in a packed batch (`packing.pack`), else each row is one sample.
    """
    targets = labels[:, 1:]  # (B, L-1): token t is predicted at position t-1
    counted = targets != IGNORE_INDEX  # (B, L-1)
    if not counted.any():  # every answer cut off by max_txt_len: no signal, zero gradient
        return head(hidden[:, :1]).sum() * 0.0
    logits = head(hidden[:, :-1][counted])  # (N, V), N labelled positions
    per_token = F.cross_entropy(logits.float(), targets[counted], reduction="none")  # (N,)
    if not per_sample:
        return per_token.mean()
    if segments is None:
        segments = torch.arange(labels.shape[0], device=labels.device)[:, None].expand_as(labels)
    owner = segments[:, 1:][counted]  # (N,) the sample of each target
    samples = int(owner.max()) + 1
    sums = per_token.new_zeros(samples).index_add_(0, owner, per_token)
    counts = per_token.new_zeros(samples).index_add_(0, owner, torch.ones_like(per_token))
    has_targets = counts > 0
    return (sums[has_targets] / counts[has_targets]).mean()
