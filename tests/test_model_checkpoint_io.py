"""Safe reading of weight files: malicious pickles refused, truncated files explained."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from videochat.errors import ModelLoadError
from videochat.model.checkpoint_io import read_state_dict, read_weights_dir, save_sharded


class _Evil:
    """Unpickling this would create a file: the proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("writer", ["torch", "pickle"])
def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path: Path, writer: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    payload = {"model": {"w": torch.ones(2)}, "extra": _Evil(marker)}
    if writer == "torch":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    with pytest.raises(ModelLoadError, match="refused to load .*could run arbitrary code"):
        read_state_dict(path)
    assert not marker.exists()


def test_pth_state_dict_unwrapped_and_memory_mapped(tmp_path: Path) -> None:
    path = tmp_path / "ok.pth"
    torch.save({"model": {"a": torch.arange(6.0).reshape(2, 3)}, "epoch": 3}, path)
    sd = read_state_dict(path)
    assert list(sd) == ["a"]
    torch.testing.assert_close(sd["a"], torch.arange(6.0).reshape(2, 3))


def test_non_tensor_entries_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "odd.pth"
    torch.save({"a": torch.ones(1), "step": 5}, path)
    with pytest.raises(ModelLoadError, match="1 entries are not tensors"):
        read_state_dict(path)


def test_truncated_pth(tmp_path: Path) -> None:
    path = tmp_path / "cut.pth"
    torch.save({"a": torch.randn(1000)}, path)
    path.write_bytes(path.read_bytes()[:1500])
    with pytest.raises(ModelLoadError, match="cut.pth: cannot read .*truncated or corrupt"):
        read_state_dict(path)


def test_truncated_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "cut.safetensors"
    save_file({"a": torch.randn(1000)}, str(path))
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(
        ModelLoadError, match="cut.safetensors: not a readable safetensors.*truncated"
    ):
        read_state_dict(path)


def test_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="unknown weights format '.npz'"):
        read_state_dict(tmp_path / "w.npz")
    with pytest.raises(ModelLoadError, match="checkpoint not found"):
        read_state_dict(tmp_path / "absent.pth")
    with pytest.raises(ModelLoadError, match="no weights found"):
        read_weights_dir(tmp_path)


def test_sharded_round_trip(tmp_path: Path) -> None:
    sd = {f"layer{i}.weight": torch.randn(64, 64) for i in range(4)}
    save_sharded(sd, tmp_path, max_shard_size=40_000)  # 16 KiB tensors → several shards
    shards = sorted(p.name for p in tmp_path.glob("model-*.safetensors"))
    assert len(shards) >= 2 and (tmp_path / "model.safetensors.index.json").is_file()
    back = read_weights_dir(tmp_path)
    assert sorted(back) == sorted(sd)
    for key, value in sd.items():
        torch.testing.assert_close(back[key], value, rtol=0, atol=0)


def test_saved_shards_get_the_same_mode_as_other_new_files(tmp_path) -> None:
    import os
    import stat

    from videochat.model.checkpoint_io import save_sharded

    save_sharded({"w": torch.zeros(4)}, tmp_path)
    (tmp_path / "plain.txt").write_text("x")
    expected = stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode)
    shards = list(tmp_path.glob("model*.safetensors"))
    assert shards and all(stat.S_IMODE(os.stat(p).st_mode) == expected for p in shards)
