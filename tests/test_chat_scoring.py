"""ChatSession.score_replies on the tiny random model: the numbers, batching, and no side effects."""

from __future__ import annotations

import pytest
import torch

from tests._chat_helpers import tiny_model, write_video
from videochat.chat import ChatSession
from videochat.chat.template import question_message
from videochat.errors import ChatError

QUESTION = "What colour is the circle?"
REPLIES = ["red)", "dark blue)", "a long and winding answer)"]


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("media") / "clip.mp4")


def _manual_logprob(model, session: ChatSession, reply: str, prefix: str) -> float:
    """log P(reply | prompt) from token ids through the LLM alone (a text-only conversation)."""
    messages = [*session.history, (session.template.roles[0], question_message(QUESTION))]
    tokenizer = model.tokenizer
    context = tokenizer(session.template.render(messages, prefix)).input_ids
    full = tokenizer(session.template.render(messages, prefix + reply)).input_ids
    start = next(
        (i for i, (a, b) in enumerate(zip(context, full, strict=False)) if a != b), len(context)
    )
    with torch.no_grad():
        logits = model.llm(input_ids=torch.tensor([full])).logits[0]  # (L, V)
    logp = logits[start - 1 : -1].log_softmax(-1)
    return float(logp.gather(-1, torch.tensor(full[start:])[:, None]).sum())


def test_scores_are_the_llms_log_probabilities_of_each_reply(model):
    session = ChatSession(model)
    session.add_turn("Hello there.", "Hi.")
    scores = session.score_replies(QUESTION, REPLIES, answer_prefix="Best option:(")
    manual = [_manual_logprob(model, session, r, "Best option:(") for r in REPLIES]
    assert [s.logprob for s in scores] == pytest.approx(manual, abs=1e-4)
    assert all(s.logprob < 0 for s in scores)


def test_only_the_models_likeliest_next_token_is_marked_greedy(model):
    session = ChatSession(model)
    session.add_turn("Hello there.", "Hi.")
    prefix, tokenizer = "The answer is", model.tokenizer
    messages = [*session.history, (session.template.roles[0], question_message(QUESTION))]
    context = tokenizer(session.template.render(messages, prefix)).input_ids
    with torch.no_grad():
        ranked = model.llm(input_ids=torch.tensor([context])).logits[0, -1].argsort(descending=True)
    # the two likeliest tokens that the tokenizer writes back as themselves after the prompt
    replies = []
    for token in ranked[:20].tolist():
        text = tokenizer.decode([token])
        if tokenizer(session.template.render(messages, prefix + text)).input_ids == [
            *context,
            token,
        ]:
            replies.append((token == ranked[0], text))
    (first_is_top, first), (_, second) = replies[:2]
    assert first_is_top  # the likeliest token round-trips for this model and prompt
    best, runner_up = session.score_replies(QUESTION, [first, second], answer_prefix=prefix)
    assert best.greedy and not runner_up.greedy and best.logprob > runner_up.logprob


def test_batched_scores_equal_scores_one_at_a_time(model, video):
    session = ChatSession(model)
    session.add_video(str(video), num_frames=4, sampling="middle")
    together = [s.logprob for s in session.score_replies(QUESTION, REPLIES)]  # padded
    alone = [session.score_replies(QUESTION, [reply])[0].logprob for reply in REPLIES]
    assert together == pytest.approx(alone, abs=1e-4)


def test_scoring_changes_nothing_in_the_conversation(model, video):
    scored, fresh = ChatSession(model), ChatSession(model)
    for session in (scored, fresh):
        session.add_video(str(video), num_frames=4, sampling="middle")
    history = scored.history
    scored.score_replies(QUESTION, REPLIES)
    assert scored.history == history
    greedy = {"do_sample": False, "max_new_tokens": 6}
    assert scored.ask(QUESTION, **greedy) == fresh.ask(QUESTION, **greedy)


def test_nothing_to_score_is_an_error(model):
    session = ChatSession(model)
    for replies in ([], ["red)", ""]):
        with pytest.raises(ChatError, match="at least one reply"):
            session.score_replies(QUESTION, replies)
