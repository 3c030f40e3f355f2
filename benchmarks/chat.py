"""Time to first token (TTFT) of turn 1 vs turn N of one conversation, with and without KV reuse.

The model has random weights and a 12-layer, 512-wide LLaMA, so compute (not Python overhead)
dominates; answers are greedy and always run to `--answer-tokens`. Both modes run the same
conversation in the same process, side by side; each figure is the median over `--repeats` runs.
Target: with reuse, TTFT(turn N) <= 1.5 x TTFT(turn 1). The original re-runs the whole
conversation every turn (the "no reuse" column).

    python benchmarks/chat.py [--turns 8] [--answer-tokens 16] [--repeats 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import torch

from videochat.chat import ChatSession, VisualCache
from videochat.model.config import VideoChatConfig
from videochat.model.load import build_model, load_tokenizer

ROOT = Path(__file__).resolve().parent.parent
VIDEO = ROOT / "examples" / "bouncing.mp4"
TOKENIZER = ROOT / "tests" / "fixtures" / "parity" / "tokenizer"
QUESTION = "Turn {k}: what does the red ball do after it touches the wall on the left side?"


def bench_config(layers: int, hidden: int) -> VideoChatConfig:
    """The tiny vision/Q-Former with 96 queries and a compute-heavy LLM."""
    config = VideoChatConfig.preset("tiny")
    config.qformer.num_query_tokens, config.qformer.num_extra_query_tokens = 32, 64
    llm = copy.deepcopy(config.llm.hf_config)
    llm.update(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 64,
        intermediate_size=hidden * 8 // 3,
        max_position_embeddings=4096,
    )
    config.llm.hf_config = llm
    return config


def run_conversation(model, cache: VisualCache, reuse: bool, turns: int, tokens: int) -> list:
    session = ChatSession(model, cache=cache, reuse_kv=reuse)
    session.add_video(VIDEO, num_frames=8)
    stats = []
    for k in range(1, turns + 1):
        session.ask(QUESTION.format(k=k), do_sample=False, max_new_tokens=tokens)
        stats.append(session.last_stats)
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--answer-tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    model = build_model(
        bench_config(args.layers, args.hidden),
        load_tokenizer(TOKENIZER),
        seed=0,
        device=args.device,
        dtype="fp32",
    )
    cache = VisualCache()
    start = time.perf_counter()
    ChatSession(model, cache=cache).add_video(VIDEO, num_frames=8)
    first_add = time.perf_counter() - start
    start = time.perf_counter()
    ChatSession(model, cache=cache).add_video(VIDEO, num_frames=8)
    cached_add = time.perf_counter() - start
    run_conversation(model, cache, True, 2, 4)  # warm-up
    runs = {True: [], False: []}
    for _ in range(args.repeats):
        for reuse in (True, False):  # interleaved, so load changes hit both modes alike
            runs[reuse].append(
                run_conversation(model, cache, reuse, args.turns, args.answer_tokens)
            )
    report(args, runs, first_add, cached_add)


def report(args, runs: dict, first_add: float, cached_add: float) -> None:
    def ttft(reuse: bool, turn: int) -> float:
        return statistics.median(run[turn].ttft_s for run in runs[reuse]) * 1000

    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(
        f"LLM {args.layers} layers x {args.hidden} wide (random weights), {device}, "
        f"threads {torch.get_num_threads()}, answers {args.answer_tokens} tokens, "
        f"median of {args.repeats}"
    )
    print(f"{'turn':>4} {'prompt':>7} {'reused':>7} {'TTFT reuse ms':>14} {'TTFT no-reuse ms':>17}")
    for turn in range(args.turns):
        stats = runs[True][0][turn]
        print(
            f"{turn + 1:>4} {stats.prompt_tokens:>7} {stats.reused_tokens:>7} "
            f"{ttft(True, turn):>14.1f} {ttft(False, turn):>17.1f}"
        )
    last = args.turns - 1
    with_reuse = ttft(True, last) / ttft(True, 0)
    without = ttft(False, last) / ttft(False, 0)
    verdict = "meets" if with_reuse <= 1.5 else "MISSES"
    print(
        f"TTFT turn {args.turns} / turn 1: with reuse {with_reuse:.2f}x ({verdict} <= 1.5x), "
        f"without reuse {without:.2f}x; turn {args.turns} speed-up from reuse "
        f"{ttft(False, last) / ttft(True, last):.2f}x"
    )
    print(
        f"add_video: first {first_add * 1000:.0f} ms, again from the visual cache "
        f"{cached_add * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
