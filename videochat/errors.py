"""The one base class for errors a user should see as a single clear line (no traceback)."""

from __future__ import annotations


class VideoChatError(Exception):
    """An error caused by the user's input or environment, with a message that says what to do.

    The CLI prints ``error: <message>`` and exits non-zero; the HTTP API maps it to a 4xx answer.
    """


class ModelLoadError(VideoChatError):
    """A model, checkpoint or config could not be loaded (missing file, bad format, shape mismatch)."""


class ChatError(VideoChatError):
    """A chat request cannot be served as asked (empty question, context too long, ...)."""


class NotBuiltError(VideoChatError):
    """A feature the product will have but that this version does not provide yet."""


# what loading one training media file can raise when the file is missing, damaged or not media:
# the training data counts such a file as a bad sample instead of stopping the run
MEDIA_LOAD_ERRORS = (VideoChatError, OSError, ValueError, RuntimeError)
