"""The committed embedded model: loads with no argument, stays small, answers fresh questions."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from videochat.model.load import DEFAULT_DIR

pytestmark = pytest.mark.skipif(
    not (DEFAULT_DIR / "config.json").is_file(), reason="no embedded model in this checkout"
)
FRESH_SEED = 4242  # neither the training seed (0) nor the benchmark seed (1000)


@pytest.fixture(scope="module")
def model():
    from videochat.model import load_model

    return load_model(None, device="cpu")


@pytest.fixture(scope="module")
def fresh_bench(tmp_path_factory) -> Path:
    from videochat.synth.dataset import write_dataset

    out = tmp_path_factory.mktemp("fresh")
    write_dataset(out, videos=6, seed=FRESH_SEED, size=(112, 112))
    return out


def test_committed_files_are_small_and_complete() -> None:
    names = {p.name for p in DEFAULT_DIR.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "MODEL_CARD.md"} <= names
    total = sum(p.stat().st_size for p in DEFAULT_DIR.iterdir())
    assert total <= 30 * 2**20, f"{total / 2**20:.1f} MB > 30 MB"
    card = (DEFAULT_DIR / "MODEL_CARD.md").read_text()
    assert "python -m videochat.embedded" in card


def test_the_cards_rebuild_command_parses_and_names_every_option() -> None:
    import shlex

    from videochat.embedded.__main__ import parse
    from videochat.embedded.config import shape_stretches
    from videochat.embedded.plan import STAGES, SWITCHES, cli_flag
    from videochat.model.config import VideoChatConfig

    card = (DEFAULT_DIR / "MODEL_CARD.md").read_text()
    line = next(x for x in card.splitlines() if "python -m videochat.embedded" in x)
    argv = shlex.split(line)[3:]
    args = parse(argv)  # exits on an option the CLI no longer knows
    for name in SWITCHES:  # written out, so later defaults do not change what it builds
        flag = cli_flag(name)
        assert f"--{flag}" in argv or f"--no-{flag}" in argv, flag
    for stage in STAGES:  # every stage's steps too (a stage added later defaults to 0: skipped)
        assert f"--{cli_flag(stage)}-steps" in argv, stage
    config = json.loads((DEFAULT_DIR / "config.json").read_text())["config"]
    assert args.frame_rows == bool(config["qformer"]["frame_rows"])
    assert args.row_names == bool(config.get("row_tokens"))
    assert args.visual_positions == bool(config["qformer"].get("input_positions"))
    assert args.merge_stretches == bool(config.get("merge_stretch_rows"))
    assert args.row_name_scale == config.get("row_name_scale", 1.0)
    assert "--shape-stretches" in argv and "--comes-goes-weight" in argv
    assert "--comes-goes-rows" in argv
    assert args.shape_stretches == shape_stretches(VideoChatConfig.from_dict(config))


def test_default_model_is_the_small_videochat(model) -> None:
    cfg = model.config
    assert cfg.vision.temporal_pos_embed and cfg.vision.image_size == 112
    # 2 rows per shape (one per half of the clip), 8 frame rows, 3 video rows
    assert cfg.num_queries == 21 and model.llm.config.model_type == "llama"
    assert model.tokenizer is not None and model.load_report is not None


def _fresh_records(model, bench: Path, tasks: list[str] | None) -> list[dict]:
    from videochat.eval import evaluate, get_protocol, load_benchmark, open_session

    protocol = get_protocol("videochat2")
    items = load_benchmark(bench / "benchmark", tasks)
    return evaluate(open_session(model, protocol), items, protocol, num_frames=8, progress=False)


def test_default_model_answers_in_the_protocol_form(model, fresh_bench: Path) -> None:
    from videochat.eval.parse import LETTERS

    records = _fresh_records(model, fresh_bench, ["object_colour", "object_count"])
    assert records and all(r["error"] is None for r in records)
    for r in records:  # "(text)": an option's text after the primed "Best option:("
        assert re.fullmatch(r"\([^()]+\)", r["parsed_text"]), r["prediction"]
    named = [r for r in records if r["letter"] is not None]
    assert len(named) >= len(records) / 2, [r["prediction"] for r in records]
    for r in named:  # the parser maps the text to the letter of the option with that text
        assert r["parsed_text"] == f"({r['candidates'][LETTERS.index(r['letter'])]})"


@pytest.mark.xfail(
    strict=True,
    reason="on these 6 videos temporal order and event time are 1 of 2 and 2 of 4 right (task "
    "mean 79%; 2 to 4 items a task move it by 25-50 points); on the 100-video seed-1000 "
    "benchmark every task clears 60% (MODEL_CARD.md), and on the seed-3000 and 4000 ones",
)
def test_default_model_meets_the_multiple_choice_targets(model, fresh_bench: Path) -> None:
    from videochat.synth.questions import TASKS

    records = _fresh_records(model, fresh_bench, None)
    per_task: dict[str, list[bool]] = {}
    for r in records:
        per_task.setdefault(r["task"], []).append(bool(r["correct"]))
    accuracy = {task: sum(right) / len(right) for task, right in per_task.items()}
    assert set(accuracy) == set(TASKS)
    mean = sum(accuracy.values()) / len(accuracy)
    assert min(accuracy.values()) >= 0.6 and mean >= 0.85, accuracy


def test_default_model_describes_what_is_in_the_video(model, fresh_bench: Path) -> None:
    """Its descriptions name clearly more of the video's own objects and events than of
    another video's (measured on this bench: 0.81 against 0.24), and few that are not there."""
    from videochat.embedded.measure import descriptions

    result = descriptions(model, fresh_bench, limit=3)
    assert result["score"] >= result["mismatched_floor"] + 0.2, result["examples"]
    # and what they name is there (1.00 of the colours and shapes on the seed-1000 benchmark)
    assert result["precision"] >= 0.8, result["examples"]


