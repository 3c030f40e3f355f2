"""MVBench-format evaluation: benchmark reading, published prompt protocols, answer parsing, runner.

from videochat.eval import load_benchmark, get_protocol, evaluate, summarize
items = load_benchmark("bench/", names=None, limit=None)
protocol = get_protocol("videochat2")            # or "lmms-eval"
records = evaluate(session, items, protocol, num_frames=16, predictions=Path("preds.jsonl"))
results = summarize(records, protocol=protocol.name, num_frames=16, model="...")
"""

from videochat.eval.bench import (
    BenchItem,
    BenchmarkError,
    TaskSpec,
    load_benchmark,
    load_items,
    load_tasks,
)
from videochat.eval.parse import parse_lmms_eval, parse_option
from videochat.eval.protocols import (
    LMMS_EVAL,
    PROTOCOLS,
    VIDEOCHAT2,
    VIDEOCHAT2_RANK,
    Protocol,
    get_protocol,
)
from videochat.eval.results import format_table, summarize, write_results
from videochat.eval.runner import evaluate, evaluate_item, open_session

__all__ = [
    "LMMS_EVAL",
    "PROTOCOLS",
    "VIDEOCHAT2",
    "VIDEOCHAT2_RANK",
    "BenchItem",
    "BenchmarkError",
    "Protocol",
    "TaskSpec",
    "evaluate",
    "evaluate_item",
    "format_table",
    "get_protocol",
    "load_benchmark",
    "load_items",
    "load_tasks",
    "open_session",
    "parse_lmms_eval",
    "parse_option",
    "summarize",
    "write_results",
]
