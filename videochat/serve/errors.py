"""Errors of the HTTP API, rendered in OpenAI's JSON error shape.

Every error a client sees is ``{"error": {"message", "type", "param", "code"}}`` with a status that
says whose fault it is. Messages are ours: decoder internals and tracebacks never reach a client.
"""

from __future__ import annotations

import logging
from typing import Any

from videochat.errors import ChatError, VideoChatError

log = logging.getLogger("videochat.serve")

# status -> OpenAI error type
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "service_unavailable",
}


class APIError(VideoChatError):
    """An error answered to an HTTP client with a status and a machine-readable code."""

    def __init__(
        self, status: int, message: str, *, code: str | None = None, param: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param

    def body(self) -> dict[str, Any]:
        """The JSON body OpenAI clients parse."""
        return error_body(self.status, self.message, code=self.code, param=self.param)


def error_body(
    status: int, message: str, *, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """OpenAI's error object for `status`."""
    kind = _TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _media_status(exc: VideoChatError) -> tuple[int, str] | None:
    """Status and code for the media pipeline's errors (imported lazily: torch-free import)."""
    try:
        from videochat import media
    except ImportError:  # media pipeline not installed in this build
        return None
    table = [
        ("MediaTooLargeError", 413, "media_too_large"),
        ("UnsupportedMediaError", 415, "unsupported_media"),
        ("MediaNotFoundError", 404, "media_not_found"),
        ("DecodeTimeoutError", 422, "media_decode_timeout"),
        ("CorruptMediaError", 422, "media_unreadable"),
        ("MediaError", 422, "media_unreadable"),
    ]
    for name, status, code in table:
        cls = getattr(media, name, None)
        if isinstance(cls, type) and isinstance(exc, cls):
            return status, code
    return None


def to_api_error(exc: BaseException, *, param: str | None = None) -> APIError:
    """Map any exception to the APIError a client should see (bugs become a generic 500)."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, VideoChatError):
        mapped = _media_status(exc)
        if mapped is not None:
            return APIError(mapped[0], str(exc), code=mapped[1], param=param)
        if isinstance(exc, ChatError):
            return APIError(400, str(exc), code="invalid_conversation", param=param)
        return APIError(400, str(exc), code="invalid_request", param=param)
    log.error("internal error while serving a request", exc_info=exc)
    return APIError(500, "internal server error; the server log has the details", code="internal")


def validation_error(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """One OpenAI error body for pydantic's list of request errors.

    A content part matches `str | list[part]`, so pydantic reports each union branch; the deepest
    location is the one that names what is wrong (an unknown part type, a missing url), and its
    branch labels ("str", "list[...]") and repeated tag names are dropped from `param`.
    """
    if not errors:
        return error_body(400, "invalid request", code="invalid_value")
    first = max(errors, key=lambda e: len(e.get("loc", ())))
    if first.get("type") == "json_invalid":
        return error_body(400, "the request body is not valid JSON", code="invalid_json")
    loc: list[str] = []
    for part in (str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")):
        if part != "str" and "[" not in part and (not loc or loc[-1] != part):
            loc.append(part)
    param = ".".join(loc) or None
    message = first.get("msg", "invalid request").removeprefix("Value error, ")
    if first.get("type") == "union_tag_invalid":
        tag = first.get("ctx", {}).get("tag")
        expected = first.get("ctx", {}).get("expected_tags", "")
        message = f"unsupported content part type {tag!r}; use one of {expected}"
        return error_body(400, message, param=param, code="unsupported_content_type")
    text = f"{message} ({param})" if param else message
    return error_body(400, text, param=param, code="invalid_value")
