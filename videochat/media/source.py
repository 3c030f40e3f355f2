"""Turn a path, bytes or file object into one seekable binary stream, checked for existence/size."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import BinaryIO, Union

from videochat.media.errors import CorruptMediaError, MediaNotFoundError
from videochat.media.limits import MediaLimits

Source = Union[str, os.PathLike, bytes, BinaryIO]  # noqa: UP007 (a runtime alias, py3.10-safe)


@dataclass
class OpenedSource:
    """A seekable stream positioned at 0, the name errors should carry and its size in bytes."""

    name: str
    stream: BinaryIO
    num_bytes: int
    owned: bool  # we opened it, so we close it
    # Opens another stream over the same bytes, so several decoders can read at once (paths and
    # bytes); None for a caller's file object, which has one read position only.
    reopen: Callable[[], BinaryIO] | None = None
    _extra: list[BinaryIO] = field(default_factory=list)

    def rewind(self) -> BinaryIO:
        self.stream.seek(0)
        return self.stream

    def another_stream(self) -> BinaryIO:
        """An independent stream at 0 (closed with this source); needs `reopen`."""
        if self.reopen is None:
            raise ValueError(f"{self.name}: this source cannot be opened twice")
        stream = self.reopen()
        self._extra.append(stream)
        return stream

    def close(self) -> None:
        for stream in self._extra:
            stream.close()
        self._extra.clear()
        if self.owned:
            self.stream.close()

    def __enter__(self) -> OpenedSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def source_name(source: Source) -> str:
    """What error messages call this source: the path as given, or the file object's name."""
    if isinstance(source, (str, os.PathLike)):
        return os.fsdecode(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>"
    name = getattr(source, "name", None)
    return name if isinstance(name, str) else "<stream>"


def open_source(source: Source, limits: MediaLimits) -> OpenedSource:
    """Open ``source`` for reading; refuse missing paths, directories, empty and oversized data."""
    name = source_name(source)
    if isinstance(source, (str, os.PathLike)):
        return _open_path(os.fspath(source), name, limits)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _checked(_in_memory(name, bytes(source)), limits)
    if not hasattr(source, "read"):
        raise TypeError(
            f"expected a path, bytes or binary file object, got {type(source).__name__}"
        )
    return _open_stream(source, name, limits)


def _open_path(path: str, name: str, limits: MediaLimits) -> OpenedSource:
    if os.path.isdir(path):
        raise MediaNotFoundError(name, "is a directory, not a video or image file")
    if not os.path.exists(path):
        raise MediaNotFoundError(name, "file not found (check the path)")
    if not os.path.isfile(path):
        raise MediaNotFoundError(name, "is not a regular file")
    try:
        num_bytes = os.path.getsize(path)
        limits.check_bytes(name, num_bytes)
        stream = open(path, "rb")  # noqa: SIM115 (closed by OpenedSource)
    except PermissionError as exc:
        raise MediaNotFoundError(name, "cannot be read (permission denied)") from exc
    reopen = partial(open, path, "rb")
    return _checked(OpenedSource(name, stream, num_bytes, owned=True, reopen=reopen), limits)


def _open_stream(stream: BinaryIO, name: str, limits: MediaLimits) -> OpenedSource:
    seekable = getattr(stream, "seekable", lambda: False)()
    if seekable:
        start = stream.tell()
        num_bytes = stream.seek(0, io.SEEK_END) - start
        stream.seek(start)
        if start == 0:
            return _checked(OpenedSource(name, stream, num_bytes, owned=False), limits)
    data = stream.read(limits.max_bytes + 1)  # non-seekable: buffer, never more than the cap
    return _checked(_in_memory(name, data), limits)


def _in_memory(name: str, data: bytes) -> OpenedSource:
    # BytesIO over bytes shares the buffer until written, so extra streams cost no copy
    return OpenedSource(
        name, io.BytesIO(data), len(data), owned=True, reopen=partial(io.BytesIO, data)
    )


def _checked(opened: OpenedSource, limits: MediaLimits) -> OpenedSource:
    if opened.num_bytes == 0:
        opened.close()
        raise CorruptMediaError(opened.name, "file is empty (0 bytes)")
    try:
        limits.check_bytes(opened.name, opened.num_bytes)
    except Exception:
        opened.close()
        raise
    return opened


def read_head(opened: OpenedSource, num_bytes: int = 64) -> bytes:
    """The first bytes of the source (for sniffing), leaving the stream at 0."""
    head = opened.rewind().read(num_bytes)
    opened.rewind()
    return head
