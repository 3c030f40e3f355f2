"""Conversation format parity with the original (`prompts/chat.json`) and the HF-template path."""

from __future__ import annotations

import pytest

from tests._chat_helpers import chat_fixture, fixture_tokenizer
from videochat.chat.generate import decode_answer
from videochat.chat.template import (
    HFChatTemplate,
    VideoChatTemplate,
    encode_segments,
    image_message,
    question_message,
    split_prompt,
    video_message,
)
from videochat.errors import ChatError

MSG = "The video contains 4 frames sampled at 0.4, 1.2, 2.0, 2.8 seconds."


@pytest.fixture(scope="module")
def tokenizer():
    return fixture_tokenizer()


def _replay(case: dict):
    """Rebuild each turn's message list with our helpers, as a session would."""
    template = VideoChatTemplate()
    human, assistant = template.roles
    first = video_message(MSG) if case["upload"] == "video" else image_message()
    messages = [(human, first)]
    for turn in case["turns"]:
        messages.append((human, question_message(turn["question"])))
        yield template, list(messages), turn
        messages.append((assistant, turn["answer_text"]))
    assert messages == [tuple(m) for m in case["final_messages"]]


@pytest.mark.parametrize("case_index", [0, 1])
def test_prompts_segments_and_ids_match_original(tokenizer, case_index):
    case = chat_fixture()["cases"][case_index]
    turns = 0
    for template, messages, turn in _replay(case):
        prompt = template.render(messages)
        assert prompt == turn["prompt"]
        segments, kinds = split_prompt(prompt)
        assert segments == turn["segments"]
        assert kinds == [turn["split_marker"]]
        ids = encode_segments(tokenizer, segments, template.add_bos)
        assert ids == turn["segment_ids (bos only on first)"]
        turns += 1
    assert turns == len(case["turns"])


def test_answer_cleaning_matches_original(tokenizer):
    template = VideoChatTemplate()
    for case in chat_fixture()["cases"]:
        for turn in case["turns"]:
            raw = turn["stub_generate_output"]
            assert decode_answer(tokenizer, template, raw) == turn["answer_text"]


def test_several_media_each_get_a_slot(tokenizer):
    template = VideoChatTemplate()
    human = template.roles[0]
    messages = [
        (human, video_message("A.")),
        (human, image_message()),
        (human, video_message("B.")),
        (human, question_message("Compare them.")),
    ]
    segments, kinds = split_prompt(template.render(messages))
    assert kinds == ["<VideoHere>", "<ImageHere>", "<VideoHere>"]
    assert len(segments) == 4
    ids = encode_segments(tokenizer, segments, add_bos=True)
    assert [seg[0] == tokenizer.bos_token_id for seg in ids] == [True, False, False, False]
    assert segments[1].startswith("</Video> A.\n###Human: <Image>")


def test_answer_prefix_follows_the_assistant_tag():
    template = VideoChatTemplate(system="Be brief.")
    prompt = template.render([("Human", "Which?\n")], answer_prefix="Best option:(")
    assert prompt == "Be brief.###Human: Which?\n###Assistant: Best option:("


def test_cleaning_keeps_text_after_last_assistant_tag():
    template = VideoChatTemplate()
    assert template.clean(" foo Assistant: bar ###Human: x") == "bar"


@pytest.mark.parametrize("bad", ["", "   \n", "look at <VideoHere> now", "<ImageHere>"])
def test_bad_questions_are_rejected(bad):
    with pytest.raises(ChatError):
        question_message(bad)


def test_hf_chat_template_merges_user_messages_and_keeps_slots(tokenizer):
    tokenizer = fixture_tokenizer()
    tokenizer.chat_template = (
        "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    template = HFChatTemplate(tokenizer, system="sys")
    user, assistant = template.roles
    messages = [
        (user, video_message(MSG)),
        (user, question_message("What?")),
        (assistant, "Dancing."),
        (user, question_message("Next?")),
    ]
    prompt = template.render(messages, answer_prefix="(")
    assert prompt == (
        "<|system|>sys<|end|>"
        f"<|user|><Video><VideoHere></Video> {MSG}\nWhat?\n<|end|>"
        "<|assistant|>Dancing.<|end|><|user|>Next?\n<|end|><|assistant|>("
    )
    segments, kinds = split_prompt(prompt)
    assert kinds == ["<VideoHere>"] and len(segments) == 2
    assert not template.add_bos


def test_hf_template_requires_a_chat_template(tokenizer):
    with pytest.raises(ChatError, match="chat template"):
        HFChatTemplate(fixture_tokenizer())


def test_separator_is_cut_however_it_is_tokenised(tokenizer):
    template = VideoChatTemplate()
    hash1, hash2 = tokenizer.convert_tokens_to_ids(["#", "##"])
    assert tokenizer.decode([437, hash1, hash2]) == "A###"  # "#" + "##", not the "###" piece
    for ids in ([437, hash1, hash2, 347], [437, hash2, hash1, 347], [437, 305, 347]):
        assert decode_answer(tokenizer, template, ids) == "A"
    assert decode_answer(tokenizer, template, [437, hash2], final=False) == "A"  # held back
    assert decode_answer(tokenizer, template, [437, hash2], final=True) == "A##"
