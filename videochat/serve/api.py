"""The OpenAI-compatible HTTP API: `create_app(settings, load)` -> a FastAPI app.

Routes: GET /health, GET /v1/models, POST /v1/chat/completions (JSON or server-sent events),
POST/GET/DELETE /v1/files. Every error is OpenAI's JSON error shape (see serve.errors).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from videochat.serve.conversation import (
    Conversation,
    build_conversation,
    generation_kwargs,
    num_frames_for,
)
from videochat.serve.engine import Backend, Engine, Job
from videochat.serve.errors import APIError, error_body, to_api_error, validation_error
from videochat.serve.files import FileStore
from videochat.serve.limits import BodySizeLimit
from videochat.serve.media_source import MediaResolver, Resolver, system_resolver
from videochat.serve.schemas import ChatCompletionRequest
from videochat.serve.settings import ServeSettings

POLL_S = 0.25  # how often a waiting request checks whether its client left


def create_app(
    settings: ServeSettings,
    load: Callable[[], Backend],
    *,
    resolver: Resolver = system_resolver,
    on_load_failed: Callable[[str], None] | None = None,
) -> FastAPI:
    """Build the app; the model loads in the background once the app starts (health: 503 → 200).

    `on_load_failed(message)` runs in the loader thread if loading fails (the CLI stops then).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.engine = Engine(load, settings.max_queue, on_load_failed)
        try:
            yield
        finally:
            await asyncio.to_thread(app.state.engine.close)
            app.state.files.close()

    app = FastAPI(title="videochat", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.files = FileStore(settings.upload_dir, settings.max_files, settings.max_media_bytes)
    app.state.media = MediaResolver(settings, app.state.files, resolver)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    _install_error_handlers(app)
    _install_routes(app, settings)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(validation_error(list(exc.errors())), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(error_body(exc.status_code, str(exc.detail)), exc.status_code)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        err = to_api_error(exc)
        return JSONResponse(err.body(), status_code=err.status)


def _auth(settings: ServeSettings) -> Callable[[Request], None]:
    def check(request: Request) -> None:
        if settings.api_key is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        ok = scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), settings.api_key.encode()
        )
        if not ok:
            raise APIError(
                401,
                "missing or wrong API key (Authorization: Bearer <key>)",
                code="invalid_api_key",
            )

    return check


def _engine(request: Request) -> Engine:
    return request.app.state.engine


def _install_routes(app: FastAPI, settings: ServeSettings) -> None:
    auth = [Depends(_auth(settings))]

    @app.get("/health")
    async def health(request: Request) -> JSONResponse:
        engine = _engine(request)
        if engine.state == "ready":
            return JSONResponse({"status": "ok", "model": settings.model_id})
        msg = "the model is loading" if engine.state == "loading" else "the model failed to load"
        return JSONResponse(error_body(503, msg, code=f"model_{engine.state}"), status_code=503)

    @app.get("/v1/models", dependencies=auth)
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [_model_card(settings)]}

    @app.get("/v1/models/{model_id}", dependencies=auth)
    async def model(model_id: str) -> dict[str, Any]:
        _check_model(model_id, settings)
        return _model_card(settings)

    @app.post("/v1/files", dependencies=auth)
    async def upload(
        request: Request,
        file: Annotated[UploadFile, File()],
        purpose: Annotated[str, Form()] = "user_data",
    ) -> dict[str, Any]:
        store: FileStore = request.app.state.files
        stored = await asyncio.to_thread(store.add, file.file, file.filename or "", purpose)
        return stored.to_openai()

    @app.get("/v1/files", dependencies=auth)
    async def list_files(request: Request) -> dict[str, Any]:
        files = request.app.state.files.list()
        return {"object": "list", "data": [f.to_openai() for f in files], "has_more": False}

    @app.get("/v1/files/{file_id}", dependencies=auth)
    async def get_file(request: Request, file_id: str) -> dict[str, Any]:
        return request.app.state.files.get(file_id).to_openai()

    @app.delete("/v1/files/{file_id}", dependencies=auth)
    async def delete_file(request: Request, file_id: str) -> dict[str, Any]:
        request.app.state.files.delete(file_id)
        return {"id": file_id, "object": "file", "deleted": True}

    @app.post("/v1/chat/completions", dependencies=auth)
    async def chat(request: Request, body: ChatCompletionRequest):
        return await _chat(request, body, settings)


def _model_card(settings: ServeSettings) -> dict[str, Any]:
    return {"id": settings.model_id, "object": "model", "created": 0, "owned_by": "videochat"}


def _check_model(model_id: str, settings: ServeSettings) -> None:
    if model_id != settings.model_id:
        msg = f"model {model_id!r} does not exist; this server has {settings.model_id!r}"
        raise APIError(404, msg, code="model_not_found", param="model")


