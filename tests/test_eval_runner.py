"""The runner on a small benchmark with known answers: accuracy, bad items, resume, protocols."""

import json

import pytest
from _eval_helpers import (
    FakeSession,
    colour_item,
    write_bench,
    write_frames,
    write_gif,
    write_video,
)

from videochat.errors import VideoChatError
from videochat.eval import (
    LMMS_EVAL,
    VIDEOCHAT2,
    VIDEOCHAT2_RANK,
    evaluate,
    format_table,
    get_protocol,
    load_benchmark,
    summarize,
)
from videochat.eval.bench import BenchmarkError


@pytest.fixture
def bench(tmp_path):
    """Four tasks, one per media kind / bound, 3 items each; answers known by construction."""
    media = tmp_path / "media"
    for colour in ("red", "green", "blue"):
        write_video(media / f"{colour}.mp4", [colour] * 8)
        write_gif(media / f"{colour}.gif", [colour] * 4)
        write_frames(media / f"{colour}_frames", [colour] * 6)
    # 3 s at 8 fps: red, then green, then blue; the window decides the answer
    write_video(media / "rgb.mp4", ["red"] * 8 + ["green"] * 8 + ["blue"] * 8)
    tasks = {
        "video": {"json": "video.json", "prefix": "../media", "data_type": "video", "bound": False},
        "gif": {"json": "gif.json", "prefix": "../media", "data_type": "gif", "bound": False},
        "frames": {"json": "frames.json", "prefix": "../media", "data_type": "frame", "fps": 3},
        "window": {
            "json": "window.json",
            "prefix": "../media",
            "data_type": "video",
            "bound": True,
        },
    }
    colours = ("red", "green", "blue")
    items = {
        "video": [colour_item(f"{c}.mp4", c) for c in colours],
        "gif": [colour_item(f"{c}.gif", c) for c in colours],
        "frames": [colour_item(f"{c}_frames", c) for c in colours],
        "window": [
            colour_item("rgb.mp4", "red", start=0.0, end=0.9),
            colour_item("rgb.mp4", "green", start=1.1, end=1.9),
            colour_item("rgb.mp4", "blue", start=2.1, end=2.9),
        ],
    }
    return write_bench(tmp_path / "bench", tasks, items)


def _results(records, protocol=VIDEOCHAT2):
    return summarize(records, protocol=protocol.name, num_frames=4, model="fake")


def test_known_answers_all_correct(bench):
    session = FakeSession()
    records = evaluate(session, load_benchmark(bench), VIDEOCHAT2, num_frames=4, progress=False)
    assert [r["letter"] for r in records] == ["A", "B", "C"] * 4
    assert all(r["correct"] and r["error"] is None for r in records)
    results = _results(records)
    assert results["average"] == 100.0 and results["failed"] == 0
    assert results["tasks"] == {"video": 100.0, "gif": 100.0, "frames": 100.0, "window": 100.0}
    # the protocol's prompt, priming and greedy settings reach the session
    call = session.calls[0]
    assert call["answer_prefix"] == "Best option:(" and call["do_sample"] is False
    assert call["text"].startswith(VIDEOCHAT2.system + "Question: What colour is shown?")
    assert session.last_add == {"num_frames": 4, "sampling": "middle", "start": 2.1, "end": 2.9}


def test_accuracy_counts_unparsed_answers_wrong(bench):
    # a model that answers "B" whatever it sees, and one whose replies name no option
    records = evaluate(
        FakeSession(reply=lambda letter, c: "B"), load_benchmark(bench), VIDEOCHAT2,
        num_frames=4, progress=False,
    )  # fmt: skip
    assert _results(records)["average"] == pytest.approx(100 / 3)
    records = evaluate(
        FakeSession(reply=lambda letter, c: "I cannot tell."),
        load_benchmark(bench),
        VIDEOCHAT2,
        num_frames=4,
        progress=False,
    )
    assert all(r["letter"] is None and not r["correct"] for r in records)
    assert _results(records)["average"] == 0.0


def test_lmms_eval_protocol(bench):
    session = FakeSession(reply=lambda letter, c: f"{letter}. {c[ord(letter) - 65]}")
    records = evaluate(session, load_benchmark(bench), LMMS_EVAL, num_frames=4, progress=False)
    assert _results(records, LMMS_EVAL)["average"] == 100.0
    assert session.calls[0]["text"].startswith("Question:What colour is shown?\nOption:\n(A) red\n")
    assert session.calls[0]["answer_prefix"] == "" and session.calls[0]["max_new_tokens"] == 16


