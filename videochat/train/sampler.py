"""Deterministic per-epoch batch plans, sharded across ranks, one media type per batch.

Every rank computes the same global plan from (seed, epoch, world size) and takes its share, so
no communication is needed and a resumed run replays exactly the batches it had not finished.
Like the original's MetaLoader, image and video batches are kept apart (their frame counts
differ) and interleaved in a seeded random order.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

from torch.utils.data import Sampler

Key = tuple[int, int]  # (epoch, entry index)


def plan_epoch(
    media: Sequence[str], batch_size: int, world: int, rank: int, seed: int, epoch: int
) -> list[list[Key]]:
    """This rank's batches for one epoch; every rank gets the same number of batches.

    Each media group is shuffled, padded to a multiple of `world` by wrapping (as
    DistributedSampler does) and dealt round-robin; the last batch of a group may be smaller.
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


class PlanSampler(Sampler[list[Key]]):
    """A batch sampler over a precomputed plan, starting at `start` (resume position)."""

    def __init__(self, plan: list[list[Key]], start: int = 0) -> None:
        self.plan = plan
        self.start = start

    def __iter__(self) -> Iterator[list[Key]]:
        return iter(self.plan[self.start :])

    def __len__(self) -> int:
        return max(0, len(self.plan) - self.start)
