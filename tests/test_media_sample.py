"""Sampling policies: index-for-index parity with the original rules (fixtures from the original)."""

import json
import random

import pytest

from videochat.media import MediaRequestError, sample_indices
from videochat.media.sample import (
    demo_indices,
    fps_indices,
    middle_indices,
    rand_indices,
    sample_window,
    timestamp_message,
)


@pytest.fixture(scope="module")
def get_index(fixtures_dir):
    return json.loads((fixtures_dir / "media" / "get_index.json").read_text())


@pytest.fixture(scope="module")
def frame_indices(fixtures_dir):
    return json.loads((fixtures_dir / "media" / "frame_indices.json").read_text())


def test_demo_rule_matches_get_index_grid(get_index):
    cases = get_index["get_index_grid"]
    assert len(cases) == 40
    for case in cases:
        got = sample_indices("demo", case["num_frames"], case["num_segments"], fps=25.0)
        assert got == case["indices"], case


def test_timestamp_messages_use_numpy_rounding(get_index):
    for case in get_index["load_video_timestamp_messages"]:
        indices = demo_indices(case["num_frames"], case["num_segments"])
        assert indices == case["indices"]
        message = timestamp_message([i / case["fps"] for i in indices])
        assert message == case["msg"]
    # the half-to-even cases the README warns about: idx 3 and 1 at 20 fps
    assert timestamp_message([3 / 20, 1 / 20]).endswith("at 0.2, 0.0 seconds.")


def test_middle_and_fix_start_match_get_frame_indices(frame_indices):
    cases = frame_indices["middle_grid"]
    assert len(cases) == 40
    for case in cases:
        assert sample_indices("middle", case["vlen"], case["num_frames"], 25.0) == case["middle"]
        assert middle_indices(case["vlen"], case["num_frames"], fix_start=0) == case["fix_start_0"]


def test_fps_sampling_matches_original(frame_indices):
    for case in frame_indices["fps_sampling"]:
        rate = float(case["sample"][3:])
        got = fps_indices(case["vlen"], case["input_fps"], rate, case["max_num_frames"])
        assert got == case["indices"], case
        policy = f"fps:{case['sample'][3:]}"
        assert (
            sample_indices(policy, case["vlen"], case["max_num_frames"], case["input_fps"]) == got
        )
    assert sample_indices("fps1", 100, -1, 30.0) == [15, 45, 75]  # original spelling accepted


def test_rand_stays_in_each_interval_and_is_seedable():
    for vlen, n in [(100, 4), (30, 8), (1000, 16)]:
        got = rand_indices(vlen, n, random.Random(0))
        assert got == rand_indices(vlen, n, random.Random(0))
        for (lo, hi), idx in zip(_ranges(vlen, n), got, strict=True):
            assert lo <= idx < hi  # the interval's last frame is never drawn, as in the original
    draws = {tuple(rand_indices(100, 4, random.Random(s))) for s in range(20)}
    assert len(draws) > 10


def test_rand_fallback_and_padding_when_intervals_are_empty(frame_indices):
    # vlen 3, 4 frames: every interval is a single frame -> sorted random subset, padded with last
    example = frame_indices["rand_examples_not_reproducible"][0]
    assert example["one_draw_seeded_1234"] == [0, 1, 2, 2]
    for seed in range(5):
        assert rand_indices(3, 4, random.Random(seed)) == [0, 1, 2, 2]
    got = rand_indices(7, 6, random.Random(1))  # intervals of 1 frame -> fallback subset
    assert got == sorted(got) and len(set(got)) == 6 and max(got) < 7


def test_window_restricts_to_seconds():
    # 10 s at 10 fps, window [2 s, 4 s] -> frames 20..40, demo rule inside it
    got = sample_window("demo", 100, 4, 10.0, start=2.0, end=4.0)
    assert got == [20 + i for i in demo_indices(21, 4)]
    assert all(20 <= i <= 40 for i in sample_window("middle", 100, 8, 10.0, 2.0, 4.0))
    assert sample_window("demo", 100, 4, 10.0, end=50.0) == demo_indices(100, 4)  # clamped


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: sample_indices("uniform", 10, 4, 25.0), "unknown sampling policy 'uniform'"),
        (lambda: sample_indices("fps:abc", 10, 4, 25.0), "write fps:<frames per second>"),
        (lambda: sample_indices("fps:0", 10, 4, 25.0), "write fps:<frames per second>"),
        (lambda: sample_indices("demo", 10, 0, 25.0), "num_frames must be at least 1"),
        (lambda: sample_window("demo", 100, 4, 10.0, 20.0, None), "past the end of the video"),
        (lambda: sample_window("demo", 100, 4, 10.0, 5.0, 3.0), "must be after its start"),
        (lambda: sample_window("demo", 100, 4, 10.0, None, 0.0), "window end (0.0 s"),
        (lambda: sample_window("demo", 100, 4, 10.0, -1.0, None), "start must be a number"),
        (lambda: sample_window("demo", 100, 4, 10.0, float("nan")), "start must be a number"),
        (lambda: sample_window("demo", 100, 4, 10.0, 0.0, float("inf")), "end must be a number"),
    ],
)
def test_bad_requests_say_what_is_wrong(call, words):
    with pytest.raises(MediaRequestError, match=words.replace("(", r"\(")):
        call()


def _ranges(vlen, n):
    import numpy as np

    edges = np.linspace(0, vlen, min(n, vlen) + 1).astype(int)
    return [(int(edges[i]), int(edges[i + 1]) - 1) for i in range(len(edges) - 1)]
