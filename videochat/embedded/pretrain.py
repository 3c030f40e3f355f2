"""Vision pretraining (our stage, before the original's two): ViT + Q-Former learn the scene facts.

Why: see `videochat.embedded.facts`. Data: a few hundred real videos are far too few to train a
ViT from scratch (measured: 97% of object counts right on the training videos, 68% on held-out
ones), so most clips are fresh scenes of the synthetic world rendered straight to the sampled
frames (no H.264 round trip, ~1 ms a frame); a quarter are the training set's decoded videos, so
the codec's look is learnt too. Frames are chosen with `middle` sampling, as `videochat eval`
does. Small linear heads read the facts from the ViT's patch tokens and from the Q-Former's
output rows, and are thrown away afterwards. A curriculum orders the facts from local to global:

1. single frames, patch facts only (`shape_steps`): the ViT learns to tell the shapes apart. With
   every loss from the start it never did (29% of object patches, chance 20%, after 2,000 steps);
   alone, with the convolutional stem, it reaches 87% in 600 steps of 64 frames (measured);
2. single frames, every per-frame fact (4× the batch, the temporal embedding left out): the
   Q-Former's cross-attention learns to find objects while it has few tokens to search;
3. whole clips with every fact.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, IterableDataset

from videochat.embedded.config import shape_stretches
from videochat.embedded.facts import (
    COLLISION_EFFECTS,
    EVENT_TIME_CLASSES,
    EVENT_TYPES,
    IGNORE,
    MAX_OBJECTS,
    MOTIONS,
    NUM_COLOURS,
    SceneFacts,
    event_frames,
    patch_events,
    patch_labels,
    scene_facts,
    stack_facts,
)
from videochat.model.vision import tokens_per_frame
from videochat.model.visual_positions import TIME_HORIZON
from videochat.synth.vocab import SHAPES
from videochat.synth.world import Scene, simulate

log = logging.getLogger("videochat.embedded")
SLOTS = len(SHAPES)  # Q-Former rows 0..4: one per shape
POSITION_WEIGHT = 10.0  # positions are fractions of the frame: squared errors are small
PER_FRAME = 1 + NUM_COLOURS + 2  # slot-head outputs per frame: visible, colour logits, x and y
SECONDS_WEIGHT = 10.0  # event seconds are regressed as fractions of TIME_HORIZON, like positions
# an event shows on a few patches of one frame (about 4% of a clip's): weighted up 5× so the
# patch head does not settle on "none" (class 0)
EVENT_PATCH_WEIGHTS = torch.tensor([1.0] + [5.0] * (len(EVENT_TYPES) - 1))
# a shape's event shows in one of the 8 frame rows: its positives weighted up to balance
FRAME_EVENT_WEIGHT = 7.0
COMES_GOES_ROWS = ("both", "frame")  # the rows `PretrainPlan.comes_goes_weight` may weigh


@dataclass
class PretrainPlan:
    steps: int = 900
    image_steps: int = 300  # single-frame steps first
    shape_steps: int = 0  # of those, the first train the patch facts only
    batch: int = 16  # clips per step (single-frame steps take 4× as many frames)
    real_fraction: float = 0.25  # of each batch from the decoded training videos
    lr: float = 2e-3
    seed: int = 0
    precision: str = "fp32"  # a recipe's `precision` (`train.setup.pick_precision`): bf16 autocasts
    # the per-frame visibility losses of objects that appear or disappear, times this: their
    # coming and going is a few frames of a clip otherwise outweighed by objects that stay
    comes_goes_weight: float = 1.0
    # which rows take that weight: "both" (the per-shape rows and the frame rows) or "frame"
    # (the frame rows only; the per-shape rows, which carry the shape lookup, stay unweighted)
    comes_goes_rows: str = "both"


def render_clip(
    rng: np.random.Generator, frames: int, size: int, one_frame: bool = False
) -> tuple[Tensor, SceneFacts]:
    """A fresh random scene as the model would see it: (T, 3, S, S) pixels + its facts.
    `one_frame`: only one of the sampled frames (drawn at random), T = 1."""
    from videochat.media.sample import sample_indices
    from videochat.media.transform import normalize_frames
    from videochat.synth.plan import random_video_scene
    from videochat.synth.render import background, render_frame

    scene = random_video_scene(rng, "pretrain", (size, size))
    timeline = simulate(scene)
    indices = sample_indices("middle", scene.num_frames, frames, scene.fps)
    times = [i / scene.fps for i in indices]
    if one_frame:
        pick = int(rng.integers(frames))
        indices, times = indices[pick : pick + 1], times[pick : pick + 1]
    bg = background(scene)
    # rendered at the model's size: the frames are its view already (no resize, no crop)
    frames = np.stack([render_frame(scene, timeline, i, bg) for i in indices])  # (T, S, S, 3)
    return normalize_frames(frames), scene_facts(scene, indices, times, timeline)


class RenderedBatches(IterableDataset):
    """The plan's batches of rendered clips (one DataLoader worker renders while the model
    trains), as (step, batch); the plan's first `image_steps` get single frames."""

    def __init__(self, plan: PretrainPlan, frames: int, size: int, rendered: tuple[int, int]):
        self.plan, self.frames, self.size, self.rendered = plan, frames, size, rendered

    def __iter__(self):
        rng = np.random.default_rng(self.plan.seed + 4242)
        for step in range(self.plan.steps):
            single = step < self.plan.image_steps
            count = self.rendered[0] if single else self.rendered[1]
            clips = [render_clip(rng, self.frames, self.size, single) for _ in range(count)]
            batch = stack_facts([facts for _, facts in clips])
            batch["pixels"] = torch.stack([pixels for pixels, _ in clips])
            yield step, batch


