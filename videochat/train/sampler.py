"""Deterministic per-epoch batch plans, sharded across ranks, one media type per batch.

Every rank computes the same global plan from (seed, epoch, world size) and takes its share, so
no communication is needed and a resumed run replays exactly the batches it had not finished.
Like the original's MetaLoader, image and video batches are kept apart (their frame counts
differ) and interleaved in a seeded random order. With `lengths`, each batch also holds entries of
similar text length (as transformers' `group_by_length`), so less of a batch is padding.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

from torch.utils.data import Sampler

Key = tuple[int, int]  # (epoch, entry index)
LENGTH_WINDOW = 64  # global batches sorted together by length: larger pads less, mixes less


def plan_epoch(
    media: Sequence[str],
    batch_size: int,
    world: int,
    rank: int,
    seed: int,
    epoch: int,
    lengths: Sequence[int] | None = None,
) -> list[list[Key]]:
    """This rank's batches for one epoch; every rank gets the same number of batches.

    Each media group is shuffled, padded to a multiple of `world` by wrapping (as
    DistributedSampler does) and dealt round-robin; the last batch of a group may be smaller.
    `lengths` (an estimate per entry): see `group_by_length`.
    """
    rng = random.Random(f"plan-{seed}-{epoch}")  # str seeds are stable across processes
    groups: dict[str, list[int]] = {}
    for index, kind in enumerate(media):
        groups.setdefault(kind, []).append(index)
    per_group: dict[str, list[list[Key]]] = {}
    for kind in sorted(groups):
        order = list(groups[kind])
        rng.shuffle(order)
        order += order[: (-len(order)) % world]  # pad by wrapping
        if lengths is not None:
            order = group_by_length(order, lengths, batch_size * world, rng)
        mine = order[rank::world]
        per_group[kind] = [
            [(epoch, i) for i in mine[start : start + batch_size]]
            for start in range(0, len(mine), batch_size)
        ]
    schedule = [kind for kind in sorted(per_group) for _ in per_group[kind]]
    rng.shuffle(schedule)
    cursors = dict.fromkeys(per_group, 0)
    plan = []
    for kind in schedule:
        plan.append(per_group[kind][cursors[kind]])
        cursors[kind] += 1
    return plan


def group_by_length(
    order: list[int], lengths: Sequence[int], global_batch: int, rng: random.Random
) -> list[int]:
    """Reorder a shuffled list so that each run of `global_batch` entries has similar lengths.

    Windows of `LENGTH_WINDOW` global batches are sorted by length and cut into global batches,
    whose order is then shuffled: the batches stay a random mix of the data, only their members
    are alike. Round-robin dealing then gives every rank a similar share of each.
    """
    window = global_batch * LENGTH_WINDOW
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i], reverse=True)
        batches += [chunk[j : j + global_batch] for j in range(0, len(chunk), global_batch)]
    full = [batch for batch in batches if len(batch) == global_batch]
    rng.shuffle(full)
    short = [batch for batch in batches if len(batch) < global_batch]  # last: keeps ranks aligned
    return [i for batch in full + short for i in batch]


class PlanSampler(Sampler[list[Key]]):
    """A batch sampler over a precomputed plan, starting at `start` (resume position)."""

    def __init__(self, plan: list[list[Key]], start: int = 0) -> None:
        self.plan = plan
        self.start = start

    def __iter__(self) -> Iterator[list[Key]]:
        return iter(self.plan[self.start :])

    def __len__(self) -> int:
        return max(0, len(self.plan) - self.start)