@pytest.mark.parametrize("oracle", [True, False])
def test_free_form_scores_the_ground_truth_sentence(model, fresh_bench: Path, monkeypatch, oracle):
    """free_form asks each question without options and counts exact ground-truth sentences: an
    oracle answering with the reference (in lower case, without the full stop) scores 100% on
    every task, an answer naming another video's facts scores 0%."""
    from videochat.chat import ChatSession
    from videochat.embedded.measure import free_form, reference_sentences

    truth = reference_sentences(fresh_bench)
    asked, shown = [], []

    def answer(session, question, **kw):
        asked.append(question)
        right = truth[(Path(shown[-1]).name, question)]
        return right.lower().rstrip(".") if oracle else "The square is red and moves left."

    monkeypatch.setattr(ChatSession, "add_video", lambda session, src, **kw: shown.append(src))
    monkeypatch.setattr(ChatSession, "ask", answer)
    result = free_form(model, fresh_bench / "benchmark", limit=2)
    assert asked and not any(q.startswith("Question:") for q in asked)  # no options given
    assert result["tasks"] and set(result["tasks"].values()) == {100.0 if oracle else 0.0}


def test_the_committed_model_fetches_the_named_row_in_its_first_layer(
    model, fresh_bench: Path
) -> None:
    """Its colour answers take two hops: the question's shape word fetches its named row in the
    first layer (0.92 of the named rows' attention on the seed-4000 benchmark, chance 0.2), and
    the answer's position reads the shape word later (0.25 in the last layer); the attention
    kernel is the model's own again afterwards."""
    from videochat.embedded.lookup_attention import named_row_attention

    kernel = model.llm.config._attn_implementation
    figures = named_row_attention(model, fresh_bench / "benchmark", limit=6)
    assert figures is not None and figures["items"] >= 3 and figures["chance_share"] == 0.2
    assert len(figures["fetch_share"]) == model.llm.config.num_hidden_layers
    assert figures["fetch_share"][0] > 0.7 and max(figures["fetch_share"][1:]) < 0.5, figures
    assert figures["fetch_mass"][0] > 0.3, figures
    assert max(figures["answer_on_word"][1:]) > 0.1 > figures["answer_on_word"][0], figures
    assert model.llm.config._attn_implementation == kernel


def test_named_row_attention_reads_the_rows_a_prompt_names(model) -> None:
    """On a made-up prompt whose attention is known: the figures come from the asked shape's row
    and the answer's position, per layer."""
    import torch

    from videochat.embedded.lookup_attention import eager_attention, item_attention, named_rows

    rows = named_rows(model)
    assert sorted(rows) == ["circle", "cross", "square", "star", "triangle"]
    circle = model.tokenizer.encode(" circle", add_special_tokens=False)
    assert len(circle) == 1 and model.tokenizer.decode(circle).strip() == "circle"
    keys = [1, *[("video", j) for j in range(6)], 5, circle[0], 5]
    embeds = torch.randn(1, len(keys), model.llm.config.hidden_size)
    with eager_attention(model):
        figures = item_attention(model, keys, embeds, rows)
        nothing = item_attention(model, [1, 5, 5], embeds[:, :3], rows)  # no video
    layers = model.llm.config.num_hidden_layers
    assert [len(v) for v in figures.values()] == [layers] * 3
    assert all(0 <= share <= 1 for share in figures["fetch_share"])
    assert nothing == {}
