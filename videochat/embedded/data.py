"""Training annotations for the embedded model, derived from one `videochat synth` directory.

Stage 0/2 read ``train_video.json`` (original instruction format), short conversations per video:
the training seed's benchmark questions written exactly as the evaluation protocol asks them
(system text + ``Question: … Options: …``; with ``every_object``, colour, shape and direction are
asked about every object instead of one), the free-form questions, the open-ended description
and the caption. Stage 1 reads ``captions_video.json``; the drill ``drill_video.json``
(every multiple-choice item about every object, one a sample; optionally every task as often);
each focus stage ``<stage>_video.json`` (the drill's questions of one task alone,
``FOCUS_TASKS``); the timing mix ``timing_mix_video.json`` (the event-time questions twice, among
as many drill questions, `timing_mix_entries`); the stage-0 mix ``stage0_mix_video.json`` (the
weakest tasks' questions in stage 0's layout among as many of its conversations,
`stage0_mix_entries`).

The multiple-choice answers name the option's text, not its letter: ``Best option:(blue)``. Why:
our from-scratch 4-layer LLM does not learn to find the letter of the option it means (three
hops: read the answer from the video, find the option with that text, take the letter before
it). Trained on letters, its letter for the object count stayed at chance after 1,000 steps, and
after 750 when it had first learnt the lookup on text alone (97% right on one-word options);
trained on option text, it names the right count for 83% of held-out videos after 1,000 steps
(runs on cached visual features, model card). `videochat.eval.parse.parse_option` maps an answer that is
one option's text to that option's letter, as it does for any model.
"""

from __future__ import annotations

import json
import random
import zlib
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from videochat.eval.protocols import VIDEOCHAT2
from videochat.synth.plan import TIME_GRID
from videochat.synth.questions import (
    PER_OBJECT,
    TASKS,
    Question,
    event_time_questions,
    order_questions,
    per_object_questions,
    time_text,
    time_value,
)

TRAIN_FILE = "train_video.json"
DRILL_FILE = "drill_video.json"
# the focus stages, in build order (before the drill, each on the drill's questions of one task
# alone) → their tasks. lookup: "What colour is the circle?" names the object by its shape, whose
# rows the Q-Former keeps apart, and answers with what those rows see. reverse: "What shape is
# the orange object?" finds the object by its colour (toy runs: 94.7% at step 600 when asked
# alone, 30% in the drill's mix). motion: in toy runs on merged stretch rows, direction was
# learnt when asked alone after colour (92.5% within 200 steps of 64) and never in a mix with
# the other tasks (20-35% to step 1,000); in a build, 82.5% after 300 steps (session 17). order,
# timing: temporal order and event time, whose answers the drilled model most often writes as a
# phrase of its own instead of one of the options (24 of 36 and 26 of 67 items, session 17; all:
# docs/embedded-experiments.md)
FOCUS_TASKS: dict[str, tuple[str, ...]] = {
    "lookup": ("object_colour",),
    "reverse": ("object_shape",),
    "motion": ("motion_direction",),
    "order": ("temporal_order",),
    "timing": ("event_localisation",),
}


# a late stage of the drill's recipe on the event-time questions mixed with the drill's (see
# `timing_mix_entries`); its file is named like a focus stage's
TIMING_MIX = "timing_mix"
TIMING_MIX_REPEATS = 2  # each event-time question this often, among as many drill questions


def focus_file(stage: str) -> str:
    """The data file of a focus stage (`FOCUS_TASKS`), of `TIMING_MIX` or of `STAGE0_MIX`,
    beside the drill's."""
    return f"{stage}_video.json"


