"""Rank-0 progress: a tqdm bar (loss, lr, samples/s, ETA) and metrics.jsonl (+ TensorBoard)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tqdm import tqdm

from videochat.train.distributed import DistContext, gather_objects
from videochat.train.recipe import Recipe
from videochat.train.state import RunState


class Progress:
    """Collective calls happen on every rank; only rank 0 writes anything."""

    def __init__(self, recipe: Recipe, ctx: DistContext, total_steps: int, start: int) -> None:
        self.ctx, self.every = ctx, max(1, recipe.log_every)
        self.last = time.perf_counter()
        self.bar = self.metrics = self.board = None
        if ctx.is_main:
            out = Path(recipe.output_dir)
            out.mkdir(parents=True, exist_ok=True)
            self.metrics = open(out / "metrics.jsonl", "a")  # noqa: SIM115 - kept open for the run
            self.bar = tqdm(
                total=total_steps, initial=start, desc="train", unit="step", dynamic_ncols=True
            )
            self.board = _tensorboard(out)

    def update(
        self, st: RunState, loss: float, lr: float, samples: float, indices: list[int]
    ) -> None:
        all_indices = gather_objects(indices, self.ctx)
        if not self.ctx.is_main:
            return
        now = time.perf_counter()
        rate = samples / max(now - self.last, 1e-9)
        self.last = now
        record = {
            "step": st.step,
            "epoch": st.epoch,
            "loss": loss,
            "lr": lr,
            "samples_per_s": rate,
            "bad_total": int(st.bad),
            "time": time.time(),
            "indices": all_indices,
        }
        self.metrics.write(json.dumps(record) + "\n")
        self.metrics.flush()
        self.bar.update(1)
        if st.step % self.every == 0:
            self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", samples_s=f"{rate:.1f}")
        if self.board is not None:
            self.board.add_scalar("train/loss", loss, st.step)
            self.board.add_scalar("train/lr", lr, st.step)
            self.board.add_scalar("train/samples_per_s", rate, st.step)

    def close(self) -> None:
        for thing in (self.bar, self.metrics, self.board):
            if thing is not None:
                thing.close()


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard not installed: metrics.jsonl only
        return None
    return SummaryWriter(str(out / "tensorboard"))