class _DecodedScenes(Dataset):
    """The video scenes of a synth directory, each decoded as the model sees it: (pixels
    (T, 3, S, S) fp16, facts)."""

    def __init__(self, data_dir: Path, num_frames: int, size: int):
        lines = (data_dir / "scenes.jsonl").read_text().splitlines()
        scenes = [json.loads(line) for line in lines]
        self.scenes = [s for s in scenes if s.get("kind", "video") == "video"]
        self.data_dir, self.num_frames, self.size = data_dir, num_frames, size

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, i: int) -> tuple[Tensor, SceneFacts]:
        from videochat.media import load_video

        scene = self.scenes[i]
        path = str(self.data_dir / scene["media"])
        clip = load_video(path, num_frames=self.num_frames, sampling="middle", size=self.size)
        facts = scene_facts(Scene.from_dict(scene), clip.indices, clip.timestamps)
        return clip.pixels.to(torch.float16), facts


def cache_clips(data_dir: Path, num_frames: int, size: int, workers: int = 2) -> dict[str, Tensor]:
    """Decode every video of a synth directory once: pixels (N, T, 3, S, S) fp16 + facts.
    `workers`: decoding processes (0: this one). The same clips in the same order either way;
    two took 0.56x the time of this one alone on the 2-core CPU
    (benchmarks/visual_cache_workers.py)."""
    scenes = _DecodedScenes(data_dir, num_frames, size)
    prefetch = 8 if workers else None  # the workers run ahead: this process only collects
    decoded = list(
        DataLoader(scenes, batch_size=None, num_workers=workers, prefetch_factor=prefetch)
    )
    return {
        "pixels": torch.stack([pixels for pixels, _ in decoded]),
        **stack_facts([facts for _, facts in decoded]),
    }