def timing_mix_entries(timing: list[dict], drill: list[dict]) -> list[dict]:
    """Every event-time entry `TIMING_MIX_REPEATS` times among as many drill entries
    (`half_mix`): half the questions (more with the drill's own) ask event times.
    Why: 300 steps of event times alone after the late stages lift them (b39: 58.2 → 71.6%) but
    undo the colour and shape lookups (67, 57%: x1). Mixed half and half with the drill (session
    37, after b46's late stages) temporal order rises in every draw (75.0 → 86-89%) and the
    lookups stay, but event time moves by the draw (50.7-64.2%), and as the last stage it halves
    the open-ended answers (b49: free form 73.3 → 50.8%); before the late stage 0 or the late
    drill its gains fade (x9, x10). Off in the committed recipe."""
    return half_mix(timing * TIMING_MIX_REPEATS, drill)


# a late stage of stage 0's recipe on the questions of the tasks the late stage 0 leaves weakest,
# asked as the evaluation asks them, among as many of stage 0's conversations
# (`stage0_mix_entries`): task → how often each of its questions
STAGE0_MIX = "stage0_mix"
STAGE0_MIX_REPEATS: dict[str, int] = {
    "temporal_order": 2,
    "event_localisation": 1,
    "state_change": 1,
    "cause_effect": 1,
}
# with the build's `mix_lookups` the lookups' questions join them, a seeded sample of this share
# of each (a quarter: about as many as the temporal-order questions twice). Why: the late shape
# stage can undo the colour lookup (session 44: Q's colour 86 → 35% over it, 75% at the end);
# all of them once (three quarters of the mix's questions) took order and event time down
STAGE0_MIX_LOOKUPS = ("object_colour", "object_shape")
STAGE0_MIX_LOOKUP_SHARE = 0.25


def stage0_mix_tasks(lookups: bool = False) -> tuple[str, ...]:
    """The tasks the stage-0 mix asks (`STAGE0_MIX_REPEATS`, and `STAGE0_MIX_LOOKUPS` when
    `lookups`)."""
    return (*STAGE0_MIX_REPEATS, *(STAGE0_MIX_LOOKUPS if lookups else ()))


def stage0_mix_entries(
    asked: dict[str, list[dict]], conversations: list[dict], lookups: bool = False
) -> list[dict]:
    """The drill's entries of each `STAGE0_MIX_REPEATS` task (`asked`: task → entries) that
    often (with `lookups` also `STAGE0_MIX_LOOKUP_SHARE` of each lookup task's), each with the
    protocol's system text as stage 0 gives it, among as many of stage 0's `conversations`
    (`half_mix`). Why: in stage 0's conversations temporal order is 2% of the
    questions, and after the late stage 0 it stays at 58% (J, session 41); asked alone in that
    layout it reaches 86% in 300 steps but colour, state and cause fall (80.7% task mean), and
    the late stage 0 after it takes order back to 58%. Half and half with the conversations,
    600 steps after J's late stage 0 (session 42; seed-1000 / seed-3000 benchmarks): order
    58.3 → 66.7% / 47.4 → 63.9%, event time 52.2 → 50.7% / 54.1 → 58.2%, state and cause held;
    with order and event time alone in the half, order 72.2% / 71.1% but state 80.4% and cause
    81.4% on seed 1000 (docs/embedded-experiments.md, "Session 42"). In the committed recipe
    (b51: 600 steps)."""
    weak = [entry for task, n in STAGE0_MIX_REPEATS.items() for entry in asked[task] * n]
    if lookups:
        rng = random.Random(1)
        for task in STAGE0_MIX_LOOKUPS:
            weak += rng.sample(asked[task], round(len(asked[task]) * STAGE0_MIX_LOOKUP_SHARE))
    return half_mix([{**entry, "i": VIDEOCHAT2.system} for entry in weak], conversations)


def half_mix(wanted: list[dict], others: list[dict]) -> list[dict]:
    """`wanted` among as many of `others` (drawn once, with a fixed seed; all of them where
    there are fewer), shuffled."""
    rng = random.Random(0)
    entries = wanted + rng.sample(others, min(len(others), len(wanted)))
    rng.shuffle(entries)
    return entries


