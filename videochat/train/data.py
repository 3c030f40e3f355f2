"""The original annotation formats and the training dataset built on them.

Captions: ``[{"video"|"image": file, "caption": str}]``; instructions: ``[{"video"|"image": file,
"QA": [{"q": str, "a": str}, ...], "i": optional instruction}]``. Every file has a media root.
A malformed file fails at start (file + entry index); a missing/corrupt media file becomes a
`BadSample` that the loop counts and logs instead of crashing the run.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from videochat.errors import MEDIA_LOAD_ERRORS, VideoChatError
from videochat.train.labels import (
    LabelledText,
    caption_sample,
    conversation_sample,
    conversation_text,
    rows_first_sample,
)
from videochat.train.prompts import load_prompts
from videochat.train.recipe import DataSource, Recipe
from videochat.train.visual_cache import VisualCache


class AnnotationError(VideoChatError):
    """An annotation file is missing or does not follow the caption / instruction format."""


@dataclass(frozen=True)
class Entry:
    """One annotation entry, validated."""

    media: str  # "video" | "image"
    path: str  # where the file is: the source's root joined with `name`
    name: str  # the file name as the annotation writes it (where it is does not matter)
    caption: str | None = None
    qa: tuple[tuple[str, str], ...] = ()
    instruction: str | None = None


def text_length(entry: Entry) -> int:
    """Characters of text an entry brings to a sample (a cheap stand-in for its token count)."""
    texts = [entry.caption or "", entry.instruction or "", *(q + a for q, a in entry.qa)]
    return sum(map(len, texts))


@dataclass
class Sample:
    pixels: torch.Tensor  # (T, 3, S, S), or (Q, C) Q-Former rows from a visual cache
    text: LabelledText
    media: str
    index: int
    times: torch.Tensor | None = None  # (T,) seconds of each frame (cached rows' too)


@dataclass
class BadSample:
    index: int
    path: str
    reason: str


def read_annotations(source: DataSource, stage: int) -> list[Entry]:
    """Read and validate one annotation file (stage 1: captions, stage 2: QA)."""
    path = Path(source.file)
    if not path.is_file():
        raise AnnotationError(f"annotation file {source.file} not found (check data / data_dir)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AnnotationError(f"{source.file}: not valid JSON ({exc})") from None
    if not isinstance(raw, list):
        raise AnnotationError(f"{source.file}: must hold a JSON list of entries")
    return [_entry(item, i, source, stage) for i, item in enumerate(raw)]


def _entry(item: object, i: int, source: DataSource, stage: int) -> Entry:
    def fail(why: str) -> AnnotationError:
        return AnnotationError(f"{source.file}: entry {i}: {why}")

    if not isinstance(item, dict):
        raise fail("must be an object")
    media = source.media or ("video" if "video" in item else "image")
    name = item.get(media)
    if not isinstance(name, str) or not name:
        raise fail(f'needs a "{media}" file name')
    full = str(Path(source.root) / name)
    if stage == 1:
        caption = item.get("caption")
        if not isinstance(caption, str) or not caption.strip():
            raise fail('needs a non-empty "caption" string')
        return Entry(media, full, name, caption=caption)
    qa = item.get("QA")
    if not isinstance(qa, list) or not qa:
        raise fail('needs a non-empty "QA" list of {"q": ..., "a": ...}')
    pairs = []
    for j, turn in enumerate(qa):
        if not (isinstance(turn, dict) and isinstance(turn.get("q"), str)):
            raise fail(f'QA[{j}] needs "q" and "a" strings')
        if not isinstance(turn.get("a"), str):
            raise fail(f'QA[{j}] needs "q" and "a" strings')
        pairs.append((turn["q"], turn["a"]))
    instruction = item.get("i")
    if instruction is not None and not isinstance(instruction, str):
        raise fail('"i" must be a string')
    return Entry(media, full, name, qa=tuple(pairs), instruction=instruction or None)


def read_all(recipe: Recipe) -> list[Entry]:
    """All entries of all files, in recipe order (the index space of the sampler)."""
    entries: list[Entry] = []
    for source in recipe.data:
        entries.extend(read_annotations(source, recipe.stage))
    if not entries:
        raise AnnotationError("the recipe's annotation files hold no entries: nothing to train on")
    return entries


class TrainDataset(Dataset):
    """Entries → (pixels, labelled text); keys are (epoch, index) so random choices are replayable."""

    def __init__(self, entries: list[Entry], recipe: Recipe, tokenizer, image_size: int) -> None:
        self.entries = entries
        self.recipe = recipe
        self.tokenizer = tokenizer
        self.image_size = image_size
        self.prompts = {
            image: load_prompts(recipe.prompt, image) if recipe.stage == 1 else []
            for image in (False, True)
        }
        self.cache: VisualCache | None = None  # set by the loop when the recipe asks for one

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, key: tuple[int, int]) -> Sample | BadSample:
        epoch, index = key
        entry = self.entries[index]
        rng = random.Random(f"sample-{self.recipe.seed}-{epoch}-{index}")
        times = None
        try:
            if self.cache is not None:
                cached = self.cache.pick(entry.path, rng)
                pixels, times, msg = cached.rows, cached.times, cached.msg
            else:
                pixels, times, msg = self.load_media(entry.media, entry.path, rng)
        except MEDIA_LOAD_ERRORS as exc:
            return BadSample(index, entry.path, str(exc) or type(exc).__name__)
        if not self.recipe.prompt.add_second_msg:
            msg = ""
        return Sample(pixels, self._text(entry, msg, rng), entry.media, index, times)

    def load_media(
        self, media: str, path: str, rng: random.Random
    ) -> tuple[torch.Tensor, torch.Tensor, str]:
        """Decode one file as the recipe samples it: pixels (T, 3, S, S), each frame's seconds
        (T,) (an image's one frame at 0) and the timestamp message, whether or not this recipe's
        prompt says it (`add_second_msg`): a kept visual cache holds what this returns, and a
        later recipe that loads it may say the message (session 41: the build's drill wrote
        its cache without the message and stage 0 trained without it, though the chat and the
        evaluation say it)."""
        from videochat.media import load_image, load_video

        if media == "image":
            pixels = load_image(path, size=self.image_size).pixels  # (1, 3, S, S)
            return pixels, torch.zeros(1), ""
        clip = load_video(
            path,
            num_frames=self.recipe.num_frames,
            sampling=self.recipe.sampling,
            size=self.image_size,
            rng=rng,
        )
        times = torch.tensor(clip.timestamps, dtype=torch.float32)  # (T,)
        return clip.pixels, times, self._second_msg(list(clip.indices), clip.fps)

    def _second_msg(self, indices: list[int], fps: float) -> str:
        from videochat.media.sample import round_timestamp

        if self.recipe.sampling == "rand":  # the original rounds Python ints here
            times = [str(round(i / fps, 1)) for i in indices]
        else:  # and numpy values for `middle`
            times = [str(round_timestamp(i / fps)) for i in indices]
        return f" The video contains {len(indices)} frames sampled at {', '.join(times)} seconds. "

    def _text(self, entry: Entry, msg: str, rng: random.Random) -> LabelledText:
        spec, image = self.recipe.prompt, entry.media == "image"
        if self.recipe.stage == 1:
            prompts = self.prompts[image]
            return caption_sample(
                self.tokenizer,
                entry.caption or "",
                rng.choice(prompts) if prompts else None,
                image=image,
                end_sym=spec.end_sym,
                max_txt_len=self.recipe.max_txt_len,
            )
        if spec.layout == "rows_first":
            return rows_first_sample(self.tokenizer, entry.qa)
        start, end = (
            (spec.img_start_token, spec.img_end_token)
            if image
            else (spec.start_token, spec.end_token)
        )
        system = spec.system if entry.instruction is None else _with_space(entry.instruction)
        text = conversation_text(entry.qa, start_token=start, end_token=end, msg=msg, system=system)
        return conversation_sample(self.tokenizer, text, end)


def _with_space(text: str) -> str:
    """The original requires a system text to end with one space (so `###` tokenises as one)."""
    return text.rstrip() + " "


@dataclass
class Batch:
    pixels: torch.Tensor | None  # (B, T, 3, S, S) or cached rows (B, Q, C); None: all bad
    texts: list[LabelledText]
    media: str | None
    indices: list[int]
    bad: list[BadSample]
    times: torch.Tensor | None = None  # (B, T) seconds of each frame (cached rows' too)

    def __len__(self) -> int:
        return len(self.texts)


def collate(items: list[Sample | BadSample]) -> Batch:
    """Stack the good samples of one media type; keep the bad ones for counting and logging."""
    good = [s for s in items if isinstance(s, Sample)]
    bad = [s for s in items if isinstance(s, BadSample)]
    pixels = torch.stack([s.pixels for s in good]) if good else None  # (B, T, 3, S, S)
    timed = good and all(s.times is not None for s in good)
    return Batch(
        pixels=pixels,
        texts=[s.text for s in good],
        media=good[0].media if good else None,
        indices=[s.index for s in good],
        bad=bad,
        times=torch.stack([s.times for s in good]) if timed else None,  # (B, T)
    )
