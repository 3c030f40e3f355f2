"""What the vision side must see, from a scene's ground truth at the frames the model is shown.

The embedded model's vision encoder and Q-Former are trained from scratch (the released models
start from BLIP-2's pretrained ones). Trained only through the LLM's answer loss they learn too
slowly on a 2-core CPU: the LLM learns the language prior first and the visual rows collapse.
So the vision pretraining stage supervises them directly with these facts:

* per patch of each frame: which shape covers it and in which colour (dense, fast signal for ViT);
* per shape slot (one Q-Former query per shape of the closed vocabulary) and frame: visible,
  colour, position; plus the shape's motion direction, its scripted event and when it happens
  (the sampled frames before it; for a model that reads frame times, also its time in seconds);
* per frame and shape (the next 8 queries): visible and colour, and whether its event shows in
  that frame (for rows that also read the frame before: happened since it); per video: object
  count and the collision's effect (the last queries), and whose scripted event came first and
  last.

Every target is derived from `videochat.synth.world.simulate`, never from question text.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from videochat.synth.plan import TIME_GRID
from videochat.synth.vocab import COLOUR_NAMES, DIRECTIONS, EFFECTS, SHAPES
from videochat.synth.world import Scene, Timeline, simulate

EVENT_TYPES = ("none", "appear", "disappear", "colour_change", "collision")
MOTIONS = (*DIRECTIONS, "none")  # straight-line direction, or "none" (static, bouncing, colliding)
COLLISION_EFFECTS = ("none", *EFFECTS)
MAX_OBJECTS = 5
NUM_COLOURS = len(COLOUR_NAMES)
IGNORE = -100  # cross-entropy ignore index: the fact does not apply (absent shape, hidden object)
# event times are multiples of TIME_GRID seconds: classes 0 .. 12 s (the longest clip); later
# times fall in the last class
EVENT_TIME_CLASSES = 25


@dataclass
class SceneFacts:
    """Targets of one clip; S = len(SHAPES) slots, T = sampled frames."""

    visible: np.ndarray  # (S, T) float 0/1
    colour: np.ndarray  # (S, T) int colour index, IGNORE where hidden
    position: np.ndarray  # (S, T, 2) float centre / frame size, 0 where hidden
    radius: np.ndarray  # (S,) float bounding radius / frame width, 0 where absent
    present: np.ndarray  # (S,) float 0/1
    motion: np.ndarray  # (S,) int MOTIONS index, IGNORE where absent
    event: np.ndarray  # (S,) int EVENT_TYPES index
    event_bin: np.ndarray  # (S,) int sampled frames before the event (0..T), IGNORE if none
    event_time: np.ndarray  # (S,) int event time in TIME_GRID steps, IGNORE if none
    event_seconds: np.ndarray  # (S,) float event time in seconds, -1 if none
    times: np.ndarray  # (T,) float seconds of each sampled frame
    count: np.ndarray  # () int objects - 1
    effect: np.ndarray  # () int COLLISION_EFFECTS index
    # () int SHAPES index of the object whose scripted event came first / last (a collision's
    # first-named object); IGNORE with fewer than two events
    first_event: np.ndarray
    last_event: np.ndarray


def scene_facts(
    scene: Scene, indices: list[int], timestamps: list[float], timeline: Timeline | None = None
) -> SceneFacts:
    """The facts of `scene` as seen at the sampled frame `indices` (shown at `timestamps`)."""
    timeline = simulate(scene) if timeline is None else timeline
    slots, frames = len(SHAPES), len(indices)
    facts = SceneFacts(
        visible=np.zeros((slots, frames), np.float32),
        colour=np.full((slots, frames), IGNORE, np.int64),
        position=np.zeros((slots, frames, 2), np.float32),
        radius=np.zeros(slots, np.float32),
        present=np.zeros(slots, np.float32),
        motion=np.full(slots, IGNORE, np.int64),
        event=np.zeros(slots, np.int64),
        event_bin=np.full(slots, IGNORE, np.int64),
        event_time=np.full(slots, IGNORE, np.int64),
        event_seconds=np.full(slots, -1.0, np.float32),
        times=np.asarray(timestamps, np.float32),
        count=np.array(len(scene.objects) - 1, np.int64),
        effect=np.array(COLLISION_EFFECTS.index(scene.collision.effect) if scene.collision else 0),
        first_event=np.array(IGNORE, np.int64),
        last_event=np.array(IGNORE, np.int64),
    )
    size = np.array([scene.width, scene.height], np.float32)
    for i, obj in enumerate(scene.objects):
        s = SHAPES.index(obj.shape)
        facts.present[s], facts.radius[s] = 1.0, obj.radius / scene.width
        straight = obj.motion == "straight" and obj.direction is not None
        facts.motion[s] = MOTIONS.index(obj.direction if straight else "none")
        for t, frame in enumerate(indices):
            frame = min(frame, scene.num_frames - 1)  # padded clips repeat the last frame
            if timeline.visible[frame, i]:
                facts.visible[s, t] = 1.0
                facts.colour[s, t] = timeline.colours[frame, i]
                facts.position[s, t] = timeline.positions[frame, i] / size
    scripted = [event for event in timeline.events if event["type"] != "bounce"]  # by time
    # each event's object ids, the one named first first (a collision's subject)
    objects = [e["objects"] if e["type"] == "collision" else [e["object"]] for e in scripted]
    if len(scripted) >= 2:
        facts.first_event[...] = SHAPES.index(scene.obj(objects[0][0]).shape)
        facts.last_event[...] = SHAPES.index(scene.obj(objects[-1][0]).shape)
    for event, ids in zip(scripted, objects, strict=True):
        for obj_id in ids:
            s = SHAPES.index(scene.obj(obj_id).shape)
            facts.event[s] = EVENT_TYPES.index(event["type"])
            facts.event_bin[s] = sum(t < event["time"] for t in timestamps)
            step = round(event["time"] / TIME_GRID)
            facts.event_time[s] = min(step, EVENT_TIME_CLASSES - 1)
            facts.event_seconds[s] = event["time"]
    return facts


def stack_facts(items: list[SceneFacts]) -> dict[str, torch.Tensor]:
    """A batch of facts as tensors with a leading batch dimension."""
    names = SceneFacts.__dataclass_fields__
    return {name: torch.as_tensor(np.stack([getattr(f, name) for f in items])) for name in names}


def patch_labels(facts: dict[str, torch.Tensor], grid: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per patch of a grid×grid split of each frame: shape class and colour class (0 = none).

    A patch shows an object when the object's disc reaches at least half its radius into the
    patch; of several, the one centred nearest wins. Returns two (B, T, grid²) int64 tensors.
    """
    centres = (torch.arange(grid) + 0.5) / grid
    yy, xx = torch.meshgrid(centres, centres, indexing="ij")
    patch_xy = torch.stack([xx, yy], -1).reshape(-1, 2)  # (P, 2), row-major like the ViT
    pos = facts["position"][:, :, :, None, :]  # (B, S, T, 1, 2)
    half = 0.5 / grid
    closest = torch.minimum(torch.maximum(pos, patch_xy - half), patch_xy + half)  # in each patch
    reach = (pos - closest).norm(dim=-1)  # (B, S, T, P) centre to patch
    inside = reach < 0.5 * facts["radius"][:, :, None, None]
    covered = inside & (facts["visible"][:, :, :, None] > 0.5)
    dist = (pos - patch_xy).norm(dim=-1)
    nearest = torch.where(covered, dist, torch.full_like(dist, float("inf"))).argmin(1)  # (B,T,P)
    hit = covered.any(1)  # (B, T, P)
    colours = facts["colour"].clamp(min=0).transpose(1, 2)  # (B, T, S)
    colour = torch.gather(colours, 2, nearest)  # (B, T, P)
    zero = torch.zeros_like(nearest)
    return torch.where(hit, nearest + 1, zero), torch.where(hit, colour + 1, zero)


