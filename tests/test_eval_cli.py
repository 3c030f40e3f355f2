"""`videochat eval` through videochat.cli.main, with the model replaced by the fake session."""

import json
from types import SimpleNamespace

import pytest
from _eval_helpers import FakeSession, colour_item, write_bench, write_video

import videochat.eval
import videochat.model
from videochat.cli import main


@pytest.fixture
def bench(tmp_path):
    media = tmp_path / "videos"
    for colour in ("red", "green", "blue"):
        write_video(media / f"{colour}.mp4", [colour] * 6)
    rows = [colour_item(f"{c}.mp4", c) for c in ("red", "green", "blue")]
    tasks = {n: {"json": f"{n}.json", "prefix": "../videos"} for n in ("colour", "again")}
    return write_bench(tmp_path / "bench", tasks, {"colour": rows, "again": rows[:2]})


@pytest.fixture
def fake_model(monkeypatch):
    sessions = []
    loaded = []

    def load_model(source=None, device=None, dtype=None):
        loaded.append((source, device))
        return SimpleNamespace(config=SimpleNamespace(num_frames=4))

    def open_session(model, protocol):
        sessions.append(FakeSession(reply=lambda letter, c: "B"))
        sessions[-1].protocol = protocol
        return sessions[-1]

    monkeypatch.setattr(videochat.model, "load_model", load_model, raising=False)
    monkeypatch.setattr(videochat.eval, "open_session", open_session)
    return sessions, loaded


def test_eval_cli_writes_results_and_predictions(bench, tmp_path, fake_model, capsys):
    sessions, loaded = fake_model
    out = tmp_path / "out" / "results.json"
    argv = ["eval", str(bench), "--model", "my-model", "--num-frames", "3", "--out", str(out)]
    assert main(argv + ["--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "protocol: videochat2   frames: 3   model: my-model" in printed
    assert "colour" in printed and "33.33" in printed and "50.00" in printed
    results = json.loads(out.read_text())
    assert results["protocol"] == "videochat2" and results["num_frames"] == 3
    assert results["model"] == "my-model" and results["failed"] == 0
    assert results["tasks"] == {"colour": pytest.approx(100 / 3), "again": 50.0}
    assert results["average"] == pytest.approx(100 * 2 / 5)
    preds = (tmp_path / "out" / "results.predictions.jsonl").read_text().splitlines()
    first = json.loads(preds[0])
    assert set(first) >= {"task", "index", "video", "question", "candidates", "answer"}
    assert set(first) >= {"prediction", "letter", "correct", "error"}
    assert (first["prediction"], first["letter"], first["correct"]) == ("B", "B", False)
    assert loaded == [("my-model", None)]
    # run again: everything is resumed, nothing asked
    assert main(argv + ["--no-progress", "--tasks", "again"]) == 0
    assert sessions[-1].calls == []
    assert json.loads(out.read_text())["tasks"] == {"again": 50.0}


def test_eval_cli_samples_the_models_own_frame_count_by_default(bench, tmp_path, fake_model):
    sessions, _ = fake_model
    out = tmp_path / "results.json"
    assert main(["eval", str(bench), "--out", str(out), "--no-progress"]) == 0
    assert json.loads(out.read_text())["num_frames"] == 4  # the fake model's config
    assert sessions[-1].last_add["num_frames"] == 4


def test_eval_cli_lmms_protocol_and_limit(bench, tmp_path, fake_model, capsys):
    sessions, _ = fake_model
    out = tmp_path / "r.json"
    argv = ["eval", str(bench), "--protocol", "lmms-eval", "--limit", "1", "--out", str(out)]
    assert main(argv + ["--predictions", str(tmp_path / "p.jsonl"), "--no-progress"]) == 0
    assert sessions[-1].protocol.name == "lmms-eval" and len(sessions[-1].calls) == 2
    assert json.loads(out.read_text())["protocol"] == "lmms-eval"
    assert (tmp_path / "p.jsonl").is_file()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--protocol", "mmbench"], "unknown protocol 'mmbench'"),
        (["--num-frames", "0"], "--num-frames must be at least 1"),
        (["--tasks", "nope"], "unknown task(s) nope"),
    ],
)
def test_eval_cli_errors_are_one_line(bench, fake_model, capsys, extra, message):
    assert main(["eval", str(bench), *extra]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert fake_model[1] == []  # failed before loading any model


def test_eval_cli_missing_benchmark(tmp_path, fake_model, capsys):
    assert main(["eval", str(tmp_path / "none")]) == 1
    assert "benchmark directory not found" in capsys.readouterr().err


def test_eval_cli_every_item_failing_is_an_error(bench, tmp_path, monkeypatch, capsys):
    from videochat.errors import ChatError

    class TooLong(FakeSession):
        def ask(self, text, stream=False, **generation):
            raise ChatError("the media and question need 448 tokens but the context holds 256")

    fake = SimpleNamespace(config=SimpleNamespace(num_frames=8))

    monkeypatch.setattr(videochat.model, "load_model", lambda *a, **k: fake, raising=False)
    monkeypatch.setattr(videochat.eval, "open_session", lambda model, protocol: TooLong())
    out = tmp_path / "results.json"
    assert main(["eval", str(bench), "--out", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: every item failed; the first: the media")
    assert json.loads(out.read_text())["failed"] == 5  # results still written for inspection


def test_eval_cli_refuses_a_folder_as_out_and_an_empty_selection(bench, tmp_path, capsys):
    assert main(["eval", str(bench), "--out", str(tmp_path), "--no-progress"]) == 1
    assert f"--out {tmp_path} is a folder" in capsys.readouterr().err
    (bench / "empty.json").write_text("[]")
    tasks = json.loads((bench / "tasks.json").read_text())
    tasks["empty"] = {"json": "empty.json", "prefix": "../videos"}
    (bench / "tasks.json").write_text(json.dumps(tasks))
    out = tmp_path / "r.json"
    assert main(["eval", str(bench), "--tasks", "empty", "--out", str(out)]) == 1
    assert "the selected tasks hold no items" in capsys.readouterr().err
    assert not out.exists()


def test_eval_cli_unwritable_out_fails_before_the_model_loads(bench, tmp_path, fake_model, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    out = blocker / "sub" / "results.json"
    assert main(["eval", str(bench), "--out", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {blocker / 'sub'}: Not a directory"]
    assert fake_model[1] == []  # no model was loaded