class FactHeads(nn.Module):
    """Linear read-outs of the facts (training only; not part of the model). `stretches`: rows
    per shape (`embedded_config(shape_stretches=...)`); a shape's facts are read from its rows
    side by side. `times`: the model reads frame times (`QFormerConfig.input_times`), so the
    per-shape rows also give their event's time in seconds (a class per `TIME_GRID` step and the
    seconds themselves: one linear code that orders events, for "which happened first").
    `events`: the ViT's tokens see their neighbouring frames (`VisionConfig.lmhra`), so the patch
    head also tells where an event shows (`facts.patch_events`), and the video rows whose event
    came first and last (for "which happened first?", a lookup like the count's), and each
    frame row whose events show in its frame (`facts.event_frames`). Measured
    (v2, docs/embedded-experiments.md, session 21): the event's time came closer and the LLM
    used it; the first and last event stayed at chance on the video rows. `changes`: each frame
    row also reads the frame before its own (`QFormerConfig.frame_row_lookback`), so it also
    tells which shapes' events happened since that frame (`event_frames(changes=True)`)."""

    def __init__(
        self,
        vision_width: int,
        qformer_width: int,
        frames: int,
        stretches: int = 1,
        times: bool = False,
        events: bool = False,
        changes: bool = False,
    ):
        super().__init__()
        self.frames, self.stretches, self.times, self.events = frames, stretches, times, events
        self.changes = changes
        slot_out = frames * PER_FRAME + 1 + len(MOTIONS) + len(EVENT_TYPES) + frames + 1
        slot_out += EVENT_TIME_CLASSES + 1 if times else 0
        self.slot = nn.Linear(qformer_width * stretches, slot_out)
        # with `events`, each frame row also tells which shapes' events show in its frame
        # and with `changes`, which shapes' events happened since the frame before
        frame_out = 1 + NUM_COLOURS + (1 if events else 0) + (1 if changes else 0)
        self.frame = nn.Linear(qformer_width, SLOTS * frame_out)
        video_out = MAX_OBJECTS + len(COLLISION_EFFECTS) + (2 * SLOTS if events else 0)
        self.video = nn.Linear(qformer_width, video_out)
        patch_out = 1 + SLOTS + 1 + NUM_COLOURS + (len(EVENT_TYPES) if events else 0)
        self.patch = nn.Linear(vision_width, patch_out)

    @classmethod
    def for_model(cls, model, frames: int) -> FactHeads:
        """Heads sized for `model`'s vision side and row layout."""
        config, q = model.config, model.config.qformer
        stretches = shape_stretches(config)
        return cls(
            config.vision.width,
            q.width,
            frames,
            stretches,
            q.input_times,
            config.vision.lmhra,
            q.frame_row_lookback > 0,
        )

    def forward(self, rows: Tensor, patches: Tensor) -> dict[str, Tensor]:
        """rows: (B, Q, C) Q-Former output; patches: (B, T, P, Cv) ViT patch tokens."""
        t, shape_rows = self.frames, SLOTS * self.stretches
        if rows.shape[1] < shape_rows + t + 1:
            raise ValueError(
                f"fact heads need {shape_rows + t + 1} Q-Former rows, got {rows.shape[1]}"
            )
        by_shape = rows[:, :shape_rows].unflatten(1, (self.stretches, SLOTS))  # (B, K, S, C)
        slot = self.slot(by_shape.transpose(1, 2).flatten(2))  # (B, S, out)
        per_frame = slot[..., : t * PER_FRAME].unflatten(-1, (t, PER_FRAME))  # (B, S, T, PER_FRAME)
        rest = slot[..., t * PER_FRAME :]
        cuts = [1, len(MOTIONS), len(EVENT_TYPES), t + 1]
        cuts += [EVENT_TIME_CLASSES, 1] if self.times else []
        present, motion, event, event_bin, *event_time = rest.split(cuts, dim=-1)
        frame_rows = rows[:, shape_rows : shape_rows + t]
        frame = self.frame(frame_rows).unflatten(-1, (SLOTS, -1))  # (B, T, S, 1 + colours [+ 2])
        video = self.video(rows[:, shape_rows + t :]).mean(1)  # (B, objects + effects [+ 2 S])
        effects_end = MAX_OBJECTS + len(COLLISION_EFFECTS)
        patch = self.patch(patches)  # (B, T, P, 1 + S + 1 + colours [+ event types])
        colours_end = 2 + SLOTS + NUM_COLOURS
        out = {
            "visible": per_frame[..., 0],  # (B, S, T)
            "colour": per_frame[..., 1 : 1 + NUM_COLOURS],  # (B, S, T, colours)
            "position": per_frame[..., 1 + NUM_COLOURS :],  # (B, S, T, 2)
            "present": present[..., 0],
            "motion": motion,
            "event": event,
            "event_bin": event_bin,
            "frame_visible": frame[..., 0].transpose(1, 2),  # (B, S, T)
            "frame_colour": frame[..., 1 : 1 + NUM_COLOURS].transpose(1, 2),  # (B, S, T, colours)
            "count": video[:, :MAX_OBJECTS],
            "effect": video[:, MAX_OBJECTS:effects_end],
            "patch_shape": patch[..., : 1 + SLOTS],
            "patch_colour": patch[..., 1 + SLOTS : colours_end],
        }
        if self.events:
            out["patch_event"] = patch[..., colours_end:]  # (B, T, P, event types)
            out["frame_event"] = frame[..., 1 + NUM_COLOURS].transpose(1, 2)  # (B, S, T)
            out["first_event"], out["last_event"] = video[:, effects_end:].split(SLOTS, dim=-1)
        if self.changes:  # the last column
            out["frame_change"] = frame[..., -1].transpose(1, 2)  # (B, S, T)
        if event_time:  # (B, S, classes), (B, S, 1)
            out |= {"event_time": event_time[0], "event_seconds": event_time[1][..., 0]}
        return out


