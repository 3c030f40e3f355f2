"""Serving benchmark: N concurrent streaming clients against `videochat serve` on loopback.

Starts the API in-process on 127.0.0.1 (free port) with the embedded model when present, else a
tiny random model (or `--model DIR`), then runs a bounded number of streaming chat requests, each
with its own generated video, first with one client and then with N at once. Prints requests/s,
time to first token (TTFT) and inter-token latency (ITL) percentiles, and errors, side by side,
with the throughput ratio last. Stops by itself.

    python benchmarks/serve.py [--model DIR] [--clients 4] [--requests 16] [--max-tokens 32]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TOKENIZER = ROOT / "tests" / "fixtures" / "parity" / "tokenizer"


@dataclass
class Result:
    ttft: float | None = None
    gaps: list[float] = field(default_factory=list)
    error: str | None = None


def make_video(seed: int, size: int = 96, frames: int = 24, fps: int = 8) -> str:
    """A data: URL of a small H.264 clip whose colour depends on `seed`."""
    from videochat.synth.encode import write_mp4

    rng = np.random.default_rng(seed)
    color = rng.integers(0, 256, 3, dtype=np.uint8)

    def frame(i: int) -> np.ndarray:
        arr = np.empty((size, size, 3), np.uint8)
        arr[:] = color
        arr[:, (i * 4) % size :][:, :8] = 255 - color
        return arr

    buf = io.BytesIO()
    write_mp4(buf, (frame(i) for i in range(frames)), fps, size, size)
    return "data:video/mp4;base64," + base64.b64encode(buf.getvalue()).decode()


def load_backend(model_arg: str | None, settings):
    """The embedded model (or --model); a tiny random model when no embedded model exists."""
    from videochat.errors import ModelLoadError
    from videochat.model.config import VideoChatConfig
    from videochat.model.load import build_model, load_model, load_tokenizer
    from videochat.serve.backend import ChatBackend

    try:
        model, name = load_model(model_arg), model_arg or "embedded"
    except ModelLoadError:
        if model_arg is not None:
            raise
        model = build_model(VideoChatConfig.preset("tiny"), load_tokenizer(TOKENIZER), seed=0)
        name = "tiny random (no embedded model in this build)"
    print(f"model: {name}", flush=True)
    return ChatBackend(model, settings)


def one_request(client: httpx.Client, url: str, body: dict) -> Result:
    """One streaming request; timestamps of content chunks as they arrive."""
    result, start, last = Result(), time.perf_counter(), None
    try:
        with client.stream("POST", url, json=body) as response:
            if response.status_code != 200:
                response.read()
                return Result(error=f"HTTP {response.status_code}")
            for line in response.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if "error" in chunk:
                    return Result(error=chunk["error"]["code"])
                choices = chunk.get("choices") or [{}]
                if not choices[0].get("delta", {}).get("content"):
                    continue
                now = time.perf_counter()
                if last is None:
                    result.ttft = now - start
                else:
                    result.gaps.append(now - last)
                last = now
    except httpx.HTTPError as exc:
        return Result(error=type(exc).__name__)
    return result


def run_clients(base: str, clients: int, requests: int, args, videos: list[str]) -> dict:
    """`requests` requests spread over `clients` concurrent clients."""
    url = base + "/v1/chat/completions"

    def body(i: int) -> dict:
        content = [
            {"type": "video_url", "video_url": {"url": videos[i % len(videos)]}},
            {"type": "text", "text": f"What happens in clip {i}?"},
        ]
        return {
            "model": "videochat",
            "messages": [{"role": "user", "content": content}],
            "stream": True,
            "max_tokens": args.max_tokens,
            "temperature": 1.0,
            "seed": i,
            "num_frames": args.num_frames,
        }

    with httpx.Client(timeout=600) as client, ThreadPoolExecutor(clients) as pool:
        start = time.perf_counter()
        results = list(pool.map(lambda i: one_request(client, url, body(i)), range(requests)))
        elapsed = time.perf_counter() - start
    ok = [r for r in results if r.error is None and r.ttft is not None]
    return {
        "rps": len(ok) / elapsed,
        "ttft": [r.ttft for r in ok],
        "itl": [g for r in ok for g in r.gaps],
        "errors": len(results) - len(ok),
        "error_kinds": sorted({r.error for r in results if r.error}),
        "seconds": elapsed,
    }


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def report(rows: dict[str, dict]) -> None:
    names = list(rows)
    print(f"{'':24}" + "".join(f"{n:>16}" for n in names))
    lines = [
        ("requests/s", lambda r: f"{r['rps']:.2f}"),
        ("wall time (s)", lambda r: f"{r['seconds']:.1f}"),
    ]
    for metric in ("ttft", "itl"):
        for q in (50, 90, 99):
            lines.append(
                (
                    f"{metric.upper()} p{q} (ms)",
                    lambda r, m=metric, q=q: f"{pct(r[m], q) * 1e3:.1f}",
                )
            )
    lines.append(("errors", lambda r: str(r["errors"])))
    for label, fmt in lines:
        print(f"{label:24}" + "".join(f"{fmt(rows[n]):>16}" for n in names))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model directory (default: embedded/tiny)")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=16, help="requests per phase")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--num-frames", type=int, default=8)
    args = parser.parse_args(argv)

    from videochat.serve.api import create_app
    from videochat.serve.runner import serve_in_thread
    from videochat.serve.settings import ServeSettings

    settings = ServeSettings(max_queue=max(8, args.clients * 2))
    app = create_app(settings, lambda: load_backend(args.model, settings))
    videos = [make_video(i) for i in range(args.clients * 2)]
    with serve_in_thread(app) as base:
        if not app.state.engine.wait_ready(600):
            print(f"error: model failed to load: {app.state.engine.load_error}", file=sys.stderr)
            return 1
        run_clients(base, 1, 2, args, videos)  # warm-up (first-call costs, visual cache)
        rows = {
            "1 client": run_clients(base, 1, args.requests, args, videos),
            f"{args.clients} clients": run_clients(base, args.clients, args.requests, args, videos),
        }
    report(rows)
    kinds = [k for r in rows.values() for k in r["error_kinds"]]
    if kinds:
        print("error kinds:", ", ".join(sorted(set(kinds))))
    one, many = rows.values()
    print(f"throughput ratio ({args.clients} clients / 1 client): {many['rps'] / one['rps']:.2f}x")
    return 0 if not kinds else 1


if __name__ == "__main__":
    sys.exit(main())
