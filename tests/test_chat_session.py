"""ChatSession on the tiny random model: original parity, caches, KV reuse, errors, limits, scoring."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from tests._chat_helpers import (
    chat_fixture,
    chat_tensors,
    fixture_llm,
    tiny_model,
    write_image,
    write_video,
)
from videochat.chat import ChatSession, VisualCache
from videochat.chat.cache import CacheEntry
from videochat.chat.template import question_message
from videochat.errors import ChatError
from videochat.media import ImageClip, MediaError, VideoClip

MSG = "The video contains 4 frames sampled at 0.4, 1.2, 2.0, 2.8 seconds."
GREEDY = {"do_sample": False, "max_new_tokens": 12}


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("media") / "clip.mp4")


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return write_image(tmp_path_factory.mktemp("media") / "still.png")


class _FixtureCache(VisualCache):
    """Hands out the fixture's img_list as the visual embeddings of any media item."""

    def __init__(self, clip, embeds):
        super().__init__()
        self.entry = CacheEntry(clip, embeds, 0)

    def get(self, key):
        return self.entry


class _StubGenerate:
    """Stands in for `llm.generate` as the fixture's stub did: records inputs, returns fixed ids."""

    def __init__(self, outputs):
        self.outputs = list(outputs)
        self.inputs: list[torch.Tensor] = []

    def __call__(self, **kwargs):
        self.inputs.append(kwargs["inputs_embeds"])
        return SimpleNamespace(sequences=torch.tensor([self.outputs.pop(0)]))


def _fixture_session(monkeypatch, case):
    model = tiny_model()
    table = model.llm.get_input_embeddings().weight
    table.data.copy_(fixture_llm().get_input_embeddings().weight)
    tensors = chat_tensors()
    img_list = tensors[f"{case['name']}.img_list.0"]
    if case["upload"] == "video":
        clip = VideoClip(
            torch.zeros(4, 3, 28, 28),
            [4, 12, 20, 28],
            [0.4, 1.2, 2.0, 2.8],
            10.0,
            3.3,
            33,
            28,
            28,
            "h264",
            "v.mp4",
            MSG,
        )
    else:
        clip = ImageClip(torch.zeros(1, 3, 28, 28), 28, 28, "i.png", "PNG")
    stub = _StubGenerate(turn["stub_generate_output"] for turn in case["turns"])
    monkeypatch.setattr(model.llm, "generate", stub)
    return ChatSession(model, cache=_FixtureCache(clip, img_list)), stub, tensors


@pytest.mark.parametrize("case_index", [0, 1])
def test_context_embeds_answers_and_history_match_original(monkeypatch, case_index, video, image):
    case = chat_fixture()["cases"][case_index]
    session, stub, tensors = _fixture_session(monkeypatch, case)
    if case["upload"] == "video":
        session.add_video(video, num_frames=4)
    else:
        session.add_image(image)
    for k, turn in enumerate(case["turns"]):
        answer = session.ask(turn["question"], max_new_tokens=50)
        # the original keeps a final "</s>" in the text; we drop EOS before decoding
        assert answer == turn["answer_text"].removesuffix("</s>")
        expected = tensors[f"{case['name']}.turn{k}.context_embeds"]
        torch.testing.assert_close(stub.inputs[k], expected, atol=1e-6, rtol=0)
    expected_history = [(r, m.removesuffix("</s>")) for r, m in case["final_messages"]]
    assert session.history == expected_history


def test_kv_reuse_is_token_identical_and_reuses_the_prefix(model, video, image):
    questions = ["What is happening?", "What does he do next?", "Why?"]
    reuse = ChatSession(model, reuse_kv=True)
    fresh = ChatSession(model, reuse_kv=False)
    for session in (reuse, fresh):
        session.add_video(video, num_frames=4)
    reused = []
    for k, question in enumerate(questions):
        if k == 1:  # media added mid-conversation is reused too
            reuse.add_image(image)
            fresh.add_image(image)
        prompt_before = reuse.last_stats.prompt_tokens
        assert reuse.ask(question, **GREEDY) == fresh.ask(question, **GREEDY)
        assert fresh.last_stats.reused_tokens == 0
        reused.append((reuse.last_stats.reused_tokens, prompt_before))
    assert reused[0][0] == 0
    assert all(n >= before > 0 for n, before in reused[2:])  # whole previous prompt reused
    assert reuse.history == fresh.history


