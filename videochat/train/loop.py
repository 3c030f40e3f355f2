"""The training loop: one code path for one process, torchrun DDP and FSDP.

Batches follow a deterministic per-epoch plan (`sampler.plan_epoch`), so a checkpoint only needs
(epoch, batches done) to resume exactly where it stopped. Rank 0 shows a tqdm bar and writes
``metrics.jsonl`` (and TensorBoard events when tensorboard is installed).
"""

from __future__ import annotations

import json
import logging
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from videochat.errors import VideoChatError
from videochat.train import checkpoint as ckpt
from videochat.train import distributed as D
from videochat.train import setup as S
from videochat.train.data import Batch, TrainDataset, collate, read_all, text_length
from videochat.train.labels import LabelledText, assemble
from videochat.train.loss import llm_loss
from videochat.train.packing import pack
from videochat.train.recipe import Recipe
from videochat.train.sampler import PlanSampler, plan_epoch
from videochat.train.state import RunState, capture_rng, restore_rng
from videochat.train.visual_cache import VisualCache, cache_key, kept_visual_cache

log = logging.getLogger("videochat.train")


class TooManyBadSamplesError(VideoChatError):
    """More media files failed to load than the recipe's max_bad_fraction allows."""


class TrainStep(nn.Module):
    """model + batch → loss, as one module so DDP/FSDP hooks see the whole forward."""

    def __init__(self, model: nn.Module, recipe: Recipe) -> None:
        super().__init__()
        self.model = model
        self.stage = recipe.stage
        self.max_txt_len = recipe.max_txt_len
        self.cached = recipe.visual_cache > 0
        self.per_sample = recipe.loss_average == "sample"
        self.packed = recipe.pack_batches
        self.share_prefix = recipe.shared_prefix

    def forward(
        self, pixels: torch.Tensor, texts: list[LabelledText], times: torch.Tensor | None = None
    ) -> torch.Tensor:
        """pixels: (B, T, 3, S, S) with times (B, T) seconds, or (B, Q, C) cached Q-Former rows
        with `visual_cache`."""
        if self.cached:
            visual = self.model.project_rows(pixels, times)  # (B, Q, D), + 3 a frame row stamped
        else:
            visual = self.model.encode_video(pixels, times)  # (B, Q, D)
        tok = self.model.tokenizer
        inputs = assemble(
            visual,
            texts,
            self.model.llm.get_input_embeddings(),
            bos_id=tok.bos_token_id,
            pad_id=tok.pad_token_id,
            bos_mode="embed" if self.stage == 1 else "constant",
            max_len=None if self.stage == 1 else self.max_txt_len + visual.shape[1],
        )
        labels, segments = inputs.labels, None
        feed = {"inputs_embeds": inputs.inputs_embeds, "attention_mask": inputs.attention_mask}
        if self.packed:
            packed = pack(inputs)
            labels, segments = packed.labels, packed.segments
            feed = {
                "inputs_embeds": packed.inputs_embeds,  # (R, L', D), R <= B rows
                "attention_mask": packed.attention_mask,  # (R, 1, L', L')
                "position_ids": packed.position_ids,
            }
        return llm_loss(self.model.llm, feed, labels, segments, self.per_sample, self.share_prefix)


@dataclass
class TrainResult:
    steps: int
    output_dir: Path
    last_loss: float | None
    bad_samples: int
    trainable: dict[str, torch.Tensor] = field(default_factory=dict)
    export_dir: Path | None = None


def train(recipe: Recipe) -> TrainResult:
    """Run (or resume) a recipe to its last step; return what a caller or test needs."""
    ctx = D.setup(recipe.device)
    try:
        with S.attention_kernel(recipe.attention):
            return _Run(recipe, ctx).run()
    finally:
        D.teardown(ctx)


