"""Several processes (torchrun, gloo on CPU) and a run killed with SIGKILL then resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests._train_helpers import make_data
from videochat.train import checkpoint as ckpt

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_torchrun_two_processes_stay_in_sync_and_learn(tmp_path):
    out = tmp_path / "run"
    overrides = [
        *make_data(tmp_path / "data", videos=4, images=2),
        f"output_dir={out}",
        "max_steps=8",
        "save_every=4",
        "batch_size=1",
        "optim.lr=2e-2",
        "optim.warmup_ratio=0",
        "optim.min_lr_ratio=1.0",
    ]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "tests._train_helpers",
        "tiny",
        *overrides,
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rank0, rank1 = (
        load_file(str(out / "rank0.safetensors")),
        load_file(str(out / "rank1.safetensors")),
    )
    assert set(rank0) == set(rank1) and rank0
    for name in rank0:
        torch.testing.assert_close(rank0[name], rank1[name], atol=0, rtol=0, msg=name)
    records = _records(out)
    assert [r["step"] for r in records] == list(range(1, 9))
    # each step saw one sample per rank, different samples on the two ranks within an epoch
    assert all(len(r["indices"]) == 2 and all(len(i) == 1 for i in r["indices"]) for r in records)
    first_epoch = [i for r in records[:3] for rank in r["indices"] for i in rank]
    assert len(set(first_epoch)) == 6
    losses = [r["loss"] for r in records]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.01, losses


def _cli(out: Path, data: list[str], *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "videochat.train",
        "tiny",
        *data,
        f"output_dir={out}",
        "max_steps=8",
        "save_every=2",
        "batch_size=1",
        *extra,
    ]


def test_sigkill_then_resume_finishes_like_an_uninterrupted_run(tmp_path):
    data = make_data(tmp_path / "data", videos=3, images=2)
    ref, run = tmp_path / "ref", tmp_path / "run"
    done = subprocess.run(
        _cli(ref, data), cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]

    victim = subprocess.Popen(
        _cli(run, data), cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            latest = run / "checkpoints" / "latest"
            if latest.is_file() and latest.read_text().strip() >= "step-00000004":
                break
            assert victim.poll() is None, "the run ended before it could be killed"
            time.sleep(0.05)
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()
    killed_at = ckpt.latest_checkpoint(run)  # raises if `latest` names a partial checkpoint
    step_at_kill = ckpt.load_checkpoint(killed_at).state["run"]["step"]
    assert 4 <= step_at_kill < 8

    resumed = subprocess.run(
        _cli(run, data, "resume=true"),
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "trained 8 steps" in resumed.stdout

    reference = {r["step"]: r["indices"] for r in _records(ref)}
    replayed: dict[int, list] = {}
    for r in _records(run):  # a step logged twice (after the last checkpoint) keeps its last record
        replayed[r["step"]] = r["indices"]
    assert replayed == reference  # every step saw exactly the samples of the uninterrupted run
    final_ref = ckpt.load_checkpoint(ckpt.latest_checkpoint(ref))
    final_run = ckpt.load_checkpoint(ckpt.latest_checkpoint(run))
    assert final_run.state["run"]["step"] == final_ref.state["run"]["step"] == 8
    for name, value in final_ref.weights.items():
        torch.testing.assert_close(final_run.weights[name], value, msg=name)


def test_fsdp_two_processes_checkpoint_resume_and_export(tmp_path):
    out, export = tmp_path / "run", tmp_path / "model"
    data = make_data(tmp_path / "data", videos=2, images=2)

    def torchrun(*extra: str) -> None:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "videochat.train",
            "tiny",
            *data,
            f"output_dir={out}",
            "strategy=fsdp",
            "batch_size=1",
            "grad_accum_steps=2",
            "save_every=1",
            *extra,
        ]
        proc = subprocess.run(
            cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0, proc.stderr[-3000:]

    torchrun("max_steps=2")
    first = ckpt.load_checkpoint(ckpt.latest_checkpoint(out))
    torchrun("max_steps=3", "resume=true", f"export={export}")
    final = ckpt.load_checkpoint(ckpt.latest_checkpoint(out))
    assert (first.state["run"]["step"], final.state["run"]["step"]) == (2, 3)
    assert set(final.weights) == set(first.weights)
    assert not torch.equal(final.weights["llama_proj.weight"], first.weights["llama_proj.weight"])
    from videochat.model import load_model

    exported = load_model(export).state_dict()
    for name, value in final.weights.items():
        torch.testing.assert_close(exported[name], value, msg=name)