def test_stream_equals_plain_answer_and_is_recorded(model, video):
    plain = ChatSession(model)
    plain.add_video(video, num_frames=4)
    streamed = ChatSession(model)
    streamed.add_video(video, num_frames=4)
    expected = plain.ask("What is happening?", **GREEDY)
    pieces = list(streamed.ask("What is happening?", stream=True, **GREEDY))
    assert "".join(pieces) == expected
    assert streamed.history == plain.history


def test_visual_embeddings_are_computed_once_across_sessions(video, tmp_path):
    model = tiny_model()
    calls = []
    encode = model.encode_video
    model.encode_video = lambda pixels, times=None: (
        calls.append(pixels.shape) or encode(pixels, times)
    )
    cache = VisualCache()
    first = ChatSession(model, cache=cache)
    first.add_video(video, num_frames=4)
    second = ChatSession(model, cache=cache)
    copy = tmp_path / "same-bytes.mp4"
    copy.write_bytes(video.read_bytes())
    clip = second.add_video(copy, num_frames=4)  # same content, other name: a hit
    assert len(calls) == 1 and cache.hits == 1
    assert clip.message.startswith("The video contains 4 frames")
    second.add_video(video, num_frames=3)  # other sampling: encoded again
    assert len(calls) == 2 and len(cache) == 2
    other = tiny_model()  # another model object never sees this model's embeddings
    ChatSession(other, cache=cache).add_video(video, num_frames=4)
    assert len(cache) == 3


def test_cache_evicts_least_recently_used_by_bytes():
    embeds = torch.zeros(1, 10, 48)  # 1920 bytes
    cache = VisualCache(max_bytes=2 * 1920)
    for key in "abc":
        cache.put(key, SimpleNamespace(pixels=None), embeds)
        if key == "b":
            assert cache.get("a") is not None  # touch a: b becomes the oldest
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None
    assert cache.num_bytes == 2 * 1920
    cache.put("huge", SimpleNamespace(pixels=None), torch.zeros(1, 100, 48))
    assert cache.get("huge") is None and len(cache) == 2


def test_several_media_each_fill_their_own_slot(model, video, image, monkeypatch):
    session = ChatSession(model, cache=VisualCache())
    session.add_video(video, num_frames=4)
    session.add_image(image)
    session.add_video(video, num_frames=2)
    stub = _StubGenerate([[437, 2]])
    monkeypatch.setattr(model.llm, "generate", stub)
    session.ask("Compare them.", max_new_tokens=5)
    embeds = stub.inputs[0][0]  # (L, D)
    found = []
    for item in session._media:  # each media's embeddings appear, in order
        block = item.embeds[0]
        starts = [
            i
            for i in range(len(embeds) - len(block) + 1)
            if torch.equal(embeds[i : i + len(block)], block)
        ]
        found.append(starts)
    assert all(len(s) == 1 for s in found)
    assert found[0][0] < found[1][0] < found[2][0]


def test_text_only_chat_and_answer_prefix(model):
    session = ChatSession(model, system="Be brief.")
    answer = session.ask("Hello?", answer_prefix="Best option:(", **GREEDY)
    assert isinstance(answer, str)
    assert session.history[-1] == ("Assistant", "Best option:(" + answer)
    assert session.media == []


def test_bad_input_leaves_the_session_usable(model, video, tmp_path):
    session = ChatSession(model)
    session.add_video(video, num_frames=4)
    before = session.history
    with pytest.raises(MediaError):
        session.add_video(tmp_path / "missing.mp4")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    with pytest.raises(MediaError):
        session.add_media(broken)
    with pytest.raises(ChatError, match="empty"):
        session.ask("   ")
    with pytest.raises(ChatError, match="unknown generation option"):
        session.ask("Hi", beams=3)
    assert session.history == before and len(session.media) == 1
    assert session.ask("What is happening?", **GREEDY) is not None
    session.reset()
    assert session.history == [] and session.media == []


def test_long_conversation_drops_oldest_turns_but_keeps_media(model, video):
    session = ChatSession(model)
    session.add_video(video, num_frames=4)
    limit = model.llm.config.max_position_embeddings  # 256 for the tiny model
    padding = " Tell me more about what happens in the video." * 3
    for k in range(9):
        session.ask(f"Question number {k}.{padding}", do_sample=False, max_new_tokens=6)
        assert session.last_stats.prompt_tokens < limit
    history = session.history
    assert history[0][1].startswith("<Video><VideoHere></Video>")
    assert not any("number 0." in content for _, content in history)  # dropped
    assert "number 8." in history[-2][1]


