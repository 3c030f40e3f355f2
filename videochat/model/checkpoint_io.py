"""Reading weight files safely and lazily; writing sharded safetensors model directories.

`.pth`/`.bin` files are pickles: they are opened only with `torch.load(weights_only=True)` (memory
mapped when the file format allows) and a file that needs anything beyond tensors is refused, never
re-tried unsafely. safetensors files are read one tensor at a time (`LazySafetensors`), so a
converter can cast and place each tensor before the next is read: one copy of the weights in memory.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from videochat.errors import ModelLoadError

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
PICKLE_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")


class LazySafetensors(Mapping[str, torch.Tensor]):
    """Read-only mapping over one or more safetensors files; each access reads one tensor.

    Only one file is mapped at a time (keys iterate file by file), so the pages of files already
    read leave the process instead of doubling its resident size during a load.
    """

    def __init__(self, files: list[Path]) -> None:
        self._where: dict[str, Path] = {}
        for file in files:
            handle = _open_safetensors(file)  # validates every file up front
            for key in handle.keys():  # noqa: SIM118 (safe_open is not iterable)
                self._where[key] = file
            del handle
        self._open: tuple[Path, object] | None = None

    def __getitem__(self, key: str) -> torch.Tensor:
        file = self._where[key]
        if self._open is None or self._open[0] != file:
            self._open = None  # unmap the previous file first
            self._open = (file, _open_safetensors(file))
        try:
            return self._open[1].get_tensor(key)
        except SafetensorError as exc:
            raise _corrupt(file, exc) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)

    def close(self) -> None:
        self._open = None


def _open_safetensors(file: Path):
    if not file.is_file():
        raise ModelLoadError(f"weights file not found: {file}")
    try:
        # safe_open checks that the header's offsets cover the file: a cut-off file fails here
        handle = safe_open(str(file), framework="pt", device="cpu")
    except (SafetensorError, OSError) as exc:
        raise _corrupt(file, exc) from None
    return handle


def _corrupt(file: Path, exc: Exception) -> ModelLoadError:
    return ModelLoadError(
        f"{file}: not a readable safetensors file ({exc}); it may be truncated or corrupt. "
        "Download or convert it again."
    )


def read_pickle_checkpoint(path: Path) -> Mapping[str, torch.Tensor]:
    """Load a `.pth` with `weights_only=True` (mmap when possible); unwrap `{'model': ...}`."""
    if not path.is_file():
        raise ModelLoadError(f"checkpoint not found: {path}")
    mmap = zipfile.is_zipfile(path)  # only the zip format (torch >= 1.6) can be memory-mapped
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower() or "weights_only" in str(exc):
            raise ModelLoadError(
                f"refused to load {path}: it holds Python objects beyond tensors, and unpickling "
                "them could run arbitrary code. If you trust the file, re-save its state dict "
                "as safetensors in a trusted environment and pass that instead."
            ) from None
        raise _truncated(path, exc) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        raise _truncated(path, exc) from None
    except (KeyError, IndexError, TypeError, AttributeError, struct.error) as exc:
        raise _truncated(path, exc) from None  # what a legacy unpickler hits on random bytes
    return _unwrap(obj, path)


def _truncated(path: Path, exc: Exception) -> ModelLoadError:
    return ModelLoadError(
        f"{path}: cannot read this PyTorch checkpoint ({type(exc).__name__}: {exc}); it may be "
        "truncated or corrupt. Download it again."
    )


def _unwrap(obj: object, path: Path) -> Mapping[str, torch.Tensor]:
    """Accept a plain state dict or the original's `{'model': state_dict, ...}` wrapper."""
    if isinstance(obj, Mapping) and isinstance(obj.get("model"), Mapping):
        obj = obj["model"]
    if not isinstance(obj, Mapping):
        raise ModelLoadError(f"{path}: expected a state dict, found {type(obj).__name__}")
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ModelLoadError(
            f"{path}: expected a state dict of tensors; {len(bad)} entries are not tensors "
            f"(first: {bad[0]!r})"
        )
    return obj


def read_state_dict(path: str | Path) -> Mapping[str, torch.Tensor]:
    """One weight file (`.safetensors` or a pickle checkpoint) as a key → tensor mapping."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return LazySafetensors([path])
    if path.suffix in PICKLE_SUFFIXES:
        return read_pickle_checkpoint(path)
    raise ModelLoadError(
        f"{path}: unknown weights format {path.suffix!r}; expected .safetensors or "
        f"{'/'.join(PICKLE_SUFFIXES)}"
    )


def read_weights_dir(directory: str | Path) -> Mapping[str, torch.Tensor]:
    """All weights of a model directory: sharded (index json), single file, or pickle shards."""
    directory = Path(directory)
    index = directory / INDEX_FILE
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (ValueError, KeyError) as exc:
            raise ModelLoadError(f"{index}: not a valid safetensors index ({exc})") from None
        return LazySafetensors([directory / f for f in sorted(set(weight_map.values()))])
    if (directory / SINGLE_FILE).is_file():
        return LazySafetensors([directory / SINGLE_FILE])
    pickles = sorted(directory.glob("pytorch_model*.bin"))
    if pickles:
        merged: dict[str, torch.Tensor] = {}
        for file in pickles:
            merged.update(read_pickle_checkpoint(file))
        return merged
    raise ModelLoadError(
        f"{directory}: no weights found (expected {INDEX_FILE}, {SINGLE_FILE} or "
        "pytorch_model*.bin)"
    )


def save_sharded(
    state_dict: dict[str, torch.Tensor], directory: str | Path, max_shard_size: int | str = "2GB"
) -> None:
    """Write `model-0000i-of-0000n.safetensors` shards + index (the Hugging Face layout)."""
    from huggingface_hub import save_torch_state_dict

    save_torch_state_dict(state_dict, str(directory), max_shard_size=max_shard_size)
    # huggingface_hub writes through private temp files (0600); give the shards the mode any
    # other file made here gets, so a model directory can be shared like its config.json
    mask = os.umask(0)
    os.umask(mask)
    for shard in Path(directory).glob("model*.safetensors*"):
        shard.chmod(0o666 & ~mask)
