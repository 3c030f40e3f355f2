"""lmms-eval model adapter: ``VideoChatLMM`` (registered as ``videochat``), an optional extra.

Importable only when lmms-eval is installed (``pip install lmms-eval``); the behaviour lives in
``videochat.eval.lmms_core``. Use it from lmms-eval as
``--model videochat --model_args pretrained=MODEL_DIR,num_frames=16`` once the package declares the
entry point ``lmms_eval.models: videochat = videochat.eval.lmms:manifest`` (or pass the class path).
"""

from __future__ import annotations

from typing import Any

from videochat.errors import VideoChatError
from videochat.eval.lmms_core import VideoChatLMMCore


class LmmsEvalMissingError(VideoChatError, ImportError):
    """lmms-eval is not installed, so its adapter cannot be imported."""


try:
    from lmms_eval.api.model import lmms as _LmmsBase
except ImportError as exc:  # the extra is optional
    raise LmmsEvalMissingError(
        "videochat.eval.lmms needs lmms-eval; install it (pip install lmms-eval) "
        "or use `videochat eval --protocol lmms-eval`, which needs no lmms-eval"
    ) from exc


class VideoChatLMM(VideoChatLMMCore, _LmmsBase):
    """VideoChat as an lmms-eval ``lmms`` model (simple: generate_until and loglikelihood)."""


try:  # older lmms-eval versions register models with a decorator
    from lmms_eval.api.registry import register_model

    register_model("videochat")(VideoChatLMM)
except (ImportError, AssertionError):
    pass


def manifest() -> Any:
    """Entry-point payload for lmms-eval's model registry (group ``lmms_eval.models``)."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return ModelManifest(model_id="videochat", simple_class_path=f"{__name__}.VideoChatLMM")