def test_question_longer_than_the_context_is_a_chat_error(model):
    session = ChatSession(model)
    with pytest.raises(ChatError, match="context"):
        session.ask("why " * 400, **GREEDY)
    assert session.history == []


def test_busy_session_refuses_a_second_question(model, video):
    session = ChatSession(model)
    session.add_video(video, num_frames=4)
    stream = session.ask("What is happening?", stream=True, do_sample=False, max_new_tokens=30)
    next(stream)
    with pytest.raises(ChatError, match="busy"):
        session.ask("And now?", **GREEDY)
    stream.close()  # the consumer leaves: the partial answer is kept, the session is free
    assert session.history[-1][0] == "Assistant"
    assert session.ask("And now?", **GREEDY) is not None


def test_replayed_turns_enter_the_prompt(model):
    session = ChatSession(model)
    session.add_turn("What is it?", " A dog. ")
    session.ask("What colour?", **GREEDY)
    assert session.history[:2] == [("Human", "What is it?\n"), ("Assistant", "A dog.")]


def test_beam_search_streams_in_one_piece_and_stats_are_kept(model, video):
    beams = {"do_sample": False, "num_beams": 2, "max_new_tokens": 6}
    plain = ChatSession(model)
    plain.add_video(video, num_frames=4)
    expected = plain.ask("What is happening?", **beams)
    streamed = ChatSession(model)
    streamed.add_video(video, num_frames=4)
    pieces = list(streamed.ask("What is happening?", stream=True, **beams))
    assert "".join(pieces) == expected and len(pieces) <= 1
    stats = streamed.last_stats
    assert stats.reused_tokens == 0 and 0 < stats.new_tokens <= 6
    assert stats.prompt_tokens > 10 and 0 < stats.ttft_s <= stats.total_s


def test_other_llm_families_use_the_tokenizers_chat_template(video, monkeypatch):
    model = tiny_model()
    model.config.llm.chat_template = "tokenizer"
    model.tokenizer.chat_template = (
        "{{ bos_token }}{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}{% endfor %}"
        "{% if add_generation_prompt %}[assistant]{% endif %}"
    )
    session = ChatSession(model, system="Be brief.")
    session.add_video(video, num_frames=4)
    stub = _StubGenerate([[437, 438, 305, 2]])  # " A ###" then EOS: no `###` stop here
    monkeypatch.setattr(model.llm, "generate", stub)
    answer = session.ask("What?", max_new_tokens=5)
    assert answer == model.tokenizer.decode([437, 438, 305]).strip()
    assert session.history[0][0] == "user" and session.history[-1] == ("assistant", answer)
    table = model.llm.get_input_embeddings()
    first = table(torch.tensor([model.tokenizer.bos_token_id]))  # BOS from the template text
    torch.testing.assert_close(stub.inputs[0][0, :1], first)


def test_session_limits_apply_to_every_load(model, video):
    """A session made with MediaLimits refuses media over them and stays unchanged."""
    from videochat.media import MediaLimits, MediaTooLargeError

    strict = ChatSession(model, cache=VisualCache(), limits=MediaLimits(max_duration_s=0.5))
    with pytest.raises(MediaTooLargeError):
        strict.add_video(video, num_frames=2)
    assert strict.media == [] and strict.history == []
    relaxed = ChatSession(model, cache=VisualCache(), limits=MediaLimits())
    assert relaxed.add_video(video, num_frames=2).pixels.shape[0] == 2


# ----- scoring replies (rank classification) -----------------------------------------
QUESTION = "What colour is the circle?"
REPLIES = ["red)", "dark blue)", "a long and winding answer)"]


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


def test_prompt_inputs_are_what_the_llm_would_read_and_change_nothing(model):
    session = ChatSession(model)
    session.add_turn("Hello there.", "Hi.")
    before = session.history
    plan, embeds = session.prompt_inputs(QUESTION, answer_prefix="Best option:(")
    messages = [*session.history, (session.template.roles[0], question_message(QUESTION))]
    ids = model.tokenizer(session.template.render(messages, "Best option:(")).input_ids
    assert plan.keys == ids and embeds.shape == (1, len(ids), model.llm.config.hidden_size)
    with torch.no_grad():  # the same input as the text's own token embeddings
        torch.testing.assert_close(embeds[0], model.llm.get_input_embeddings()(torch.tensor(ids)))
    assert session.history == before and len(before) == 2


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