def fact_losses(
    pred: dict[str, Tensor],
    facts: dict[str, Tensor],
    grid: int,
    patch_only: bool = False,
    comes_goes_weight: float = 1.0,
    comes_goes_rows: str = "both",
) -> dict[str, Tensor]:
    """One loss per fact; single-frame batches (T=1) train only the per-frame ones, and
    `patch_only` (the shape phase) only the patch facts. `comes_goes_weight` weighs the
    per-frame visibility of objects that appear or disappear, on the rows `comes_goes_rows`
    names (`PretrainPlan`)."""
    check_comes_goes_rows(comes_goes_rows)
    t = facts["visible"].shape[-1]
    shape_of_patch, colour_of_patch = patch_labels(facts, grid)
    losses = {
        "patch_shape": _ce(pred["patch_shape"], shape_of_patch),
        "patch_colour": _ce(pred["patch_colour"], colour_of_patch),
    }
    if patch_only:
        return losses
    shown = facts["visible"].unsqueeze(-1)  # (B, S, T, 1)
    slot = {k: pred[k][:, :, :t] for k in ("visible", "colour", "position")}
    visibility_weight = _comes_goes_weight(facts, comes_goes_weight)  # (B, S, T) or None
    shape_row_weight = visibility_weight if comes_goes_rows == "both" else None
    losses |= {
        "visible": F.binary_cross_entropy_with_logits(
            slot["visible"], facts["visible"], weight=shape_row_weight
        ),
        "colour": _ce(slot["colour"], facts["colour"]),
        "position": POSITION_WEIGHT
        * ((slot["position"] - facts["position"]) ** 2 * shown).sum()
        / shown.sum().clamp(min=1),
    }
    if t == 1:
        return losses
    losses |= {
        "present": F.binary_cross_entropy_with_logits(pred["present"], facts["present"]),
        "motion": _ce(pred["motion"], facts["motion"]),
        "event": _ce(pred["event"], facts["event"]),
        "event_bin": _ce(pred["event_bin"], facts["event_bin"]),
        "frame_visible": F.binary_cross_entropy_with_logits(
            pred["frame_visible"], facts["visible"], weight=visibility_weight
        ),
        "frame_colour": _ce(pred["frame_colour"], facts["colour"]),
        "count": _ce(pred["count"], facts["count"]),
        "effect": _ce(pred["effect"], facts["effect"]),
    }
    if "event_time" in pred:
        losses |= _time_losses(pred, facts)
    if "patch_event" in pred:
        target = patch_events(facts, shape_of_patch).flatten()
        logits = pred["patch_event"].flatten(0, -2)
        losses["patch_event"] = F.cross_entropy(logits, target, weight=EVENT_PATCH_WEIGHTS)
        losses |= {k: _ce(pred[k], facts[k]) for k in ("first_event", "last_event")}
        losses["frame_event"] = _frame_event_loss(pred["frame_event"], event_frames(facts, t))
    if "frame_change" in pred:
        changed = event_frames(facts, t, changes=True)
        losses["frame_change"] = _frame_event_loss(pred["frame_change"], changed)
    return losses


