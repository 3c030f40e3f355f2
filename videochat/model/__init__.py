"""VideoChat model: configuration, modules, checkpoint conversion and loading.

The config classes import eagerly (no torch); everything else loads on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from videochat.model.config import LLMConfig, QFormerConfig, VideoChatConfig, VisionConfig

_LAZY = {
    "VideoChat": "videochat.model.videochat",
    "LoadReport": "videochat.model.convert",
    "build_model": "videochat.model.load",
    "load_model": "videochat.model.load",
    "save_model": "videochat.model.load",
    "load_tokenizer": "videochat.model.load",
}

__all__ = ["LLMConfig", "QFormerConfig", "VideoChatConfig", "VisionConfig", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'videochat.model' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
