"""Turn a path, bytes or file object into one seekable binary stream, checked for existence/size."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
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

    def rewind(self) -> BinaryIO:
        self.stream.seek(0)
        return self.stream

    def close(self) -> None:
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
        data = bytes(source)
        return _checked(OpenedSource(name, io.BytesIO(data), len(data), owned=True), limits)
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
    return _checked(OpenedSource(name, stream, num_bytes, owned=True), limits)


def _open_stream(stream: BinaryIO, name: str, limits: MediaLimits) -> OpenedSource:
    seekable = getattr(stream, "seekable", lambda: False)()
    if seekable:
        start = stream.tell()
        num_bytes = stream.seek(0, io.SEEK_END) - start
        stream.seek(start)
        if start == 0:
            return _checked(OpenedSource(name, stream, num_bytes, owned=False), limits)
    data = stream.read(limits.max_bytes + 1)  # non-seekable: buffer, never more than the cap
    return _checked(OpenedSource(name, io.BytesIO(data), len(data), owned=True), limits)


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