def patch_events(facts: dict[str, torch.Tensor], shape_of_patch: torch.Tensor) -> torch.Tensor:
    """Per patch of each frame: the EVENT_TYPES index of an event that shows there (0 = none).

    An event shows on the patches its object covers (`patch_labels`' shape map) in the first
    sampled frame after it (appear, colour change, collision) or in the last one before it
    (disappear: afterwards there is nothing left to cover). A token that sees its neighbouring
    frames (UniFormerV2's LMHRA) can tell these patches locally, and a per-shape row that
    attends to them reads its event's frame, and time, from their position codes.
    shape_of_patch: (B, T, P) as `patch_labels` gives it. Returns (B, T, P) int64.
    """
    event = facts["event"]  # (B, S)
    at_frame = event_frames(facts, shape_of_patch.shape[1])  # (B, S, T)
    slots = torch.arange(1, event.shape[1] + 1)[None, :, None, None]  # patch shape ids
    covers = shape_of_patch[:, None] == slots  # (B, S, T, P)
    marked = covers & at_frame[..., None]
    labels = (marked * event[:, :, None, None]).amax(1)  # (B, T, P); objects rarely overlap
    return labels.long()


def event_frames(
    facts: dict[str, torch.Tensor], frames: int, changes: bool = False
) -> torch.Tensor:
    """(B, S, T) bool: the sampled frame each shape's event shows in: the first one after it
    (appear, colour change, collision), the last one before it (disappear). `changes`: the
    frame that shows it changed since the frame before, the first one after it for every event
    (a disappearance: the first frame without the object), never the first frame (nothing
    before it to differ from): what a frame row that also reads the frame before its own sees
    (`QFormerConfig.frame_row_lookback`)."""
    event, first_after = facts["event"], facts["event_bin"]  # (B, S) each
    disappear = (event == EVENT_TYPES.index("disappear")) & (not changes)
    shown_at = torch.where(disappear, first_after - 1, first_after)
    earliest = 1 if changes else 0
    timed = (event > 0) & (first_after != IGNORE) & (shown_at >= earliest) & (shown_at < frames)
    frame = torch.arange(frames)[None, None, :]  # (1, 1, T)
    return timed[..., None] & (shown_at[..., None] == frame)
