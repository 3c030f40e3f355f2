"""End to end with the real pieces: tiny random VideoChat, media pipeline, ChatSession, CLI.

A random model's answers are noise, so these tests check the plumbing, not accuracy: every item is
asked and recorded without failure, frames reach the model through the media pipeline (including
packed frame folders), greedy runs are repeatable, and resume reuses the recorded answers.
"""

import io
import json

import pytest
from _chat_helpers import fixture_tokenizer
from _eval_helpers import colour_item, write_bench, write_frames, write_gif, write_video

from videochat.cli import main
from videochat.eval import VIDEOCHAT2, evaluate, load_benchmark, open_session
from videochat.eval.frames import frame_folder_video


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    from videochat.model import VideoChatConfig
    from videochat.model.load import build_model, save_model

    config = VideoChatConfig.preset("tiny")
    # the VideoChat2 prompt (system text twice + options) needs more than the preset's 256 positions
    config.llm.hf_config["max_position_embeddings"] = 1024
    model = build_model(config, fixture_tokenizer(), seed=0, cheap_init=True)
    return save_model(model, tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    media = root / "media"
    write_video(media / "red.mp4", ["red"] * 8)
    write_gif(media / "green.gif", ["green"] * 4)
    write_frames(media / "blue_frames", ["blue"] * 9)
    tasks = {
        "video": {"json": "v.json", "prefix": "../media", "data_type": "video", "bound": True},
        "gif": {"json": "g.json", "prefix": "../media", "data_type": "gif"},
        "frames": {"json": "f.json", "prefix": "../media", "data_type": "frame", "fps": 3},
    }
    items = {
        "video": [colour_item("red.mp4", "red", start=0.2, end=0.8)],
        "gif": [colour_item("green.gif", "green")],
        "frames": [colour_item("blue_frames", "blue")],
    }
    return write_bench(root / "bench", tasks, items)


def test_packed_frame_folder_through_the_media_pipeline(tmp_path):
    from videochat.media import load_video

    folder = write_frames(tmp_path / "clip", ["red"] * 12)
    clip_bytes, count = frame_folder_video(folder, num_frames=4, fps=3.0)
    clip = load_video(io.BytesIO(clip_bytes), num_frames=count, sampling="middle", size=28)
    assert clip.indices == [0, 1, 2, 3]  # every packed frame is used, once
    # the media pipeline counts time from the clip's first frame: 1/3 s apart here at 3 fps x 3
    assert clip.message == "The video contains 4 frames sampled at 0.0, 1.0, 2.0, 3.0 seconds."
    assert tuple(clip.pixels.shape) == (4, 3, 28, 28)


def test_cli_with_tiny_model_lmms_protocol_and_resume(tiny_model_dir, bench, tmp_path, capsys):
    out = tmp_path / "results.json"
    argv = ["eval", str(bench), "--model", str(tiny_model_dir), "--protocol", "lmms-eval"]
    argv += ["--num-frames", "4", "--out", str(out), "--no-progress", "--device", "cpu"]
    assert main(argv) == 0
    results = json.loads(out.read_text())
    assert results["protocol"] == "lmms-eval" and results["failed"] == 0
    assert set(results["tasks"]) == {"video", "gif", "frames"} and results["num_items"] == 3
    preds_path = tmp_path / "results.predictions.jsonl"
    records = [json.loads(line) for line in preds_path.read_text().splitlines()]
    assert all(r["error"] is None and isinstance(r["prediction"], str) for r in records)
    assert "protocol: lmms-eval" in capsys.readouterr().out
    before = preds_path.read_text()
    assert main(argv) == 0  # resumed: nothing asked again, same results
    assert preds_path.read_text() == before
    assert json.loads(out.read_text())["average"] == results["average"]


def test_cli_rank_protocol_always_names_an_option(tiny_model_dir, bench, tmp_path, capsys):
    out = tmp_path / "rank.json"
    argv = ["eval", str(bench), "--model", str(tiny_model_dir), "--protocol", "rank"]
    assert main([*argv, "--num-frames", "4", "--out", str(out), "--no-progress"]) == 0
    assert json.loads(out.read_text())["protocol"] == "videochat2-rank"
    records = [json.loads(line) for line in out.with_name("rank.predictions.jsonl").open()]
    for record in records:  # a random model still picks one of the options, the likeliest
        assert record["error"] is None and len(record["scores"]) == 3
        best = max(range(3), key=record["scores"].__getitem__)
        assert record["letter"] == "ABC"[best]
        assert record["prediction"] == record["candidates"][best] + ")"
    assert "protocol: videochat2-rank" in capsys.readouterr().out


@pytest.mark.slow
def test_videochat2_protocol_is_repeatable(tiny_model_dir, bench):
    from videochat.model import load_model

    model = load_model(tiny_model_dir, device="cpu")
    items = load_benchmark(bench, ["video"])
    sessions = [open_session(model, VIDEOCHAT2) for _ in range(2)]
    runs = [
        evaluate(session, items, VIDEOCHAT2, num_frames=4, progress=False) for session in sessions
    ]
    assert runs[0][0]["error"] is None
    # the prompt VideoChat2's notebook prints, plus VideoChat's timestamp message in the video turn
    history = sessions[0].history
    prompt = sessions[0].template.render(history[:-1], answer_prefix="Best option:(")
    system = VIDEOCHAT2.system
    assert prompt.startswith(system + "###Human: <Video><VideoHere></Video> The video contains 4 ")
    assert prompt.endswith(
        "seconds.\n###Human: " + system + "Question: What colour is shown?\nOptions:\n(A) red\n"
        "(B) green\n(C) blue\nOnly give the best option.\n###Assistant: Best option:("
    )
    assert runs[0][0]["parsed_text"].startswith("(")
    assert runs[0][0]["prediction"] == runs[1][0]["prediction"]  # greedy
