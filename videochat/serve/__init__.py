"""Serving: the OpenAI-compatible HTTP API (`create_app`) and the Gradio web demo (`build_demo`).

Imported lazily so `import videochat.serve` does not pull in FastAPI, Gradio or torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "create_app": "videochat.serve.api",
    "ServeSettings": "videochat.serve.settings",
    "ChatBackend": "videochat.serve.backend",
    "load_backend": "videochat.serve.backend",
    "serve_in_thread": "videochat.serve.runner",
    "build_demo": "videochat.serve.web",
    "WebSettings": "videochat.serve.web",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'videochat.serve' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