class _Run:
    def __init__(self, recipe: Recipe, ctx: D.DistContext) -> None:
        self.recipe, self.ctx = recipe, ctx
        self.out = Path(recipe.output_dir)
        D.seed_everything(recipe.seed + ctx.rank)
        entries = read_all(recipe)
        self.model = S.build_model(recipe)
        self.trainable = S.apply_freeze(self.model, recipe.freeze)
        if recipe.gradient_checkpointing:
            S.enable_gradient_checkpointing(self.model)
        self.model.to(ctx.device)
        if recipe.compile_layers:
            S.compile_decoder_layers(self.model)
        self.precision = S.pick_precision(recipe.precision, ctx.device)
        S.cast_frozen_llm(self.model, recipe, self.precision)
        size = self.model.config.vision.image_size
        self.dataset = TrainDataset(entries, recipe, self.model.tokenizer, size)
        if recipe.visual_cache:
            self.dataset.cache = self._visual_cache(entries)
        self.media = [e.media for e in entries]
        self.lengths = [text_length(e) for e in entries] if recipe.group_by_length else None
        self.batches_per_epoch = len(self._plan(0))
        steps_per_epoch = math.ceil(self.batches_per_epoch / recipe.grad_accum_steps)
        self.total_steps = recipe.max_steps or recipe.epochs * steps_per_epoch
        self.planned_samples = self.total_steps * recipe.grad_accum_steps * recipe.batch_size
        shard_units = D.decoder_layers(self.model.llm)
        self.root = D.wrap(TrainStep(self.model, recipe), ctx, recipe.strategy, shard_units)
        # after wrapping: FSDP replaces parameters with sharded ones
        self.optimizer = S.make_optimizer(self.model, recipe.optim)
        self.scheduler = S.make_scheduler(self.optimizer, recipe.optim, self.total_steps)
        self.scaler = torch.amp.GradScaler(enabled=self.precision.needs_scaler)
        self.state = RunState()
        self.saved_step = -1

    def _visual_cache(self, entries: list) -> VisualCache:
        """Encode every media file `visual_cache` times with the frozen vision side (every rank
        encodes all of them: the cache is meant for models and datasets that fit one machine)."""
        r = self.recipe
        start = time.perf_counter()
        seed = r.seed if r.visual_cache_seed is None else r.visual_cache_seed
        kept = None
        if r.visual_cache_dir:
            # the folders the names are in: two datasets may both have a "video_00000.mp4"
            roots = sorted({e.path.removesuffix(e.name) for e in entries})
            setting = f"{roots} {r.num_frames} {r.sampling} {self.dataset.image_size}"
            if r.attention != "auto":  # another kernel rounds the rows differently
                setting += f" {r.attention}"
            key = cache_key(self.model, r.visual_cache, seed, f"{setting} {self.precision}")
            kept = Path(r.visual_cache_dir) / f"{key}.pt"
        media = {e.path: e.media for e in entries}
        cache, encoded = kept_visual_cache(
            kept,
            self.model,
            media,
            self.dataset.load_media,
            r.visual_cache,
            seed=seed,
            names={e.path: e.name for e in entries},
            save=self.ctx.rank == 0,
            batch=r.batch_size,
            workers=r.num_workers if r.visual_cache_workers is None else r.visual_cache_workers,
            autocast=self.precision.autocast,
        )
        took = time.perf_counter() - start
        log.info(
            "visual cache: %d files encoded, %d loaded from %s, in %.0f s",
            encoded,
            len(media) - encoded,
            kept or "nowhere",
            took,
        )
        return cache

    def _plan(self, epoch: int) -> list:
        r = self.recipe
        ctx = self.ctx
        return plan_epoch(
            self.media, r.batch_size, ctx.world, ctx.rank, r.seed, epoch, self.lengths
        )

    def run(self) -> TrainResult:
        if self.recipe.resume:
            self._resume()
        from videochat.train.progress import Progress

        progress = Progress(self.recipe, self.ctx, self.total_steps, self.state.step)
        last_loss = None
        try:
            while self.state.step < self.total_steps and self.state.epoch < self._epochs():
                last_loss = self._epoch(progress) or last_loss
        finally:
            progress.close()
        if self.state.step == 0 or self.saved_step != self.state.step:
            self._save()
        export = self._export() if self.recipe.export else None
        return TrainResult(
            self.state.step, self.out, last_loss, int(self.state.bad), self._weights(), export
        )

    def _epochs(self) -> int:
        per_epoch = math.ceil(self.batches_per_epoch / self.recipe.grad_accum_steps)
        return max(self.recipe.epochs, math.ceil(self.total_steps / max(1, per_epoch)))

    def _epoch(self, progress) -> float | None:
        r, st = self.recipe, self.state
        plan = self._plan(st.epoch)
        loader = DataLoader(
            self.dataset,
            batch_sampler=PlanSampler(plan, st.batch),
            collate_fn=collate,
            num_workers=r.num_workers,
            # its own generator: creating an iterator must not draw from the global RNG,
            # or a resumed run's dropout draws would differ from an uninterrupted run's
            generator=torch.Generator().manual_seed(r.seed + st.epoch),
        )
        self.root.train()
        S.hold_frozen_in_eval(self.model, r.freeze)
        last_loss, pending, window = None, 0, _Window()
        for batch in loader:
            st.batch += 1
            pending += 1
            final = pending == r.grad_accum_steps or st.batch == len(plan)
            window.add(self._micro_step(batch, sync=final), batch)
            if not final:
                continue
            last_loss = self._optimizer_step(window, progress)
            pending, window = 0, _Window()
            if st.step >= self.total_steps:
                break
        if st.batch >= len(plan):
            st.epoch, st.batch = st.epoch + 1, 0
            if r.save_every == 0 and self.saved_step != st.step:
                self._save()
        return last_loss

    def _micro_step(self, batch: Batch, sync: bool) -> float:
        """Forward + backward of one micro-batch; a batch with no good sample adds zero gradient."""
        weight = 1.0 / self.recipe.grad_accum_steps
        pixels, texts, times = batch.pixels, batch.texts, batch.times
        if pixels is None:  # every sample bad: keep collective ops in step with the other ranks
            pixels, texts, weight = self._dummy_inputs(), [_DUMMY_TEXT], 0.0
        pixels = pixels.to(self.ctx.device, non_blocking=True)
        with self._grad_sync(sync):
            with self.precision.autocast():
                loss = self.root(pixels, texts, times)
            self.scaler.scale(loss * weight).backward()
        return float(loss.detach()) if weight else float("nan")

    def _grad_sync(self, sync: bool):
        """Reduce gradients only on the last micro-batch of an accumulation window."""
        if hasattr(self.root, "set_requires_gradient_sync"):  # FSDP2
            self.root.set_requires_gradient_sync(sync)
        if not sync and hasattr(self.root, "no_sync"):  # DDP
            return self.root.no_sync()
        return nullcontext()

    def _dummy_inputs(self) -> torch.Tensor:
        if self.dataset.cache is not None:
            return torch.zeros(1, *self.dataset.cache.row_shape)  # (B, Q, C)
        size = self.model.config.vision.image_size
        return torch.zeros(1, 1, 3, size, size)  # (B, T, 3, S, S)

    def _optimizer_step(self, window: _Window, progress) -> float:
        r, st = self.recipe, self.state
        if r.optim.max_grad_norm > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(
                [p for p in self.model.parameters() if p.requires_grad], r.optim.max_grad_norm
            )
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        st.step += 1
        loss_sum, n_loss, n_good, n_bad = D.all_sum(
            [window.loss_sum, window.n_loss, window.n_good, window.n_bad], self.ctx
        )
        st.bad += n_bad
        st.seen += n_good + n_bad
        loss = loss_sum / max(1.0, n_loss)
        for bad in window.bad:
            log.warning("rank %d: skipped bad sample %s (%s)", self.ctx.rank, bad.path, bad.reason)
        progress.update(st, loss, self.scheduler.get_last_lr()[0], n_good, window.indices)
        self._check_bad()
        if r.save_every and st.step % r.save_every == 0:
            self._save()
        return loss

    def _check_bad(self) -> None:
        limit = self.recipe.max_bad_fraction * self.planned_samples * self.ctx.world
        if self.state.bad > limit:
            raise TooManyBadSamplesError(
                f"{int(self.state.bad)} of {int(self.state.seen)} samples so far could not be "
                f"loaded, over max_bad_fraction={self.recipe.max_bad_fraction} of the run; "
                "see the logged paths, fix or remove them, or raise max_bad_fraction"
            )

    # ------------------------------------------------------------------ checkpoints

    def _weights(self) -> dict[str, torch.Tensor]:
        r = self.recipe
        return D.trainable_weights(self.root, self.model, self.trainable, self.ctx, r.strategy)

    def _save(self) -> None:
        weights = self._weights()
        state = {
            "optimizer": D.optimizer_state(
                self.root, self.optimizer, self.ctx, self.recipe.strategy
            ),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "run": self.state.to_dict(),
            "world": self.ctx.world,
            "rng": D.gather_objects(capture_rng(), self.ctx),
            "recipe": json.dumps(self.recipe.to_dict()),
        }
        if self.ctx.is_main:
            keep = self.recipe.keep_checkpoints
            path = ckpt.save_checkpoint(self.out, self.state.step, weights, state, keep)
            log.info("saved %s", path)
        D.barrier(self.ctx)
        self.saved_step = self.state.step

    def _resume(self) -> None:
        path = ckpt.latest_checkpoint(self.out)
        if path is None:
            log.info("resume=true but no checkpoint in %s yet: starting fresh", self.out)
            return
        saved = ckpt.load_checkpoint(path)
        if saved.state["world"] != self.ctx.world:
            raise ckpt.CheckpointError(
                f"{path} was written by {saved.state['world']} processes; resume with the same "
                f"number (now {self.ctx.world}) so the data plan matches"
            )
        strategy = self.recipe.strategy
        D.load_weights(self.root, self.model, saved.weights, self.ctx, strategy)
        D.load_optimizer_state(
            self.root, self.optimizer, saved.state["optimizer"], self.ctx, strategy
        )
        self.scheduler.load_state_dict(saved.state["scheduler"])
        self.scaler.load_state_dict(saved.state["scaler"])
        self.state = RunState.from_dict(saved.state["run"])
        restore_rng(saved.state["rng"][self.ctx.rank])
        self.saved_step = self.state.step
        log.info("resumed from %s at step %d", path, self.state.step)

    def _export(self) -> Path:
        """Write a load_model directory (with FSDP, rank 0 rebuilds an unsharded copy)."""
        from videochat.model import save_model

        target = Path(self.recipe.export)
        weights = self._weights()  # a collective under FSDP: every rank calls it
        if self.ctx.is_main:
            model = self.model
            if D.sharded(self.ctx, self.recipe.strategy):
                model = S.build_model(self.recipe)
                D.load_weights(model, model, weights, self.ctx, "ddp")
            save_model(model, target)
            log.info("exported %s", target)
        D.barrier(self.ctx)
        return target


_DUMMY_TEXT = LabelledText(before_ids=[], after_ids=[1, 1], after_labels=[1, 1])


class _Window:
    """Numbers of the micro-batches that make up one optimizer step."""

    def __init__(self) -> None:
        self.loss_sum = self.n_loss = self.n_good = self.n_bad = 0.0
        self.bad: list = []
        self.indices: list[int] = []

    def add(self, loss: float, batch: Batch) -> None:
        if not math.isnan(loss):
            self.loss_sum += loss
            self.n_loss += 1
        self.n_good += len(batch)
        self.n_bad += len(batch.bad)
        self.bad.extend(batch.bad)
        self.indices.extend(batch.indices)
