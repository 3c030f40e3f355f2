"""VideoChat model: configuration, modules, checkpoint conversion and loading.

The config classes import eagerly (no torch); everything else loads on first use.
"""

from __future__ import annotations

from videochat._lazy import lazy_exports
from videochat.model.config import LLMConfig, QFormerConfig, VideoChatConfig, VisionConfig

_LAZY = {
    "VideoChat": "videochat.model.videochat",
    "LoadReport": "videochat.model.convert",
    "build_model": "videochat.model.load",
    "load_model": "videochat.model.load",
    "save_model": "videochat.model.load",
    "read_config": "videochat.model.load",
    "load_tokenizer": "videochat.model.load",
}

__all__ = ["LLMConfig", "QFormerConfig", "VideoChatConfig", "VisionConfig", *_LAZY]


__getattr__ = lazy_exports("videochat.model", _LAZY)
