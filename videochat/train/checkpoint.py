"""Atomic trainable-only checkpoints and resume.

Layout of ``OUTPUT/checkpoints``: ``step-00000012/`` holds ``trainable.safetensors`` (only the
parameters that train) and ``state.pt`` (optimizer, scheduler, scaler, step, data position, RNG);
``latest`` is a one-line file naming the newest complete directory. A checkpoint is written into a
temporary directory, every file fsynced, the directory renamed into place, and only then is
``latest`` replaced (temp file + fsync + rename). A process killed at any point therefore leaves
``latest`` naming a complete checkpoint (or no checkpoint), never a partial one.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from videochat.errors import VideoChatError

WEIGHTS = "trainable.safetensors"
STATE = "state.pt"
LATEST = "latest"


class CheckpointError(VideoChatError):
    """A checkpoint to resume from or start from is missing or unreadable."""


@dataclass
class Checkpoint:
    path: Path
    weights: dict[str, torch.Tensor]
    state: dict[str, Any]


def checkpoint_root(output_dir: str | Path) -> Path:
    return Path(output_dir) / "checkpoints"


def save_checkpoint(
    output_dir: str | Path,
    step: int,
    weights: dict[str, torch.Tensor],
    state: dict[str, Any],
    keep: int = 2,
) -> Path:
    """Write one checkpoint atomically, point `latest` at it, prune old ones (keep >= 1)."""
    root = checkpoint_root(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-step-{step:08d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file({k: v.detach().contiguous().cpu() for k, v in weights.items()}, str(tmp / WEIGHTS))
    torch.save(state, tmp / STATE)
    for name in (WEIGHTS, STATE):
        _fsync_file(tmp / name)
    _fsync_dir(tmp)
    if final.exists():  # a rerun of the same step after a resume: replace it
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_dir(root)
    _write_atomic(root / LATEST, final.name + "\n")
    _prune(root, keep, current=final.name)
    return final


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The directory `latest` names, or None when there is none yet."""
    root = checkpoint_root(output_dir)
    pointer = root / LATEST
    if not pointer.is_file():
        return None
    path = root / pointer.read_text().strip()
    if not (path / WEIGHTS).is_file() or not (path / STATE).is_file():
        raise CheckpointError(f"{pointer} names {path.name}, which is incomplete; delete {pointer}")
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    path = Path(path)
    try:
        weights = load_file(str(path / WEIGHTS))
        state = torch.load(path / STATE, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from None
    return Checkpoint(path, weights, state)


def load_trainable(source: str | Path) -> dict[str, torch.Tensor]:
    """Trainable weights from a .safetensors file, a checkpoint dir or a training output dir."""
    path = Path(source)
    if path.is_file():
        return load_file(str(path))
    if (path / WEIGHTS).is_file():
        return load_file(str(path / WEIGHTS))
    latest = latest_checkpoint(path) if path.is_dir() else None
    if latest is None:
        raise CheckpointError(
            f"no weights at {source}: give a .safetensors file, a checkpoint directory or a "
            "training output directory with checkpoints/latest"
        )
    return load_file(str(latest / WEIGHTS))


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _prune(root: Path, keep: int, current: str) -> None:
    done = sorted(p for p in root.glob("step-*") if p.is_dir())
    for old in done[: max(0, len(done) - max(1, keep))]:
        if old.name != current:
            shutil.rmtree(old, ignore_errors=True)
    for stale in root.glob(".tmp-step-*"):  # left by writers that were killed
        shutil.rmtree(stale, ignore_errors=True)