TURNS_PER_CONVERSATION = 1
FREE_FORM_PER_VIDEO = 3  # the facts repeat in the MCQ turns and the description
# "Which of these happened first?" names no answer without its options, and the times of events
# are one of three listed
OPTIONS_NEEDED = frozenset({"temporal_order", "event_localisation"})


def protocol_turn(item: dict, with_system: bool = True) -> dict[str, str]:
    """One benchmark item as the evaluation asks it (optionally without the protocol's system
    text in front of the question, which saves ~45 tokens a turn), with the expected answer."""
    question = VIDEOCHAT2.question(SimpleNamespace(**item))
    if not with_system:
        question = question.removeprefix(VIDEOCHAT2.system)
    return {"q": question, "a": f"{VIDEOCHAT2.answer_prefix}{item['answer']})"}


def mcq_items(
    data_dir: Path,
    every_object: bool = False,
    every_event: bool = False,
    event_draws: int = 1,
    every_order: bool = False,
) -> dict[str, list[dict]]:
    """Each video's multiple-choice items (the training seed's benchmark), keyed by its media
    path. `every_object`: the `PER_OBJECT` tasks ask about each object they apply to
    (`object_items`) instead of the benchmark's one; `every_event`: event time is asked about
    each scripted event (`event_items`, `event_draws` times) instead of the benchmark's one;
    `every_order`: temporal order is asked both ways (`order_items`)."""
    # the tasks each option asks in its own way instead of the benchmark's, and those items
    asked_otherwise = [
        (tuple(PER_OBJECT), lambda: object_items(data_dir)) if every_object else None,
        (EVENT_TASKS, lambda: event_items(data_dir, event_draws)) if every_event else None,
        (ORDER_TASKS, lambda: order_items(data_dir)) if every_order else None,
    ]
    asked_otherwise = [pair for pair in asked_otherwise if pair is not None]
    replaced = {task for tasks, _ in asked_otherwise for task in tasks}
    per_video: dict[str, list[dict]] = defaultdict(list)
    for task in [t for t in TASKS if t not in replaced]:
        for item in json.loads((data_dir / "benchmark" / f"{task}.json").read_text()):
            per_video[f"videos/{item['video']}"].append({**item, "task": task})
    for _, items_of in asked_otherwise:
        for video, items in items_of().items():
            per_video[video] += items
    return per_video


def mcq_turns(
    data_dir: Path, every_object: bool = False, nearest_times: bool = False
) -> dict[str, list[dict]]:
    """`mcq_items` in protocol form; one of each video's items (drawn per video) carries the
    protocol's system text exactly as the evaluation asks, the others go without.
    `nearest_times`: see `nearest_time_items`."""
    out = {}
    for video, items in mcq_items(data_dir, every_object).items():
        if nearest_times:
            items = [item for _, item in nearest_time_items([(video, i) for i in items])]
        keep = random.Random(video).randrange(len(items))
        out[video] = [protocol_turn(item, with_system=j == keep) for j, item in enumerate(items)]
    return out


def drill_turn(item: dict, with_options: bool = True) -> dict[str, str]:
    """One item as the drill asks it: the protocol question without the system text, or (not
    `with_options`) the question alone, except where the question points at its options or its
    answer is one of a few listed times (`OPTIONS_NEEDED`). Why: in toy runs a fresh LLM given
    the options first learns to name any listed colour and finds the named object's rows later
    (76.8% against 94.7% without them at step 300; docs/embedded-experiments.md, "The drill")."""
    turn = protocol_turn(item, with_system=False)
    if with_options or item["task"] in OPTIONS_NEEDED:
        return turn
    return {**turn, "q": f"Question: {item['question']}"}


