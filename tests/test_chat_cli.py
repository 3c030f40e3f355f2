"""`videochat ask` and `videochat chat` on a tiny random model directory."""

from __future__ import annotations

import io
import json
import sys

import pytest

from tests._chat_helpers import tiny_model_dir, write_image, write_video
from videochat.cli import main
from videochat.errors import VideoChatError


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    return write_video(root / "clip.mp4"), write_image(root / "still.png")


def _base(model_dir):
    return ["--model", str(model_dir), "--greedy", "--max-new-tokens", "8"]


def test_ask_json_plain_and_streamed_agree(media, capsys, monkeypatch):
    video, _ = media
    model_dir = tiny_model_dir()
    assert main(["ask", str(video), "What is happening?", *_base(model_dir), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"answer", "media", "kind", "timestamps"}
    assert data["media"] == str(video) and data["kind"] == "video"
    assert len(data["timestamps"]) == 4  # the tiny model's default frame count
    assert main(["ask", str(video), "What is happening?", *_base(model_dir)]) == 0
    assert capsys.readouterr().out == data["answer"] + "\n"
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["ask", str(video), "What is happening?", *_base(model_dir)]) == 0
    assert capsys.readouterr().out == data["answer"] + "\n"


def test_ask_options_reach_the_sampler(media, capsys):
    video, image = media
    args = ["--model", str(tiny_model_dir()), "--max-new-tokens", "6", "--seed", "5", "--json"]
    runs = []
    for _ in range(2):
        assert main(["ask", str(image), "Describe it.", *args, "--temperature", "1.5"]) == 0
        runs.append(json.loads(capsys.readouterr().out))
    assert runs[0]["answer"] == runs[1]["answer"] and runs[0]["kind"] == "image"
    assert runs[0]["timestamps"] is None
    assert main(["ask", str(video), "Q?", *args, "--num-frames", "2", "--sampling", "middle"]) == 0
    assert len(json.loads(capsys.readouterr().out)["timestamps"]) == 2


def test_ask_reports_bad_input_in_one_line(media, capsys, tmp_path):
    model_dir = tiny_model_dir()
    assert main(["ask", str(tmp_path / "nope.mp4"), "Q?", *_base(model_dir)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nope.mp4" in err and "Traceback" not in err
    assert main(["ask", str(media[0]), "  ", *_base(model_dir)]) == 1
    assert "empty" in capsys.readouterr().err
    assert main(["ask", str(media[0]), "Q?", *_base(model_dir), "--top-p", "2"]) == 1
    assert "top_p" in capsys.readouterr().err


def test_chat_reads_questions_from_a_pipe(media, capsys, monkeypatch, tmp_path):
    video, image = media
    script = "\n".join(
        [
            "What is happening?",
            f"/add {image}",
            f"/add {tmp_path / 'missing.png'}",
            "",
            "And in the picture?",
            "/reset",
            "What is happening?",
            "/quit",
            "never asked",
        ]
    )
    monkeypatch.setattr(sys, "stdin", io.StringIO(script + "\n"))
    # the missing file is reported and the session goes on; the script still learns it failed
    assert main(["chat", str(video), *_base(tiny_model_dir())]) == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    questions = [line for line in lines if line.startswith("> ")]
    assert questions == ["> What is happening?", "> And in the picture?", "> What is happening?"]
    assert sum(line.startswith("[added ") for line in lines) == 3  # video, image, video again
    assert "[conversation reset]" in lines
    assert "missing.png" in captured.err and "never asked" not in captured.out
    blocks = captured.out.split("> What is happening?\n")
    first, again = blocks[1].split("[added")[0], blocks[2]
    assert first == again and first.strip()  # greedy, same media after /reset: same answer


def test_chat_from_a_clean_pipe_exits_zero(media, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("What is happening?\n"))
    assert main(["chat", str(media[0]), *_base(tiny_model_dir())]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("frames", ["0", "-2"])
def test_ask_refuses_a_frame_count_below_one(media, capsys, frames):
    rc = main(["ask", str(media[0]), "Q?", *_base(tiny_model_dir()), "--num-frames", frames])
    assert rc == 1
    assert f"num_frames must be at least 1, got {frames}" in capsys.readouterr().err


def test_debug_flag_is_accepted_after_the_verb(media, capsys):
    with pytest.raises(VideoChatError):  # --debug: the real exception, not one line
        main(["ask", str(media[0]), "Q?", "--model", "/nonexistent/model", "--debug"])
    assert main(["ask", str(media[0]), "Q?", "--model", "/nonexistent/model"]) == 1
    assert "no such model directory" in capsys.readouterr().err


def test_chat_add_takes_quoted_and_escaped_paths(media, capsys, monkeypatch, tmp_path):
    spaced = tmp_path / "my still.png"
    spaced.write_bytes(media[1].read_bytes())
    script = f"/add '{spaced}'\n/add {str(spaced).replace(' ', chr(92) + ' ')}\n/add {spaced}\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(script + "/addx\n/add\n"))
    assert main(["chat", *_base(tiny_model_dir())]) == 1  # the bare /add is a usage error
    captured = capsys.readouterr()
    assert captured.out.count(f"[added {spaced}: an image]") == 3
    assert "commands: /add FILE" in captured.out  # /addx is not /add x
    assert captured.err.strip().splitlines() == ["error: usage: /add FILE"]


def test_ctrl_d_at_the_terminal_prompt_ends_the_line(capsys, monkeypatch):
    from videochat.commands.chat import _lines

    def eof(prompt=""):
        print(prompt, end="")
        raise EOFError

    monkeypatch.setattr("builtins.input", eof)
    assert list(_lines(interactive=True)) == []
    assert capsys.readouterr().out == "> \n"


def test_temperature_zero_means_greedy_as_in_the_api(media, capsys):
    args = ["ask", str(media[0]), "Q?", "--model", str(tiny_model_dir()), "--max-new-tokens", "6"]
    assert main([*args, "--temperature", "0", "--seed", "1"]) == 0
    zero = capsys.readouterr().out
    assert main([*args, "--greedy", "--seed", "2"]) == 0
    assert capsys.readouterr().out == zero
    assert main([*args, "--temperature", "-1"]) == 1
    assert "temperature must be greater than 0" in capsys.readouterr().err
