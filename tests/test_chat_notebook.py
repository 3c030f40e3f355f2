"""examples/demo.ipynb runs end to end (with the tiny random model in place of the embedded one)."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tests._chat_helpers import tiny_model_dir

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_demo_notebook_executes(monkeypatch):
    monkeypatch.setenv("VIDEOCHAT_MODEL", str(tiny_model_dir()))
    notebook = nbformat.read(EXAMPLES / "demo.ipynb", as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=120,
        resources={"metadata": {"path": str(EXAMPLES)}},
    )
    client.execute()
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    text = "".join(out.get("text", "") for out in outputs if out.output_type == "stream")
    assert "The video contains 4 frames sampled at" in text
    assert any("image/png" in out.get("data", {}) for out in outputs)  # the frame strip
    # the history cell: the media message first; the tiny model's 256-token context may have
    # dropped the first question, never the media or the last one
    assert "Human: <Video><VideoHere></Video> The video contains" in text
    assert "Human: What happens at the end?\nAssistant: " in text
    assert not any(out.output_type == "error" for out in outputs)
