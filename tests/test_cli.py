import subprocess
import sys

import pytest

from videochat.cli import VERBS, main


def test_help_lists_every_verb(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    for verb in ("ask", "chat", "inspect", "convert", "train", "eval", "synth", "serve", "web"):
        assert verb in VERBS
        assert verb in out


def test_console_entry_runs_as_module():
    proc = subprocess.run(
        [sys.executable, "-m", "videochat", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0
    assert "inspect" in proc.stdout


def test_train_help_lists_every_builtin_recipe(capsys):
    from videochat.train.recipe import builtin_recipes

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert {"stage1", "stage2", "tiny"} <= set(builtin_recipes())
    assert f"a built-in recipe ({', '.join(builtin_recipes())}) or a YAML file" in out