def drill_entries(
    data_dir: Path,
    balanced: bool = False,
    with_options: bool = True,
    tasks: tuple[str, ...] = TASKS,
    items: list[tuple[str, dict]] | None = None,
) -> list[dict]:
    """The drill's data: every multiple-choice item of `tasks` about every object, one per entry,
    without the system text (the drill's `rows_first` layout has none), shuffled. `balanced`:
    every task as often as the commonest (`balance_tasks`); `with_options`: see `drill_turn`;
    `items`: `drill_items(data_dir)` when the caller already has them."""
    if items is None:
        items = drill_items(data_dir)
    items = [(video, item) for video, item in items if item["task"] in tasks]
    if balanced:
        items = balance_tasks(items)
    entries = [{"video": video, "QA": [drill_turn(item, with_options)]} for video, item in items]
    random.Random(0).shuffle(entries)
    return entries


def drill_items(
    data_dir: Path, every_event: bool = False, event_draws: int = 1, every_order: bool = False
) -> list[tuple[str, dict]]:
    """(media path, item) for every multiple-choice item about every object (`every_event`:
    and about every event's time, `event_draws` times; `every_order`: temporal order both
    ways), by video."""
    asked = mcq_items(data_dir, True, every_event, event_draws, every_order)
    per_video = sorted(asked.items())
    return [(video, item) for video, video_items in per_video for item in video_items]


