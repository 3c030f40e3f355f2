"""Visual-embedding cache shared by sessions: decode + encode a media item once, reuse it everywhere.

The original re-encodes a video on every upload. Here an entry is keyed by the file's content hash,
the sampling parameters and the model object, and the cache evicts least-recently-used entries once
their tensors exceed a byte budget.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import torch

DEFAULT_MAX_BYTES = 1 << 30  # 1 GiB: ~200 clips of 8 frames at 224 px plus their embeddings
_CHUNK = 1 << 20

_model_ids: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
_model_counter = itertools.count(1)
_model_lock = threading.Lock()


def model_token(model: Any) -> int:
    """A number unique to this model object for the life of the process (ids are reused, these aren't).

    Change a model's weights in place (training) and its cached embeddings go stale: call
    `VisualCache.clear()` then.
    """
    with _model_lock:
        if model not in _model_ids:
            _model_ids[model] = next(_model_counter)
        return _model_ids[model]


def content_hash(source: Any) -> str | None:
    """SHA-256 of a path's, bytes' or seekable stream's content; None when it cannot be read safely."""
    digest = hashlib.sha256()
    if isinstance(source, (bytes, bytearray, memoryview)):
        digest.update(source)
        return digest.hexdigest()
    if isinstance(source, (str, os.PathLike)):
        return _file_hash(source)
    seekable = getattr(source, "seekable", None)
    if callable(seekable) and seekable():
        start = source.tell()
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
        source.seek(start)
        return digest.hexdigest()
    return None


_file_hashes: OrderedDict[tuple, str] = OrderedDict()  # (path, size, mtime) -> digest
_FILE_HASH_MEMO = 4096


def _file_hash(path: str | os.PathLike) -> str | None:
    """Hash a file once per (path, size, mtime): re-adding a large video does not re-read it."""
    try:
        info = os.stat(path)
        memo_key = (os.path.realpath(path), info.st_size, info.st_mtime_ns)
        known = _file_hashes.get(memo_key)
        if known is not None:
            return known
        digest = hashlib.sha256()
        with open(path, "rb") as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
    except OSError:
        return None  # let the media loader report the problem with its own clear message
    value = digest.hexdigest()
    with _model_lock:
        _file_hashes[memo_key] = value
        while len(_file_hashes) > _FILE_HASH_MEMO:
            _file_hashes.popitem(last=False)
    return value


@dataclass
class CacheEntry:
    clip: Any  # the VideoClip / ImageClip (pixels kept so callers can show the frames)
    embeds: torch.Tensor  # (1, Q, D) visual embeddings in the LLM's input space
    num_bytes: int


def _tensor_bytes(tensor: torch.Tensor | None) -> int:
    return 0 if tensor is None else tensor.numel() * tensor.element_size()


class VisualCache:
    """LRU cache of (clip, visual embeddings), bounded by the bytes of the tensors it holds."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, CacheEntry] = OrderedDict()
        self._lock = threading.Lock()
        self.num_bytes = 0
        self.hits = 0
        self.misses = 0

    @staticmethod
    def make_key(source: Any, model: Any, params: tuple) -> Hashable | None:
        """(content hash, sampling params, model token), or None for an unhashable source."""
        digest = content_hash(source)
        return None if digest is None else (digest, params, model_token(model))

    def get(self, key: Hashable | None) -> CacheEntry | None:
        with self._lock:
            entry = self._entries.get(key) if key is not None else None
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: Hashable | None, clip: Any, embeds: torch.Tensor) -> None:
        """Store an entry unless it alone exceeds the budget; evict the oldest to make room."""
        size = _tensor_bytes(embeds) + _tensor_bytes(getattr(clip, "pixels", None))
        if key is None or size > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            self.num_bytes -= old.num_bytes if old else 0
            self._entries[key] = CacheEntry(clip, embeds, size)
            self.num_bytes += size
            while self.num_bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self.num_bytes -= evicted.num_bytes

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.num_bytes = 0

    def __len__(self) -> int:
        return len(self._entries)


_default_cache: VisualCache | None = None


def default_cache() -> VisualCache:
    """The process-wide cache sessions share unless given their own."""
    global _default_cache
    with _model_lock:
        if _default_cache is None:
            _default_cache = VisualCache()
        return _default_cache
