import subprocess
import sys

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
