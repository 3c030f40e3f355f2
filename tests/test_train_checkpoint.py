"""Atomic checkpoints: `latest` only ever names a complete checkpoint."""

from __future__ import annotations

import os

import pytest
import torch

from videochat.train import checkpoint as ckpt


def _weights(value: float) -> dict[str, torch.Tensor]:
    return {
        "llama_proj.weight": torch.full((2, 3), value),
        "extra_query_tokens": torch.ones(1, 2, 4),
    }


def test_save_then_latest_and_load(tmp_path):
    ckpt.save_checkpoint(tmp_path, 1, _weights(1.0), {"run": {"step": 1}})
    ckpt.save_checkpoint(tmp_path, 2, _weights(2.0), {"run": {"step": 2}})
    latest = ckpt.latest_checkpoint(tmp_path)
    assert latest.name == "step-00000002"
    loaded = ckpt.load_checkpoint(latest)
    torch.testing.assert_close(loaded.weights["llama_proj.weight"], torch.full((2, 3), 2.0))
    assert loaded.state["run"]["step"] == 2
    torch.testing.assert_close(
        ckpt.load_trainable(tmp_path)["llama_proj.weight"], torch.full((2, 3), 2.0)
    )


def test_crash_during_write_keeps_previous_latest(tmp_path, monkeypatch):
    ckpt.save_checkpoint(tmp_path, 1, _weights(1.0), {"run": {"step": 1}})
    real_replace = os.replace

    def crash_on_dir_rename(src, dst):
        if "step-00000002" in str(dst):
            raise KeyboardInterrupt("killed while renaming")  # stands in for SIGKILL
        return real_replace(src, dst)

    monkeypatch.setattr(ckpt.os, "replace", crash_on_dir_rename)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(tmp_path, 2, _weights(2.0), {"run": {"step": 2}})
    monkeypatch.undo()
    assert ckpt.latest_checkpoint(tmp_path).name == "step-00000001"
    assert any(
        p.name.startswith(".tmp-step-00000002") for p in ckpt.checkpoint_root(tmp_path).iterdir()
    )
    # the next successful save removes the leftover of a dead writer (other pid)
    leftover = ckpt.checkpoint_root(tmp_path) / ".tmp-step-00000009-1"
    leftover.mkdir()
    ckpt.save_checkpoint(tmp_path, 3, _weights(3.0), {"run": {"step": 3}}, keep=2)
    names = sorted(p.name for p in ckpt.checkpoint_root(tmp_path).iterdir())
    assert "latest" in names and "step-00000003" in names and leftover.name not in names
    assert ckpt.latest_checkpoint(tmp_path).name == "step-00000003"


def test_latest_pointing_at_incomplete_dir_is_an_error(tmp_path):
    ckpt.save_checkpoint(tmp_path, 1, _weights(1.0), {"run": {"step": 1}})
    os.remove(ckpt.checkpoint_root(tmp_path) / "step-00000001" / ckpt.STATE)
    with pytest.raises(ckpt.CheckpointError, match="incomplete"):
        ckpt.latest_checkpoint(tmp_path)


def test_no_checkpoint_and_bad_init_source(tmp_path):
    assert ckpt.latest_checkpoint(tmp_path) is None
    with pytest.raises(ckpt.CheckpointError, match="no weights at"):
        ckpt.load_trainable(tmp_path)
