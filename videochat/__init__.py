"""videochat: chat with videos and images (VideoChat, arXiv 2305.06355), fast and anywhere.

Public API (imported lazily so `import videochat` stays light):
    load_model, VideoChat, VideoChatConfig, ChatSession, load_video, load_image
"""

from __future__ import annotations

from videochat._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "load_model": "videochat.model.load",
    "VideoChat": "videochat.model.videochat",
    "VideoChatConfig": "videochat.model.config",
    "ChatSession": "videochat.chat.session",
    "load_video": "videochat.media",
    "load_image": "videochat.media",
    "VideoChatError": "videochat.errors",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports("videochat", _EXPORTS)
