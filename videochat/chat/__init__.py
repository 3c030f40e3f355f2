"""Chat with a loaded VideoChat model: conversation format, generation, sessions and caches."""

from videochat.chat.cache import VisualCache, default_cache
from videochat.chat.generate import GenerationConfig
from videochat.chat.scoring import ReplyScore
from videochat.chat.session import ChatSession

__all__ = ["ChatSession", "GenerationConfig", "ReplyScore", "VisualCache", "default_cache"]