def _frame_event_loss(logits: Tensor, target: Tensor) -> Tensor:
    """Which frame rows show each shape's event: (B, S, T) logits and bool targets."""
    pos_weight = torch.tensor(FRAME_EVENT_WEIGHT)
    return F.binary_cross_entropy_with_logits(logits, target.float(), pos_weight=pos_weight)


def check_comes_goes_rows(rows: str) -> None:
    """Refuse a `comes_goes_rows` outside `COMES_GOES_ROWS` (a plan checks it when made)."""
    if rows not in COMES_GOES_ROWS:
        raise ValueError(f"comes_goes_rows must be one of {COMES_GOES_ROWS}, got {rows!r}")


def _comes_goes_weight(facts: dict[str, Tensor], weight: float) -> Tensor | None:
    """Per (clip, shape, frame): `weight` where the shape appears or disappears in its clip
    (single frames of it included), else 1; None when `weight` is 1 (the plain mean)."""
    if weight == 1.0:
        return None
    event = facts["event"]  # (B, S)
    comes_goes = (event == EVENT_TYPES.index("appear")) | (event == EVENT_TYPES.index("disappear"))
    per_shape = 1.0 + (weight - 1.0) * comes_goes.float()  # (B, S)
    return per_shape.unsqueeze(-1).expand_as(facts["visible"])


def _time_losses(pred: dict[str, Tensor], facts: dict[str, Tensor]) -> dict[str, Tensor]:
    """The event-time facts (`FactHeads` with `times`): its class, and its seconds as a
    fraction of TIME_HORIZON where the shape has an event."""
    timed = (facts["event_seconds"] >= 0).float()  # (B, S)
    error = (pred["event_seconds"] - facts["event_seconds"] / TIME_HORIZON) ** 2
    return {
        "event_time": _ce(pred["event_time"], facts["event_time"]),
        "event_seconds": SECONDS_WEIGHT * (error * timed).sum() / timed.sum().clamp(min=1),
    }


def _ce(logits: Tensor, target: Tensor) -> Tensor:
    if not bool((target != IGNORE).any()):  # nothing to score (a batch without two events):
        return logits.sum() * 0.0  # cross_entropy would give NaN
    return F.cross_entropy(logits.flatten(0, -2), target.flatten(), ignore_index=IGNORE)


def single_frames(batch: dict[str, Tensor], frame: Tensor) -> dict[str, Tensor]:
    """Frame `frame[i]` of clip i as a one-frame clip, with that frame's facts."""
    rows = torch.arange(len(frame))
    out = dict(batch)
    out["pixels"] = batch["pixels"][rows, frame][:, None]  # (B, 1, 3, S, S)
    for key in ("visible", "colour", "position"):
        out[key] = batch[key][rows, :, frame][:, :, None]  # (B, S, 1, ...)
    out["times"] = batch["times"][rows, frame][:, None]  # (B, 1)
    return out


def encode(model, pixels: Tensor, times: Tensor) -> tuple[Tensor, Tensor]:
    """Q-Former rows (B, Q, C) and ViT patch tokens (B, T, P, Cv) (frame-major, cls dropped)
    of clips whose frames show at `times` (B, T) seconds."""
    steps = model.encode_video_steps(pixels.float(), times)
    t, per_frame = pixels.shape[1], tokens_per_frame(model.config.vision)
    patches = steps["image_embeds"][:, : t * per_frame].unflatten(1, (t, per_frame))[:, :, 1:]
    return steps["qformer_last_hidden_state"], patches