def balance_tasks(items: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """`items` plus re-asked copies of the rarer tasks' items, with their options in another
    order, until every task has as many as the commonest. Why: asked about every object, colour
    and shape are 30% of the drill each and temporal order 4%, and the tasks the model fails are
    the rare ones (the committed drill asks 23,000 colour questions and 2,900 on temporal order)."""
    by_task: dict[str, list[tuple[str, dict]]] = defaultdict(list)
    for video, item in items:
        by_task[item["task"]].append((video, item))
    target = max(len(group) for group in by_task.values())
    out = list(items)
    for task, group in sorted(by_task.items()):
        for k in range(target - len(group)):
            video, item = group[k % len(group)]
            rng = random.Random(f"{video}-{task}-{k}")
            candidates = rng.sample(item["candidates"], len(item["candidates"]))
            out.append((video, {**item, "candidates": candidates}))
    return out


def nearest_time_items(items: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """`items` with each event-time item's right option listed one grid step early, on time or
    one step late (drawn per item); the answer is that listed option, the one nearest the truth
    (the others are >= 1.5 s from the truth). Why: on the benchmark's items (right option = truth)
    the LLM can be right by writing its own estimate from the frames, and it does, off by one
    step for a third of them (b39, session 35); here only the option it reads from the question
    is right. In the committed recipe's late stages (b46, session 36): temporal order 69.4 →
    75.0%, event time 58.2 → 59.7% (seed-3000 benchmark: 67.0 → 81.4%, 51.5 → 54.6%); most
    wrong event times are still the right second with the wrong decimal
    (docs/embedded-experiments.md, "Session 36")."""
    out = []
    for video, item in items:
        if item["task"] == "event_localisation":
            truth = item["answer"]
            draw = f"-{item['draw']}" if item.get("draw") else ""  # a repeat draws anew
            step = random.Random(f"{video}-{item['question']}{draw}").choice((-1, 0, 1))
            listed = time_text(time_value(truth) + step * TIME_GRID)
            candidates = [listed if c == truth else c for c in item["candidates"]]
            item = {**item, "candidates": candidates, "answer": listed}
        out.append((video, item))
    return out


def object_items(data_dir: Path) -> dict[str, list[dict]]:
    """Per video (media path): colour, shape and direction asked about every object they apply
    to, as benchmark items. Asked about one object drawn at random, a model that reads the rows
    of all objects at once is often right (always with one object); asked about each, only
    reading the row of the object named is."""
    return scene_items(data_dir, lambda rng, scene, record: per_object_questions(rng, scene))


# the task `event_items` asks about every event instead of the benchmark's one
EVENT_TASKS = ("event_localisation",)


def event_items(data_dir: Path, draws: int = 1) -> dict[str, list[dict]]:
    """Per video (media path): the time of every scripted event, as benchmark items; with
    `draws` > 1 each event is asked that often, its distractors and their order drawn anew each
    time (the repeats marked ``"draw": k``). Why: the benchmark asks about one event a video,
    and the late timing stage fits those questions (loss 0.0000 at batch 64, session 52) while
    a third to a half of held-out event times stay wrong; the videos hold about 2.3 times as
    many events. Drawn anew, a video's answer is not one fixed option to remember. On session
    52's H2 exports (session 53): event time 64.2 / 62.2 / 47.1% → 68.7 / 56.6 / 55.9% with
    every event asked once, 71.6 / 63.3 / 63.2% with three draws (seed-1000 / 3000 / 4000
    benchmarks), the task mean 83.6 / 85.9 / 84.9 → 86.4 / 87.0 / 90.5%."""
    asked: dict[str, list[dict]] = defaultdict(list)
    for k in range(draws):
        drawn = scene_items(
            data_dir,
            lambda rng, scene, record: event_time_questions(rng, scene, record["events"]),
            salt="events" + (f"-{k}" if k else ""),
        )
        for video, items in drawn.items():
            asked[video] += [{**item, "draw": k} if k else item for item in items]
    return dict(asked)


# the task `order_items` asks both ways instead of the benchmark's one
ORDER_TASKS = ("temporal_order",)


def order_items(data_dir: Path) -> dict[str, list[dict]]:
    """Per video (media path): which event happened first and which last, both asked (the
    benchmark asks one). Why: most of j1's wrong temporal-order answers are phrases of its own,
    not options (session 53), as its event times were before `event_items`' draws."""
    return scene_items(
        data_dir,
        lambda rng, scene, record: order_questions(rng, scene, record["events"]),
        salt="order",
    )


def scene_items(
    data_dir: Path, ask: Callable[..., list[Question]], salt: str = ""
) -> dict[str, list[dict]]:
    """Per video (media path): the questions `ask(rng, scene, record)` writes about each video
    scene of scenes.jsonl, as benchmark items; `rng` seeded by the media path (and `salt`)."""
    from videochat.synth.world import Scene

    out = {}
    for line in (data_dir / "scenes.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("kind", "video") != "video":
            continue
        rng = np.random.default_rng(zlib.crc32((record["media"] + salt).encode()))
        questions = ask(rng, Scene.from_dict(record), record)
        out[record["media"]] = [
            {"question": q.question, "candidates": q.candidates, "answer": q.answer, "task": q.task}
            for q in questions
        ]
    return out


def open_turns(entry: dict, caption: str, index: int) -> list[dict]:
    """A few of the video's free-form questions, its description (its MCQ turns are replaced by
    the protocol form) and its caption asked with a stage-1 prompt, so the LLM knows that form."""
    from videochat.synth.describe import description_prompts
    from videochat.train.prompts import VIDEO_PROMPTS

    prompt = VIDEO_PROMPTS[index % len(VIDEO_PROMPTS)].split("</Video>", 1)[1].strip()
    prompts = set(description_prompts("video"))
    qa = [t for t in entry["QA"] if not t["q"].startswith("Question:")]
    described = [t for t in qa if t["q"] in prompts]
    free = [t for t in qa if t["q"] not in prompts]
    free = random.Random(entry["video"]).sample(free, min(FREE_FORM_PER_VIDEO, len(free)))
    return [*free, *described, {"q": prompt, "a": caption}]


def train_entries(
    data_dir: Path, every_object: bool = False, nearest_times: bool = False
) -> list[dict]:
    """Short conversations (`TURNS_PER_CONVERSATION` turns, shuffled) per video: in a long one
    the 16 visual rows are a sliver of the context and the first run learned to ignore them.
    `nearest_times`: see `nearest_time_items`."""
    captions = json.loads((data_dir / "captions_video.json").read_text())
    instructions = json.loads((data_dir / "instructions_video.json").read_text())
    mcq = mcq_turns(data_dir, every_object, nearest_times)
    entries = []
    for i, (entry, cap) in enumerate(zip(instructions, captions, strict=True)):
        turns = mcq.get(entry["video"], []) + open_turns(entry, cap["caption"], i)
        order = random.Random(i).sample(range(len(turns)), len(turns))
        qa = [turns[j] for j in order]
        for start in range(0, len(qa), TURNS_PER_CONVERSATION):
            chunk = qa[start : start + TURNS_PER_CONVERSATION]
            entries.append({"video": entry["video"], "QA": chunk, "i": VIDEOCHAT2.system})
    return entries


def write_annotations(
    data_dir: str | Path,
    every_object: bool = False,
    balanced_drill: bool = False,
    drill_options: bool = True,
    bare_lookup: bool = False,
    nearest_times: bool = False,
    mix_lookups: bool = False,
    every_event: bool = False,
    event_draws: int = 1,
    every_order: bool = False,
) -> int:
    """Write the instruction and drill files next to the synthetic data; return the instruction
    file's entry count. `bare_lookup`: the lookup stage's colour questions go without their
    options (`drill_turn`), whatever the drill's `drill_options`; `nearest_times`: every
    event-time question lists its right time near the truth (`nearest_time_items`);
    `mix_lookups`: the stage-0 mix asks the colour and shape questions too; `every_event`: the
    drill and its subsets ask every event's time (`event_items`), `event_draws` times (the
    stage-0 mix once); `every_order`: and temporal order both ways (`order_items`)."""
    data_dir = Path(data_dir)
    entries = train_entries(data_dir, every_object, nearest_times)
    (data_dir / TRAIN_FILE).write_text(json.dumps(entries, indent=1) + "\n")
    # derived once: each focus file is a subset
    items = drill_items(data_dir, every_event, event_draws, every_order)
    if nearest_times:
        items = nearest_time_items(items)
    drill = drill_entries(data_dir, balanced_drill, drill_options, items=items)
    (data_dir / DRILL_FILE).write_text(json.dumps(drill, indent=1) + "\n")
    focus = {}
    for stage, tasks in FOCUS_TASKS.items():
        options = drill_options and not (bare_lookup and stage == "lookup")
        focus[stage] = drill_entries(data_dir, with_options=options, tasks=tasks, items=items)
        (data_dir / focus_file(stage)).write_text(json.dumps(focus[stage], indent=1) + "\n")
    mix = timing_mix_entries(focus["timing"], drill)
    (data_dir / focus_file(TIMING_MIX)).write_text(json.dumps(mix, indent=1) + "\n")
    first_draws = [(video, item) for video, item in items if not item.get("draw")]
    asked = {
        task: drill_entries(data_dir, tasks=(task,), items=first_draws)
        for task in stage0_mix_tasks(mix_lookups)
    }
    mix = stage0_mix_entries(asked, entries, mix_lookups)
    (data_dir / focus_file(STAGE0_MIX)).write_text(json.dumps(mix, indent=1) + "\n")
    return len(entries)


def corpus(data_dir: str | Path) -> list[str]:
    """Every text the model will read or write: the tokenizer is learned on these.

    The training conversations are those of the default data options, whatever the build's
    (`--every-object` asks the same sentences about more objects), so builds that differ only
    in the data options share the tokenizer, the initial model and the vision stage."""
    from videochat.synth.describe import description_prompts
    from videochat.train.prompts import IMAGE_PROMPTS, VIDEO_PROMPTS

    data_dir = Path(data_dir)
    texts = [VIDEOCHAT2.system, *VIDEO_PROMPTS, *IMAGE_PROMPTS]
    texts += list(description_prompts("video")) + list(description_prompts("image"))
    for name in ("captions_video.json", "captions_image.json"):
        texts += [e["caption"] for e in json.loads((data_dir / name).read_text())]
    entries = [
        *json.loads((data_dir / "instructions_video.json").read_text()),
        *json.loads((data_dir / "instructions_image.json").read_text()),
        *train_entries(data_dir),
    ]
    for entry in entries:
        texts += [f"{t['q']} {t['a']}" for t in entry["QA"]]
    texts.append("The video contains 8 frames sampled at 0.5, 1.5, 2.5 seconds.")
    return texts
