"""Typed media errors: one plain-words line naming the file and what is wrong with it."""

from __future__ import annotations

from videochat.errors import VideoChatError


class MediaError(VideoChatError):
    """A media file cannot be used. ``str(e) == f"{source_name}: {reason}"`` (the CLI's error line)."""

    def __init__(self, source_name: str, reason: str) -> None:
        self.source_name = source_name
        self.reason = reason
        super().__init__(f"{source_name}: {reason}")

    def __reduce__(self):  # keep pickling (multiprocessing, pytest-xdist) working
        return (type(self), (self.source_name, self.reason))


class MediaNotFoundError(MediaError):
    """The path does not exist or is not a regular file."""


class UnsupportedMediaError(MediaError):
    """The content is not a video/image we can read (wrong format, no video stream, no codec)."""


class CorruptMediaError(MediaError):
    """The format is recognised but the data is empty, truncated or cannot be decoded."""


class MediaTooLargeError(MediaError):
    """The media is over a cap of :class:`~videochat.media.limits.MediaLimits`."""


class DecodeTimeoutError(MediaError):
    """Decoding ran past ``MediaLimits.decode_timeout_s``."""


class MediaRequestError(VideoChatError, ValueError):
    """A request the loaders cannot meet: unknown sampling policy, bad frame count or size, empty window."""
