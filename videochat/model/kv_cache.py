"""The LLM's key/value cache across transformers versions, and a prefix computed once for many
continuations (the scorer's options, a packed training batch's rows)."""

from __future__ import annotations

import inspect
from typing import Any

import torch


def cache_keyword(llm: Any) -> str:
    """Name of the KV-cache argument (`cache` in transformers ≥5.2x, `past_key_values` before)."""
    params = inspect.signature(type(llm).forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def output_cache(out: Any) -> Any:
    """The KV cache `generate` or a forward pass returns (`cache` in transformers 5.2x,
    `past_key_values` before)."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else getattr(out, "past_key_values", None)


def prefix_cache(llm: Any, prefix: torch.Tensor, copies: int) -> tuple[torch.Tensor, Any]:
    """Run `prefix` (1, P, D) input embeddings through `llm` once; return its last position's
    logits (1, 1, V) and its cache repeated for `copies` continuations (gradients, where
    enabled, flow back through the repeat into the one computation)."""
    out = llm(inputs_embeds=prefix, use_cache=True, logits_to_keep=1)
    cache = output_cache(out)
    cache.batch_repeat_interleave(copies)  # (1, …) → (copies, …)
    return out.logits[:, -1:], cache
