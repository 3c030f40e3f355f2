"""`videochat inspect`: the report, --json, --save-frames, images, and one-line errors."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from _media_helpers import frame_index, write_audio, write_video
from PIL import Image

from videochat.cli import main
from videochat.media import load_video
from videochat.media.transform import denormalize

JSON_KEYS = {"kind", "codec", "width", "height", "fps", "duration", "num_frames_total"}
JSON_KEYS |= {"indices", "timestamps", "message"}


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("inspect") / "clip.mp4", num_frames=50)


def test_text_report(video, capsys):
    assert main(["inspect", str(video), "--num-frames", "4", "--size", "32"]) == 0
    out = capsys.readouterr().out
    assert "kind:        video" in out and "codec:       h264" in out
    assert "size:        64x48" in out and "frames:      50 (header)" in out
    assert "indices:     6, 18, 30, 43" in out
    assert "message:     The video contains 4 frames sampled at 0.2, 0.7, 1.2, 1.7 seconds." in out
    assert "model input: 4x3x32x32" in out


def test_json_report_matches_the_loader(video, capsys):
    args = [
        "inspect",
        str(video),
        "--json",
        "--sampling",
        "middle",
        "--start",
        "0.4",
        "--end",
        "1.6",
    ]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)  # exactly one JSON object
    assert set(report) >= JSON_KEYS
    clip = load_video(video, sampling="middle", start=0.4, end=1.6)
    assert report["indices"] == clip.indices and all(10 <= i <= 40 for i in clip.indices)
    assert report["timestamps"] == pytest.approx(clip.timestamps)
    assert report["message"] == clip.message
    assert (report["width"], report["height"], report["fps"]) == (64, 48, 25.0)
    assert report["num_frames_total"] == 50 and report["duration"] == pytest.approx(2.0)


def test_save_frames_writes_the_model_view(video, tmp_path, capsys):
    out_dir = tmp_path / "frames"
    args = ["inspect", str(video), "--num-frames", "3", "--size", "224"]
    assert main([*args, "--save-frames", str(out_dir)]) == 0
    saved = sorted(out_dir.glob("*.png"))
    assert [p.name for p in saved] == [
        "frame_000_index_000008.png",
        "frame_001_index_000024.png",
        "frame_002_index_000041.png",
    ]
    views = denormalize(load_video(video, num_frames=3).pixels)
    for path, view in zip(saved, views, strict=True):
        pixels = np.asarray(Image.open(path))
        assert pixels.shape == (224, 224, 3)
        assert torch.equal(torch.from_numpy(pixels.copy()), view)
    assert frame_index(np.asarray(Image.open(saved[1]))) == 24
    assert str(saved[0]) in capsys.readouterr().out


def test_image_report(tmp_path, capsys):
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (300, 200), (200, 30, 30)).save(path)
    args = ["inspect", str(path), "--json", "--size", "224"]
    assert main([*args, "--save-frames", str(tmp_path / "f")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) >= JSON_KEYS
    assert (report["kind"], report["codec"], report["width"], report["height"]) == (
        "image",
        "jpeg",
        300,
        200,
    )
    assert report["input_shape"] == [1, 3, 224, 224]
    assert Image.open(tmp_path / "f" / "frame_000_index_000000.png").size == (224, 224)


def test_bad_input_is_one_error_line(tmp_path, capsys):
    audio = write_audio(tmp_path / "voice.m4a")
    assert main(["inspect", str(audio)]) == 1
    err = capsys.readouterr().err
    assert err == f"error: {audio}: has no video stream (audio only)\n"
    assert main(["inspect", str(tmp_path / "nope.mp4")]) == 1
    assert (
        capsys.readouterr().err
        == f"error: {tmp_path / 'nope.mp4'}: file not found (check the path)\n"
    )
    assert main(["inspect", str(audio), "--sampling", "every"]) == 1
    assert "unknown sampling policy 'every'" in capsys.readouterr().err


def test_subprocess_run(video):
    """One real process: the console entry point, stdout holds exactly one JSON object."""
    ok = subprocess.run(
        [sys.executable, "-m", "videochat", "inspect", str(video), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count("\n") == 1
    assert json.loads(ok.stdout)["indices"] == [3, 9, 15, 21, 27, 34, 40, 46]


def test_model_input_size_comes_from_the_model_config(video, tmp_path, capsys):
    """Without --size the input side is the model's: the embedded model's by default, a model
    directory's with --model (read from its config.json only: no weights needed)."""
    from videochat.model import VideoChatConfig, read_config
    from videochat.model.config import tiny
    from videochat.model.load import DEFAULT_DIR, FORMAT

    embedded = read_config().vision.image_size
    assert (
        embedded
        == json.loads((DEFAULT_DIR / "config.json").read_text())["config"]["vision"]["image_size"]
    )
    assert main(["inspect", str(video), "--num-frames", "2"]) == 0
    assert f"model input: 2x3x{embedded}x{embedded}" in capsys.readouterr().out
    config_only = tmp_path / "m"
    config_only.mkdir()
    meta = {"format": FORMAT, "format_version": 1, "config": tiny().to_dict()}
    (config_only / "config.json").write_text(json.dumps(meta))
    assert read_config(config_only) == VideoChatConfig.from_dict(tiny().to_dict())
    assert main(["inspect", str(video), "--num-frames", "2", "--model", str(config_only)]) == 0
    assert "model input: 2x3x28x28" in capsys.readouterr().out
    assert main(["inspect", str(video), "--num-frames", "2", "--size", "40"]) == 0
    assert "model input: 2x3x40x40" in capsys.readouterr().out
    assert main(["inspect", str(video), "--model", str(tmp_path / "none")]) == 1
    assert "no such model directory or config file" in capsys.readouterr().err
