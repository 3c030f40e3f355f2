"""Encode a frozen vision side once: each media file's Q-Former rows for a few frame samplings.

When the ViT, GMHRA, ln_vision, Q-Former and queries are all frozen (they then run in eval mode,
as in the original), the Q-Former rows are a fixed function of the sampled frames. Decoding and
encoding every clip again each epoch only costs time: in the embedded build's stage 0 it is 60%
of a step (`benchmarks/visual_cache.py`: 1.12 s a step against 0.45 s cached). ``visual_cache:
K`` in a recipe decodes and encodes K random samplings of every video (one of every image) before
the first step, and each training sample takes one of them at random; only `llama_proj` and the
LLM run per step. With ``visual_cache_dir`` a built cache is kept on disk under a digest of
everything its rows depend on but the files (`cache_key`: data folders, samplings, seed, frames,
precision, vision side), each file's rows under its name; a later run with the same digest (e.g.
the next stage of a build with ``visual_cache_seed`` fixed) loads the files it holds and
encodes only the others (`kept_visual_cache`).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from videochat.errors import MEDIA_LOAD_ERRORS, VideoChatError

# the layout of a kept cache file; 2: every video's timestamp message kept, whatever the
# encoding recipe's prompt (files of layout 1 hold an empty message where that recipe had none)
CACHE_LAYOUT = 2
# the weights the cached rows are a function of (`VideoChat.encode_video_steps`)
VISION_SIDE = (
    "visual_encoder.",
    "ln_vision.",
    "qformer.",
    "visual_positions.",
    "query_tokens",
    "extra_query_tokens",
)


class CachedMediaError(VideoChatError):
    """A media file could not be decoded while the visual cache was built."""


@dataclass
class CachedClip:
    rows: torch.Tensor  # (Q, C) Q-Former output
    msg: str  # the timestamp message of the frames behind `rows`
    times: torch.Tensor  # (T,) seconds of those frames (`config.frame_stamps` spells them)


class VisualCache:
    """Cached Q-Former rows per media path, several samplings each; failed paths keep their error."""

    def __init__(self, clips: dict[str, list[CachedClip]], failed: dict[str, str]) -> None:
        self.clips, self.failed = clips, failed

    def pick(self, path: str, rng: random.Random) -> CachedClip:
        """One of `path`'s cached samplings (drawn with `rng`)."""
        if path in self.failed:
            raise CachedMediaError(self.failed[path])
        return rng.choice(self.clips[path])

    @property
    def row_shape(self) -> tuple[int, ...]:
        """(Q, C) of every cached entry (for a stand-in input when a whole batch is bad)."""
        first = next(iter(self.clips.values()))[0]
        return tuple(first.rows.shape)


class _Samplings(Dataset):
    """(media path, sampling number) → (path, pixels, times, msg), or (path, None, None,
    the decoding error), via `load`."""

    def __init__(
        self, jobs: list[tuple[str, str, int]], load, seed: int, names: dict[str, str]
    ) -> None:
        self.jobs, self.load, self.seed, self.names = jobs, load, seed, names

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, i: int):
        media, path, k = self.jobs[i]
        rng = random.Random(f"cache-{self.seed}-{self.names.get(path, path)}-{k}")
        try:
            pixels, times, msg = self.load(media, path, rng)
        except MEDIA_LOAD_ERRORS as exc:
            return path, None, None, str(exc) or type(exc).__name__
        return path, pixels, times, msg


@torch.no_grad()
def build_visual_cache(
    model,
    media: dict[str, str],
    load,
    samplings: int,
    *,
    seed: int,
    batch: int = 16,
    workers: int = 0,
    autocast: Callable[[], AbstractContextManager] = nullcontext,
    names: dict[str, str] | None = None,
) -> VisualCache:
    """Encode every file of `media` ({path: "video" | "image"}) `samplings` times (images once).

    `load(media, path, rng) -> (pixels (T, 3, S, S), times (T,), msg)` decodes one sampling
    (`TrainDataset.load_media`); the same `seed` gives the same samplings, so a resumed run
    rebuilds the same cache. `names` ({path: name}): what each file's samplings are drawn by
    instead of its path, so the same data in another folder gives the same cache. A file that
    fails to decode is kept as failed (its samples become bad samples, counted by the loop)."""
    clips, failed = _encode(
        model,
        media,
        load,
        samplings,
        seed=seed,
        batch=batch,
        workers=workers,
        autocast=autocast,
        names=names,
    )
    return _checked(clips, failed, media)


