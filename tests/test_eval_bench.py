"""Reading the benchmark layout, its errors, and frame-folder packing."""

import io
import json

import pytest
from _eval_helpers import colour_item, decode_rgb, dominant_colour, write_bench, write_frames

from videochat.eval.bench import BenchmarkError, load_benchmark, load_tasks
from videochat.eval.frames import frame_folder_video, list_frames, natural_key


def test_dict_table_relative_prefix_and_items(tmp_path):
    bench = write_bench(
        tmp_path / "bench",
        {
            "colour": {
                "json": "colour.json",
                "prefix": "../videos",
                "data_type": "video",
                "bound": True,
            }
        },
        {"colour": [colour_item("a.mp4", "red", start=0.5, end=1.5), colour_item("b.mp4", "blue")]},
    )
    items = load_benchmark(bench)
    assert [i.index for i in items] == [0, 1]
    assert items[0].media_path == bench / "../videos" / "a.mp4"
    assert (items[0].start, items[0].end) == (0.5, 1.5)
    assert (items[1].start, items[1].end) == (None, None)
    assert [i.answer_letter for i in items] == ["A", "C"]
    assert all(i.problem is None for i in items)


def test_original_list_table_and_absolute_prefix(tmp_path):
    media = tmp_path / "media"
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "tasks.json").write_text(
        json.dumps({"Episodic Reasoning": ["ep.json", str(media), "frame", True]})
    )
    (bench / "ep.json").write_text(json.dumps([colour_item("clip1", "green", start=0, end=2)]))
    (task,) = load_tasks(bench)
    assert (task.data_type, task.bound, task.fps, task.media_root) == ("frame", True, 3.0, media)
    assert load_benchmark(bench)[0].media_path == media / "clip1"


def test_task_selection_and_limit(tmp_path):
    rows = [colour_item(f"{i}.mp4", "red") for i in range(5)]
    bench = write_bench(
        tmp_path,
        {"a": {"json": "a.json", "prefix": "."}, "b": {"json": "b.json", "prefix": "."}},
        {"a": rows, "b": rows},
    )
    assert {i.task for i in load_benchmark(bench, ["b"])} == {"b"}
    assert len(load_benchmark(bench, limit=2)) == 4
    with pytest.raises(BenchmarkError, match=r"unknown task\(s\) c; .* has: a, b"):
        load_benchmark(bench, ["c"])


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (None, r"tasks\.json.*not found"),
        ("{not json", "is not valid JSON"),
        ("{}", "non-empty object"),
        ('{"t": {"json": "t.json"}}', "needs at least the keys 'json' and 'prefix'"),
        ('{"t": {"json": "t.json", "prefix": ".", "data_type": "audio"}}', "'audio' is not one of"),
        ('{"t": {"json": "missing.json", "prefix": "."}}', r"items file of task 't' not found"),
    ],
)
def test_bad_tables_say_what_is_wrong(tmp_path, table, message):
    if table is not None:
        (tmp_path / "tasks.json").write_text(table)
    with pytest.raises(BenchmarkError, match=message):
        load_benchmark(tmp_path)


def test_missing_benchmark_dir(tmp_path):
    with pytest.raises(BenchmarkError, match="benchmark directory not found"):
        load_benchmark(tmp_path / "nope")


def test_malformed_items_are_kept_with_their_problem(tmp_path):
    rows = [
        {"video": "a.mp4", "question": "q", "candidates": ["x", "y"], "answer": "z"},
        {"video": "a.mp4", "question": "q", "candidates": ["x"], "answer": "x"},
        "not an object",
        {"video": "a.mp4", "question": "q", "candidates": ["x", "y"], "answer": "x", "start": 3,
         "end": 1},
        colour_item("ok.mp4", "red"),
    ]  # fmt: skip
    bench = write_bench(
        tmp_path, {"t": {"json": "t.json", "prefix": ".", "bound": True}}, {"t": rows}
    )
    problems = [i.problem for i in load_benchmark(bench)]
    assert problems[0] == "answer 'z' is not one of the candidates"
    assert "at least two strings" in problems[1]
    assert problems[2] == "item is not a JSON object"
    assert problems[3] == "end (1.0) is before start (3.0)"
    assert problems[4] is None


def test_frame_folder_natural_order_and_packing(tmp_path):
    colours = ["red"] * 4 + ["green"] * 4 + ["blue"] * 4  # 12 frames at 3 fps = 4 s
    folder = write_frames(tmp_path / "clip", colours)
    frames = list_frames(folder)
    assert [p.name for p in frames][:3] == ["1.png", "2.png", "3.png"]
    assert frames[-1].name == "12.png"  # not after 1.png as plain sorting would put it
    assert sorted(["f10", "f2", "f1"], key=natural_key) == ["f1", "f2", "f10"]

    clip, count = frame_folder_video(folder, num_frames=3, fps=3.0)
    assert count == 3
    decoded, _ = decode_rgb(io.BytesIO(clip))
    assert [dominant_colour(f[None]) for f in decoded] == ["red", "green", "blue"]
    assert (decoded[0] == [230, 20, 20]).all()  # PNG in MOV: exact pixels

    # window [2.8 s, 4 s] at 3 fps = frames 8..11: all blue
    clip, count = frame_folder_video(folder, num_frames=2, fps=3.0, start=2.8, end=4.0)
    decoded, _ = decode_rgb(io.BytesIO(clip))
    assert count == 2 and [dominant_colour(f[None]) for f in decoded] == ["blue", "blue"]


def test_frame_times_are_true_times(tmp_path):
    import av

    folder = write_frames(tmp_path / "clip", ["red"] * 12)
    clip, _ = frame_folder_video(folder, num_frames=4, fps=3.0)
    with av.open(io.BytesIO(clip)) as container:
        times = [round(f.time, 1) for f in container.decode(video=0)]
    # middle of 4 intervals of 12 frames: indices 1, 4, 7, 10 -> 0.33, 1.33, 2.33, 3.33 s
    assert times == [0.3, 1.3, 2.3, 3.3]


def test_empty_or_missing_frame_folder(tmp_path):
    from videochat.media.errors import MediaNotFoundError

    (tmp_path / "empty").mkdir()
    with pytest.raises(MediaNotFoundError, match="holds no images"):
        frame_folder_video(tmp_path / "empty", 4, 3.0)
    with pytest.raises(MediaNotFoundError, match="frame folder not found"):
        frame_folder_video(tmp_path / "absent", 4, 3.0)
