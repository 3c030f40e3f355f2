"""Serving: the OpenAI-compatible HTTP API (`create_app`) and the Gradio web demo (`build_demo`).

Imported lazily so `import videochat.serve` does not pull in FastAPI, Gradio or torch.
"""

from __future__ import annotations

from videochat._lazy import lazy_exports

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


__getattr__ = lazy_exports("videochat.serve", _EXPORTS)
