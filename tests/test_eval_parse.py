"""Answer parsing per protocol, and the exact prompt text each protocol sends."""

from pathlib import Path

import pytest

from videochat.errors import VideoChatError
from videochat.eval.bench import BenchItem
from videochat.eval.parse import lmms_eval_normalise, parse_lmms_eval, parse_option
from videochat.eval.protocols import LMMS_EVAL, VIDEOCHAT2, get_protocol

CANDS = ["Ate the medicine.", "Tidied up the blanket.", "Put down the cup.", "Took the box."]


@pytest.mark.parametrize(
    ("reply", "letter"),
    [
        ("B) Tidied up the blanket.", "B"),  # the usual primed reply: "(" + "B) ..."
        ("B", "B"),  # letter only
        ("b)", "B"),  # lower case
        ("c. put down the cup", "C"),
        ("D: Took the box.", "D"),
        ("A) Ate the medicine.\nBecause the person...", "A"),  # only the first line counts
        ("(B) Tidied up the blanket.", "B"),  # model repeats the parenthesis
        ("The answer is (C) Put down the cup.", "C"),  # extra text around a bracketed letter
        ("Took the box.", "D"),  # option text instead of a letter
        ("took the box", "D"),  # ... in lower case, no punctuation
        ("I think they put down the cup there", "C"),  # ... contained in a sentence
        ("", None),  # nothing: wrong (VideoChat2's check_ans counted this right)
        ("E) something else", None),  # a letter with no such option
        ("Nothing matches here", None),
        ("Zebra", None),  # starts with a letter-word, not a letter
    ],
)
def test_videochat2_reads_the_primed_first_line(reply, letter):
    text, parsed = VIDEOCHAT2.read_answer(reply, CANDS)
    assert text.startswith("(")
    assert parsed == letter


def test_option_text_must_identify_one_candidate():
    assert parse_option("(ball", ["red ball", "ball", "cube"]) == "B"  # exact text wins
    assert parse_option("(the red ball moved", ["red ball", "ball", "cube"]) == "A"  # longest
    assert parse_option("(cat and dog", ["cat", "dog"]) is None  # ambiguous


@pytest.mark.parametrize(
    ("reply", "letter"),
    [
        ("B. Tidied up the blanket.", "B"),
        ("(C) Put down the cup.", "C"),
        ("c", "C"),
        ("Answer: D", "D"),
        ("The best option is (A)", "A"),
        ("Took the box.", None),  # lmms-eval does not match option text
        ("", None),
        ("a cat sat", "A"),  # lmms-eval's rule reads any standalone a-e word (quirk kept)
        ("E", None),  # out of range for 4 candidates
    ],
)
def test_lmms_eval_rule(reply, letter):
    assert LMMS_EVAL.read_answer(reply, CANDS)[1] == letter
    assert parse_lmms_eval(reply, CANDS) == letter


def test_lmms_eval_punctuation_cleaning():
    assert lmms_eval_normalise("  'B'  ") == "B"
    assert lmms_eval_normalise("Took the box.") == "took the box"
    assert lmms_eval_normalise("1,000 things") == "1000 things"


def _item(**kw) -> BenchItem:
    base = {
        "task": "t",
        "index": 0,
        "video": "v.mp4",
        "media_path": Path("v.mp4"),
        "data_type": "video",
        "question": "What happened after the person took the food?",
        "candidates": ("Ate the medicine.", "Took the box."),
        "answer": "Took the box.",
    }
    return BenchItem(**{**base, **kw})


def test_videochat2_prompt_is_the_published_one():
    system = (
        "Carefully watch the video and pay attention to the cause and sequence of events, the detail"
        " and movement of objects, and the action and pose of persons. Based on your observations,"
        " select the best option that accurately addresses the question.\n"
    )
    assert VIDEOCHAT2.system == system
    assert VIDEOCHAT2.question(_item()) == (
        system + "Question: What happened after the person took the food?\nOptions:\n"
        "(A) Ate the medicine.\n(B) Took the box.\nOnly give the best option."
    )
    assert VIDEOCHAT2.answer_prefix == "Best option:("
    assert VIDEOCHAT2.generation == {"do_sample": False, "num_beams": 1, "max_new_tokens": 100}


def test_lmms_eval_prompt_is_the_published_one():
    assert LMMS_EVAL.system == "" and LMMS_EVAL.answer_prefix == ""
    assert LMMS_EVAL.question(_item()) == (
        "Question:What happened after the person took the food?\nOption:\n"
        "(A) Ate the medicine.\n(B) Took the box.\nOnly give the best option.\n"
    )
    assert LMMS_EVAL.generation["max_new_tokens"] == 16
    assert LMMS_EVAL.generation["do_sample"] is False


def test_protocol_lookup():
    assert get_protocol("lmms_eval") is LMMS_EVAL
    with pytest.raises(VideoChatError, match="unknown protocol 'mvb'; choose one of"):
        get_protocol("mvb")
