"""What a trained vision side reads out: the fact heads' accuracy on held-out clips, and whether
its rows see time at all. Measurement only (`videochat.embedded.measure`, the card); the training
that these check lives in `videochat.embedded.pretrain`."""

from __future__ import annotations

import torch
from torch import Tensor

from videochat.embedded.facts import (
    EVENT_TYPES,
    IGNORE,
    MOTIONS,
    event_frames,
    patch_events,
    patch_labels,
)
from videochat.embedded.pretrain import FactHeads, clip_batches, encode


@torch.no_grad()
def fact_accuracy(model, heads: FactHeads, clips: dict[str, Tensor], batch: int = 50) -> dict:
    """Accuracy of each fact read by `heads` on `clips` (e.g. held-out benchmark videos)."""
    model.eval()
    preds = [heads(*encode(model, *part)) for part in clip_batches(clips, batch)]
    pred = {k: torch.cat([p[k] for p in preds]) for k in preds[0]}
    shown = clips["visible"] > 0.5
    vision = model.config.vision
    shape_of_patch, colour_of_patch = patch_labels(clips, vision.image_size // vision.patch_size)
    on_object = shape_of_patch > 0  # (B, T, P): the patches an object covers

    def picked(logits: Tensor, target: Tensor, keep: Tensor | None = None) -> float:
        keep = target != IGNORE if keep is None else keep
        return float((logits.argmax(-1) == target)[keep].float().mean())

    frames = clips["visible"].shape[-1]
    timed = comes_goes_frames(pred["frame_visible"], clips) | frame_rows_presence(
        pred["frame_visible"], clips
    )
    if "patch_event" in pred:  # of the patches an event shows on, those named with it
        event_of_patch = patch_events(clips, shape_of_patch)
        timed["patch_event"] = picked(pred["patch_event"], event_of_patch, event_of_patch > 0)
        timed |= {k: picked(pred[k], clips[k]) for k in ("first_event", "last_event")}
        timed["frame_event"] = likeliest_frame(pred["frame_event"], event_frames(clips, frames))
    if "frame_change" in pred:
        changed = event_frames(clips, frames, changes=True)
        timed["frame_change"] = likeliest_frame(pred["frame_change"], changed)
        for name in EVENT_TYPES[1:]:  # by event type
            of_type = (clips["event"] == EVENT_TYPES.index(name))[..., None]  # (B, S, 1)
            timed[f"frame_change_{name}"] = likeliest_frame(pred["frame_change"], changed & of_type)
    if "event_time" in pred:  # within a grid step: a neighbouring class is 0.5 s off
        off = (pred["event_time"].argmax(-1) - clips["event_time"]).abs()
        timed |= {
            "event_time": picked(pred["event_time"], clips["event_time"]),
            "event_time_within_1": float((off <= 1)[clips["event_time"] != IGNORE].float().mean()),
        }
    timed = {k: v for k, v in timed.items() if v is not None}  # facts with nothing to score
    return timed | {
        "visible": float(((pred["visible"] > 0) == shown).float().mean()),
        "colour": picked(pred["colour"], clips["colour"]),
        "present": float(((pred["present"] > 0) == (clips["present"] > 0.5)).float().mean()),
        "motion": picked(pred["motion"], clips["motion"]),
        "event": picked(pred["event"], clips["event"]),
        "event_bin": picked(pred["event_bin"], clips["event_bin"]),
        "frame_colour": picked(pred["frame_colour"], clips["colour"]),
        "count": picked(pred["count"], clips["count"]),
        "effect": picked(pred["effect"], clips["effect"]),
        "patch_shape": picked(pred["patch_shape"], shape_of_patch, on_object),
        "patch_colour": picked(pred["patch_colour"], colour_of_patch, on_object),
    }


def likeliest_frame(logits: Tensor, shown: Tensor) -> float | None:
    """Of the shapes whose event shows in one of the frames (`shown`, (B, S, T) bool), the
    fraction whose likeliest frame by `logits` (B, S, T) is that one; None if there are none."""
    has = shown.any(-1)
    said = logits.argmax(-1)  # (B, S)
    return _share((shown.float().argmax(-1) == said)[has])


def _share(right: Tensor) -> float | None:
    """The fraction of True in `right`; None (not a score) when it is empty."""
    return float(right.float().mean()) if right.numel() else None


def comes_goes_frames(frame_visible: Tensor, facts: dict[str, Tensor]) -> dict[str, float | None]:
    """How well the frame rows follow objects that come and go: of the shapes that appear
    (disappear) between two sampled frames, the fraction whose first (last) frame shown, read
    from the frame rows' visibility logits (B, S, T), is the true one (None: no such shape)."""
    shown, said = facts["visible"] > 0.5, frame_visible > 0  # (B, S, T)
    out = {}
    for name, last in (("appear", False), ("disappear", True)):
        kind = facts["event"] == EVENT_TYPES.index(name)  # (B, S)
        changed = kind & shown.any(-1) & ~shown.all(-1)  # the change falls between two frames
        # the first frame shown, or the last (the first in the flipped order)
        true, told = (shown.flip(-1), said.flip(-1)) if last else (shown, said)
        right = (true.float().argmax(-1) == told.float().argmax(-1)) & said.any(-1)
        out[f"frame_rows_{name}"] = _share(right[changed])
    return out


def frame_rows_presence(frame_visible: Tensor, facts: dict[str, Tensor]) -> dict[str, float | None]:
    """The frame rows' visibility (logits (B, S, T)) apart for the shapes in the clip and those
    not in it: their overall accuracy mixes a miss on an object there with a shape seen where
    there is none, and an event's frame needs both right (session 32: 14% of the frame cells of
    absent shapes said shown). None where there is nothing to score (every shape in every clip)."""
    present = (facts["present"] > 0.5)[..., None].expand_as(frame_visible)  # (B, S, T)
    right = (frame_visible > 0) == (facts["visible"] > 0.5)
    return {
        "frame_rows_present": _share(right[present]),
        "frame_rows_absent": _share(right[~present]),
    }


@torch.no_grad()
def reversal_change(
    model, clips: dict[str, Tensor], batch: int = 50, rows: Tensor | None = None
) -> float:
    """How far the Q-Former rows move when each clip is played backwards, as a fraction of how
    far they are from the rows of another clip. 0: the rows ignore frame order, so nothing that
    depends on it (motion, when and in which order things happen) can be read from them.
    `rows`: the clips' rows played forwards, when the caller has them already."""
    model.eval()
    if rows is None:
        rows = torch.cat([encode(model, *part)[0] for part in clip_batches(clips, batch)])
    # (N, Q, C): each clip's frames in reverse order, shown at the same times
    reversed_rows = torch.cat(
        [encode(model, pixels.flip(1), times)[0] for pixels, times in clip_batches(clips, batch)]
    )
    other_clip = (rows - rows.roll(1, 0)).norm(dim=-1).mean()
    return float((rows - reversed_rows).norm(dim=-1).mean() / other_clip)


def displacement_correlation(position: Tensor, facts: dict[str, Tensor]) -> float:
    """Correlation of the predicted with the true first-to-last-frame displacement (x and y
    pooled) of the objects that move in a straight line and show in both frames; 0 when the
    per-frame positions read from the rows do not follow the objects.
    position: (B, S, T, 2) predicted; facts: `stack_facts` tensors."""
    motion = facts["motion"]
    moving = (motion != IGNORE) & (motion != MOTIONS.index("none"))  # (B, S)
    shown = facts["visible"] > 0.5  # (B, S, T)
    tracked = moving & shown[..., 0] & shown[..., -1]
    true = (facts["position"][:, :, -1] - facts["position"][:, :, 0])[tracked].flatten()
    said = (position[:, :, -1] - position[:, :, 0])[tracked].flatten()
    if len(true) < 2 or float(said.std()) == 0.0:
        return 0.0
    return float(torch.corrcoef(torch.stack([true, said]))[0, 1])


@torch.no_grad()
def time_readout(model, heads: FactHeads, clips: dict[str, Tensor], batch: int = 50) -> dict:
    """Whether the vision side sees time at all: `reversal_change` and, through the heads'
    per-frame positions, `displacement_correlation` (see both)."""
    model.eval()
    frames = clips["visible"].shape[-1]
    rows, position = [], []
    for part in clip_batches(clips, batch):
        clip_rows, patches = encode(model, *part)
        rows.append(clip_rows)
        position.append(heads(clip_rows, patches)["position"][:, :, :frames])  # (B, S, T, 2)
    return {
        "reversal_change": reversal_change(model, clips, batch, rows=torch.cat(rows)),
        "displacement_r": displacement_correlation(torch.cat(position), clips),
    }
