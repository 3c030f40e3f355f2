"""VideoChat model: configuration, modules, checkpoint conversion and loading."""

from videochat.model.config import LLMConfig, QFormerConfig, VideoChatConfig, VisionConfig

__all__ = ["LLMConfig", "QFormerConfig", "VideoChatConfig", "VisionConfig"]