async def _resolve_media(request: Request, conversation: Conversation) -> None:
    """Fetch/decode every media reference; the bytes held per request are capped in total."""
    media: MediaResolver = request.app.state.media
    budget = media.settings.max_request_media_bytes
    for item in conversation.media:
        try:
            item.resolved = await media.resolve(item.reference)
        except APIError as exc:
            exc.param = exc.param or item.param
            raise
        source = item.resolved.source
        budget -= len(source) if isinstance(source, bytes) else 0
        if budget < 0:
            cap = media.settings.max_request_media_bytes
            msg = f"the media of one request may total at most {cap} bytes"
            raise APIError(413, msg, code="media_too_large", param=item.param)


async def _chat(request: Request, body: ChatCompletionRequest, settings: ServeSettings):
    """Validate, resolve media, queue, then answer as JSON or as a server-sent event stream."""
    _check_model(body.model, settings)
    engine = _engine(request)
    engine.check_ready()  # refuse before downloading anything
    conversation = build_conversation(body.messages, settings)
    job = Job(
        conversation=conversation,
        generation=generation_kwargs(body, settings),
        num_frames=num_frames_for(body, settings),
        loop=asyncio.get_running_loop(),
    )
    await _resolve_media(request, conversation)
    engine.submit(job)
    try:
        kind, value = await _next_event(job, request)  # "ready" once the media is in the session
        if kind == "error":
            raise value
        if kind == "gone":
            return Response(status_code=499)
        meta = _Meta(settings.model_id, job.generation["max_new_tokens"])
        if body.stream:
            usage = bool(body.stream_options and body.stream_options.include_usage)
            stream = _sse(job, request, meta, usage)
            return StreamingResponse(
                stream, media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
            )
        return await _complete(job, request, meta)
    except BaseException:
        job.cancelled.set()
        raise


class _Meta:
    """Fields shared by every chunk of one completion."""

    def __init__(self, model_id: str, max_new_tokens: int) -> None:
        self.id = "chatcmpl-" + uuid.uuid4().hex
        self.created = int(time.time())
        self.model = model_id
        self.max_new_tokens = max_new_tokens

    def finish_reason(self, done: dict[str, Any]) -> str:
        return "length" if done["completion_tokens"] >= self.max_new_tokens else "stop"

    def usage(self, done: dict[str, Any]) -> dict[str, int]:
        prompt, completion = done["prompt_tokens"], done["completion_tokens"]
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }


async def _next_event(job: Job, request: Request) -> tuple[str, Any]:
    """The worker's next event; ("gone", None) when the client disconnected meanwhile."""
    while True:
        try:
            return await asyncio.wait_for(job.events.get(), POLL_S)
        except asyncio.TimeoutError:  # noqa: UP041 (distinct from TimeoutError on Python 3.10)
            if await request.is_disconnected():
                job.cancelled.set()
                return "gone", None


async def _complete(job: Job, request: Request, meta: _Meta) -> JSONResponse:
    while True:
        kind, value = await _next_event(job, request)
        if kind == "error":
            raise value
        if kind == "gone":
            return Response(status_code=499)
        if kind == "done":
            break
    body = {
        "id": meta.id,
        "object": "chat.completion",
        "created": meta.created,
        "model": meta.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": value["text"]},
                "finish_reason": meta.finish_reason(value),
                "logprobs": None,
            }
        ],
        "usage": meta.usage(value),
    }
    return JSONResponse(body)


def _event(meta: _Meta, choices: list[dict[str, Any]], **extra: Any) -> str:
    body = {
        "id": meta.id,
        "object": "chat.completion.chunk",
        "created": meta.created,
        "model": meta.model,
        "choices": choices,
        **extra,
    }
    return f"data: {json.dumps(body)}\n\n"


def _chunk(meta: _Meta, delta: dict[str, Any], finish: str | None = None) -> str:
    return _event(meta, [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}])


async def _sse(job: Job, request: Request, meta: _Meta, usage: bool) -> AsyncIterator[str]:
    """OpenAI's chunk stream; stops generation as soon as the client leaves."""
    try:
        yield _chunk(meta, {"role": "assistant", "content": ""})
        while True:
            kind, value = await _next_event(job, request)
            if kind == "piece":
                yield _chunk(meta, {"content": value})
                if await request.is_disconnected():
                    return
            elif kind == "done":
                yield _chunk(meta, {}, meta.finish_reason(value))
                if usage:
                    yield _event(meta, [], usage=meta.usage(value))
                yield "data: [DONE]\n\n"
                return
            elif kind == "error":
                yield f"data: {json.dumps(value.body())}\n\n"
                return
            else:  # gone
                return
    finally:
        job.cancelled.set()  # no-op when finished; stops the worker when the client left