def clip_batches(clips: dict[str, Tensor], batch: int):
    """(pixels (b, T, 3, S, S), times (b, T)) of `clips` (`cache_clips`), `batch` at a time."""
    for i in range(0, len(clips["pixels"]), batch):
        yield clips["pixels"][i : i + batch], clips["times"][i : i + batch]


def pretrain_vision(model, clips: dict[str, Tensor], plan: PretrainPlan) -> FactHeads:
    """Train `model`'s vision side (ViT, ln_vision, Q-Former, queries) in place on rendered
    clips mixed with the cached real `clips`; the LLM and `llama_proj` are untouched. Returns
    the trained fact heads (for measuring what the vision side learnt)."""
    from tqdm import tqdm

    from videochat.train.setup import pick_precision

    vision = model.config.vision
    grid, frames = vision.image_size // vision.patch_size, clips["visible"].shape[-1]
    autocast = pick_precision(plan.precision, model.vision_device).autocast
    # the heads' init and the dropout draw from the global generator: seed it, so the stage
    # gives the same weights whatever ran before it in the process (a resumed build included)
    torch.manual_seed(plan.seed)
    heads = FactHeads.for_model(model, frames)
    modules = [model.visual_encoder, model.ln_vision, model.qformer, heads]
    if model.visual_positions is not None:
        modules.append(model.visual_positions)
    params = [p for m in modules for p in m.parameters()] + [model.query_tokens]
    if model.extra_query_tokens is not None:
        params.append(model.extra_query_tokens)
    optimizer = torch.optim.AdamW(params, lr=plan.lr, betas=(0.9, 0.98), weight_decay=0.05)
    gen = torch.Generator().manual_seed(plan.seed)
    real = {
        single: round(n * plan.real_fraction)
        for single, n in ((True, 4 * plan.batch), (False, plan.batch))
    }
    rendered = (4 * plan.batch - real[True], plan.batch - real[False])
    stream = RenderedBatches(plan, frames, vision.image_size, rendered)
    loader = DataLoader(stream, batch_size=None, num_workers=1, prefetch_factor=4)
    temporal = getattr(model.visual_encoder, "temporal_embed", None)
    model.train()
    start = time.perf_counter()
    for step, batch in tqdm(loader, total=plan.steps, desc="vision", unit="step", mininterval=5):
        for group in optimizer.param_groups:
            group["lr"] = plan.lr * _schedule(step, plan.steps)
        single = step < plan.image_steps
        if temporal is not None:  # single frames would train frame 0's embedding only
            temporal.requires_grad_(not single)
        batch = _with_real(batch, clips, real[single], single, gen)
        with autocast():
            rows, patches = encode(model, batch["pixels"], batch["times"])
            pred = heads(rows, patches)
        pred = {k: v.float() for k, v in pred.items()}  # the losses in fp32
        losses = fact_losses(
            pred, batch, grid, step < plan.shape_steps, plan.comes_goes_weight, plan.comes_goes_rows
        )
        optimizer.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
    if temporal is not None:
        temporal.requires_grad_(True)
    model.eval()
    log.info("vision pretraining: %d steps in %.0f s", plan.steps, time.perf_counter() - start)
    return heads


def _with_real(
    batch: dict[str, Tensor], clips: dict[str, Tensor], count: int, single: bool, gen
) -> dict[str, Tensor]:
    """`batch` plus `count` cached real clips (single frames of them when `single`)."""
    if count == 0:
        return batch
    rows = torch.randint(len(clips["pixels"]), (count,), generator=gen)
    pick = {k: v[rows] for k, v in clips.items()}
    if single:
        frames = clips["visible"].shape[-1]
        pick = single_frames(pick, torch.randint(frames, (count,), generator=gen))
    return {k: torch.cat([batch[k], pick[k].to(batch[k].dtype)]) for k in batch}


def _schedule(step: int, total: int, warmup: int = 50, floor: float = 0.05) -> float:
    """Linear warm-up, then cosine down to `floor` of the peak."""
    cosine = 0.5 * (1 + math.cos(math.pi * step / max(1, total)))
    return min(1.0, (step + 1) / warmup) * (floor + (1 - floor) * cosine)
