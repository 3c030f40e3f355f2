"""Request models of the OpenAI-compatible API (pydantic), with our extensions.

Extensions beyond OpenAI's chat request: `video_url` content parts, `num_frames`, `num_beams`,
`top_k`, `repetition_penalty`. Unknown OpenAI fields are accepted and ignored, except those we
cannot honour (n > 1, logprobs), which are refused.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class URLRef(_Model):
    url: str = Field(min_length=1)


class FileRef(_Model):
    file_id: str = Field(min_length=1)


class TextPart(_Model):
    type: Literal["text"]
    text: str


class ImagePart(_Model):
    type: Literal["image_url"]
    image_url: URLRef


class VideoPart(_Model):
    type: Literal["video_url"]
    video_url: URLRef


class FilePart(_Model):
    """An uploaded file; its kind (video or image) is sniffed from the content."""

    type: Literal["file"]
    file: FileRef


ContentPart = Annotated[TextPart | ImagePart | VideoPart | FilePart, Field(discriminator="type")]


class Message(_Model):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None


class StreamOptions(_Model):
    include_usage: bool = False


class ChatCompletionRequest(_Model):
    model: str
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = Field(default=None, ge=1, le=1)
    logprobs: bool | None = None
    tools: list[Any] | None = None  # accepted only to refuse clearly: no tool calling here
    response_format: dict[str, Any] | None = None
    # extensions
    num_frames: int | None = Field(default=None, ge=1, le=64)
    num_beams: int | None = Field(default=None, ge=1, le=10)
    top_k: int | None = Field(default=None, ge=0)
    repetition_penalty: float | None = Field(default=None, gt=0.0)

    @model_validator(mode="after")
    def _refuse_unsupported(self) -> ChatCompletionRequest:
        if self.logprobs:
            raise ValueError("logprobs are not supported")
        if self.tools:
            raise ValueError("tools (function calling) are not supported by this model")
        if self.response_format and self.response_format.get("type", "text") != "text":
            raise ValueError("only response_format type 'text' is supported")
        stops = [self.stop] if isinstance(self.stop, str) else (self.stop or [])
        if len(stops) > 4 or any(not s for s in stops):
            raise ValueError("stop takes at most 4 non-empty strings")
        return self

    def stop_list(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
