"""Files uploaded with POST /v1/files: kept in a private directory, bounded in count, by opaque id.

Clients refer to them from chat requests by id (`file-…`); ids are random, never paths, and the
store only ever opens files it wrote itself.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from videochat.serve.errors import APIError


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    bytes: int
    created_at: int
    path: Path

    def to_openai(self) -> dict[str, Any]:
        """OpenAI's file object."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }


class FileStore:
    """Thread-safe store of uploads; the oldest file goes when `max_files` is exceeded."""

    def __init__(self, directory: Path | None, max_files: int, max_bytes: int) -> None:
        self._own_dir = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="videochat-uploads-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_files = max_files
        self.max_bytes = max_bytes
        self._files: OrderedDict[str, StoredFile] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, stream: BinaryIO, filename: str, purpose: str) -> StoredFile:
        """Copy an upload into the store, refusing it past `max_bytes`."""
        file_id = "file-" + secrets.token_hex(12)
        path = self.directory / file_id
        size = 0
        with open(path, "wb") as out:
            while chunk := stream.read(1 << 20):
                size += len(chunk)
                if size > self.max_bytes:
                    out.close()
                    path.unlink(missing_ok=True)
                    msg = f"file is larger than the {self.max_bytes} byte limit"
                    raise APIError(413, msg, code="file_too_large", param="file")
                out.write(chunk)
        if size == 0:
            path.unlink(missing_ok=True)
            raise APIError(400, "the uploaded file is empty", code="empty_file", param="file")
        name = Path(filename or "upload").name[:255]
        stored = StoredFile(file_id, name, purpose[:64], size, int(time.time()), path)
        with self._lock:
            self._files[file_id] = stored
            while len(self._files) > self.max_files:
                _, old = self._files.popitem(last=False)
                old.path.unlink(missing_ok=True)
        return stored

    def get(self, file_id: str) -> StoredFile:
        with self._lock:
            stored = self._files.get(file_id)
        if stored is None:
            raise APIError(404, f"no file with id {file_id!r}", code="file_not_found")
        return stored

    def path(self, file_id: str) -> Path:
        """Where an uploaded file's bytes are (for the media loader)."""
        return self.get(file_id).path

    def list(self) -> list[StoredFile]:
        with self._lock:
            return list(self._files.values())

    def delete(self, file_id: str) -> None:
        with self._lock:
            stored = self._files.pop(file_id, None)
        if stored is None:
            raise APIError(404, f"no file with id {file_id!r}", code="file_not_found")
        stored.path.unlink(missing_ok=True)

    def close(self) -> None:
        """Remove every upload (and the directory when the store made it)."""
        with self._lock:
            files, self._files = list(self._files.values()), OrderedDict()
        for stored in files:
            stored.path.unlink(missing_ok=True)
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)