@torch.no_grad()
def _encode(
    model, media, load, samplings, *, seed, batch, workers, autocast, names
) -> tuple[dict[str, list[CachedClip]], dict[str, str]]:
    """`build_visual_cache`'s work: ({path: clips}, {path: error}) for the files of `media`."""
    from tqdm import tqdm

    jobs = [
        (kind, path, k)
        for path, kind in sorted(media.items())
        for k in range(samplings if kind == "video" else 1)
    ]
    loader = DataLoader(
        _Samplings(jobs, load, seed, names or {}),
        batch_size=batch,
        num_workers=workers,
        collate_fn=list,
    )
    clips: dict[str, list[CachedClip]] = {}
    failed: dict[str, str] = {}
    was_training = model.training
    model.eval()
    try:
        for items in tqdm(loader, desc="visual cache", unit="batch", mininterval=5):
            for path, _, _, reason in (item for item in items if item[1] is None):
                failed[path] = reason
            good = [item for item in items if item[1] is not None]
            # group by frame count: images (T=1) and videos cannot share a batch
            for frames in sorted({pixels.shape[0] for _, pixels, _, _ in good}):
                group = [item for item in good if item[1].shape[0] == frames]
                pixels = torch.stack([p for _, p, _, _ in group])  # (B, T, 3, S, S)
                times = torch.stack([t for _, _, t, _ in group])  # (B, T)
                with autocast():
                    hidden = model.encode_video_steps(pixels, times)["qformer_last_hidden_state"]
                for (path, _, seconds, msg), row in zip(group, hidden.cpu(), strict=True):
                    clips.setdefault(path, []).append(CachedClip(row.clone(), msg, seconds))
    finally:
        model.train(was_training)
    for path in failed:
        clips.pop(path, None)
    return clips, failed


def _checked(
    clips: dict[str, list[CachedClip]], failed: dict[str, str], media: dict[str, str]
) -> VisualCache:
    """The cache, unless not one file of `media` could be decoded (nothing to train on)."""
    if not any(path in clips for path in media):
        raise CachedMediaError(
            f"none of the {len(media)} media files could be decoded for the visual cache "
            f"(first error: {next(iter(failed.values()), 'none')})"
        )
    return VisualCache(clips, failed)


def cache_key(model, samplings: int, seed: int, setting: str) -> str:
    """A digest of everything a cache's rows depend on but the files: the samplings, the seed
    they are drawn with, the loader's `setting` (data folders, frames, sampling, size,
    precision) and the vision side's config and weights. The file keeps each file's rows by
    name, so runs on different files of one dataset add to one cache."""
    digest = hashlib.sha256()
    head = [CACHE_LAYOUT, samplings, seed, setting]
    head += [repr(model.config.vision), repr(model.config.qformer)]
    digest.update(json.dumps(head).encode())
    for name, tensor in sorted(model.state_dict().items()):
        if name.startswith(VISION_SIDE):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().float().contiguous().numpy().tobytes())
    return digest.hexdigest()[:20]


def save_visual_cache(cache: VisualCache, path, names: dict[str, str]) -> None:
    """Write `cache` keyed by each file's name (`names`: {path: name}), atomically."""
    record = {
        "clips": {
            names.get(p, p): [(c.rows, c.msg, c.times) for c in clips]
            for p, clips in cache.clips.items()
        },
        "failed": {names.get(p, p): reason for p, reason in cache.failed.items()},
    }
    tmp = f"{path}.tmp-{os.getpid()}"
    torch.save(record, tmp)
    os.replace(tmp, path)


def load_visual_cache(path, names: dict[str, str]) -> VisualCache:
    """A cache `save_visual_cache` wrote, keyed again by this run's paths (`names`: {path: name})."""
    record = torch.load(path, weights_only=True)
    path_of = {name: p for p, name in names.items()}
    clips = {
        path_of.get(name, name): [CachedClip(rows, msg, times) for rows, msg, times in saved]
        for name, saved in record["clips"].items()
    }
    failed = {path_of.get(name, name): reason for name, reason in record["failed"].items()}
    return VisualCache(clips, failed)


def kept_visual_cache(
    kept: Path | None,
    model,
    media: dict[str, str],
    load,
    samplings: int,
    *,
    seed: int,
    names: dict[str, str],
    batch: int,
    workers: int,
    autocast: Callable[[], AbstractContextManager],
    save: bool = True,
) -> tuple[VisualCache, int]:
    """`build_visual_cache` for the files the cache file `kept` (None: none) does not hold yet,
    merged with those it does, written back (`save`) when anything was added; also returns how
    many files were encoded. Each file's samplings are drawn by its own name, so encoding the
    missing ones alone gives the rows a whole build would."""
    found = kept is not None and kept.is_file()
    cache = load_visual_cache(kept, names) if found else VisualCache({}, {})
    missing = {p: m for p, m in media.items() if p not in cache.clips and p not in cache.failed}
    if not missing:
        return _checked(cache.clips, cache.failed, media), 0
    clips, failed = _encode(
        model,
        missing,
        load,
        samplings,
        seed=seed,
        batch=batch,
        workers=workers,
        autocast=autocast,
        names=names,
    )
    # a file that fails here fails alone: the kept ones still count
    cache = _checked(cache.clips | clips, cache.failed | failed, media)
    if kept is not None and save:
        kept.parent.mkdir(parents=True, exist_ok=True)
        save_visual_cache(cache, kept, names)
    return cache, len(missing)
