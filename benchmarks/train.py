"""Training throughput of the tiny recipe: 1 process vs 2 processes (torchrun, gloo), one run each.

    python benchmarks/train.py [--steps 12] [--batch-size 2]

Both runs use the same machine, data and per-process batch; the 1-process run gets all CPU
threads, each of the 2 processes half of them. samples/s counts every rank's samples between the
first and the last logged step (the first step, with its start-up costs, is excluded).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests._train_helpers import make_data  # noqa: E402  (tiny PyAV/Pillow media)


def run(procs: int, data: list[str], out: Path, steps: int, batch: int, threads: int) -> dict:
    launcher = [sys.executable, "-m", "videochat.train"]
    if procs > 1:
        launcher = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            str(procs),
            "-m",
            "videochat.train",
        ]
    cmd = [
        *launcher,
        "tiny",
        *data,
        f"output_dir={out}",
        f"max_steps={steps}",
        f"batch_size={batch}",
        "save_every=0",
        "epochs=100",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{procs}-process run failed:\n{proc.stderr[-2000:]}")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    samples = sum(len(rank) for r in records[1:] for rank in r["indices"])
    elapsed = records[-1]["time"] - records[0]["time"]
    return {
        "samples_per_s": samples / elapsed,
        "wall_s": wall,
        "steps": len(records),
        "loss_first": records[0]["loss"],
        "loss_last": records[-1]["loss"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=2, help="per process")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    configs = [("1 process", 1, cores), ("1 process", 1, 1), ("2 processes", 2, max(1, cores // 2))]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        data = make_data(Path(tmp) / "data", videos=8, images=4)
        for i, (_name, procs, threads) in enumerate(configs):
            out = Path(tmp) / f"run{i}"
            results.append(run(procs, data, out, args.steps, args.batch_size, threads))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"tiny recipe, {args.steps} steps, batch {args.batch_size} per process, "
        f"{cores} CPU cores, load average {load:.1f} at the end"
    )
    print(f"{'':26}{'samples/s':>11}{'wall s':>9}{'loss first → last':>22}")
    for (name, _procs, threads), r in zip(configs, results, strict=True):
        label = f"{name} x {threads} thr"
        print(
            f"{label:26}{r['samples_per_s']:11.2f}{r['wall_s']:9.1f}"
            f"{r['loss_first']:>13.3f} → {r['loss_last']:.3f}"
        )
    best_single = max(r["samples_per_s"] for r in results[:2])
    print(f"ratio 2 processes / best 1 process: {results[2]['samples_per_s'] / best_single:.2f}x")


if __name__ == "__main__":
    main()