def test_rank_protocol_scores_each_option_instead_of_generating(bench):
    session = FakeSession(reply=lambda letter, c: "no answer")  # generating would fail every item
    records = evaluate(
        session, load_benchmark(bench), VIDEOCHAT2_RANK, num_frames=4, progress=False
    )
    assert _results(records, VIDEOCHAT2_RANK)["average"] == 100.0
    call = session.calls[0]
    assert (
        call["replies"] == ["red)", "green)", "blue)"] and call["answer_prefix"] == "Best option:("
    )
    assert call["text"] == VIDEOCHAT2.question(load_benchmark(bench)[0])  # videochat2's prompt
    first = records[0]  # red.mp4: the first reply is the likeliest
    assert first["prediction"] == "red)" and first["letter"] == "A"
    assert first["scores"] == [0.0, -1.0, -1.0] and first["protocol"] == "videochat2-rank"
    generated = evaluate(
        FakeSession(), load_benchmark(bench)[:1], VIDEOCHAT2, num_frames=4, progress=False
    )
    assert "scores" not in generated[0]
    assert get_protocol("rank") is VIDEOCHAT2_RANK


def test_letter_rank_protocol_scores_letter_and_text(bench):
    session, protocol = FakeSession(), get_protocol("rank-letter")
    records = evaluate(session, load_benchmark(bench), protocol, num_frames=4, progress=False)
    assert _results(records, protocol)["average"] == 100.0
    assert session.calls[0]["replies"] == ["A) red", "B) green", "C) blue"]
    assert records[1]["prediction"] == "B) green" and records[1]["letter"] == "B"


def test_bad_items_are_recorded_and_counted_wrong(bench, tmp_path):
    (tmp_path / "media" / "corrupt.mp4").write_bytes(b"this is not a video" * 10)
    rows = json.loads((bench / "video.json").read_text())
    rows += [
        colour_item("missing.mp4", "red"),
        colour_item("corrupt.mp4", "red"),
        {**colour_item("red.mp4", "red"), "answer": "purple"},
        {**colour_item("green.mp4", "green"), "question": "BOOM"},
    ]
    (bench / "video.json").write_text(json.dumps(rows))
    session = FakeSession(fail_on=lambda text: "BOOM" in text)
    preds = tmp_path / "preds.jsonl"
    records = evaluate(
        session, load_benchmark(bench, ["video"]), VIDEOCHAT2, num_frames=4, predictions=preds,
        progress=False,
    )  # fmt: skip
    errors = [r["error"] for r in records]
    assert errors[:3] == [None, None, None]
    assert "missing.mp4" in errors[3]
    assert "corrupt.mp4" in errors[4]
    assert errors[5] == "bad item: answer 'purple' is not one of the candidates"
    assert errors[6] == "unexpected RuntimeError: CUDA out of memory (simulated)"
    results = _results(records)
    assert results["failed"] == 4
    assert results["tasks"]["video"] == pytest.approx(100 * 3 / 7)
    assert len(preds.read_text().splitlines()) == 7  # every item recorded, failures included
    assert "4 item(s) failed and are counted wrong" in format_table(results)


def test_resume_skips_recorded_items(bench, tmp_path):
    preds = tmp_path / "preds.jsonl"
    first = FakeSession()
    evaluate(first, load_benchmark(bench, limit=1), VIDEOCHAT2, num_frames=4, predictions=preds,
             progress=False)  # fmt: skip
    assert len(first.calls) == 4
    # an interrupted write leaves a torn last line: that item is redone, the rest reused
    with preds.open("a") as handle:
        handle.write('{"task": "video", "ind')
    second = FakeSession(reply=lambda letter, c: "A")  # answers differently: shows reuse
    records = evaluate(second, load_benchmark(bench), VIDEOCHAT2, num_frames=4, predictions=preds,
                       progress=False)  # fmt: skip
    assert len(second.calls) == 8  # 12 items, 4 already done
    assert len(preds.read_text().splitlines()) == 12
    # reused records keep their results (4 reds, right); the new ones (greens, blues) said "A"
    assert _results(records)["average"] == pytest.approx(100 * 4 / 12)
    third = FakeSession()
    evaluate(third, load_benchmark(bench), VIDEOCHAT2, num_frames=4, predictions=preds,
             progress=False)  # fmt: skip
    assert third.calls == []


def test_retry_failed_and_protocol_mismatch(bench, tmp_path):
    preds = tmp_path / "preds.jsonl"
    flaky = FakeSession(fail_on=lambda text: True, reply=lambda letter, c: letter)
    with pytest.raises(VideoChatError, match="the first 5 items all failed"):
        evaluate(flaky, load_benchmark(bench), VIDEOCHAT2, num_frames=4, predictions=preds,
                 progress=False)  # fmt: skip
    assert len(preds.read_text().splitlines()) == 5
    fixed = FakeSession()
    records = evaluate(fixed, load_benchmark(bench), VIDEOCHAT2, num_frames=4, predictions=preds,
                       retry_failed=True, progress=False)  # fmt: skip
    assert len(fixed.calls) == 12 and _results(records)["average"] == 100.0
    with pytest.raises(BenchmarkError, match="protocol 'videochat2' and 4 frames, not 'lmms-eval'"):
        evaluate(fixed, load_benchmark(bench), LMMS_EVAL, num_frames=4, predictions=preds)
